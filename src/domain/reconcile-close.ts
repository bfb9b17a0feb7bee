/**
 * RECONCILE_CLOSE plans published by the reconcile engine (docs/architecture.md#heal-target, docs/architecture.md#reconcile_close-invariants; seeds 002, 003). Pure.
 *
 * Invariants:
 * - The plan is exactly what the apply layer's guardrails accept: decision and action RECONCILE_CLOSE,
 *   source `p3.4`, reason `reconcile_drift`, MARKET, reduceOnly true (boolean), `drift_sig` = the hold's
 *   `hold_sig`, qty > 0 already rounded down to the lot step.
 * - The plan id is deterministic per (symbol, drift signature, cooldown bucket), so every engine computes
 *   the same id for the same drift in the same bucket and the apply layer's dedupe sees one plan. The drift
 *   signature is the hold's EPISODE signature (`hold_sig`), so a new drift with the same amounts as a
 *   healed one gets new plan ids, a new cooldown key and a new close marker.
 */
import { fmt, type Decimal } from './decimal.js';
import type { PlanInput } from './plan.js';
import type { CloseProposal } from './heal-policy.js';

/** The engine's plan source; its key is `P3_KEY_P3_4` (docs/architecture.md#interfaces). */
export const RECONCILE_SOURCE = 'p3.4';
/** The only reason a RECONCILE_CLOSE may carry. */
export const RECONCILE_CLOSE_REASON = 'reconcile_drift';

/** Start of the cooldown bucket containing `nowMs`, epoch seconds (multiple of `cooldownSec`). */
export function cooldownBucket(nowMs: number, cooldownSec: number): number {
  const s = Math.floor(nowMs / 1000);
  return Math.floor(s / cooldownSec) * cooldownSec;
}

/** `reconclose:<SYM>:<drift_sig>:<bucket>`. */
export function closePlanId(symbol: string, driftSig: string, bucket: number): string {
  return `reconclose:${symbol}:${driftSig}:${bucket}`;
}

/**
 * Builds the RECONCILE_CLOSE plan for a proposal.
 * @param driftSig the hold's episode signature (`hold_sig`) the close is for
 * @param nowMs epoch milliseconds (the plan's `ts_ms`)
 * @param cooldownSec length of a cooldown bucket, seconds (120 as in seed 002)
 * @param basis the signed exchange position the proposal was sized from (`basis_amt`; the apply layer sends
 *   the close only while the position is still this one)
 */
export function buildClosePlan(symbol: string, proposal: CloseProposal, driftSig: string, nowMs: number, cooldownSec: number, basis?: Decimal): { plan: PlanInput; bucket: number } {
  const bucket = cooldownBucket(nowMs, cooldownSec);
  return {
    bucket,
    plan: {
      plan_id: closePlanId(symbol, driftSig, bucket),
      symbol,
      decision: 'RECONCILE_CLOSE',
      action: 'RECONCILE_CLOSE',
      side: proposal.side,
      qty: fmt(proposal.qty),
      type: 'MARKET',
      reduceOnly: true,
      reason: RECONCILE_CLOSE_REASON,
      source: RECONCILE_SOURCE,
      ts_ms: nowMs,
      drift_sig: driftSig,
      ...(basis !== undefined ? { basis_amt: fmt(basis) } : {}),
    },
  };
}
