/**
 * Typed wrappers of the governor's and the permit writers' scripts (token buckets, permit issue and write,
 * circuit breaker, exposure reservations). Each takes named values, builds the script's KEYS from the key
 * registry (keys.ts) in its header's order and returns the decoded reply (names of ./codes.ts, never a raw code).
 */
import type { Redis } from 'ioredis';
import { STREAMS, keys } from '../keys.js';
import { batchScript, callScript } from './loader.js';
import { BreakerTripCode, ExposureExpireCode, ExposureReserveCode, GovernorIssueCode, PermitWriteCode, TokenBucketCode, decodeCode } from './codes.js';

/** Rates and bursts of the global and the symbol's token buckets (tokens per minute, capacity). */
export interface BucketSettings {
  globalPerMin: number;
  globalBurst: number;
  symbolPerMin: number;
  symbolBurst: number;
}

/** Decoded reply of tokenBucket-2.lua (token counts as the script returns them, strings). */
export interface TokenBucketResult {
  result: keyof typeof TokenBucketCode;
  globalTokens: string;
  symbolTokens: string;
}

/** tokenBucket-2.lua: takes one token from the global and the symbol's bucket, both or neither. */
export async function tokenBucket(redis: Redis, symbol: string, s: BucketSettings): Promise<TokenBucketResult> {
  const reply = (await callScript(redis, 'tokenBucket', [keys.governorRateBucket('global'), keys.governorRateBucket(symbol)], [s.globalPerMin, s.globalBurst, s.symbolPerMin, s.symbolBurst])) as [number, string, string];
  return { result: decodeCode(TokenBucketCode, reply[0], 'rate_limited_symbol'), globalTokens: String(reply[1]), symbolTokens: String(reply[2]) };
}

/** Decoded reply of governorIssue-3.lua (token counts as strings, '' when not read). */
export interface GovernorIssueResult {
  result: keyof typeof GovernorIssueCode;
  globalTokens: string;
  symbolTokens: string;
}

/**
 * governorIssue-3.lua, sent in this turn's pipeline of the connection (tick-batch.ts): takes the rate tokens and
 * writes the governor permit of `planId` once, in one step.
 * @param ttlSec permit lifetime, seconds (rounded, at least 1)
 * @param fields the permit's fields (flattened in order)
 */
export async function governorIssue(redis: Redis, a: { planId: string; symbol: string; ttlSec: number; buckets: BucketSettings; fields: Record<string, string> }): Promise<GovernorIssueResult> {
  const b = a.buckets;
  const reply = (await batchScript(
    redis,
    'governorIssue',
    [keys.permitGovernor(a.planId), keys.governorRateBucket('global'), keys.governorRateBucket(a.symbol)],
    [Math.max(1, Math.round(a.ttlSec)), b.globalPerMin, b.globalBurst, b.symbolPerMin, b.symbolBurst, ...Object.entries(a.fields).flat()],
  )) as [number, string, string];
  return { result: decodeCode(GovernorIssueCode, reply[0], 'rate_limited_symbol'), globalTokens: String(reply[1]), symbolTokens: String(reply[2]) };
}

/**
 * permitWrite-1.lua: writes the permit hash `key` once with its TTL and publishes its key.
 * @param batched send it in this turn's pipeline of the connection (tick-batch.ts) instead of on its own
 */
export async function permitWrite(redis: Redis, key: string, ttlSec: number, fields: Record<string, string>, batched = false): Promise<keyof typeof PermitWriteCode> {
  const args = [Math.max(1, Math.round(ttlSec)), ...Object.entries(fields).flat()];
  const reply = batched ? await batchScript(redis, 'permitWrite', [key], args) : await callScript(redis, 'permitWrite', [key], args);
  return decodeCode(PermitWriteCode, reply, 'exists');
}

/** breakerTrip-3.lua: trips the symbol's circuit breaker once, with its event (see the header for each argument). */
export async function breakerTrip(
  redis: Redis,
  a: { symbol: string; cooldownSec: number; nowMs: number; detailJson: string; event: Record<string, string>; eventsMaxlen: number; lastTripMs: string | number; lastTripTtlSec: number },
): Promise<keyof typeof BreakerTripCode> {
  const reply = await callScript(
    redis,
    'breakerTrip',
    [keys.governorBreaker(a.symbol), keys.governorBreakerLastTrip(a.symbol), STREAMS.governorEvents],
    [a.cooldownSec, a.nowMs, a.detailJson, JSON.stringify(Object.entries(a.event).flat()), a.eventsMaxlen, a.lastTripMs, a.lastTripTtlSec],
  );
  return decodeCode(BreakerTripCode, reply, 'not_tripped');
}

/**
 * exposureReserve-2.lua: adds and/or releases reservations if the version is still `version`.
 * @param add `[planId, reservation]` to add, or null
 * @param release plan ids whose reservations are released
 */
export async function exposureReserve(redis: Redis, version: string, add: [string, string] | null, release: string[]): Promise<keyof typeof ExposureReserveCode> {
  const reply = await callScript(redis, 'exposureReserve', [keys.governorReservations(), keys.governorReservationsVersion()], [version, ...(add ?? ['', '']), ...release]);
  return decodeCode(ExposureReserveCode, reply, 'version_moved');
}

/** exposureExpire-3.lua: releases the expired reservation of `planId` only while its plan is not being sent or finished. */
export async function exposureExpire(redis: Redis, planId: string): Promise<keyof typeof ExposureExpireCode> {
  const reply = await callScript(redis, 'exposureExpire', [keys.governorReservations(), keys.governorReservationsVersion(), keys.applyDedupe(planId)], [planId]);
  return decodeCode(ExposureExpireCode, reply, 'kept');
}
