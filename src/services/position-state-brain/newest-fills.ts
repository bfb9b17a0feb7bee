/**
 * The newest fill of each symbol seen in `quantum:stream:apply.result`, read incrementally.
 *
 * The brain used to read the newest 50 results with every plan (`XREVRANGE ... COUNT 50`, inside its
 * MULTI) and parse all of them: most of its CPU per plan at a few hundred plans/s. This keeps, per symbol,
 * the newest fill time (`fillFromResult` of an EXECUTED result, `ts_ms`) over the newest 50 results at
 * start and every result added since, reading only new entries (`StreamTail`).
 *
 * Never less than the old view: a refresh that starts after the caller's own reads sees a superset of
 * the 50 results those reads would have seen, and the newest time over a superset is >= (a fill counts
 * even after 50 newer results pushed it out of the old window). `quantum:apply:last_fill_ms:<SYM>` (read
 * in the brain's MULTI) stays the authoritative newest fill of results the apply layer records.
 */
import type { Redis } from 'ioredis';
import { STREAMS } from '../../adapters/redis/keys.js';
import { fieldsToObject } from '../../adapters/redis/consumer.js';
import { StreamTail } from '../../adapters/redis/stream-tail.js';
import { fillFromResult } from '../../domain/result.js';

/** Results read at start (the brain's former window, as the reconcile engine reads). */
export const RECENT_RESULTS = 50;

/** See the module comment. One per brain process. */
export class NewestFills {
  private readonly newest = new Map<string, number>();
  private readonly tail: StreamTail;

  constructor(redis: Redis) {
    this.tail = new StreamTail(redis, STREAMS.applyResult, {
      initial: () => ({ last: RECENT_RESULTS }),
      onEntry: (id, raw) => {
        // cheap pre-filter: only EXECUTED results can be fills
        if (!raw.includes('EXECUTED')) return;
        const f = fieldsToObject(raw);
        const fill = fillFromResult(id, f);
        if (!fill) return;
        const sym = (f.symbol ?? '').toUpperCase();
        if (fill.tsMs > (this.newest.get(sym) ?? -Infinity)) this.newest.set(sym, fill.tsMs);
      },
      onReset: () => this.newest.clear(),
    });
  }

  /**
   * Newest fill time (epoch ms) of `symbol`, after a refresh that started after this call; null when none.
   * @throws Redis errors (the caller's consumer retries the plan)
   */
  async newestFor(symbol: string): Promise<number | null> {
    await this.tail.fresh();
    return this.newest.get(symbol) ?? null;
  }
}
