/**
 * Incremental reading of a stream that only grows: each refresh reads just the entries added
 * since the previous one (`XRANGE (<last id> +`, page by page), so a reader that needs "the stream up to
 * now" pays one round trip, not a scan of everything it covers.
 *
 * - Every {@link StreamTail.fresh} resolves after a refresh that STARTED after the call (concurrent callers
 *   share refreshes: at most one running and one queued), so the caller sees every entry added before it asked.
 * - First refresh: from `start(nowMs)` (an id, inclusive), or the newest `last` entries.
 * - A stream whose newest id went backwards (recreated, e.g. Redis restarted empty) is read again from
 *   the start (`onReset` first).
 */
import type { Redis } from 'ioredis';
import { tickBatch, type BatchCommand } from './tick-batch.js';

/** Entries read per round trip. */
const PAGE = 1000;

/** Compares stream ids `a` and `b` (negative when a < b). */
export function compareStreamIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(Number) as [number, number];
  const [bm, bs] = b.split('-').map(Number) as [number, number];
  return am !== bm ? am - bm : (as ?? 0) - (bs ?? 0);
}

/** Milliseconds part of a stream id (`<ms>-<seq>`). */
export function streamIdMs(id: string): number {
  const i = id.indexOf('-');
  return Number(i < 0 ? id : id.slice(0, i));
}

/** Options of {@link StreamTail}. */
export interface StreamTailOptions {
  /** Where the first refresh starts: `{from: id}` (inclusive) or `{last: n}` (the newest n entries). */
  initial: (nowMs: number) => { from: string } | { last: number };
  /** Called for every entry, oldest first, once. `fields` is the raw `[k, v, k, v]` array. */
  onEntry: (id: string, fields: string[]) => void;
  /** Called when the stream was recreated: forget what `onEntry` collected. */
  onReset: () => void;
  /** Called after each refresh (e.g. to prune). */
  onRefreshed?: (nowMs: number) => void;
}

/** See the module comment. */
export class StreamTail {
  private cursor: string | null = null;
  private running: Promise<void> | null = null;
  private queued: Promise<void> | null = null;

  constructor(
    private readonly redis: Redis,
    private readonly stream: string,
    private readonly opts: StreamTailOptions,
  ) {}

  /** Resolves after a refresh that started after this call. @throws Redis errors */
  fresh(nowMs = Date.now()): Promise<void> {
    if (!this.running) return this.start(nowMs);
    if (!this.queued) {
      this.queued = this.running.then(
        () => this.start(Date.now()),
        () => this.start(Date.now()),
      );
    }
    return this.queued;
  }

  private start(nowMs: number): Promise<void> {
    this.queued = null;
    const run = this.refresh(nowMs).finally(() => {
      if (this.running === run) this.running = null;
    });
    this.running = run;
    return run;
  }

  /** The first read (from the initial position), newest id included. */
  private firstRead(nowMs: number): { cmd: BatchCommand; entries: (raw: unknown) => Array<[string, string[]]> } {
    const init = this.opts.initial(nowMs);
    if ('last' in init) {
      return { cmd: ['xrevrange', this.stream, '+', '-', 'COUNT', init.last], entries: (raw) => [...((raw ?? []) as Array<[string, string[]]>)].reverse() };
    }
    return { cmd: ['xrange', this.stream, init.from, '+', 'COUNT', PAGE], entries: (raw) => (raw ?? []) as Array<[string, string[]]> };
  }

  private async refresh(nowMs: number): Promise<void> {
    let first = this.cursor === null ? this.firstRead(nowMs) : null;
    // sent in this turn's one pipeline of the connection (tick-batch.ts), after the operations issued
    // before this refresh started (so it sees everything they saw)
    const res = await tickBatch(this.redis).pipeline([['xrevrange', this.stream, '+', '-', 'COUNT', 1], first ? first.cmd : ['xrange', this.stream, `(${this.cursor}`, '+', 'COUNT', PAGE]]);
    for (const [e] of res) if (e) throw e;
    const newest = ((res[0]?.[1] ?? []) as Array<[string, string[]]>)[0]?.[0] ?? null;
    let page = first ? first.entries(res[1]?.[1]) : ((res[1]?.[1] ?? []) as Array<[string, string[]]>);
    if (this.cursor !== null && newest !== null && compareStreamIds(newest, this.cursor) < 0) {
      // recreated: start over
      this.cursor = null;
      this.opts.onReset();
      first = this.firstRead(nowMs);
      const r = await tickBatch(this.redis).pipeline([first.cmd]);
      if (r[0]?.[0]) throw r[0][0];
      page = first.entries(r[0]?.[1]);
    }
    const paged = first === null || !('last' in this.opts.initial(nowMs));
    for (;;) {
      for (const [id, f] of page) this.opts.onEntry(id, f);
      const last = page[page.length - 1]?.[0];
      if (last) this.cursor = last;
      if (!paged || page.length < PAGE || !last) break;
      page = await this.redis.xrange(this.stream, `(${last}`, '+', 'COUNT', PAGE);
    }
    if (this.cursor === null) {
      // nothing read: continue after what was there (or from the start position)
      const init = this.opts.initial(nowMs);
      const from = 'from' in init ? init.from : '0-0';
      this.cursor = newest !== null && compareStreamIds(newest, from) > 0 ? newest : from;
    }
    this.opts.onRefreshed?.(nowMs);
  }
}
