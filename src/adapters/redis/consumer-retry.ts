/**
 * The retry bookkeeping of one stream consumer (`consumer.ts`): when each entry that did not finish may be
 * handled again. It only keeps times and counts; the consumer decides, reads, logs and acknowledges.
 *
 * - A handler error counts a failed attempt. Below `maxAttempts` the entry stays pending and is retried after
 *   a back-off of 100 ms × 2^attempts, at most 2 s ({@link retryBackoffMs}): from the own-pending read
 *   (`notBefore`), or in place in ordered partitioned mode. At `maxAttempts` it is dead-lettered (the
 *   consumer's default) or, with `exhausted: 'park'`, PARKED: left pending and unacknowledged, retried from
 *   the own-pending read after 2 s × 2^(attempts − maxAttempts), at most `parkedRetryMaxMs`
 *   (`PARKED_RETRY_MAX_MS` by default; the first wait is the smaller of 2 s and this), never
 *   dead-lettered; a parked entry no longer holds its partition back.
 * - A handler error that says Redis cannot take the entry's commands now ({@link isRedisUnavailable}: `NOREPLICAS`
 *   while a replica resyncs after a failover, `READONLY` from a demoted master, `LOADING`, `MASTERDOWN`, a
 *   connection closed or not writable) is not the entry's fault and is NOT counted: such an entry is never
 *   dead-lettered or parked for it, and is retried every {@link UNAVAILABLE_RETRY_MS}, so the consumer gets going
 *   again as soon as Redis accepts writes.
 * - An entry whose handler threw `HandedOver` (consumer-types.ts) is not counted as a failure: it is looked at again after
 *   {@link HANDED_OVER_RECHECK_MS} if still in this consumer's pending list (`recheckAt`, kept apart from
 *   `notBefore` so such entries never force an own-pending read every turn).
 * - Entries whose recheck time passed a minute ago, and parked entries whose time passed 10 × `parkedRetryMaxMs`
 *   ago, are forgotten (another consumer took them over and finished them: they are no longer ours).
 * Invariant: nothing here acknowledges, drops or dead-letters an entry; a success forgets every wait of it.
 */
import { HANDED_OVER_RECHECK_MS } from './consumer-types.js';

/** Wait before retrying an entry whose handler failed because Redis could not take its commands, ms. */
export const UNAVAILABLE_RETRY_MS = 250;

/**
 * Whether `err` says Redis cannot take commands now, whatever the entry (see the module comment): the replies
 * `NOREPLICAS` (min-replicas-to-write not met), `READONLY` (a replica), `LOADING`, `MASTERDOWN`, `TRYAGAIN`, and
 * ioredis' connection errors (closed, not writable, aborted on close, retries per request used up); an
 * `EXECABORT` whose queued commands were refused that way (`previousErrors`: ioredis' multi(), tick-batch.ts).
 */
export function isRedisUnavailable(err: unknown): boolean {
  const msg = err instanceof Error ? err.message : String(err);
  // a MULTI aborted because a queued write was refused (EXECABORT after NOREPLICAS at queue time)
  const inner = (err as { previousErrors?: unknown[] } | null)?.previousErrors;
  if (msg.startsWith('EXECABORT') && Array.isArray(inner) && inner.length > 0) return inner.some((e) => isRedisUnavailable(e));
  return (
    /^(NOREPLICAS|READONLY|LOADING|MASTERDOWN|TRYAGAIN)\b/.test(msg) ||
    /^(Connection is closed|Stream isn't writeable|Command aborted due to connection close|Reached the max retries per request limit)/.test(msg) ||
    /\b(ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT)\b/.test(msg)
  );
}

/** Wait before retrying an entry that failed `attempts` times (not yet exhausted), ms: 100 × 2^attempts, at most 2 s. */
export function retryBackoffMs(attempts: number): number {
  return Math.min(100 * 2 ** attempts, 2000);
}

/** The retry times and failed-attempt counts of one consumer's entries (see the module comment). */
export class ConsumerRetries {
  /** Failed attempts of each entry since it last succeeded, was handed over or was dead-lettered. */
  private readonly attempts = new Map<string, number>();
  /** Partitioned mode: failed entries → when to retry them from the own-pending read (epoch ms). */
  private readonly notBefore = new Map<string, number>();
  /** Entries whose handler threw `HandedOver` → when to look at them again (epoch ms). */
  private readonly recheckAt = new Map<string, number>();
  /** Parked entries (`exhausted: 'park'`) → when to try them again (epoch ms). */
  private readonly parkedUntil = new Map<string, number>();

  /**
   * @param maxAttempts failed attempts before an entry is exhausted (dead-lettered or parked)
   * @param parkedRetryMaxMs longest wait between two attempts of a parked entry, ms
   */
  constructor(
    private readonly maxAttempts: number,
    private readonly parkedRetryMaxMs: number,
  ) {}

  /** Attempts of each entry refused because Redis could not take its commands (not failures; for the log only). */
  private readonly refused = new Map<string, number>();

  /** `id`'s handler failed because Redis could not take its commands: not a failure. @returns such attempts in a row */
  unavailable(id: string): number {
    const n = (this.refused.get(id) ?? 0) + 1;
    this.refused.set(id, n);
    return n;
  }

  /** Counts one more failed attempt of `id`. @returns its failed attempts so far */
  failed(id: string): number {
    const n = (this.attempts.get(id) ?? 0) + 1;
    this.attempts.set(id, n);
    return n;
  }

  /** Failed attempts of `id` so far, for its back-off (1 when none is counted). */
  attemptsOf(id: string): number {
    return this.attempts.get(id) ?? 1;
  }

  /** Forgets the failed attempts of `id` (dead-lettered: it is gone from the pending list). */
  forgetAttempts(id: string): void {
    this.attempts.delete(id);
  }

  /** `id` was handled: forgets its attempts, its recheck and its parking. */
  succeeded(id: string): void {
    this.attempts.delete(id);
    this.refused.delete(id);
    this.recheckAt.delete(id);
    this.parkedUntil.delete(id);
  }

  /** `id`'s handler threw `HandedOver`: not a failure; looked at again after {@link HANDED_OVER_RECHECK_MS}. */
  handedOver(id: string): void {
    this.attempts.delete(id);
    this.recheckAt.set(id, Date.now() + HANDED_OVER_RECHECK_MS);
  }

  /** Partitioned mode: `id` failed; it is retried from the own-pending read after {@link retryBackoffMs}. */
  retryLater(id: string, unavailable = false): void {
    this.notBefore.set(id, Date.now() + (unavailable ? UNAVAILABLE_RETRY_MS : retryBackoffMs(this.attemptsOf(id))));
  }

  /** Partitioned mode: the run of `id` finished (handled, dead-lettered, parked or handed over): no retry wait. */
  ranOut(id: string): void {
    this.notBefore.delete(id);
  }

  /** Whether some failed entry waits for its retry from the own-pending read. */
  retriesWaiting(): boolean {
    return this.notBefore.size > 0;
  }

  /**
   * Parks `id` after `attempts` failed attempts: tried again after 2 s × 2^(attempts − maxAttempts), at most
   * `parkedRetryMaxMs`. @returns that wait, ms
   */
  park(id: string, attempts: number): number {
    const max = this.parkedRetryMaxMs;
    const waitMs = Math.min(max, Math.min(2000, max) * 2 ** Math.min(attempts - this.maxAttempts, 10));
    this.parkedUntil.set(id, Date.now() + waitMs);
    return waitMs;
  }

  /** Whether `id` is parked. */
  isParked(id: string): boolean {
    return this.parkedUntil.has(id);
  }

  /** Whether `id` is not parked, or its parked wait is over at `now`. */
  parkedDue(id: string, now: number): boolean {
    return (this.parkedUntil.get(id) ?? 0) <= now;
  }

  /** Whether `id` waits for nothing at `now`: no retry back-off, no handed-over recheck, no parked wait. */
  isDue(id: string, now: number): boolean {
    return (this.notBefore.get(id) ?? 0) <= now && (this.recheckAt.get(id) ?? 0) <= now && (this.parkedUntil.get(id) ?? 0) <= now;
  }

  /** Forgets rechecks whose time passed a minute ago and parkings whose time passed 10 × `parkedRetryMaxMs` ago. */
  prune(now: number): void {
    for (const [id, at] of this.recheckAt) if (now - at > 60_000) this.recheckAt.delete(id);
    // (bounded: an entry refused this often and then taken over elsewhere is forgotten with the rest)
    if (this.refused.size > 10_000) this.refused.clear();
    // a parked entry taken over by another consumer (and finished there) is no longer in our pending list
    for (const [id, at] of this.parkedUntil) if (now - at > 10 * this.parkedRetryMaxMs) this.parkedUntil.delete(id);
  }
}
