/**
 * Reading rules for position hashes (docs/architecture.md#quantities, docs/architecture.md#redis-schema). Pure: takes the raw Redis hash fields, returns a
 * signed exact amount or a reason the hash cannot be trusted.
 *
 * Invariants:
 * - size is |amount|; direction comes from the side field when present (LONG/BUY +, SHORT/SELL -, FLAT 0),
 *   else from the amount's sign.
 * - A negative amount with side LONG/BUY, a non-zero amount with side FLAT, an unknown side or an
 *   unparseable number makes the hash invalid (fail closed).
 * - A canonical ledger (`ledger_amt`) always wins over legacy fields; legacy fields are read only while no
 *   canonical `ledger_amt` exists (seed 000's `last_known_amt`/`last_side`, seed 004's
 *   `quantum:position:<SYM>` field `ledger_amount`).
 */
import { Decimal, parseDecimal } from './decimal.js';

/** A raw Redis hash as returned by HGETALL (empty object when the key does not exist). */
export type RawHash = Record<string, string>;

/** Outcome of reading a signed amount from an (amount, side) pair. */
export type AmountRead = { ok: true; amount: Decimal } | { ok: false; error: string };

const POSITIVE_SIDES = new Set(['LONG', 'BUY']);
const NEGATIVE_SIDES = new Set(['SHORT', 'SELL']);

/**
 * Applies the docs/architecture.md#quantities reading rule to one amount and optional side.
 * @param amountRaw decimal string (base-asset quantity), signed or not
 * @param sideRaw `LONG|BUY|SHORT|SELL|FLAT` (case-insensitive), empty/undefined = absent
 */
export function readSignedAmount(amountRaw: string | undefined, sideRaw: string | undefined): AmountRead {
  if (amountRaw === undefined || amountRaw.trim() === '') return { ok: false, error: 'amount_missing' };
  const amount = parseDecimal(amountRaw);
  if (amount === null) return { ok: false, error: `amount_unparseable:${amountRaw}` };
  const side = (sideRaw ?? '').trim().toUpperCase();
  if (side === '') return { ok: true, amount };
  const size = amount.abs();
  if (POSITIVE_SIDES.has(side)) {
    if (amount.isNeg() && !amount.isZero()) return { ok: false, error: `negative_amount_with_side_${side}` };
    return { ok: true, amount: size };
  }
  if (NEGATIVE_SIDES.has(side)) return { ok: true, amount: size.isZero() ? size : size.neg() };
  if (side === 'FLAT') {
    if (!amount.isZero()) return { ok: false, error: 'nonzero_amount_with_side_FLAT' };
    return { ok: true, amount: new Decimal(0) };
  }
  return { ok: false, error: `unknown_side:${sideRaw}` };
}

/** The side string writers store next to a signed amount. */
export function sideOf(amount: Decimal): 'LONG' | 'SHORT' | 'FLAT' {
  return amount.isZero() ? 'FLAT' : amount.isNeg() ? 'SHORT' : 'LONG';
}

/** An exchange position snapshot as read from `quantum:position:snapshot:<SYM>`. */
export interface Snapshot {
  /** Signed base-asset amount. */
  amount: Decimal;
  /** Time of the exchange's answer, epoch milliseconds (`ts_ms`, else `ts_epoch` * 1000). */
  tsMs: number;
  markPrice: Decimal | null;
  /** Lot step of the symbol when the publisher recorded it (`step_size`), used as the default tolerance. */
  stepSize: Decimal | null;
  /** Minimum order quantity, base asset (`min_qty`, exchangeInfo LOT_SIZE minQty); null when unknown. */
  minQty?: Decimal | null;
  /** Minimum order notional, quote/USD (`min_notional`, exchangeInfo MIN_NOTIONAL); null when unknown. */
  minNotional?: Decimal | null;
}

/**
 * How far a snapshot's `ts_ms` may lie in the future of the reader's clock, ms. A snapshot dated later
 * is invalid (`snapshot_from_future`): it would look fresh for too long and newer than every fill, so
 * the "never act on a snapshot older than a fill" rule could not see it was stale. Hosts must be NTP-synced.
 */
export const SNAPSHOT_FUTURE_SKEW_MS = 2000;

/** Result of reading a snapshot hash. */
export type SnapshotRead = { kind: 'ok'; snapshot: Snapshot } | { kind: 'missing' } | { kind: 'invalid'; error: string };

/** Reads a snapshot hash (fields `position_amt`, `side`, `ts_ms`/`ts_epoch`, `mark_price`, `step_size`, `min_qty`, `min_notional`). */
export function readSnapshot(raw: RawHash | null | undefined): SnapshotRead {
  if (!raw || Object.keys(raw).length === 0) return { kind: 'missing' };
  const amt = readSignedAmount(raw.position_amt, raw.side);
  if (!amt.ok) return { kind: 'invalid', error: amt.error };
  let tsMs: number | null = null;
  if (raw.ts_ms !== undefined && /^\d+$/.test(raw.ts_ms.trim())) tsMs = Number(raw.ts_ms.trim());
  else if (raw.ts_epoch !== undefined) {
    const e = parseDecimal(raw.ts_epoch);
    if (e !== null && !e.isNeg()) tsMs = e.mul(1000).floor().toNumber();
  }
  if (tsMs === null) return { kind: 'invalid', error: 'timestamp_missing_or_unparseable' };
  const markPrice = raw.mark_price !== undefined && raw.mark_price !== '' ? parseDecimal(raw.mark_price) : null;
  const step = raw.step_size !== undefined && raw.step_size !== '' ? parseDecimal(raw.step_size) : null;
  const opt = (v: string | undefined) => {
    const d = v !== undefined && v !== '' ? parseDecimal(v) : null;
    return d !== null && !d.isNeg() ? d : null;
  };
  return { kind: 'ok', snapshot: { amount: amt.amount, tsMs, markPrice: markPrice && markPrice.gt(0) ? markPrice : null, stepSize: step && step.gt(0) ? step : null, minQty: opt(raw.min_qty), minNotional: opt(raw.min_notional) } };
}

/** Which layout a ledger was read from. */
export type LedgerLayout = 'canonical' | 'legacy_000' | 'legacy_004';

/** The internal ledger of one symbol. */
export interface Ledger {
  /** Signed base-asset amount. */
  amount: Decimal;
  /** Monotonic version, 0 when never written by this system. */
  version: number;
  /** Last update, epoch seconds (may be fractional); null when unknown (legacy ledgers). */
  tsEpoch: number | null;
  source: string | null;
  layout: LedgerLayout;
}

/** Result of reading a ledger. */
export type LedgerRead = { kind: 'ok'; ledger: Ledger } | { kind: 'missing' } | { kind: 'invalid'; error: string };

function parseEpoch(raw: string | undefined): number | null {
  if (raw === undefined || raw === '') return null;
  const d = parseDecimal(raw);
  return d === null ? null : d.toNumber();
}

/**
 * Reads the ledger of one symbol from its canonical hash and, when that has no `ledger_amt`, from the
 * legacy layouts (docs/architecture.md#redis-schema).
 * @param ledgerHash HGETALL `quantum:position:ledger:<SYM>`
 * @param legacy004Hash HGETALL `quantum:position:<SYM>` (seed 004's `ledger_amount`)
 */
export function readLedger(ledgerHash: RawHash | null | undefined, legacy004Hash: RawHash | null | undefined): LedgerRead {
  const h = ledgerHash ?? {};
  const versionRaw = h.version;
  let version = 0;
  if (versionRaw !== undefined && versionRaw !== '') {
    if (!/^\d+$/.test(versionRaw.trim())) return { kind: 'invalid', error: `version_unparseable:${versionRaw}` };
    version = Number(versionRaw.trim());
  }
  if (h.ledger_amt !== undefined) {
    const amt = readSignedAmount(h.ledger_amt, h.ledger_side);
    if (!amt.ok) return { kind: 'invalid', error: amt.error };
    return { kind: 'ok', ledger: { amount: amt.amount, version, tsEpoch: parseEpoch(h.ts_epoch), source: h.source ?? null, layout: 'canonical' } };
  }
  if (h.last_known_amt !== undefined) {
    const amt = readSignedAmount(h.last_known_amt, h.last_side);
    if (!amt.ok) return { kind: 'invalid', error: amt.error };
    return {
      kind: 'ok',
      ledger: { amount: amt.amount, version, tsEpoch: parseEpoch(h.updated_at ?? h.ts_epoch), source: h.source ?? 'legacy', layout: 'legacy_000' },
    };
  }
  if (h.ledger_side !== undefined && h.ledger_amt === undefined) {
    return { kind: 'invalid', error: 'ledger_side_without_amount' };
  }
  const l4 = legacy004Hash ?? {};
  if (l4.ledger_amount !== undefined) {
    const amt = readSignedAmount(l4.ledger_amount, l4.ledger_side ?? l4.side);
    if (!amt.ok) return { kind: 'invalid', error: amt.error };
    return { kind: 'ok', ledger: { amount: amt.amount, version, tsEpoch: parseEpoch(l4.ts_epoch ?? l4.updated_at), source: 'legacy', layout: 'legacy_004' } };
  }
  return { kind: 'missing' };
}

/**
 * A fingerprint of every field a ledger read depends on. Ledger writes are compare-and-set on this value
 * (computed identically in `ledgerWrite-4.lua`), so a concurrent write by the apply layer, the reconcile
 * engine or an operator's `redis-cli HSET` between read and write is never clobbered.
 */
export function ledgerFingerprint(ledgerHash: RawHash | null | undefined, legacy004Hash: RawHash | null | undefined): string {
  const h = ledgerHash ?? {};
  const l = legacy004Hash ?? {};
  return [h.version ?? '', h.ledger_amt ?? '', h.ledger_side ?? '', h.last_known_amt ?? '', h.last_side ?? '', l.ledger_amount ?? ''].join('|');
}
