/**
 * The FAILED results of `quantum:stream:apply.result` within the circuit breaker's window, per symbol,
 * kept in memory and brought up to date incrementally.
 *
 * The breaker used to scan the whole window (default 300 s) of the result stream for every plan: at
 * 1,000 plans/s that is up to 300,000 entries read and parsed per plan, which capped the governor (and
 * Redis) long before 1,000 plans/s. Here each refresh reads only the entries added since the previous one
 * (`StreamTail`), so a check costs one round trip whatever the window holds.
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
import { StreamTail, streamIdMs } from '../../adapters/redis/stream-tail.js';

export { compareStreamIds } from '../../adapters/redis/stream-tail.js';

/** Counts FAILED results of a symbol from a time (what the breaker needs). */
export interface FailureCounter {
  /** FAILED results of `symbol` with a stream time >= `fromMs` (epoch ms). @throws Redis errors */
  count(symbol: string, fromMs: number, nowMs?: number): Promise<number>;
}

/** See the module comment. One per governor process. */
export class FailureWindow implements FailureCounter {
  /** Per symbol: ms timestamps (stream ids) of its FAILED results, ascending. */
  private readonly failed = new Map<string, number[]>();
  private readonly tail: StreamTail;

  /**
   * @param redis connection (reads `quantum:stream:apply.result` with XRANGE/XREVRANGE)
   * @param windowMs how far back failures count, ms (the breaker's window)
   */
  constructor(
    redis: Redis,
    private readonly windowMs: number,
  ) {
    this.tail = new StreamTail(redis, STREAMS.applyResult, {
      initial: (nowMs) => ({ from: `${Math.max(0, nowMs - windowMs)}-0` }),
      onEntry: (id, f) => this.add(id, f),
      onReset: () => this.failed.clear(),
      onRefreshed: (nowMs) => this.prune(nowMs),
    });
  }

  /**
   * FAILED results of `symbol` with a stream time >= `fromMs` (epoch ms), after a refresh started by this call.
   * @throws Redis errors (the caller's consumer retries the plan)
   */
  async count(symbol: string, fromMs: number, nowMs = Date.now()): Promise<number> {
    await this.tail.fresh(nowMs);
    return this.countNow(symbol, fromMs);
  }

  /**
   * Starts a refresh now (shared with concurrent callers) and returns a counter that answers from it, so
   * the refresh's round trip overlaps the caller's other reads instead of following them.
   */
  begin(nowMs = Date.now()): FailureCounter {
    const refreshed = this.tail.fresh(nowMs);
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

  private add(id: string, f: string[]): void {
    let sym = '';
    let status = '';
    for (let i = 0; i + 1 < f.length; i += 2) {
      if (f[i] === 'symbol') sym = f[i + 1] as string;
      else if (f[i] === 'status') status = f[i + 1] as string;
    }
    if (status !== 'FAILED' || sym === '') return;
    let ts = this.failed.get(sym);
    if (!ts) this.failed.set(sym, (ts = []));
    ts.push(streamIdMs(id));
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
}
