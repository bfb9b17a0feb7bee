/**
 * The governor's plan rate: one token per ALLOW from a global and a per-symbol token bucket, taken
 * atomically by `tokenBucket-2.lua` with the Redis server's clock, so every governor shares one budget.
 */
import type { Redis } from 'ioredis';
import { keys } from '../../adapters/redis/keys.js';
import { callScript } from '../../adapters/redis/scripts.js';

/** Rates in tokens per minute, bursts in tokens. */
export interface RateSettings {
  globalPerMin: number;
  globalBurst: number;
  symbolPerMin: number;
  symbolBurst: number;
}

/** Outcome of {@link takeRateToken}. */
export type RateOutcome = { ok: true } | { ok: false; reason: 'rate_limited_global' | 'rate_limited_symbol'; globalTokens: string; symbolTokens: string };

/** Takes one token from both buckets, or none. */
export async function takeRateToken(redis: Redis, symbol: string, s: RateSettings): Promise<RateOutcome> {
  const reply = (await callScript(redis, 'tokenBucket', [keys.governorRateBucket('global'), keys.governorRateBucket(symbol)], [s.globalPerMin, s.globalBurst, s.symbolPerMin, s.symbolBurst])) as [
    number,
    string,
    string,
  ];
  const code = Number(reply[0]);
  if (code === 1) return { ok: true };
  return { ok: false, reason: code === -1 ? 'rate_limited_global' : 'rate_limited_symbol', globalTokens: String(reply[1]), symbolTokens: String(reply[2]) };
}
