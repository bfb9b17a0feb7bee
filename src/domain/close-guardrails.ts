/**
 * RECONCILE_CLOSE invariants (docs/architecture.md#reconcile_close-invariants; seed 002 "Hard Fail Invariants", updated to 7 plus the
 * hardening). Pure: every input is given, nothing is read. Each check returns the FIRST failed rule so
 * the apply layer can count `reconcile_close_guardrail_fail_total{symbol,rule}` and reject the plan
 * (`REJECTED_GUARDRAIL`, ack, never retried).
 *
 * Invariants (all must hold, else no order):
 * - `mac`: the entry's MAC verifies with the reconcile engine's key (`P3_KEY_P3_4`), whatever source
 *   the plan claims; `schema`: the plan parses.
 * - `source`: `source === "p3.4"` (seed 002: "Source=attacker" rejected).
 * - `decision`: `decision === "RECONCILE_CLOSE"`.
 * - `reduce_only`: `reduceOnly === true`, the JSON boolean (the string "false" — and even "true" — fail).
 * - `type`: `type === "MARKET"`. `reason`: `reason === "reconcile_drift"`.
 * - `allowlist`: the symbol is in the allowlist. `stale_plan`: plan age <= max age.
 * - `drift_sig`: the plan carries a drift signature.
 * - `hold_key`: the symbol's hold is active; `hold_sig`: its `hold_sig` equals the plan's `drift_sig`.
 * - `qty`: `0 < qty <= |exchange position|`, the position read fresh from the exchange at execution
 *   time; `side`: the plan's side is opposite to that position (a flat position fails `side`).
 */
import type { Decimal } from './decimal.js';
import { parseDecimal } from './decimal.js';

/** Every rule name (label values of `reconcile_close_guardrail_fail_total`). */
export const CLOSE_RULES = [
  'mac',
  'schema',
  'source',
  'decision',
  'reduce_only',
  'type',
  'reason',
  'allowlist',
  'stale_plan',
  'drift_sig',
  'hold_key',
  'hold_sig',
  'qty',
  'side',
] as const;
/** A rule of {@link CLOSE_RULES}. */
export type CloseRule = (typeof CLOSE_RULES)[number];

/** A failed rule with a human detail, or ok. */
export type GuardrailVerdict = { ok: true } | { ok: false; rule: CloseRule; detail: string };

const fail = (rule: CloseRule, detail: string): GuardrailVerdict => ({ ok: false, rule, detail });

/** Inputs of {@link checkClosePlan}: the raw plan object as signed (not schema-defaulted). */
export interface ClosePlanInput {
  /** The plan JSON object exactly as received. */
  raw: Record<string, unknown>;
  macOk: boolean;
  allowlist: readonly string[];
  nowMs: number;
  maxAgeMs: number;
}

/**
 * Checks everything that needs no Redis or exchange read (mac, source, decision, reduce_only, type,
 * reason, allowlist, stale_plan, drift_sig, qty > 0 and side shape). Uses the RAW plan so that a
 * default (e.g. `reduceOnly` absent → true) can never satisfy an invariant.
 */
export function checkClosePlan(i: ClosePlanInput): GuardrailVerdict {
  const p = i.raw;
  if (!i.macOk) return fail('mac', 'mac does not verify with P3_KEY_P3_4');
  if (p.source !== 'p3.4') return fail('source', `source must be 'p3.4', got ${JSON.stringify(p.source)}`);
  if (p.decision !== 'RECONCILE_CLOSE') return fail('decision', `decision must be RECONCILE_CLOSE, got ${JSON.stringify(p.decision)}`);
  if (p.reduceOnly !== true) return fail('reduce_only', `reduceOnly must be true (boolean), got ${JSON.stringify(p.reduceOnly)}`);
  if (p.type !== 'MARKET') return fail('type', `type must be MARKET, got ${JSON.stringify(p.type)}`);
  if (p.reason !== 'reconcile_drift') return fail('reason', `reason must be reconcile_drift, got ${JSON.stringify(p.reason)}`);
  if (typeof p.symbol !== 'string' || !i.allowlist.includes(p.symbol)) return fail('allowlist', `symbol ${JSON.stringify(p.symbol)} not in allowlist`);
  const ts = p.ts_ms;
  if (typeof ts !== 'number' || !Number.isFinite(ts) || i.nowMs - ts > i.maxAgeMs || ts - i.nowMs > i.maxAgeMs) {
    return fail('stale_plan', `plan ts_ms ${JSON.stringify(ts)} outside ${i.maxAgeMs} ms of now`);
  }
  if (typeof p.drift_sig !== 'string' || p.drift_sig === '') return fail('drift_sig', 'plan has no drift_sig');
  const q = parseDecimal(p.qty);
  if (q === null || q.lte(0)) return fail('qty', `qty must be > 0, got ${JSON.stringify(p.qty)}`);
  if (p.side !== 'BUY' && p.side !== 'SELL') return fail('side', `side must be BUY or SELL, got ${JSON.stringify(p.side)}`);
  return { ok: true };
}

/** Checks the hold: active and signed with the plan's drift signature. */
export function checkCloseHold(hold: { active: boolean; sig: string | null }, driftSig: string): GuardrailVerdict {
  if (!hold.active) return fail('hold_key', 'hold not active');
  if (hold.sig !== driftSig) return fail('hold_sig', `hold_sig ${JSON.stringify(hold.sig)} != drift_sig ${JSON.stringify(driftSig)}`);
  return { ok: true };
}

/**
 * Checks quantity and side against the exchange position read fresh at execution time.
 * @param qty the order quantity (already rounded down to the lot step)
 * @param exchangeAmount signed exchange position (+ long, - short, 0 flat)
 */
export function checkClosePosition(qty: Decimal, side: 'BUY' | 'SELL', exchangeAmount: Decimal): GuardrailVerdict {
  if (exchangeAmount.isZero()) return fail('side', 'exchange position is flat: nothing to close');
  const closing = exchangeAmount.isNeg() ? 'BUY' : 'SELL';
  if (side !== closing) return fail('side', `side ${side} does not close a ${exchangeAmount.isNeg() ? 'short' : 'long'} position`);
  if (qty.lte(0) || qty.gt(exchangeAmount.abs())) return fail('qty', `qty ${qty.toFixed()} not in (0, ${exchangeAmount.abs().toFixed()}]`);
  return { ok: true };
}
