/**
 * Typed wrappers of the pre-trade risk controls' scripts (docs/risk-controls.md): the loss limit's record and
 * trip, the repeated-execution throttle's trip, and the position brain's mark refresh between polls. Each takes
 * named values, builds the script's KEYS from keys.ts in its header's order and returns the decoded reply.
 */
import type { Redis } from 'ioredis';
import { STREAMS, keys } from '../keys.js';
import { callScript } from './loader.js';
import { FillThrottleCode, LossLimitCode, SnapshotMarkCode, decodeCode } from './codes.js';

/**
 * lossLimit-3.lua: records the loss limit's measurement in `quantum:governor:risk` and, when `trip`, trips it once
 * (global trading state REDUCING unless stricter, the event) if the latch is still `expectedNextTripUsd` for that day.
 * @param event the trip's event fields, in order (ignored without `trip`)
 */
export async function lossLimit(
  redis: Redis,
  a: { measurement: Record<string, string>; trip: boolean; dayStartMs: number; expectedNextTripUsd: string; nextTripUsd: string; nowMs: number; reason: string; event: string[]; eventsMaxlen: number },
): Promise<keyof typeof LossLimitCode> {
  const reply = await callScript(
    redis,
    'lossLimit',
    [keys.governorRisk(), keys.tradingState(), STREAMS.governorEvents],
    [JSON.stringify(a.measurement), a.trip ? '1' : '0', String(a.dayStartMs), a.expectedNextTripUsd, a.nextTripUsd, a.nowMs, a.reason, JSON.stringify(a.event), a.eventsMaxlen],
  );
  return decodeCode(LossLimitCode, reply, 'recorded');
}

/**
 * fillThrottle-3.lua: trips the symbol's repeated-execution throttle once (its trading state REDUCING unless
 * stricter, the event) if its last trip is still `lastTripMs` ('' = none).
 */
export async function fillThrottle(redis: Redis, a: { symbol: string; nowMs: number; lastTripMs: string; reason: string; event: string[]; eventsMaxlen: number }): Promise<keyof typeof FillThrottleCode> {
  const reply = await callScript(redis, 'fillThrottle', [keys.governorRisk(), keys.tradingState(a.symbol), STREAMS.governorEvents], [a.symbol, a.nowMs, a.lastTripMs, a.reason, JSON.stringify(a.event), a.eventsMaxlen]);
  return decodeCode(FillThrottleCode, reply, 'not_tripped');
}

/**
 * snapshotMark-1.lua: refreshes the mark fields of the symbol's existing snapshot (never back in time).
 * @param mark decimal string; @param markTsMs when it was read, epoch ms; @param indexPrice decimal string, '' = unknown
 */
export async function snapshotMark(redis: Redis, a: { symbol: string; mark: string; markTsMs: number; indexPrice: string }): Promise<keyof typeof SnapshotMarkCode> {
  const reply = await callScript(redis, 'snapshotMark', [keys.snapshot(a.symbol)], [a.mark, a.markTsMs, a.indexPrice]);
  return decodeCode(SnapshotMarkCode, reply, 'not_written');
}
