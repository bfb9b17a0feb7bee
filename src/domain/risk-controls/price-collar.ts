/**
 * Price collar for MARKET entries (docs/risk-controls.md#price-collar). Pure: no I/O.
 *
 * Invariants:
 * - Deviations are computed with exact decimals: `|mark − ref| × 10000 > bps × ref` is a breach; the
 *   boundary itself (exactly `bps` apart) passes. No float ever enters the comparison.
 * - With a `ref_price` (the price the strategy saw), the mark is compared with it against `collarBps`.
 * - Without one, the mark is compared with the index price against `markIndexMaxBps` (a dislocated
 *   market: the mark left the index).
 * - Missing data never passes: no mark, or (without `ref_price`) no index price, is a breach
 *   (`price_collar` with `why`), unless that comparison is switched off (its bps is null).
 */
import { Decimal, fmt } from '../decimal.js';

/** Basis points in one unit. */
const BPS = new Decimal(10_000);

/** What the collar reads. Prices in USD per base unit. */
export interface CollarInput {
  /** Mark price used for the decision; null when unknown. */
  mark: Decimal | null;
  /** The plan's `ref_price`, null when the plan carries none. */
  refPrice: Decimal | null;
  /** The exchange's index price (premiumIndex `indexPrice`); null when unknown. */
  indexPrice: Decimal | null;
  /** `GOVERNOR_PRICE_COLLAR_BPS[_<SYM>]`: max mark-vs-ref_price distance, basis points; null = off. */
  collarBps: Decimal | null;
  /** `GOVERNOR_MARK_INDEX_MAX_BPS[_<SYM>]`: max mark-vs-index distance without ref_price, basis points; null = off. */
  markIndexMaxBps: Decimal | null;
}

/** A control's verdict: pass, or the DENY reason with context for the permit and the log line. */
export type ControlVerdict = { ok: true; context?: Record<string, string> } | { ok: false; reason: string; context: Record<string, string> };

/**
 * Distance of `price` from `reference` in basis points, exact: `|price − reference| / reference × 10000`.
 * @throws RangeError when `reference` is not positive
 */
export function deviationBps(price: Decimal, reference: Decimal): Decimal {
  if (!reference.gt(0)) throw new RangeError('reference price must be > 0');
  return price.minus(reference).abs().mul(BPS).div(reference);
}

/** True when `price` is more than `bps` basis points from `reference` (exact: |p − r| × 10000 > bps × r). */
export function beyondBand(price: Decimal, reference: Decimal, bps: Decimal): boolean {
  return price.minus(reference).abs().mul(BPS).gt(bps.mul(reference));
}

/** Decides the price collar of one MARKET entry (see the module comment). */
export function checkPriceCollar(i: CollarInput): ControlVerdict {
  if (i.refPrice !== null) {
    if (i.collarBps === null) return { ok: true };
    if (i.mark === null || !i.mark.gt(0)) return { ok: false, reason: 'price_collar', context: { why: 'mark_unknown', ref_price: fmt(i.refPrice) } };
    if (!i.refPrice.gt(0)) return { ok: false, reason: 'price_collar', context: { why: 'ref_price_not_positive', ref_price: fmt(i.refPrice) } };
    const ctx = { against: 'ref_price', mark_price: fmt(i.mark), ref_price: fmt(i.refPrice), deviation_bps: deviationBps(i.mark, i.refPrice).toFixed(2), collar_bps: fmt(i.collarBps) };
    return beyondBand(i.mark, i.refPrice, i.collarBps) ? { ok: false, reason: 'price_collar', context: ctx } : { ok: true, context: ctx };
  }
  if (i.markIndexMaxBps === null) return { ok: true };
  if (i.mark === null || !i.mark.gt(0)) return { ok: false, reason: 'price_collar', context: { why: 'mark_unknown' } };
  if (i.indexPrice === null || !i.indexPrice.gt(0)) return { ok: false, reason: 'price_collar', context: { why: 'index_price_unknown', mark_price: fmt(i.mark) } };
  const ctx = { against: 'index_price', mark_price: fmt(i.mark), index_price: fmt(i.indexPrice), deviation_bps: deviationBps(i.mark, i.indexPrice).toFixed(2), mark_index_max_bps: fmt(i.markIndexMaxBps) };
  return beyondBand(i.mark, i.indexPrice, i.markIndexMaxBps) ? { ok: false, reason: 'price_collar', context: ctx } : { ok: true, context: ctx };
}
