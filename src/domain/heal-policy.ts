/**
 * The heal target of a drift hold and the close that moves the exchange toward it (docs/architecture.md#heal-target;
 * the formula it replaced is told in docs/incidents.md#the-hold-that-nobody-could-release-seed-003). Pure: no I/O, no clock.
 *
 * Invariants (property-tested in test/property/heal-policy.property.test.ts):
 * - A close is side OPPOSITE the exchange position, `0 < qty <= |ex|`, a multiple of the lot step
 *   (rounded DOWN), so it can never open, grow or flip a position.
 * - A close never increases the distance to its target: *excess* (same side, `|ex| > |led|`) targets the
 *   ledger, `qty = |ex| − |led|`; every other drift (long vs short, ledger flat, *shortfall* `|ex| < |led|`)
 *   is unreachable by a reduce-only order and targets flat under `flatten`, nothing under `hold`.
 * - Seed 003's `min(|ex − led|, |ex|)` is NOT used: on a shortfall it sells the difference again and
 *   doubles the drift (0.098 vs 0.1 gave six closes, 0.002 … 0.036, until the position was flat).
 * - `adopt` applies only to a shortfall on the SAME side with both non-zero: never to long vs short nor to a
 *   flat ledger (those fall back to `flatten`), nor to a flat exchange (one bad snapshot must never zero a
 *   ledger; docs/architecture.md#side-mismatch: flat vs non-flat is `side_mismatch`, never auto-repaired).
 * - No close without a known positive lot step, and none of quantity 0.
 */
import { Decimal, roundDownToStep, signOf } from './decimal.js';

/** `P34_HEAL_POLICY`: what to do with a drift no reduce-only order can reach (docs/architecture.md#heal-target). */
export const HEAL_POLICIES = ['flatten', 'hold', 'adopt'] as const;
/** One of {@link HEAL_POLICIES}. */
export type HealPolicy = (typeof HEAL_POLICIES)[number];

/**
 * How a drift relates to its heal target:
 * - `excess`: same side, `|ex| > |led|` (ledger not flat): reachable, close `|ex| − |led|`;
 * - `shortfall`: the exchange holds less than the ledger on the same side (both non-zero);
 * - `exchange_flat`: the exchange is flat while the ledger is not (nothing to close; never adopted);
 * - `long_vs_short`: opposite sides; `ledger_flat`: the ledger is flat, the exchange is not;
 * - `none`: the amounts are equal (no drift to heal).
 */
export type DriftShape = 'excess' | 'shortfall' | 'exchange_flat' | 'long_vs_short' | 'ledger_flat' | 'none';

/** Classifies a drift between the signed exchange amount `ex` and the signed ledger amount `led` (base asset). */
export function classifyDrift(ex: Decimal, led: Decimal): DriftShape {
  if (ex.eq(led)) return 'none';
  const sEx = signOf(ex);
  const sLed = signOf(led);
  if (sEx * sLed === -1) return 'long_vs_short';
  if (sLed === 0) return 'ledger_flat';
  if (sEx === 0) return 'exchange_flat';
  return ex.abs().gt(led.abs()) ? 'excess' : 'shortfall';
}

/** A RECONCILE_CLOSE proposal: the order, before the engine attaches the hold's drift signature. */
export interface CloseProposal {
  side: 'BUY' | 'SELL';
  /** Base-asset quantity, rounded down to the lot step, > 0. */
  qty: Decimal;
  /** The target the close moves toward: the ledger (`excess`) or flat (`flatten`). */
  target: 'ledger' | 'flat';
}

/**
 * The close that heals a drift hold under `policy` (docs/architecture.md#heal-target), or null when no close applies: the
 * exchange is flat, the lot step is unknown or not positive, the quantity rounds down to 0, the policy is
 * `hold` for an unreachable drift, or `adopt` for a shortfall (the ledger is adopted instead).
 * @param exchangeAmt signed exchange position, base asset
 * @param ledgerAmt signed ledger amount, base asset
 * @param stepSize the symbol's lot step (base asset); null when unknown
 */
export function closeProposal(exchangeAmt: Decimal, ledgerAmt: Decimal, stepSize: Decimal | null, policy: HealPolicy): CloseProposal | null {
  if (exchangeAmt.isZero() || stepSize === null || !stepSize.isFinite() || stepSize.lte(0)) return null;
  const shape = classifyDrift(exchangeAmt, ledgerAmt);
  if (shape === 'none') return null;
  let raw: Decimal;
  let target: CloseProposal['target'];
  if (shape === 'excess') {
    raw = exchangeAmt.abs().minus(ledgerAmt.abs());
    target = 'ledger';
  } else {
    if (policy === 'hold') return null;
    if (policy === 'adopt' && shape === 'shortfall') return null;
    raw = exchangeAmt.abs();
    target = 'flat';
  }
  const qty = roundDownToStep(Decimal.min(raw, exchangeAmt.abs()), stepSize);
  if (qty.lte(0)) return null;
  return { side: exchangeAmt.isNeg() ? 'BUY' : 'SELL', qty, target };
}

/** True when `policy` heals this drift by adopting the exchange amount into the ledger (shortfall under `adopt`). */
export function adoptsLedger(exchangeAmt: Decimal, ledgerAmt: Decimal, policy: HealPolicy): boolean {
  return policy === 'adopt' && classifyDrift(exchangeAmt, ledgerAmt) === 'shortfall';
}

/**
 * The signed exchange amount after a close of `qty` filled (partly or fully) on position `exchangeAmt`.
 * @param filled filled base quantity, 0 <= filled <= qty
 */
export function afterClose(exchangeAmt: Decimal, side: 'BUY' | 'SELL', filled: Decimal): Decimal {
  return side === 'BUY' ? exchangeAmt.plus(filled) : exchangeAmt.minus(filled);
}

