/**
 * A consumer-group loop over one Redis stream, shared by every service that consumes plans.
 *
 * Guarantees (this module: the loop, its reads and the hand-out of entries to the handler; the modules linked
 * hold the details of their part):
 * - Each entry is handled by one consumer of the group at a time; it is acknowledged only after its
 *   handler finished (at-least-once; handlers are idempotent through dedupe keys). Acknowledgements are
 *   batched: one XACK for the entries handled meanwhile, sent with the connection's next pipeline or
 *   after at most {@link ACK_DELAY_MS} (tick-batch.ts); this consumer never handles such an entry again
 *   (`consumer-ack.ts`).
 * - A handler throwing {@link PoisonEntry} (malformed, unsigned, badly signed) gets the entry copied to
 *   `<stream>.dlq` with the reason and acknowledged once the copy is written: never retried forever, never lost
 *   (`consumer-dead-letter.ts`).
 * - A handler throwing {@link HandedOver} (another consumer took the entry's work over meanwhile) leaves it
 *   pending and unacknowledged, without counting a failure: acknowledging would drop it for its new handler too.
 *   Such an entry no longer holds its partition back (its new handler finishes it): later entries of the same
 *   partition may finish before it (for plans, the send-time gate refuses an order sized before a newer fill).
 *   If still this consumer's, it is handled again after {@link HANDED_OVER_RECHECK_MS} (`consumer-retry.ts`).
 * - An error saying Redis cannot take the entry's commands now (`NOREPLICAS` while a replica resyncs after a
 *   failover, `READONLY`, `LOADING`, a closed connection: `consumer-retry.ts` `isRedisUnavailable`) is not counted:
 *   the entry is retried every `UNAVAILABLE_RETRY_MS`, never dead-lettered or parked for it.
 * - Any other error leaves the entry pending; it is retried with back-off, and after `maxAttempts` either
 *   dead-lettered with reason `handler_error` (the default: one bad entry never wedges the consumer), or, with
 *   `exhausted: 'park'`, PARKED: left pending and unacknowledged, retried every {@link PARKED_RETRY_MAX_MS} at
 *   the latest (doubling from 2 s), never dead-lettered, and no longer holding its partition back (an ordered
 *   partition moves on). Parking is for handlers whose entry must end with a final outcome whatever fails and how
 *   often (the apply layer: acknowledging a claimed plan without a result would orphan its claim for 24 h, every
 *   re-submission answered DROPPED_DUPLICATE). Each parking is logged as an error and reported to `onParked`.
 *   The back-offs and waits: `consumer-retry.ts`.
 * - Entries pending on a DEAD consumer (liveness lease gone: killed, frozen) are taken over within about
 *   `leaseMs` (default 3 s), and a dead consumer that owns nothing is deleted from the group; a consumer of
 *   the group seen reading without a liveness lease in two liveness rounds in a row is logged as an error
 *   (`onUnleasedConsumer`: another Redis user reading or acknowledging this group's entries). Both:
 *   `consumer-liveness.ts`. Entries idle on a live consumer for `claimIdleMs` are still taken over with
 *   XAUTOCLAIM (a stuck handler). A restarted consumer with the same name first re-reads its own pending
 *   entries. A clean stop drops the lease and deletes the consumer when it owns nothing (`reap` says who may
 *   delete consumers; a consumer with `reap: 'none'` leaves both to expire and to the reaper).
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
 *   A blocking read unanswered {@link BLOCKING_READ_STALL_MS} past its BLOCK time gets a new connection.
 * - Liveness (`consumer-watchdog.ts`): a consumer that took and finished nothing for `stallMs` while entries wait
 *   for its group (unread, or its own pending and untouched) is STALLED: logged as an error, reported, and
 *   recovered without a restart ({@link StreamConsumer.recover}: a new loop on a new blocking connection that
 *   re-reads its own pending entries; the service's connection reconnected when it does not answer).
 *
 * How one entry's handler is run and its outcome settled: `consumer-handle.ts`. The entry, error, option and
 * constant exports are declared in `consumer-types.ts` and re-exported here.
 */
import type { Redis } from 'ioredis';
import { AckBatcher } from './consumer-ack.js';
import { CONSUMER_LEASE_MS, DeadConsumerTakeover, dropConsumerLease, reapConsumer, renewConsumerLease } from './consumer-liveness.js';
import { ConsumerRetries, isRedisUnavailable } from './consumer-retry.js';
import { handleEntry, handleEntryInPlace, type HandlingContext } from './consumer-handle.js';
import { BLOCKING_READ_STALL_MS, PARKED_RETRY_MAX_MS, fieldsToObject, type ConsumerOptions, type RawEntries, type ResolvedConsumerOptions, type StreamEntry } from './consumer-types.js';
import { sleep } from '../../lib/sleep.js';
import { CONSUMER_STALL_MS, CONSUMER_STALL_PENDING_IDLE_MS, ConsumerWatchdog, PROBE_TIMEOUT_MS } from './consumer-watchdog.js';

export { ACK_DELAY_MS, BLOCKING_READ_STALL_MS, HANDED_OVER_RECHECK_MS, HandedOver, OTHER_GROUPS_REAP_MS, PARKED_RETRY_MAX_MS, PoisonEntry, fieldsToObject } from './consumer-types.js';
export type { ConsumerOptions, StreamEntry } from './consumer-types.js';

/** See the module comment. `start()` runs the loop in the background; `stop()` ends it. */
export class StreamConsumer {
  private readonly opts: ResolvedConsumerOptions;
  /** Partitioned mode: when the own pending entries were last re-read (ms), and whether they must be now. */
  private lastOwnScanMs = 0;
  private ownScanNeeded = true;
  private blocking: Redis | null = null;
  private abort = new AbortController();
  private loopDone: Promise<void> | null = null;
  private lastClaimMs = 0;
  private lastLivenessMs = 0;
  private leaseTimer: NodeJS.Timeout | null = null;
  /** Partitioned mode: entries in hand (id → its run), each partition's last run. */
  private readonly inHand = new Map<string, Promise<void>>();
  private readonly tails = new Map<string, Promise<void>>();
  /** Failed attempts, retry back-offs, handed-over rechecks and parked waits of the entries (consumer-retry.ts). */
  private readonly retries: ConsumerRetries;
  /** The liveness round: takeover of dead consumers' entries, reaping, unleased readers (consumer-liveness.ts). */
  private readonly liveness: DeadConsumerTakeover;
  /** The batched XACK of handled entries, and the ids handled but not yet acknowledged (consumer-ack.ts). */
  private readonly acks: AckBatcher;
  /** How an entry's handler is run and its outcome settled (consumer-handle.ts). */
  private readonly handling: HandlingContext;
  /** True while the last loop iteration reached Redis without error. */
  healthy = false;
  /** The loop's generation: a recovery starts a new loop; an older one ends at its next step. */
  private gen = 0;
  /** When entries were last delivered to this consumer or a handler settled (the watchdog's progress), epoch ms. */
  private progressMs = Date.now();
  /** Where the loop waits now, and since when (epoch ms): for the watchdog's log line. */
  private phase = 'start';
  private phaseSinceMs = Date.now();
  private watchdog: ConsumerWatchdog | null = null;
  /** When Redis last refused a command of this consumer (isRedisUnavailable), epoch ms. */
  private refusedMs = 0;

  constructor(opts: ConsumerOptions) {
    this.opts = { startId: '$', blockMs: 1000, count: 10, claimIdleMs: 30_000, maxAttempts: 5, leaseMs: CONSUMER_LEASE_MS, concurrency: 16, ordered: false, exhausted: 'dead_letter', parkedRetryMaxMs: PARKED_RETRY_MAX_MS, reap: 'group', stallMs: CONSUMER_STALL_MS, pendingStallMs: CONSUMER_STALL_PENDING_IDLE_MS, ...opts };
    this.retries = new ConsumerRetries(this.opts.maxAttempts, this.opts.parkedRetryMaxMs);
    this.liveness = new DeadConsumerTakeover(this.opts);
    this.acks = new AckBatcher(this.opts.redis, this.opts.stream, this.opts.group, (err, entries) => {
      this.ownScanNeeded = true;
      if (!this.abort.signal.aborted) this.opts.logger.warn({ err: err.message, stream: this.opts.stream, entries }, 'acknowledging handled entries failed; they stay pending and are handled again');
    });
    this.handling = {
      opts: this.opts,
      retries: this.retries,
      acks: this.acks,
      signal: this.abort.signal,
      progressed: () => void this.delivered(),
      refused: () => void (this.refusedMs = Date.now()),
      parked: () => void (this.ownScanNeeded = true),
    };
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
    this.progressMs = Date.now();
    this.loopDone = this.loop(this.gen);
    if (this.opts.stallMs > 0) {
      const probe = redis.duplicate();
      probe.on('error', () => undefined);
      this.watchdog = new ConsumerWatchdog(
        {
          stream,
          group,
          consumer,
          lastProgressMs: () => this.progressMs,
          lastRefusedMs: () => this.refusedMs,
          state: () => ({ phase: this.phase, sinceMs: this.phaseSinceMs, inHand: this.inHand.size }),
          recover: (reason) => this.recover(reason),
        },
        { probe, logger: this.opts.logger, stallMs: this.opts.stallMs, pendingStallMs: this.opts.pendingStallMs, ...(this.opts.onStall ? { onStall: this.opts.onStall } : {}) },
      );
      this.watchdog.start();
    }
  }

  /** The liveness watchdog's verdict: true from a stall until progress resumes (false without a watchdog). */
  get stalled(): boolean {
    return this.watchdog?.stalled ?? false;
  }

  /**
   * Recovers a stalled consumer without a restart (the watchdog calls it; see the module comment): a new loop
   * generation (the stuck one ends at its next step, or never resumes: whatever it waits on is not awaited),
   * the entries in hand forgotten (still pending on this consumer: the new loop re-reads them at once and hands
   * them out again, as a takeover of a stuck handler's entry would), a new blocking connection, and the
   * service's connection reconnected when it does not answer a PING within {@link PROBE_TIMEOUT_MS}.
   * @param reason for the log line
   */
  async recover(reason: string): Promise<void> {
    if (!this.loopDone || this.abort.signal.aborted) return;
    const gen = ++this.gen;
    const { logger, redis, stream, group, consumer } = this.opts;
    const inHand = this.inHand.size;
    this.inHand.clear();
    this.tails.clear();
    this.ownScanNeeded = true;
    const old = this.blocking;
    this.blocking = redis.duplicate();
    this.blocking.on('error', () => undefined);
    old?.disconnect();
    let answered = true;
    let t: NodeJS.Timeout | undefined;
    await Promise.race([redis.ping(), new Promise((_, reject) => (t = setTimeout(() => reject(new Error('timeout')), PROBE_TIMEOUT_MS)))])
      .catch(() => (answered = false))
      .finally(() => clearTimeout(t));
    if (!answered && redis.status === 'ready') redis.disconnect(true);
    if (gen !== this.gen || this.abort.signal.aborted) return;
    this.loopDone = this.loop(gen);
    logger.warn({ stream, group, consumer, reason, forgotten_in_hand: inHand, reconnected: !answered }, `stream consumer ${group}/${consumer} restarted its loop (${reason}): new blocking connection, own pending entries re-read${answered ? '' : ', service connection reconnected (it did not answer a PING)'}`);
  }

  /** Marks where the loop waits (for the watchdog's log line). */
  private at(phase: string): void {
    this.phase = phase;
    this.phaseSinceMs = Date.now();
  }

  /**
   * Stops after the entries in hand; drops the lease and deletes the consumer when it owns nothing (with
   * `reap: 'none'` the lease is left to expire and the consumer to the reaper); closes the blocking connection.
   */
  async stop(): Promise<void> {
    this.abort.abort();
    if (this.leaseTimer) clearInterval(this.leaseTimer);
    this.leaseTimer = null;
    this.watchdog?.stop();
    this.watchdog = null;
    this.blocking?.disconnect();
    await this.loopDone;
    await Promise.allSettled([...this.inHand.values()]);
    // the XACK of the entries handled last, before the lease and the consumer go
    await this.acks.flush();
    if (this.loopDone) {
      const { redis, stream, group, consumer } = this.opts;
      // a consumer that cannot delete itself keeps its lease until it expires: by then Redis has not seen it
      // for about the lease time, so its peers never take it for one reading without a lease
      // a consumer that still owns entries (parked, handed over) keeps its lease too: dropping it would show its
      // peers a consumer without a lease that Redis saw moments ago (an intruder); it expires, and then they
      // take its entries over as a dead consumer's
      const owns = await redis
        .call('XPENDING', stream, group, '-', '+', 1, consumer)
        .then((r) => (r as unknown[]).length > 0)
        .catch(() => true);
      if (this.opts.reap !== 'none' && !owns) {
        await dropConsumerLease(redis, stream, group, consumer).catch(() => undefined);
        await reapConsumer(redis, stream, group, consumer, 0).catch(() => undefined);
      }
    }
    this.loopDone = null;
  }

  private async loop(gen: number): Promise<void> {
    const { logger } = this.opts;
    let backoff = 100;
    let groupReady = false;
    let lostGroup = false;
    const current = () => gen === this.gen && !this.abort.signal.aborted;
    while (current()) {
      try {
        if (!groupReady) {
          this.at('ensureGroup');
          await this.ensureGroup(lostGroup ? '0' : this.opts.startId);
          groupReady = true;
          lostGroup = false;
        }
        // 1. our own pending entries (restart with the same name, or handler errors), not those in hand
        const now = Date.now();
        this.at('readOwn');
        const own = this.ownScanDue(now) ? await this.readOwn(now) : [];
        this.retries.prune(now);
        if (!current()) break;
        this.at('dispatch');
        for (const e of own) await this.dispatch(e, true);
        // 2. entries of dead consumers (lease gone) at once; entries idle on any consumer after claimIdleMs
        if (Date.now() - this.lastLivenessMs >= Math.min(1000, this.opts.leaseMs)) {
          this.lastLivenessMs = Date.now();
          this.at('liveness');
          await this.liveness.run(this.abort.signal, (e) => (current() ? this.delivered().dispatch(e, true) : Promise.resolve()));
        }
        if (Date.now() - this.lastClaimMs >= Math.min(this.opts.claimIdleMs, 5000)) {
          this.lastClaimMs = Date.now();
          this.at('claim');
          const claimed = await this.claim();
          if (!current()) break;
          if (claimed.length > 0) this.delivered();
          // a parked entry of our own waits for its time even when it went idle long enough to be claimed
          this.at('dispatch');
          for (const e of claimed) if (this.retries.parkedDue(e.id, Date.now())) await this.dispatch(e, true);
        }
        // 3. new entries (blocks)
        if (own.length === 0) {
          this.at('waitForSlot');
          await this.waitForSlot();
          // partitioned mode: the handlers just dispatched issued their first Redis step, sent at the end of
          // this turn (tick-batch.ts); the next blocking read goes out after it, not ahead of it (measured:
          // its socket write and Redis' handling of it delayed every plan's first round trip by ~0.25 ms)
          if (this.inHand.size > 0) await new Promise<void>((r) => setImmediate(r));
          if (!current()) break;
          this.at('read');
          const fresh = await this.read('>', true);
          if (!current()) break;
          this.at('dispatch');
          for (const e of fresh) await this.dispatch(e, false);
        }
        this.healthy = true;
        backoff = 100;
      } catch (err) {
        if (!current()) break;
        this.healthy = false;
        this.ownScanNeeded = true;
        const msg = (err as Error).message ?? String(err);
        if (isRedisUnavailable(err)) this.refusedMs = Date.now();
        if (msg.includes('NOGROUP')) {
          groupReady = false;
          lostGroup = true;
        }
        logger.warn({ err: msg, stream: this.opts.stream }, 'stream consumer error; backing off');
        this.at('backoff');
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
    if (!this.opts.partitionOf || this.ownScanNeeded || this.inHand.size === 0 || this.retries.retriesWaiting() || now - this.lastOwnScanMs >= 1000) {
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
    const due = (e: StreamEntry) => !this.inHand.has(e.id) && !this.acks.has(e.id) && this.retries.isDue(e.id, now);
    let after = '0';
    for (let page = 0; page < 20; page++) {
      const batch = await this.read(after, false);
      const out = batch.filter(due);
      if (out.length > 0) this.delivered();
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
    if (block && res[0][1].length > 0) this.delivered();
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

  /** Records progress for the watchdog (entries delivered to this consumer, or a handler settled); returns this. */
  private delivered(): this {
    this.progressMs = Date.now();
    return this;
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
    if (this.acks.has(entry.id)) return; // handled, its XACK on the way
    const partitionOf = this.opts.partitionOf;
    if (!partitionOf) return handleEntry(this.handling, entry, redelivered);
    if (this.inHand.has(entry.id) || this.abort.signal.aborted) return;
    await this.waitForSlot();
    const part = partitionOf(entry);
    const run: Promise<void> = (this.tails.get(part) ?? Promise.resolve())
      .then(() => (this.opts.ordered ? handleEntryInPlace(this.handling, entry, redelivered) : handleEntry(this.handling, entry, redelivered)))
      .then(
        () => this.retries.ranOut(entry.id),
        (err: Error) => {
          if (this.abort.signal.aborted) return;
          const unavailable = isRedisUnavailable(err);
          this.retries.retryLater(entry.id, unavailable);
          if (!unavailable) this.opts.logger.warn({ err: err.message, stream: this.opts.stream, entry_id: entry.id, partition: part }, 'entry failed; retried after a back-off');
        },
      )
      .finally(() => {
        // (after a recovery the entry may be in hand again, in the new loop's run: that one stays)
        if (this.inHand.get(entry.id) === run) this.inHand.delete(entry.id);
        if (this.tails.get(part) === run) this.tails.delete(part);
      });
    this.inHand.set(entry.id, run);
    this.tails.set(part, run);
  }
}
