/**
 * Typed wrappers of the venue journal's scripts (docs/architecture.md#venue-journal). Each takes named values,
 * builds the script's KEYS in its header's order and returns the decoded reply.
 */
import type { Redis } from 'ioredis';
import { STREAMS, VENUE_FILLS_MAXLEN, keys } from '../keys.js';
import { VenueFillRecordCode, VenueGapClearCode } from './codes.js';
import { callScript } from './loader.js';

/**
 * venueFillRecord-4.lua: records one fill once by trade id (plan_decision read from our order record).
 * @param fields the journal entry's fields (the script adds `plan_decision`)
 * @returns the stream entry id when recorded, null when already recorded
 */
export async function venueFillRecord(redis: Redis, a: { symbol: string; tradeId: string; clientOrderId: string; localTsMs: number; retention: number; fields: Record<string, string> }): Promise<string | null> {
  const args: Array<string | number> = [a.tradeId, a.retention, VENUE_FILLS_MAXLEN, a.localTsMs];
  for (const [k, v] of Object.entries(a.fields)) args.push(k, v);
  const r = await callScript(redis, 'venueFillRecord', [keys.venueTrades(a.symbol), STREAMS.exchangeFills, keys.venueCursor(a.symbol), keys.applyOrder(a.clientOrderId)], args);
  return Number(r) === VenueFillRecordCode.already_recorded ? null : String(r);
}

/**
 * venueGapClear-1.lua: clears the symbol's journal gap when it opened at or before `verifyStartMs`, raising
 * `verified_trade_id` to `verifiedTradeId`.
 * @returns true when no gap is left
 */
export async function venueGapClear(redis: Redis, a: { symbol: string; verifyStartMs: number; nowMs: number; verifiedTradeId: string | null }): Promise<boolean> {
  return Number(await callScript(redis, 'venueGapClear', [keys.venueCursor(a.symbol)], [a.verifyStartMs, a.nowMs, a.verifiedTradeId ?? ''])) === VenueGapClearCode.cleared;
}
