/**
 * How a stream consumer (`consumer.ts`) runs one entry's handler and what it does with the outcome (the module
 * comment of consumer.ts states the guarantees): success → acknowledged (batched, `consumer-ack.ts`);
 * `HandedOver` → left pending, looked at again later; `PoisonEntry` → dead-lettered; Redis refusing the commands
 * (`consumer-retry.ts` `isRedisUnavailable`) → not counted, retried every `UNAVAILABLE_RETRY_MS`; any other error
 * → counted, retried with back-off, and at `maxAttempts` dead-lettered or parked. Ordered partitioned mode retries
 * in place ({@link handleEntryInPlace}).
 * Invariants: an entry is acknowledged only after its handler succeeded or its dead-letter copy was written;
 * nothing here drops an entry.
 */
import { sleep } from '../../lib/sleep.js';
import type { AckBatcher } from './consumer-ack.js';
import { deadLetterEntry } from './consumer-dead-letter.js';
import { UNAVAILABLE_RETRY_MS, isRedisUnavailable, retryBackoffMs, type ConsumerRetries } from './consumer-retry.js';
import { HANDED_OVER_RECHECK_MS, HandedOver, PoisonEntry, type ResolvedConsumerOptions, type StreamEntry } from './consumer-types.js';
import { dlq } from './keys.js';

/** What the entry handling needs from its consumer. */
export interface HandlingContext {
  readonly opts: ResolvedConsumerOptions;
  readonly retries: ConsumerRetries;
  readonly acks: AckBatcher;
  /** Aborted when the consumer stops. */
  readonly signal: AbortSignal;
  /** A handler settled (the liveness watchdog's progress). */
  progressed(): void;
  /** Redis refused a command of the handler (for the watchdog: no stall). */
  refused(): void;
  /** An entry was parked: the consumer's own pending entries must be read again. */
  parked(): void;
}

/**
 * Runs the handler of `entry` once and settles its outcome (see the module comment).
 * @throws the handler's error when the entry is to be retried (not exhausted, or Redis refused its commands)
 */
export async function handleEntry(ctx: HandlingContext, entry: StreamEntry, redelivered: boolean): Promise<void> {
  const { opts, retries } = ctx;
  if (ctx.signal.aborted) return;
  try {
    await opts.handler(entry, redelivered).finally(() => ctx.progressed());
    ctx.acks.ack(entry.id);
    retries.succeeded(entry.id);
  } catch (err) {
    if (err instanceof HandedOver) {
      // left pending, not acknowledged: see HandedOver
      retries.handedOver(entry.id);
      opts.logger.warn({ entry_id: entry.id, stream: opts.stream, err: err.message }, `entry taken over by another consumer; left pending (not acknowledged), looked at again in ${HANDED_OVER_RECHECK_MS} ms if still ours`);
      return;
    }
    if (err instanceof PoisonEntry) {
      await deadLetter(ctx, entry, err.reason, err.message);
      return;
    }
    if (isRedisUnavailable(err)) {
      // not the entry's fault (a failover, a replica resyncing): never counted, so never dead-lettered or parked
      // for it; retried every UNAVAILABLE_RETRY_MS until Redis takes the commands again
      ctx.refused();
      const k = retries.unavailable(entry.id);
      if (k === 1 || k % 40 === 0) opts.logger.warn({ entry_id: entry.id, stream: opts.stream, err: (err as Error).message, refused: k }, `entry not handled: Redis refuses its commands now (${(err as Error).message.split(' ')[0]}); tried again every ${UNAVAILABLE_RETRY_MS} ms, not counted as a failure`);
      throw err;
    }
    const n = retries.failed(entry.id);
    if (n >= opts.maxAttempts && opts.exhausted === 'park') {
      park(ctx, entry, n, err as Error);
      return;
    }
    if (n >= opts.maxAttempts) {
      opts.logger.error({ entry_id: entry.id, err: (err as Error).message, attempts: n }, 'entry failed repeatedly; dead-lettered');
      await deadLetter(ctx, entry, 'handler_error', (err as Error).message);
      retries.forgetAttempts(entry.id);
      return;
    }
    throw err;
  }
}

/**
 * Ordered partitioned mode: handles the entry, retrying a failure in place after a back-off (as a
 * redelivery) until it succeeds, is dead-lettered or parked (`handleEntry` does after `maxAttempts`) or the
 * consumer stops.
 * @throws the last error when the consumer stopped meanwhile
 */
export async function handleEntryInPlace(ctx: HandlingContext, entry: StreamEntry, redelivered: boolean): Promise<void> {
  const { opts, retries, signal } = ctx;
  for (let again = redelivered; ; again = true) {
    try {
      return await handleEntry(ctx, entry, again);
    } catch (err) {
      if (signal.aborted) throw err;
      if (retries.isParked(entry.id)) return; // parked: its partition moves on
      if (isRedisUnavailable(err)) {
        // Redis refuses the commands now (logged by handleEntry); tried again soon, not counted
        await sleep(UNAVAILABLE_RETRY_MS, signal);
        if (signal.aborted) throw err;
        continue;
      }
      const n = retries.attemptsOf(entry.id);
      opts.logger.warn({ err: (err as Error).message, stream: opts.stream, entry_id: entry.id, attempt: n }, 'entry failed; retried in place after a back-off (its partition waits)');
      await sleep(retryBackoffMs(n), signal);
      if (signal.aborted) throw err;
    }
  }
}

/**
 * Parks an entry that failed `attempts` times (`exhausted: 'park'`): not acknowledged, not dead-lettered; tried
 * again after 2 s × 2^(attempts − maxAttempts), at most `parkedRetryMaxMs` (from the own-pending read; the
 * wait is kept by `ConsumerRetries.park`). Logged as an error and reported to `onParked`.
 */
function park(ctx: HandlingContext, entry: StreamEntry, attempts: number, err: Error): void {
  const waitMs = ctx.retries.park(entry.id, attempts);
  ctx.parked();
  ctx.opts.logger.error(
    { entry_id: entry.id, stream: ctx.opts.stream, err: err.message, attempts, retry_in_ms: waitMs },
    `entry failed ${attempts} times; parked (left pending, never dropped), tried again in ${waitMs} ms: ${err.message}`,
  );
  ctx.opts.onParked?.(entry, attempts, err);
}

/** Copies `entry` to `<stream>.dlq` with the reason then acks it (consumer-dead-letter.ts); logs it and reports it to `onDeadLetter`. */
async function deadLetter(ctx: HandlingContext, entry: StreamEntry, reason: string, detail: string): Promise<void> {
  const { opts } = ctx;
  await deadLetterEntry(opts.redis, opts.stream, opts.group, entry, reason, detail);
  opts.logger.warn({ entry_id: entry.id, reason, detail, dlq: dlq(opts.stream) }, `entry dead-lettered reason=${reason}`);
  opts.onDeadLetter?.(reason, entry);
}
