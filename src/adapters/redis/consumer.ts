/**
 * A consumer-group loop over one Redis stream, shared by every service that consumes plans.
 *
 * Guarantees:
 * - Each entry is handled by one consumer of the group at a time; it is acknowledged only after its
 *   handler finished (at-least-once; handlers are idempotent through dedupe keys). Acknowledgements are
 *   batched: one XACK for the entries handled meanwhile, sent with the connection's next pipeline or
 *   after at most {@link ACK_DELAY_MS} (tick-batch.ts); this consumer never handles such an entry again.
 * - A handler throwing {@link PoisonEntry} (malformed, unsigned, badly signed) gets the entry copied to
 *   `<stream>.dlq` with the reason and acknowledged in one MULTI: never retried forever, never lost.
 * - A handler throwing {@link HandedOver} (another consumer took the entry's work over meanwhile) leaves it
 *   pending and unacknowledged, without counting a failure: acknowledging would drop it for its new handler too.
 *   Such an entry no longer holds its partition back (its new handler finishes it): later entries of the same
 *   partition may finish before it (for plans, the send-time gate refuses an order sized before a newer fill).
 * - Any other error leaves the entry pending; it is retried with back-off, and after `maxAttempts` either
 *   dead-lettered with reason `handler_error` (the default: one bad entry never wedges the consumer), or, with
 *   `exhausted: 'park'`, PARKED: left pending and unacknowledged, retried every {@link PARKED_RETRY_MAX_MS} at
 *   the latest (doubling from 2 s), never dead-lettered, and no longer holding its partition back (an ordered
 *   partition moves on). Parking is for handlers whose entry must end with a final outcome whatever fails and how
 *   often (the apply layer: acknowledging a claimed plan without a result would orphan its claim for 24 h, every
 *   re-submission answered DROPPED_DUPLICATE). Each parking is logged as an error and reported to `onParked`.
 * - Entries pending on a DEAD consumer (liveness lease gone: killed, frozen) are taken over within about
 *   `leaseMs` (default 3 s), and a dead consumer that owns nothing is deleted from the group
 *   (`consumer-liveness.ts`); entries idle on a live consumer for `claimIdleMs` are still taken over
 *   with XAUTOCLAIM (a stuck handler). A restarted consumer with the same name first re-reads its own
 *   pending entries. A clean stop drops the lease and deletes the consumer when it owns nothing (`reap`
 *   says who may delete consumers; a consumer with `reap: 'none'` leaves both to expire and to the reaper).
 * - A consumer of its group seen reading without a liveness lease in two liveness rounds in a row is logged
 *   as an error (`onUnleasedConsumer`): every consumer of this code holds one, so it is another Redis user
 *   reading or acknowledging this group's entries.
 * - Partitioned mode (`partitionOf`): entries of one partition (e.g. a symbol) are handled one at a
 *   time in stream order, entries of different partitions concurrently (at most `concurrency` in
 *   hand), so one slow entry never delays another partition. A failed entry stays pending and is
 *   retried after a back-off (later entries of its partition may go first) — unless `ordered`: then it
 *   is retried in place, with the same back-off, and later entries of its partition wait for it (until it
 *   succeeds or is dead-lettered after `maxAttempts`), so a partition's entries always finish in stream
 *   order, as in sequential mode. In partitioned mode the consumer's own pending entries are re-read at
 *   start, after an error, while a failed entry waits for its retry, and at least every second (not on
 *   every read: those entries are in hand).
 * - Redis down or restarted (stream or group gone): the loop logs, backs off, recreates the group, resumes.
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { dlq } from './keys.js';
import { CONSUMER_LEASE_MS, claimFromConsumer, dropConsumerLease, groupLiveness, reapConsumer, reapOtherGroups, renewConsumerLease } from './consumer-liveness.js';
import { sleep } from '../../lib/sleep.js';
import { tickBatch } from './tick-batch.js';

/**
 * Longest a handled entry waits for its XACK, ms: the XACK rides along with the connection's next
 * pipeline, or goes alone after this. Until then the entry counts as pending in Redis (a
 * crash meanwhile redelivers it; handlers are idempotent).
 */
export const ACK_DELAY_MS = 20;

/** One stream entry: its id and its fields as a flat object. */
export interface StreamEntry {
  id: string;
  fields: Record<string, string>;
}

/**
 * How long an entry handed over to another consumer ({@link HandedOver}) stays untouched before this
 * consumer, when it is the entry's owner in the group's pending list, handles it again (as a redelivery), ms.
 */
export const HANDED_OVER_RECHECK_MS = 5_000;

/**
 * Thrown by a handler when another consumer has taken the entry's work over while this one handled it (its
 * fencing token changed and the work is not finished): the entry is NOT acknowledged (XACK is group-wide and
 * would drop it from the new handler's pending list too, so a crash of that handler would lose it), not
 * counted as a failure and not retried in place; it stays pending and, if it is in this consumer's pending
 * list, is handled again as a redelivery after {@link HANDED_OVER_RECHECK_MS} (found by p3 chaos, seed 102:
 * a plan whose claim was taken over was acknowledged by the consumer that lost it, then its new handler was
 * killed, and the plan never got a result).
 */
export class HandedOver extends Error {}

/** Longest wait between two attempts of a parked entry (see the module comment), ms. */
export const PARKED_RETRY_MAX_MS = 30_000;

/** How often a consumer with `reap: 'stream'` deletes the dead consumers of the stream's other groups, ms. */
export const OTHER_GROUPS_REAP_MS = 5_000;

/** How long past its BLOCK time a blocking read may stay unanswered before its connection is replaced, ms. */
export const BLOCKING_READ_STALL_MS = 10_000;

/** Thrown by a handler for an entry that can never succeed; the consumer dead-letters and acks it. */
export class PoisonEntry extends Error {
  constructor(
    readonly reason: string,
    message?: string,
  ) {
    super(message ?? reason);
  }
}

/** Options of {@link StreamConsumer}. */
export interface ConsumerOptions {
  redis: Redis;
  stream: string;
  group: string;
  /** Consumer name within the group (stable across restarts when `P3_INSTANCE_ID` is set). */
  consumer: string;
  /** Handles one entry; `redelivered` is true for pending or claimed entries. */
  handler: (entry: StreamEntry, redelivered: boolean) => Promise<void>;
  logger: Logger;
  /** Where a new group starts: `$` (only new entries, default) or `0` (whole stream). */
  startId?: string;
  /** XREADGROUP BLOCK in milliseconds (default 1000). */
  blockMs?: number;
  /** Entries per read (default 10). */
  count?: number;
  /** Idle time after which another consumer's pending entry is claimed, ms (default 30000). */
  claimIdleMs?: number;
  /** Failed attempts before an entry is dead-lettered with reason `handler_error` (default 5). */
  maxAttempts?: number;
  /** Called for every dead-lettered entry (for metrics). */
  onDeadLetter?: (reason: string, entry: StreamEntry) => void;
  /**
   * What happens to an entry whose handler failed `maxAttempts` times: `dead_letter` (default; copied to
   * `<stream>.dlq` and acknowledged) or `park` (left pending and retried with a back-off up to
   * {@link PARKED_RETRY_MAX_MS}, never acknowledged without its handler succeeding; see the module comment).
   */
  exhausted?: 'dead_letter' | 'park';
  /** Longest wait between two attempts of a parked entry, ms (default {@link PARKED_RETRY_MAX_MS}; the first wait is the smaller of 2 s and this). */
  parkedRetryMaxMs?: number;
  /** Called each time an entry is parked, with its failed attempts so far and the last error (for metrics). */
  onParked?: (entry: StreamEntry, attempts: number, err: Error) => void;
  /** Liveness lease, ms (default {@link CONSUMER_LEASE_MS}); a consumer silent this long without a lease is dead. */
  leaseMs?: number;
  /** Partition of an entry (e.g. its symbol): enables partitioned mode (see the module comment). */
  partitionOf?: (entry: StreamEntry) => string;
  /** Most entries in hand at once in partitioned mode (default 16). */
  concurrency?: number;
  /** Partitioned mode: a failed entry is retried in place, blocking its partition (see the module comment). */
  ordered?: boolean;
  /**
   * Who deletes dead consumers (no lease, nothing pending, idle; `consumerReap-2.lua`, XGROUP DELCONSUMER):
   * `group` (default) those of its own group, and itself at a clean stop; `stream` also those of every other
   * group of the stream; `none` never (its Redis user has no DELCONSUMER, which would let it drop another
   * group's pending entries on a shared stream: the apply layer's plan consumer reaps them, with `stream`).
   */
  reap?: 'none' | 'group' | 'stream';
  /** Called for a consumer of the group found reading without a liveness lease twice in a row (for metrics). */
  onUnleasedConsumer?: (consumer: string) => void;
}

/**
 * Converts ioredis' `[k1, v1, k2, v2]` field arrays into an object. Every field becomes an own property,
 * also one named `__proto__` (a plain assignment would change the object's prototype and lose the field).
 */
export function fieldsToObject(arr: string[] | null | undefined): Record<string, string> {
  const o: Record<string, string> = {};
  if (!arr) return o;
  for (let i = 0; i + 1 < arr.length; i += 2) {
    const k = arr[i] as string;
    if (k === '__proto__') Object.defineProperty(o, k, { value: arr[i + 1] as string, enumerable: true, writable: true, configurable: true });
    else o[k] = arr[i + 1] as string;
  }
  return o;
}

type RawEntries = Array<[string, string[] | null]>;

/** See the module comment. `start()` runs the loop in the background; `stop()` ends it. */
export class StreamConsumer {
  private readonly opts: Required<Omit<ConsumerOptions, 'onDeadLetter' | 'partitionOf' | 'onParked' | 'onUnleasedConsumer'>> & Pick<ConsumerOptions, 'onDeadLetter' | 'partitionOf' | 'onParked' | 'onUnleasedConsumer'>;
  /** Partitioned mode: when the own pending entries were last re-read (ms), and whether they must be now. */
  private lastOwnScanMs = 0;
  private ownScanNeeded = true;
  private blocking: Redis | null = null;
  private abort = new AbortController();
  private loopDone: Promise<void> | null = null;
  private attempts = new Map<string, number>();
  private lastClaimMs = 0;
  private lastLivenessMs = 0;
  private lastOtherReapMs = 0;
  private unleasedSeen = new Set<string>();
  private leaseTimer: NodeJS.Timeout | null = null;
  /** Partitioned mode: entries in hand (id → its run), each partition's last run, retry times of failed entries. */
  private readonly inHand = new Map<string, Promise<void>>();
  private readonly tails = new Map<string, Promise<void>>();
  private readonly notBefore = new Map<string, number>();
  /**
   * Entries whose handler threw {@link HandedOver} → when to look at them again (if still in this consumer's
   * pending list). Kept apart from `notBefore` so they never force an own-pending read every turn; entries
   * whose time passed a minute ago are forgotten (their new owner acknowledged them).
   */
  private readonly recheckAt = new Map<string, number>();
  /** Parked entries (`exhausted: 'park'`) → when to try them again (epoch ms). */
  private readonly parkedUntil = new Map<string, number>();
  /** Ids to acknowledge in the next XACK (see {@link StreamConsumer.ack}), its reply, and every id handled but not yet acknowledged. */
  private ackIds: string[] | null = null;
  private ackSent: Promise<void> = Promise.resolve();
  private readonly acking = new Set<string>();
  /** True while the last loop iteration reached Redis without error. */
  healthy = false;

  constructor(opts: ConsumerOptions) {
    this.opts = { startId: '$', blockMs: 1000, count: 10, claimIdleMs: 30_000, maxAttempts: 5, leaseMs: CONSUMER_LEASE_MS, concurrency: 16, ordered: false, exhausted: 'dead_letter', parkedRetryMaxMs: PARKED_RETRY_MAX_MS, reap: 'group', ...opts };
  }

  /**
   * Creates the group (MKSTREAM) if missing, at `startId` (default: the configured one). After the group
   * vanished (NOGROUP: Redis restarted without persistence, or the group was destroyed) the loop recreates
   * it at `0`: every entry in the stream then was added after the loss and is new to this group.
   */
  async ensureGroup(startId = this.opts.startId): Promise<void> {
    try {
      await this.opts.redis.xgroup('CREATE', this.opts.stream, this.opts.group, startId, 'MKSTREAM');
    } catch (err) {
      if (!String((err as Error).message).includes('BUSYGROUP')) throw err;
    }
  }

  /** Starts the loop in the background. */
  start(): void {
    if (this.loopDone) return;
    this.blocking = this.opts.redis.duplicate();
    this.blocking.on('error', () => undefined);
    const { redis, stream, group, consumer, leaseMs } = this.opts;
    const renew = () => void renewConsumerLease(redis, stream, group, consumer, leaseMs).catch(() => undefined);
    renew();
    this.leaseTimer = setInterval(renew, Math.max(100, Math.floor(leaseMs / 5)));
    this.leaseTimer.unref();
    this.loopDone = this.loop();
  }

  /**
   * Stops after the entries in hand; drops the lease and deletes the consumer when it owns nothing (with
   * `reap: 'none'` the lease is left to expire and the consumer to the reaper); closes the blocking connection.
   */
  async stop(): Promise<void> {
    this.abort.abort();
    if (this.leaseTimer) clearInterval(this.leaseTimer);
    this.leaseTimer = null;
    this.blocking?.disconnect();
    await this.loopDone;
    await Promise.allSettled([...this.inHand.values()]);
    // the XACK of the entries handled last, before the lease and the consumer go
    if (this.ackIds) tickBatch(this.opts.redis).flushSoon();
    await this.ackSent;
    if (this.loopDone) {
      const { redis, stream, group, consumer } = this.opts;
      // a consumer that cannot delete itself keeps its lease until it expires: by then Redis has not seen it
      // for about the lease time, so its peers never take it for one reading without a lease
      if (this.opts.reap !== 'none') {
        await dropConsumerLease(redis, stream, group, consumer).catch(() => undefined);
        await reapConsumer(redis, stream, group, consumer, 0).catch(() => undefined);
      }
    }
    this.loopDone = null;
  }

  private async loop(): Promise<void> {
    const { logger } = this.opts;
    let backoff = 100;
    let groupReady = false;
    let lostGroup = false;
    while (!this.abort.signal.aborted) {
      try {
        if (!groupReady) {
          await this.ensureGroup(lostGroup ? '0' : this.opts.startId);
          groupReady = true;
          lostGroup = false;
        }
        // 1. our own pending entries (restart with the same name, or handler errors), not those in hand
        const now = Date.now();
        const own = this.ownScanDue(now) ? await this.readOwn(now) : [];
        for (const [id, at] of this.recheckAt) if (now - at > 60_000) this.recheckAt.delete(id);
        // a parked entry taken over by another consumer (and finished there) is no longer in our pending list
        for (const [id, at] of this.parkedUntil) if (now - at > 10 * this.opts.parkedRetryMaxMs) this.parkedUntil.delete(id);
        for (const e of own) await this.dispatch(e, true);
        // 2. entries of dead consumers (lease gone) at once; entries idle on any consumer after claimIdleMs
        if (Date.now() - this.lastLivenessMs >= Math.min(1000, this.opts.leaseMs)) {
          this.lastLivenessMs = Date.now();
          await this.takeOverDead();
        }
        if (Date.now() - this.lastClaimMs >= Math.min(this.opts.claimIdleMs, 5000)) {
          this.lastClaimMs = Date.now();
          const claimed = await this.claim();
          // a parked entry of our own waits for its time even when it went idle long enough to be claimed
          for (const e of claimed) if ((this.parkedUntil.get(e.id) ?? 0) <= Date.now()) await this.dispatch(e, true);
        }
        // 3. new entries (blocks)
        if (own.length === 0) {
          await this.waitForSlot();
          // partitioned mode: the handlers just dispatched issued their first Redis step, sent at the end of
          // this turn (tick-batch.ts); the next blocking read goes out after it, not ahead of it (measured:
          // its socket write and Redis' handling of it delayed every plan's first round trip by ~0.25 ms)
          if (this.inHand.size > 0) await new Promise<void>((r) => setImmediate(r));
          const fresh = await this.read('>', true);
          for (const e of fresh) await this.dispatch(e, false);
        }
        this.healthy = true;
        backoff = 100;
      } catch (err) {
        if (this.abort.signal.aborted) break;
        this.healthy = false;
        this.ownScanNeeded = true;
        const msg = (err as Error).message ?? String(err);
        if (msg.includes('NOGROUP')) {
          groupReady = false;
          lostGroup = true;
        }
        logger.warn({ err: msg, stream: this.opts.stream }, 'stream consumer error; backing off');
        await sleep(backoff, this.abort.signal);
        backoff = Math.min(backoff * 2, 2000);
      }
    }
  }

  /**
   * Whether to re-read the own pending entries now: always in sequential mode (a failed entry is retried
   * from there); in partitioned mode only when something can be there that is not in hand (see the module comment).
   */
  private ownScanDue(now: number): boolean {
    if (!this.opts.partitionOf || this.ownScanNeeded || this.inHand.size === 0 || this.notBefore.size > 0 || now - this.lastOwnScanMs >= 1000) {
      this.ownScanNeeded = false;
      this.lastOwnScanMs = now;
      return true;
    }
    return false;
  }

  /**
   * The own pending entries due now (not in hand, not being acknowledged, not waiting for a retry, a recheck or a
   * parked retry). Pages through the pending list (at most 20 pages of `count`) while a page holds nothing due,
   * so entries waiting for a retry at its head never hide due ones behind them.
   */
  private async readOwn(now: number): Promise<StreamEntry[]> {
    const due = (e: StreamEntry) => !this.inHand.has(e.id) && !this.acking.has(e.id) && (this.notBefore.get(e.id) ?? 0) <= now && (this.recheckAt.get(e.id) ?? 0) <= now && (this.parkedUntil.get(e.id) ?? 0) <= now;
    let after = '0';
    for (let page = 0; page < 20; page++) {
      const batch = await this.read(after, false);
      const out = batch.filter(due);
      if (out.length > 0 || batch.length < this.opts.count) return out;
      after = batch[batch.length - 1]!.id;
    }
    return [];
  }

  /** One XREADGROUP from `id` (`>`: new entries; an id: own pending entries after it). */
  private async read(id: string, block: boolean): Promise<StreamEntry[]> {
    const conn = block ? this.blocking : this.opts.redis;
    if (!conn) return [];
    const args: Array<string | number> = ['GROUP', this.opts.group, this.opts.consumer, 'COUNT', this.opts.count];
    if (block) args.push('BLOCK', this.opts.blockMs);
    args.push('STREAMS', this.opts.stream, id);
    const call = conn.call('XREADGROUP', ...args) as Promise<Array<[string, RawEntries]> | null>;
    const res = block ? await this.watchBlockingRead(call) : await call;
    if (!res || !res[0]) return [];
    return res[0][1].map(([eid, f]) => ({ id: eid, fields: fieldsToObject(f) }));
  }

  /**
   * A blocking read answers within `blockMs` (or fails) on a healthy connection. One still pending
   * {@link BLOCKING_READ_STALL_MS} later is stuck (a connection left half-way by a failover: seen as a
   * governor and a brain that stopped reading new plans without any error, docs/reliability.md, seed 104):
   * the blocking connection is replaced and the read fails (the loop backs off and reads again).
   */
  private async watchBlockingRead<T>(call: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const stalled = new Promise<'stalled'>((resolve) => {
      timer = setTimeout(() => resolve('stalled'), this.opts.blockMs + BLOCKING_READ_STALL_MS);
    });
    try {
      const r = await Promise.race([call, stalled]);
      if (r !== 'stalled') return r;
    } finally {
      clearTimeout(timer);
    }
    call.catch(() => undefined); // settles (rejected) once its connection is closed below
    const old = this.blocking;
    if (!this.abort.signal.aborted) {
      this.blocking = this.opts.redis.duplicate();
      this.blocking.on('error', () => undefined);
    }
    old?.disconnect();
    this.opts.logger.error({ stream: this.opts.stream, stalled_ms: this.opts.blockMs + BLOCKING_READ_STALL_MS }, 'blocking stream read did not answer; its connection was replaced');
    throw new Error(`blocking read on ${this.opts.stream} stalled; connection replaced`);
  }

  private async claim(): Promise<StreamEntry[]> {
    const res = (await this.opts.redis.call(
      'XAUTOCLAIM',
      this.opts.stream,
      this.opts.group,
      this.opts.consumer,
      this.opts.claimIdleMs,
      '0-0',
      'COUNT',
      this.opts.count,
    )) as [string, RawEntries, string[]?];
    const entries = res?.[1] ?? [];
    return entries.filter(([, f]) => f !== null).map(([eid, f]) => ({ id: eid, fields: fieldsToObject(f) }));
  }

  /** Takes over the pending entries of dead consumers and deletes dead consumers that own nothing. */
  private async takeOverDead(): Promise<void> {
    const { redis, stream, group, consumer, leaseMs, count, logger, reap } = this.opts;
    const { dead, unleasedActive } = await groupLiveness(redis, stream, group, consumer, leaseMs);
    this.reportUnleased(unleasedActive.map((c) => c.name));
    for (const c of dead) {
      if (this.abort.signal.aborted) return;
      if (c.pending > 0) {
        const entries = await claimFromConsumer(redis, stream, group, c.name, consumer, leaseMs, count);
        if (entries.length > 0) logger.info({ stream, group, from: c.name, entries: entries.length, idle_ms: c.idleMs }, `took over ${entries.length} pending entr${entries.length === 1 ? 'y' : 'ies'} of dead consumer ${c.name}`);
        for (const [id, f] of entries) await this.dispatch({ id, fields: fieldsToObject(f) }, true);
      } else if (reap !== 'none' && (await reapConsumer(redis, stream, group, c.name, leaseMs))) {
        logger.info({ stream, group, consumer: c.name, idle_ms: c.idleMs }, `deleted dead consumer ${c.name} (no lease, nothing pending)`);
      }
    }
    if (reap === 'stream' && Date.now() - this.lastOtherReapMs >= OTHER_GROUPS_REAP_MS) {
      this.lastOtherReapMs = Date.now();
      // never fatal to this consumer's own work (e.g. NOPERM under an ACL file older than this code)
      try {
        for (const d of await reapOtherGroups(redis, stream, group, leaseMs)) logger.info({ stream, group: d.group, consumer: d.consumer }, `deleted dead consumer ${d.consumer} of group ${d.group} (no lease, nothing pending)`);
      } catch (err) {
        logger.warn({ err: (err as Error).message, stream }, "deleting the dead consumers of the stream's other groups failed; retried later");
      }
    }
  }

  /**
   * Consumers of this group reading without a liveness lease in two checks in a row (a consumer that just
   * resumed from a freeze renews its lease long before the second): an error log each time, and
   * `onUnleasedConsumer` (a metric). See `GroupLiveness.unleasedActive`.
   */
  private reportUnleased(names: string[]): void {
    const now = new Set(names);
    for (const name of now) {
      if (!this.unleasedSeen.has(name)) continue;
      this.opts.logger.error({ stream: this.opts.stream, group: this.opts.group, consumer: name }, `consumer ${name} reads group ${this.opts.group} without a liveness lease: not a p3 consumer of this group (another Redis user reading or acknowledging its entries?), see ops/redis/README.md`);
      this.opts.onUnleasedConsumer?.(name);
    }
    this.unleasedSeen = now;
  }

  /** Partitioned mode: waits until fewer than `concurrency` entries are in hand. */
  private async waitForSlot(): Promise<void> {
    while (this.opts.partitionOf && this.inHand.size >= this.opts.concurrency) await Promise.race(this.inHand.values());
  }

  /**
   * Handles an entry: at once (sequential mode: errors propagate to the loop's back-off), or queued
   * behind its partition (partitioned mode: returns at once; a failure leaves the entry pending and
   * retried from the own-pending read after a back-off).
   */
  private async dispatch(entry: StreamEntry, redelivered: boolean): Promise<void> {
    if (this.acking.has(entry.id)) return; // handled, its XACK on the way
    const partitionOf = this.opts.partitionOf;
    if (!partitionOf) return this.handle(entry, redelivered);
    if (this.inHand.has(entry.id) || this.abort.signal.aborted) return;
    await this.waitForSlot();
    const part = partitionOf(entry);
    const run: Promise<void> = (this.tails.get(part) ?? Promise.resolve())
      .then(() => (this.opts.ordered ? this.handleInPlace(entry, redelivered) : this.handle(entry, redelivered)))
      .then(
        () => void this.notBefore.delete(entry.id),
        (err: Error) => {
          if (this.abort.signal.aborted) return;
          const n = this.attempts.get(entry.id) ?? 1;
          this.notBefore.set(entry.id, Date.now() + Math.min(100 * 2 ** n, 2000));
          this.opts.logger.warn({ err: err.message, stream: this.opts.stream, entry_id: entry.id, partition: part }, 'entry failed; retried after a back-off');
        },
      )
      .finally(() => {
        this.inHand.delete(entry.id);
        if (this.tails.get(part) === run) this.tails.delete(part);
      });
    this.inHand.set(entry.id, run);
    this.tails.set(part, run);
  }

  /**
   * Ordered partitioned mode: handles the entry, retrying a failure in place after a back-off (as a
   * redelivery) until it succeeds, is dead-lettered (`handle` does after `maxAttempts`) or the consumer stops.
   */
  private async handleInPlace(entry: StreamEntry, redelivered: boolean): Promise<void> {
    for (let again = redelivered; ; again = true) {
      try {
        return await this.handle(entry, again);
      } catch (err) {
        if (this.abort.signal.aborted) throw err;
        if (this.parkedUntil.has(entry.id)) return; // parked: its partition moves on
        const n = this.attempts.get(entry.id) ?? 1;
        this.opts.logger.warn({ err: (err as Error).message, stream: this.opts.stream, entry_id: entry.id, attempt: n }, 'entry failed; retried in place after a back-off (its partition waits)');
        await sleep(Math.min(100 * 2 ** n, 2000), this.abort.signal);
        if (this.abort.signal.aborted) throw err;
      }
    }
  }

  private async handle(entry: StreamEntry, redelivered: boolean): Promise<void> {
    if (this.abort.signal.aborted) return;
    try {
      await this.opts.handler(entry, redelivered);
      this.ack(entry.id);
      this.attempts.delete(entry.id);
      this.recheckAt.delete(entry.id);
      this.parkedUntil.delete(entry.id);
    } catch (err) {
      if (err instanceof HandedOver) {
        // left pending, not acknowledged: see HandedOver
        this.attempts.delete(entry.id);
        this.recheckAt.set(entry.id, Date.now() + HANDED_OVER_RECHECK_MS);
        this.opts.logger.warn({ entry_id: entry.id, stream: this.opts.stream, err: err.message }, `entry taken over by another consumer; left pending (not acknowledged), looked at again in ${HANDED_OVER_RECHECK_MS} ms if still ours`);
        return;
      }
      if (err instanceof PoisonEntry) {
        await this.deadLetter(entry, err.reason, err.message);
        return;
      }
      const n = (this.attempts.get(entry.id) ?? 0) + 1;
      this.attempts.set(entry.id, n);
      if (n >= this.opts.maxAttempts && this.opts.exhausted === 'park') {
        this.park(entry, n, err as Error);
        return;
      }
      if (n >= this.opts.maxAttempts) {
        this.opts.logger.error({ entry_id: entry.id, err: (err as Error).message, attempts: n }, 'entry failed repeatedly; dead-lettered');
        await this.deadLetter(entry, 'handler_error', (err as Error).message);
        this.attempts.delete(entry.id);
        return;
      }
      throw err;
    }
  }

  /**
   * Acknowledges `id` after its handler finished, without waiting: the ids handled meanwhile
   * go in ONE `XACK`, sent with the connection's next pipeline (tick-batch.ts `later`) or alone after at
   * most {@link ACK_DELAY_MS}. Until Redis confirmed, the entry is never handled again by this consumer
   * (`acking`); should the XACK fail, the entry stays pending and is handled again (handlers are
   * idempotent), as after a crash between handling and acknowledging.
   */
  private ack(id: string): void {
    this.acking.add(id);
    if (!this.ackIds) {
      const ids: string[] = [];
      this.ackIds = ids;
      const done = () => {
        if (this.ackIds === ids) this.ackIds = null;
        for (const i of ids) this.acking.delete(i);
      };
      this.ackSent = tickBatch(this.opts.redis)
        .later(() => {
          if (this.ackIds === ids) this.ackIds = null;
          return [['xack', this.opts.stream, this.opts.group, ...ids]];
        }, ACK_DELAY_MS)
        .then(([r]) => {
          if (r?.[0]) throw r[0];
        })
        .catch((err: Error) => {
          this.ownScanNeeded = true;
          if (!this.abort.signal.aborted) this.opts.logger.warn({ err: err.message, stream: this.opts.stream, entries: ids.length }, 'acknowledging handled entries failed; they stay pending and are handled again');
        })
        .finally(done);
    }
    this.ackIds.push(id);
  }

  /**
   * Parks an entry that failed `attempts` times (`exhausted: 'park'`): not acknowledged, not dead-lettered; tried
   * again after 2 s × 2^(attempts − maxAttempts), at most `parkedRetryMaxMs` (from the own-pending read).
   */
  private park(entry: StreamEntry, attempts: number, err: Error): void {
    const max = this.opts.parkedRetryMaxMs;
    const waitMs = Math.min(max, Math.min(2000, max) * 2 ** Math.min(attempts - this.opts.maxAttempts, 10));
    this.parkedUntil.set(entry.id, Date.now() + waitMs);
    this.ownScanNeeded = true;
    this.opts.logger.error(
      { entry_id: entry.id, stream: this.opts.stream, err: err.message, attempts, retry_in_ms: waitMs },
      `entry failed ${attempts} times; parked (left pending, never dropped), tried again in ${waitMs} ms: ${err.message}`,
    );
    this.opts.onParked?.(entry, attempts, err);
  }

  /** Copies `entry` to `<stream>.dlq` with the reason and acks it, in one MULTI. */
  private async deadLetter(entry: StreamEntry, reason: string, detail: string): Promise<void> {
    const flat: string[] = [];
    for (const [k, v] of Object.entries(entry.fields)) flat.push(k, v);
    flat.push('dlq_reason', reason, 'dlq_detail', detail.slice(0, 500), 'dlq_source_id', entry.id, 'dlq_group', this.opts.group, 'dlq_ts_ms', String(Date.now()));
    await this.opts.redis
      .multi()
      .xadd(dlq(this.opts.stream), 'MAXLEN', '~', 100000, '*', ...flat)
      .xack(this.opts.stream, this.opts.group, entry.id)
      .exec();
    this.opts.logger.warn({ entry_id: entry.id, reason, detail, dlq: dlq(this.opts.stream) }, `entry dead-lettered reason=${reason}`);
    this.opts.onDeadLetter?.(reason, entry);
  }
}
