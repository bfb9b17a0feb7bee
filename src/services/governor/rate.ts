/**
 * The governor's plan rate: one token per ALLOW from a global and a per-symbol token bucket, taken
 * atomically with the Redis server's clock, so every governor shares one budget. The governor takes it
 * together with writing its ALLOW permit (`governorIssue-3.lua`, {@link issueAllow}); `tokenBucket-2.lua`
 * ({@link takeRateToken}) takes a token alone (same rules: the `includes/takeTokens` fragment).
 */
import type { Redis } from 'ioredis';
import { governorIssue, tokenBucket } from '../../adapters/redis/scripts/index.js';
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
  const r = await tokenBucket(redis, symbol, s);
  if (r.result === 'taken') return { ok: true };
  return { ok: false, reason: r.result, globalTokens: r.globalTokens, symbolTokens: r.symbolTokens };
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
  const r = await governorIssue(redis, { planId: permit.plan_id, symbol, ttlSec, buckets: s, fields: { ...permit } });
  if (r.result === 'written' || r.result === 'exists') return { kind: r.result };
  return { kind: 'refused', reason: r.result, globalTokens: r.globalTokens, symbolTokens: r.symbolTokens };
}
