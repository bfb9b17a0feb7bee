/**
 * Reading the trading state for `p3 trading-state show`, `p3 status`, `p3 doctor` and the console: the global
 * hash `quantum:governor:trading_state`, every per-symbol hash and every open circuit breaker, found by SCAN
 * (never KEYS). Written by src/services/governor/trading-state.ts (operators) and the governor's breaker.
 */
import type { Redis } from 'ioredis';
import { scanKeys } from '../adapters/redis/client.js';
import { keys, patterns } from '../adapters/redis/keys.js';
import { readTradingState, type TradingStateRead } from '../domain/governor.js';

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
