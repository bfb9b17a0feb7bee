/**
 * Trading state in Redis: global `quantum:governor:trading_state` and per symbol
 * `quantum:governor:trading_state:<SYM>`, hashes `{state, reason, ts_ms, by}`; a change is recorded as a
 * `TRADING_STATE_SET` event in `quantum:stream:governor.events` in the same MULTI. Used by the governor,
 * `p3 trading-state` and `p3 status`.
 */
import type { Redis } from 'ioredis';
import { scanKeys } from '../../adapters/redis/client.js';
import { EVENTS_MAXLEN, STREAMS, keys, patterns } from '../../adapters/redis/keys.js';
import { readTradingState, type TradingState, type TradingStateRead } from '../../domain/governor.js';
import { checkOperatorText } from '../../domain/operator-text.js';
import { EVENT } from '../../domain/events.js';

/**
 * Sets the trading state of `symbol` (or the global one when `symbol` is undefined) and records the event.
 * @throws OperatorTextError for an empty reason or one with control characters (nothing written)
 */
export async function setTradingState(redis: Redis, opts: { symbol?: string; state: TradingState; reason: string; by: string; nowMs?: number }): Promise<void> {
  checkOperatorText(opts.reason);
  checkOperatorText(opts.by, 'by');
  const ts = String(opts.nowMs ?? Date.now());
  const key = keys.tradingState(opts.symbol);
  const res = await redis
    .multi()
    .hset(key, { state: opts.state, reason: opts.reason, ts_ms: ts, by: opts.by })
    .xadd(STREAMS.governorEvents, 'MAXLEN', '~', EVENTS_MAXLEN, '*', 'event', EVENT.TRADING_STATE_SET, 'scope', opts.symbol ?? 'global', 'symbol', opts.symbol ?? '', 'state', opts.state, 'reason', opts.reason, 'by', opts.by, 'ts_ms', ts)
    .exec();
  const err = res?.find(([e]) => e)?.[0];
  if (!res || err) throw err ?? new Error('trading state write aborted');
}

/** A breaker as stored (JSON) with its remaining TTL. */
export interface BreakerView {
  symbol: string;
  ttlSec: number;
  detail: Record<string, unknown>;
}

/** Everything `p3 trading-state show` / `p3 status` prints. */
export interface TradingStateView {
  global: TradingStateRead;
  /** Symbol → its state; an object without prototype (the names come from Redis keys). */
  symbols: Record<string, TradingStateRead>;
  breakers: BreakerView[];
}

/** Reads the global state, every per-symbol state and every open breaker (SCAN, never KEYS). */
export async function readTradingStates(redis: Redis): Promise<TradingStateView> {
  const global = readTradingState(await redis.hgetall(keys.tradingState()));
  // no prototype: the names come from Redis keys (a key ending in `__proto__` must stay a plain entry)
  const symbols = Object.create(null) as Record<string, TradingStateRead>;
  for (const k of (await scanKeys(redis, patterns.tradingStates)).sort()) {
    symbols[k.slice(keys.tradingState().length + 1)] = readTradingState(await redis.hgetall(k));
  }
  const breakers: BreakerView[] = [];
  for (const k of (await scanKeys(redis, patterns.breakers)).sort()) {
    const [v, ttl] = await Promise.all([redis.get(k), redis.ttl(k)]);
    if (v === null) continue;
    let detail: Record<string, unknown> = {};
    try {
      detail = JSON.parse(v) as Record<string, unknown>;
    } catch {
      detail = { raw: v };
    }
    breakers.push({ symbol: k.slice(keys.governorBreaker('').length), ttlSec: ttl, detail });
  }
  return { global, symbols, breakers };
}
