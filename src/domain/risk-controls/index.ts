/**
 * The pre-trade risk controls of entries (docs/risk-controls.md), decided together after the governor's
 * own checks said ALLOW. Pure: no I/O.
 *
 * Invariants:
 * - Only entries (OPEN, INCREASE) are checked; exits and closes always pass here (they reduce risk).
 * - Order: restricted symbol, stale mark, price collar, max order quantity, fat finger; the first breach
 *   is the DENY, with its own reason (one of {@link RISK_DENY_REASONS}).
 * - A switched-off control (null setting) passes; missing data for a switched-on control denies.
 * - ALLOW here implies every configured control holds for the inputs given (property-tested in
 *   test/property/risk-controls.property.test.ts).
 */
import type { Decimal } from '../decimal.js';
import { checkPriceCollar, type ControlVerdict } from './price-collar.js';
import { checkMarkAge } from './stale-mark.js';
import { checkFatFinger, checkMaxOrderQty, checkRestricted } from './order-limits.js';

export { checkPriceCollar, deviationBps, beyondBand, type ControlVerdict, type CollarInput } from './price-collar.js';
export { checkMarkAge, MARK_FUTURE_SKEW_MS } from './stale-mark.js';
export { checkFatFinger, checkMaxOrderQty, checkRestricted } from './order-limits.js';
export { checkFillThrottle, countFills } from './fill-throttle.js';
export { evaluateLossLimit, lossContext, tradingDayStartMs, unrealizedProfit, type LossLatch, type LossVerdict, type OpenPosition } from './loss-limit.js';

/** The DENY reasons of the risk controls (the governor's metrics are initialised with these). */
export const RISK_DENY_REASONS = ['restricted_symbol', 'stale_mark', 'price_collar', 'max_order_qty_exceeded', 'fat_finger', 'loss_limit', 'fill_throttle'] as const;
/** One of {@link RISK_DENY_REASONS}. */
export type RiskDenyReason = (typeof RISK_DENY_REASONS)[number];

/** The settings of one symbol (per-symbol overrides already resolved); null = that control is off. */
export interface SymbolRiskSettings {
  /** Max mark vs `ref_price`, basis points. */
  collarBps: Decimal | null;
  /** Max mark vs index without `ref_price`, basis points. */
  markIndexMaxBps: Decimal | null;
  /** Max age of the mark price, ms. */
  markMaxAgeMs: number | null;
  /** Restricted symbols (entries denied). */
  restricted: readonly string[];
  /** Max base quantity of one entry. */
  maxOrderQty: Decimal | null;
  /** Fat finger: max share of the position limit in one entry, percent. */
  maxOrderPctOfPositionLimit: Decimal | null;
  /** The symbol's position limit, USD (the fat finger's base); null = none. */
  maxPositionUsd: Decimal | null;
}

/** What the controls read for one entry. */
export interface EntryRiskInput {
  symbol: string;
  /** The entry's resolved base quantity. */
  qty: Decimal;
  /** Mark price used for sizing (USD per base unit), its time (epoch ms), the index price. */
  mark: Decimal | null;
  markTsMs: number | null;
  indexPrice: Decimal | null;
  /** The plan's `ref_price`, null when absent. */
  refPrice: Decimal | null;
  nowMs: number;
  settings: SymbolRiskSettings;
}

/**
 * Runs the controls in order (see the module comment).
 * @returns the first breach, or `{ok: true, context}` with every control's measurements merged
 */
export function checkEntryRiskControls(i: EntryRiskInput): ControlVerdict {
  const s = i.settings;
  const steps: Array<() => ControlVerdict> = [
    () => checkRestricted(i.symbol, s.restricted),
    () => checkMarkAge(i.markTsMs, i.nowMs, s.markMaxAgeMs),
    () => checkPriceCollar({ mark: i.mark, refPrice: i.refPrice, indexPrice: i.indexPrice, collarBps: s.collarBps, markIndexMaxBps: s.markIndexMaxBps }),
    () => checkMaxOrderQty(i.qty, s.maxOrderQty),
    () => checkFatFinger(i.qty, i.mark, s.maxPositionUsd, s.maxOrderPctOfPositionLimit),
  ];
  const context: Record<string, string> = {};
  for (const step of steps) {
    const v = step();
    if (!v.ok) return v;
    Object.assign(context, v.context ?? {});
  }
  return { ok: true, context };
}
