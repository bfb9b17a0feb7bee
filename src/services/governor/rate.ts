/**
 * The governor's plan rate: one token per ALLOW from a global and a per-symbol token bucket, taken
 * atomically with the Redis server's clock, so every governor shares one budget. The governor takes it
 * together with writing its ALLOW permit (`governorIssue-3.lua`, {@link issueAllow}); `tokenBucket-2.lua`
 * ({@link takeRateToken}) takes a token alone (same rules: the `includes/takeTokens` fragment).
 */
import type { Redis } from 'ioredis';
import { keys } from '../../adapters/redis/keys.js';
import { callScript } from '../../adapters/redis/scripts.js';
import { tickBatch } from '../../adapters/redis/tick-batch.js';
import type { PermitFields } from '../../domain/permits.js';

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

/** Outcome of {@link issueAllow}. */
export type IssueOutcome = { kind: 'written' } | { kind: 'exists' } | { kind: 'refused'; reason: 'rate_limited_global' | 'rate_limited_symbol'; globalTokens: string; symbolTokens: string };

/**
 * Issues a governor ALLOW in one atomic step (`governorIssue-3.lua`, sent in this turn's pipeline,
 * tick-batch.ts): unless the plan already has a governor permit, takes one token from both buckets and,
 * only then, writes the signed permit once with its TTL (and publishes its key).
 * @param permit the signed ALLOW permit (`signPermit`)
 * @param ttlSec permit lifetime, seconds
 * @returns `written`; `exists` (a permit was there: nothing taken or written); `refused` (a bucket was empty: nothing written)
 * @throws Redis errors (the caller's consumer retries the plan)
 */
export async function issueAllow(redis: Redis, symbol: string, permit: PermitFields & { sig: string }, ttlSec: number, s: RateSettings): Promise<IssueOutcome> {
  const flat: string[] = [];
  for (const [k, v] of Object.entries(permit)) flat.push(k, v);
  const [[err, raw]] = (await tickBatch(redis).pipeline([
    ['governorIssue', keys.permitGovernor(permit.plan_id), keys.governorRateBucket('global'), keys.governorRateBucket(symbol), Math.max(1, Math.round(ttlSec)), s.globalPerMin, s.globalBurst, s.symbolPerMin, s.symbolBurst, ...flat],
  ])) as [[Error | null, unknown]];
  if (err) throw err;
  const reply = raw as [number, string, string];
  const code = Number(reply[0]);
  if (code === 1) return { kind: 'written' };
  if (code === 0) return { kind: 'exists' };
  return { kind: 'refused', reason: code === -1 ? 'rate_limited_global' : 'rate_limited_symbol', globalTokens: String(reply[1]), symbolTokens: String(reply[2]) };
}
