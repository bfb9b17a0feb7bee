/**
 * A consumer-group loop over one Redis stream, shared by every service that consumes plans.
 *
 * Guarantees:
 * - Each entry is handled by one consumer of the group at a time; it is acknowledged only after its
 *   handler finished (at-least-once; handlers are idempotent through dedupe keys).
 * - A handler throwing {@link PoisonEntry} (malformed, unsigned, badly signed) gets the entry copied to
 *   `<stream>.dlq` with the reason and acknowledged in one MULTI: never retried forever, never lost.
 * - Any other error leaves the entry pending; it is retried with back-off, and after `maxAttempts` it is
 *   dead-lettered with reason `handler_error` so one bad entry never wedges the consumer.
 * - Entries pending on a dead consumer are taken over with XAUTOCLAIM after `claimIdleMs`; a restarted
 *   consumer with the same name first re-reads its own pending entries.
 * - Redis down or restarted (stream or group gone): the loop logs, backs off, recreates the group, resumes.
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { dlq } from './keys.js';
import { sleep } from '../../lib/sleep.js';

/** One stream entry: its id and its fields as a flat object. */
export interface StreamEntry {
  id: string;
  fields: Record<string, string>;
}

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
}

/** Converts ioredis' `[k1, v1, k2, v2]` field arrays into an object. */
export function fieldsToObject(arr: string[] | null | undefined): Record<string, string> {
  const o: Record<string, string> = {};
  if (!arr) return o;
  for (let i = 0; i + 1 < arr.length; i += 2) o[arr[i] as string] = arr[i + 1] as string;
  return o;
}

type RawEntries = Array<[string, string[] | null]>;

/** See the module comment. `start()` runs the loop in the background; `stop()` ends it. */
export class StreamConsumer {
  private readonly opts: Required<Omit<ConsumerOptions, 'onDeadLetter'>> & Pick<ConsumerOptions, 'onDeadLetter'>;
  private blocking: Redis | null = null;
  private abort = new AbortController();
  private loopDone: Promise<void> | null = null;
  private attempts = new Map<string, number>();
  private lastClaimMs = 0;
  /** True while the last loop iteration reached Redis without error. */
  healthy = false;

  constructor(opts: ConsumerOptions) {
    this.opts = { startId: '$', blockMs: 1000, count: 10, claimIdleMs: 30_000, maxAttempts: 5, ...opts };
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
    this.loopDone = this.loop();
  }

  /** Stops after the entry in hand; closes the blocking connection. */
  async stop(): Promise<void> {
    this.abort.abort();
    this.blocking?.disconnect();
    await this.loopDone;
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
        // 1. our own pending entries (restart with the same name, or handler errors)
        const own = await this.read('0', false);
        for (const e of own) await this.handle(e, true);
        // 2. entries idle on other (dead) consumers
        if (Date.now() - this.lastClaimMs >= Math.min(this.opts.claimIdleMs, 5000)) {
          this.lastClaimMs = Date.now();
          const claimed = await this.claim();
          for (const e of claimed) await this.handle(e, true);
        }
        // 3. new entries (blocks)
        if (own.length === 0) {
          const fresh = await this.read('>', true);
          for (const e of fresh) await this.handle(e, false);
        }
        this.healthy = true;
        backoff = 100;
      } catch (err) {
        if (this.abort.signal.aborted) break;
        this.healthy = false;
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

  private async read(id: '0' | '>', block: boolean): Promise<StreamEntry[]> {
    const conn = block ? this.blocking : this.opts.redis;
    if (!conn) return [];
    const args: Array<string | number> = ['GROUP', this.opts.group, this.opts.consumer, 'COUNT', this.opts.count];
    if (block) args.push('BLOCK', this.opts.blockMs);
    args.push('STREAMS', this.opts.stream, id);
    const res = (await conn.call('XREADGROUP', ...args)) as Array<[string, RawEntries]> | null;
    if (!res || !res[0]) return [];
    return res[0][1].map(([eid, f]) => ({ id: eid, fields: fieldsToObject(f) }));
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

  private async handle(entry: StreamEntry, redelivered: boolean): Promise<void> {
    if (this.abort.signal.aborted) return;
    try {
      await this.opts.handler(entry, redelivered);
      await this.opts.redis.xack(this.opts.stream, this.opts.group, entry.id);
      this.attempts.delete(entry.id);
    } catch (err) {
      if (err instanceof PoisonEntry) {
        await this.deadLetter(entry, err.reason, err.message);
        return;
      }
      const n = (this.attempts.get(entry.id) ?? 0) + 1;
      this.attempts.set(entry.id, n);
      if (n >= this.opts.maxAttempts) {
        this.opts.logger.error({ entry_id: entry.id, err: (err as Error).message, attempts: n }, 'entry failed repeatedly; dead-lettered');
        await this.deadLetter(entry, 'handler_error', (err as Error).message);
        this.attempts.delete(entry.id);
        return;
      }
      throw err;
    }
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
