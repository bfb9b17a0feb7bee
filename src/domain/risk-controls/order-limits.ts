/**
 * Per-order limits of entries (docs/risk-controls.md): restricted symbols, max order quantity in base
 * units, fat finger. Pure: no I/O.
 *
 * Invariants:
 * - They apply to entries only (OPEN, INCREASE); exits and closes are never refused by them (a limit that
 *   traps a position is a risk of its own).
 * - A restricted symbol's entries are denied `restricted_symbol`, whatever their size.
 * - An entry's base quantity above the symbol's max order quantity is denied `max_order_qty_exceeded`
 *   (exactly the max passes).
 * - An entry whose notional (qty × mark, USD) exceeds `pct` % of the symbol's position limit (USD) is denied
 *   `fat_finger` (exactly the share passes). With no position limit the control has nothing to measure
 *   against and is inactive; with one but no mark the entry is denied (fail closed).
 * - Exact decimals only.
 */
import { Decimal, fmt } from '../decimal.js';
import type { ControlVerdict } from './price-collar.js';

/** Entries of a restricted symbol are denied. */
export function checkRestricted(symbol: string, restricted: readonly string[]): ControlVerdict {
  return restricted.includes(symbol) ? { ok: false, reason: 'restricted_symbol', context: { symbol } } : { ok: true };
}

/**
 * Max base quantity of one entry.
 * @param qty the entry's resolved base quantity
 * @param maxQty `GOVERNOR_MAX_ORDER_QTY[_<SYM>]`, base units; null = off
 */
export function checkMaxOrderQty(qty: Decimal, maxQty: Decimal | null): ControlVerdict {
  if (maxQty === null) return { ok: true };
  const ctx = { qty: fmt(qty), max_order_qty: fmt(maxQty) };
  return qty.gt(maxQty) ? { ok: false, reason: 'max_order_qty_exceeded', context: ctx } : { ok: true, context: ctx };
}

/**
 * Fat finger: one entry above `pct` % of the symbol's position limit.
 * @param qty base quantity; @param mark USD per base unit (null = unknown)
 * @param maxPositionUsd the symbol's position limit, USD (null = none: inactive)
 * @param pct `GOVERNOR_MAX_ORDER_PCT_OF_POSITION_LIMIT[_<SYM>]`, percent (0-100); null = off
 */
export function checkFatFinger(qty: Decimal, mark: Decimal | null, maxPositionUsd: Decimal | null, pct: Decimal | null): ControlVerdict {
  if (pct === null || maxPositionUsd === null) return { ok: true };
  const cap = maxPositionUsd.mul(pct).div(100);
  if (mark === null || !mark.gt(0)) return { ok: false, reason: 'fat_finger', context: { why: 'mark_unknown', cap_usd: fmt(cap) } };
  const notional = qty.mul(mark);
  const ctx = { notional: fmt(notional), cap_usd: fmt(cap), pct_of_position_limit: fmt(pct), max_position_usd: fmt(maxPositionUsd) };
  return notional.gt(cap) ? { ok: false, reason: 'fat_finger', context: ctx } : { ok: true, context: ctx };
}
