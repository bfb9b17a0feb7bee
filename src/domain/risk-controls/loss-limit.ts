/**
 * Loss limit: the kill switch on drawdown (docs/risk-controls.md#loss-limit). Pure: no I/O.
 *
 * Invariants:
 * - Profit of the trading day = realized profit of the venue's fills since the day started (`rp`, minus
 *   commissions) + unrealized profit of the open positions (Σ amount × (mark − entry price), signed amount
 *   in base units). Loss = −profit. Exact decimals only.
 * - The trading day starts at `dayStartHourUtc` o'clock UTC (0 = midnight UTC).
 * - A loss strictly greater than the day's threshold trips: the threshold is the limit, and after a trip
 *   the loss at the trip plus the limit (an operator who re-arms grants one more limit's worth of loss
 *   the same day; a new day starts again at the limit).
 * - Unknown data (no fills journal, a position without mark or entry price) is never read as no loss:
 *   the verdict is `unknown`, and the governor denies entries (`loss_limit`) while it lasts.
 */
import { Decimal, fmt } from '../decimal.js';

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/**
 * Start of the trading day containing `nowMs`, epoch ms.
 * @param dayStartHourUtc 0-23: the hour (UTC) a trading day starts
 */
export function tradingDayStartMs(nowMs: number, dayStartHourUtc: number): number {
  const offset = dayStartHourUtc * HOUR_MS;
  return Math.floor((nowMs - offset) / DAY_MS) * DAY_MS + offset;
}

/** One open position for the unrealized profit: signed base amount, entry and mark price (USD per base unit). */
export interface OpenPosition {
  symbol: string;
  amount: Decimal;
  entryPrice: Decimal | null;
  mark: Decimal | null;
}

/**
 * Unrealized profit of `positions`, USD: Σ amount × (mark − entry). A non-flat position without a mark
 * or entry price makes the sum unknown (null).
 */
export function unrealizedProfit(positions: readonly OpenPosition[]): Decimal | null {
  let sum = new Decimal(0);
  for (const p of positions) {
    if (p.amount.isZero()) continue;
    if (p.mark === null || p.entryPrice === null || !p.mark.gt(0) || !p.entryPrice.gt(0)) return null;
    sum = sum.plus(p.amount.mul(p.mark.minus(p.entryPrice)));
  }
  return sum;
}

/** The latch of a trip: the day it belongs to and the loss (USD) that trips again. */
export interface LossLatch {
  dayStartMs: number;
  nextTripUsd: Decimal;
}

/** The verdict of one evaluation. */
export type LossVerdict =
  | { kind: 'unknown'; why: string }
  | { kind: 'ok'; lossUsd: Decimal; thresholdUsd: Decimal }
  | { kind: 'trip'; lossUsd: Decimal; thresholdUsd: Decimal; nextTripUsd: Decimal };

/**
 * Evaluates the loss limit.
 * @param realizedUsd realized profit of the day's fills (commissions subtracted), null = unknown
 * @param unrealizedUsd unrealized profit now, null = unknown
 * @param limitUsd `GOVERNOR_MAX_DAILY_LOSS_USD` (> 0)
 * @param latch the stored latch (any day), null = never tripped
 * @param dayStartMs start of the current trading day
 */
export function evaluateLossLimit(realizedUsd: Decimal | null, unrealizedUsd: Decimal | null, limitUsd: Decimal, latch: LossLatch | null, dayStartMs: number): LossVerdict {
  if (realizedUsd === null) return { kind: 'unknown', why: 'realized_profit_unknown' };
  if (unrealizedUsd === null) return { kind: 'unknown', why: 'unrealized_profit_unknown' };
  const lossUsd = realizedUsd.plus(unrealizedUsd).neg();
  const thresholdUsd = latch !== null && latch.dayStartMs === dayStartMs ? latch.nextTripUsd : limitUsd;
  if (lossUsd.gt(thresholdUsd)) return { kind: 'trip', lossUsd, thresholdUsd, nextTripUsd: lossUsd.plus(limitUsd) };
  return { kind: 'ok', lossUsd, thresholdUsd };
}

/** Context fields of a verdict (decimal strings), for the permit, the event and `p3 status`. */
export function lossContext(v: LossVerdict): Record<string, string> {
  if (v.kind === 'unknown') return { why: v.why };
  return { loss_usd: fmt(v.lossUsd), threshold_usd: fmt(v.thresholdUsd) };
}
