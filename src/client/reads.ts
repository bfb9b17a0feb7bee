/**
 * What the strategy client reads from the result stream (its Redis user reads nothing else): the net of the
 * executed fills per symbol, a symbol's newest result and hold, one result by a predicate.
 *
 * Invariants:
 * - Read-only, paged (`XRANGE`/`XREVRANGE` `COUNT` {@link PAGE}); look-backs are bounded.
 * - Fills are summed with exact decimals (fillFromResult of src/domain/result.ts: EXECUTED, executed=true,
 *   filled > 0, BUY +, SELL -); the stream is trimmed at ~100,000 entries, so the net covers what is left.
 */
import type { Redis } from 'ioredis';
import { fieldsToObject } from '../adapters/redis/consumer.js';
import { STREAMS } from '../adapters/redis/keys.js';
import { Decimal, fmt } from '../domain/decimal.js';
import { fillFromResult } from '../domain/result.js';
import { HOLD_REASONS, toP3Result, type P3Result } from './result.js';
import type { HoldEvent, PositionView, SymbolStatus } from './types.js';

/** Entries of the result stream read per request. */
export const PAGE = 1000;
/** Results a look-back (status, findResult) covers at most, newest first. */
export const LOOKBACK = 5000;

/** The net of the executed fills of the result stream per symbol, sorted by symbol (flat ones with fills included). */
export async function readPositions(redis: Redis): Promise<PositionView[]> {
  const by = new Map<string, PositionView & { net: Decimal }>();
  let start = '-';
  for (;;) {
    const page = await redis.xrange(STREAMS.applyResult, start, '+', 'COUNT', PAGE);
    for (const [id, arr] of page) {
      const f = fieldsToObject(arr);
      const fill = fillFromResult(id, f);
      if (!fill || !f.symbol) continue;
      const v = by.get(f.symbol) ?? { symbol: f.symbol, netQty: '0', side: 'FLAT' as const, fills: 0, lastFillTsMs: 0, net: new Decimal(0) };
      v.net = v.net.plus(fill.signedQty);
      v.fills++;
      v.lastFillTsMs = Math.max(v.lastFillTsMs, fill.tsMs);
      by.set(f.symbol, v);
    }
    if (page.length < PAGE) break;
    start = `(${page[page.length - 1]![0]}`;
  }
  return [...by.values()]
    .map(({ net, ...v }) => ({ ...v, netQty: fmt(net), side: net.gt(0) ? ('LONG' as const) : net.lt(0) ? ('SHORT' as const) : ('FLAT' as const) }))
    .sort((a, b) => a.symbol.localeCompare(b.symbol));
}

/** The result stream's entries newest first, at most `lookback`, as `[entry id, fields]`. */
async function* newestFirst(redis: Redis, lookback: number): AsyncGenerator<[string, Record<string, string>]> {
  let end = '+';
  for (let seen = 0; seen < lookback; ) {
    const page = await redis.xrevrange(STREAMS.applyResult, end, '-', 'COUNT', PAGE);
    for (const [id, arr] of page) {
      if (++seen > lookback) return;
      yield [id, fieldsToObject(arr)];
    }
    if (page.length < PAGE) return;
    end = `(${page[page.length - 1]![0]}`;
  }
}

/**
 * The newest entry of the result stream whose fields satisfy `match`, looking back at most `lookback` entries.
 * @returns its entry id and fields, or null
 */
export async function findResult(redis: Redis, match: (f: Record<string, string>) => boolean, lookback = LOOKBACK): Promise<{ entryId: string; fields: Record<string, string> } | null> {
  for await (const [entryId, fields] of newestFirst(redis, lookback)) if (match(fields)) return { entryId, fields };
  return null;
}

/**
 * What the result stream says about `symbol` (upper case): its newest final result, and a hold when the newest
 * result refused for a hold reason ({@link HOLD_REASONS}) with no EXECUTED result after it.
 * @param inFlight the caller's plans on the symbol still without a final result
 */
export async function readStatus(redis: Redis, symbol: string, inFlight: string[]): Promise<SymbolStatus> {
  let last: P3Result | null = null;
  let hold: HoldEvent | null = null;
  for await (const [entryId, f] of newestFirst(redis, LOOKBACK)) {
    const r = f.symbol === symbol ? toP3Result(entryId, f) : null;
    if (!r) continue;
    last ??= r;
    if (r.status === 'EXECUTED') break;
    if (HOLD_REASONS.includes(r.reason)) {
      hold = { symbol, reason: r.reason, planId: r.planId, tsMs: r.tsMs, entryId };
      break;
    }
  }
  const position = (await readPositions(redis)).find((p) => p.symbol === symbol) ?? { symbol, netQty: '0', side: 'FLAT' as const, fills: 0, lastFillTsMs: 0 };
  return { symbol, lastResult: last, hold, position, inFlight };
}
