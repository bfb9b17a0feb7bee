/**
 * The FAILED results of `quantum:stream:apply.result` within the circuit breaker's window, per symbol,
 * kept in memory and brought up to date incrementally (issue 16).
 *
 * The breaker used to scan the whole window (default 300 s) of the result stream for every plan: at
 * 1,000 plans/s that is up to 300,000 entries read and parsed per plan, which capped the governor (and
 * Redis) long before 1,000 plans/s. Here each refresh reads only the entries added since the previous one
 * (`XRANGE (<last id> +`, page by page), so a check costs one round trip whatever the window holds.
 *
 * Same answer as the full scan: a count covers every FAILED result with a stream id (ms) >= `fromMs`
 * present in the stream when the refresh started, and every count waits for a refresh that STARTED after
 * the count was asked for (concurrent counts share it). It may count MORE than a scan (fail closed): a
 * failure trimmed from the stream by MAXLEN, or lost in a Redis restart, still counts until it leaves the
 * window. A stream whose newest id went backwards (recreated after a restart) is read again from the
 * window's start.
 */
import type { Redis } from 'ioredis';
import { STREAMS } from '../../adapters/redis/keys.js';

/** Entries read per round trip. */
const PAGE = 1000;

/** Milliseconds part of a stream id (`<ms>-<seq>`). */
function idMs(id: string): number {
  const i = id.indexOf('-');
  return Number(i < 0 ? id : id.slice(0, i));
}

/** Compares stream ids `a` and `b` (negative when a < b). */
export function compareStreamIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(Number) as [number, number];
  const [bm, bs] = b.split('-').map(Number) as [number, number];
  return am !== bm ? am - bm : (as ?? 0) - (bs ?? 0);
}

/** Counts FAILED results of a symbol from a time (what the breaker needs). */
export interface FailureCounter {
  /** FAILED results of `symbol` with a stream time >= `fromMs` (epoch ms). @throws Redis errors */
  count(symbol: string, fromMs: number, nowMs?: number): Promise<number>;
}

/** See the module comment. One per governor process. */
export class FailureWindow implements FailureCounter {
  /** Last stream id read; null before the first refresh (or after a reset). */
  private cursor: string | null = null;
  /** Per symbol: ms timestamps (stream ids) of its FAILED results, ascending. */
  private readonly failed = new Map<string, number[]>();
  private running: Promise<void> | null = null;
  private queued: Promise<void> | null = null;

  /**
   * @param redis connection (reads `quantum:stream:apply.result` with XRANGE/XREVRANGE)
   * @param windowMs how far back failures count, ms (the breaker's window)
   */
  constructor(
    private readonly redis: Redis,
    private readonly windowMs: number,
  ) {}

  /**
   * FAILED results of `symbol` with a stream time >= `fromMs` (epoch ms), after a refresh started by this call.
   * @throws Redis errors (the caller's consumer retries the plan)
   */
  async count(symbol: string, fromMs: number, nowMs = Date.now()): Promise<number> {
    await this.fresh(nowMs);
    return this.countNow(symbol, fromMs);
  }

  /**
   * Starts a refresh now (shared with concurrent callers) and returns a counter that answers from it, so
   * the refresh's round trip overlaps the caller's other reads instead of following them.
   */
  begin(nowMs = Date.now()): FailureCounter {
    const refreshed = this.fresh(nowMs);
    refreshed.catch(() => undefined); // awaited (and thrown) by count()
    return {
      count: async (symbol, fromMs) => {
        await refreshed;
        return this.countNow(symbol, fromMs);
      },
    };
  }

  private countNow(symbol: string, fromMs: number): number {
    const ts = this.failed.get(symbol);
    if (!ts) return 0;
    let n = 0;
    for (let i = ts.length - 1; i >= 0 && (ts[i] as number) >= fromMs; i--) n++;
    return n;
  }

  /** Resolves after a refresh that started after this call (shared by concurrent callers). */
  private fresh(nowMs: number): Promise<void> {
    if (!this.running) return this.start(nowMs);
    if (!this.queued) {
      this.queued = this.running.then(
        () => this.start(nowMs),
        () => this.start(nowMs),
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

  private async refresh(nowMs: number): Promise<void> {
    const windowStart = `${Math.max(0, nowMs - this.windowMs)}-0`;
    let start = this.cursor === null ? windowStart : `(${this.cursor}`;
    // the newest id (a stream recreated after a restart goes backwards) and the first page, one round trip
    const res = await this.redis.pipeline().xrevrange(STREAMS.applyResult, '+', '-', 'COUNT', 1).xrange(STREAMS.applyResult, start, '+', 'COUNT', PAGE).exec();
    if (!res) throw new Error('failure window read aborted');
    for (const [e] of res) if (e) throw e;
    const newest = ((res[0]?.[1] ?? []) as Array<[string, string[]]>)[0]?.[0] ?? null;
    let page = (res[1]?.[1] ?? []) as Array<[string, string[]]>;
    if (this.cursor !== null && newest !== null && compareStreamIds(newest, this.cursor) < 0) {
      this.reset();
      start = windowStart;
      page = await this.redis.xrange(STREAMS.applyResult, start, '+', 'COUNT', PAGE);
    }
    for (;;) {
      for (const [id, f] of page) {
        let sym = '';
        let status = '';
        for (let i = 0; i + 1 < f.length; i += 2) {
          if (f[i] === 'symbol') sym = f[i + 1] as string;
          else if (f[i] === 'status') status = f[i + 1] as string;
        }
        if (status !== 'FAILED' || sym === '') continue;
        let ts = this.failed.get(sym);
        if (!ts) this.failed.set(sym, (ts = []));
        ts.push(idMs(id));
      }
      const last = page[page.length - 1]?.[0];
      if (last) this.cursor = last;
      if (page.length < PAGE || !last) break;
      start = `(${last}`;
      page = await this.redis.xrange(STREAMS.applyResult, start, '+', 'COUNT', PAGE);
    }
    if (this.cursor === null) this.cursor = newest !== null && compareStreamIds(newest, windowStart) > 0 ? newest : windowStart;
    this.prune(nowMs);
  }

  /** Drops failures that left the window (with a minute of slack for clock differences). */
  private prune(nowMs: number): void {
    const keep = nowMs - this.windowMs - 60_000;
    for (const [sym, ts] of this.failed) {
      let i = 0;
      while (i < ts.length && (ts[i] as number) < keep) i++;
      if (i === ts.length) this.failed.delete(sym);
      else if (i > 0) ts.splice(0, i);
    }
  }

  private reset(): void {
    this.cursor = null;
    this.failed.clear();
  }
}
