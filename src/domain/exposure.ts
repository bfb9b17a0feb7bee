/**
 * Exposure limits of entries (docs/architecture.md#risk-limits-and-trading-states). Pure: every input is given, nothing is read.
 *
 * Invariants:
 * - Only entries (OPEN, INCREASE) are limited here; exits and closes only ever reduce exposure.
 * - Position limit: (|position| + Σ outstanding reservations of the symbol + qty) × mark ≤
 *   `GOVERNOR_MAX_POSITION_USD[_<SYM>]` (an entry always grows |position|: it never flips, see permits.ts).
 * - Gross limit: Σ over the allowlist of |position| × mark + Σ every outstanding reservation + this entry's
 *   notional ≤ `GOVERNOR_MAX_GROSS_USD`.
 * - Fail closed: a symbol of the allowlist whose snapshot is missing, invalid, or non-flat without a mark
 *   price makes the gross exposure unknown → DENY `exposure_unknown` (only when a gross limit is set).
 * - A reservation counts until its plan's result is final AND a snapshot newer than the symbol's newest
 *   fill exists (the position then carries the fill). It expires with its permit only while its plan is
 *   not being sent and not finished (no dedupe value, or `claimed|`), and that release is atomic with the
 *   check (exposureExpire-3.lua) while the apply layer sends only while the reservation exists
 *   (applyBegin-13.lua): an entry's exposure is never counted zero times between its permit and the
 *   snapshot that shows its fill, however late it is sent.
 * - All arithmetic is exact decimal; DENY contexts carry the numbers as decimal strings.
 */
import { Decimal, fmt } from './decimal.js';

/** One outstanding reservation (`quantum:governor:reservations` field plan_id). */
export interface Reservation {
  planId: string;
  symbol: string;
  /** Reserved notional, USD. */
  usd: Decimal;
  /** Epoch ms after which it no longer counts (the permit's TTL). */
  expiresMs: number;
}

/** Serialises a reservation as stored: `<symbol>|<usd>|<expires_ms>`. */
export function formatReservation(r: Omit<Reservation, 'planId'>): string {
  return `${r.symbol}|${fmt(r.usd)}|${r.expiresMs}`;
}

/** Parses a stored reservation; null when unparseable (such a field is released: it cannot be trusted either way). */
export function parseReservation(planId: string, raw: string): Reservation | null {
  const [symbol, usd, exp] = raw.split('|');
  if (!symbol || usd === undefined || exp === undefined || !/^\d+$/.test(exp)) return null;
  try {
    const d = new Decimal(usd);
    if (!d.isFinite() || d.isNeg()) return null;
    return { planId, symbol, usd: d, expiresMs: Number(exp) };
  } catch {
    return null;
  }
}

/** What decides whether a reservation still counts. */
export interface ReservationState {
  /** The plan's dedupe stage: `done` (a final result was recorded), `sending` (its order may be at the exchange), `open` (claimed, or never seen by an apply layer). */
  stage: 'done' | 'sending' | 'open';
  /** The symbol's snapshot `ts_ms` (null when missing). */
  snapshotTsMs: number | null;
  /** `quantum:apply:last_fill_ms:<SYM>` (null when none). */
  lastFillMs: number | null;
}

/**
 * Whether a reservation still counts (see the module invariants): `released` (its plan is final and a snapshot
 * newer than the symbol's newest fill shows the outcome), `expired` (its permit's time passed while its plan is
 * neither being sent nor finished: to be released only through exposureExpire-3.lua, which checks the stage
 * again atomically), or `counts`.
 */
export function reservationReleased(r: Reservation, s: ReservationState, nowMs: number): 'released' | 'expired' | 'counts' {
  if (s.stage === 'done') return s.snapshotTsMs !== null && (s.lastFillMs === null || s.snapshotTsMs > s.lastFillMs) ? 'released' : 'counts';
  if (s.stage === 'sending') return 'counts';
  return nowMs >= r.expiresMs ? 'expired' : 'counts';
}

/** One allowlisted symbol's exposure as read from its snapshot. */
export interface SymbolExposure {
  symbol: string;
  /** Signed position, base asset; null when the snapshot is missing or invalid. */
  amount: Decimal | null;
  /** Mark price, USD; null when unknown. */
  mark: Decimal | null;
}

/** Limits (USD); null = no limit. */
export interface ExposureLimits {
  maxPositionUsd: Decimal | null;
  maxGrossUsd: Decimal | null;
}

/** Verdict: ok with the notional to reserve, or a DENY reason with its numbers. */
export type ExposureVerdict = { ok: true; reserveUsd: Decimal } | { ok: false; reason: 'max_position_exceeded' | 'max_gross_exceeded' | 'exposure_unknown'; context: Record<string, string> };

/**
 * Checks an entry of `qty` (base) on `symbol` at `mark` against the limits.
 * @param position the symbol's signed position (base) from the fresh snapshot
 * @param reservations outstanding (not released) reservations, every symbol
 * @param book every allowlisted symbol's exposure (for the gross limit)
 */
export function checkExposure(i: { symbol: string; qty: Decimal; mark: Decimal; position: Decimal; reservations: Reservation[]; book: SymbolExposure[]; limits: ExposureLimits }): ExposureVerdict {
  const reserveUsd = i.qty.mul(i.mark);
  if (i.limits.maxPositionUsd !== null) {
    const reservedSym = i.reservations.filter((r) => r.symbol === i.symbol).reduce((a, r) => a.plus(r.usd), new Decimal(0));
    const after = i.position.abs().plus(i.qty).mul(i.mark).plus(reservedSym);
    if (after.gt(i.limits.maxPositionUsd)) {
      return { ok: false, reason: 'max_position_exceeded', context: { position_usd_after: fmt(after), max_position_usd: fmt(i.limits.maxPositionUsd), position_amt: fmt(i.position), qty: fmt(i.qty), mark_price: fmt(i.mark), reserved_usd: fmt(reservedSym) } };
    }
  }
  if (i.limits.maxGrossUsd !== null) {
    let gross = new Decimal(0);
    for (const b of i.book) {
      if (b.amount === null) return { ok: false, reason: 'exposure_unknown', context: { symbol: b.symbol, why: 'snapshot missing or invalid' } };
      if (b.amount.isZero()) continue;
      if (b.mark === null) return { ok: false, reason: 'exposure_unknown', context: { symbol: b.symbol, why: 'mark price unknown' } };
      gross = gross.plus(b.amount.abs().mul(b.mark));
    }
    const reserved = i.reservations.reduce((a, r) => a.plus(r.usd), new Decimal(0));
    const after = gross.plus(reserved).plus(reserveUsd);
    if (after.gt(i.limits.maxGrossUsd)) {
      return { ok: false, reason: 'max_gross_exceeded', context: { gross_usd_after: fmt(after), max_gross_usd: fmt(i.limits.maxGrossUsd), positions_usd: fmt(gross), reserved_usd: fmt(reserved), order_usd: fmt(reserveUsd) } };
    }
  }
  return { ok: true, reserveUsd };
}
