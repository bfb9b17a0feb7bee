/**
 * FLATTEN: an operator's signed plan that closes a symbol's whole position (docs/architecture.md#plans, docs/architecture.md#risk-limits-and-trading-states). Pure.
 *
 * Invariants:
 * - Only an operator may flatten: `source === "operator"` and the MAC verifies with `P3_KEY_OPERATOR`
 *   (checked by the apply layer before anything else); decision and action `FLATTEN`, MARKET, `reduceOnly`
 *   the JSON boolean `true`, a non-empty `reason` (who asked and why are recorded), the symbol in the
 *   allowlist, the plan younger than its max age.
 * - The order is sized from the position read FRESH from the exchange when it is sent: side opposite the
 *   position, `qty = |position|` rounded DOWN to the lot step, so it can never open, grow or flip a
 *   position; a flat position (or one below one lot step) sends nothing.
 * - It is executed in every trading state and under any hold (it is what an operator reaches for when the
 *   kill switch is on), through the same exactly-once path as every order (dedupe, client order id).
 * - Its fill is evidence for the reconcile engine, like a RECONCILE_CLOSE fill: once the exchange is flat
 *   after it, the ledger is set flat (`healed_after_close`, the plan named as evidence).
 */
import { randomBytes } from 'node:crypto';
import { parseDecimal, roundDownToStep, type Decimal } from './decimal.js';
import type { PlanInput } from './plan.js';

/** The only source of FLATTEN plans; its key is `P3_KEY_OPERATOR`. */
export const OPERATOR_SOURCE = 'operator';
/** Decision and action of a FLATTEN plan. */
export const FLATTEN = 'FLATTEN';

/** What `p3 flatten` asks for. */
export interface FlattenRequest {
  symbol: string;
  /** Why (required, recorded in the plan and the events). */
  reason: string;
  /** Who asked (`cli:<user>@<host>`, `console:<name>`), recorded in the plan's `by` part of the reason. */
  by: string;
  /** Epoch ms (the plan's `ts_ms`). */
  nowMs: number;
  planId?: string;
}

/** `flatten:<SYM>:<epoch ms>:<6 hex>`: unique per request (two flattens are two plans, each sent once). */
export function flattenPlanId(symbol: string, nowMs: number): string {
  return `flatten:${symbol}:${nowMs}:${randomBytes(3).toString('hex')}`;
}

/** Builds the FLATTEN plan (reason recorded as `<by>: <reason>`, cut to 200 characters). */
export function buildFlattenPlan(r: FlattenRequest): PlanInput {
  return {
    plan_id: r.planId ?? flattenPlanId(r.symbol, r.nowMs),
    symbol: r.symbol,
    decision: FLATTEN,
    action: FLATTEN,
    type: 'MARKET',
    reduceOnly: true,
    reason: `${r.by}: ${r.reason}`.slice(0, 200),
    source: OPERATOR_SOURCE,
    ts_ms: r.nowMs,
  };
}

/** A failed FLATTEN rule, or ok. */
export type FlattenVerdict = { ok: true } | { ok: false; rule: string; detail: string };

/**
 * Checks a FLATTEN plan as received (the raw JSON object, so no default can satisfy a rule).
 * @param maxAgeMs the plan's max age, ms (also the tolerated clock skew into the future)
 */
export function checkFlattenPlan(raw: Record<string, unknown>, allowlist: readonly string[], nowMs: number, maxAgeMs: number): FlattenVerdict {
  const fail = (rule: string, detail: string): FlattenVerdict => ({ ok: false, rule, detail });
  if (raw.source !== OPERATOR_SOURCE) return fail('source', `source must be 'operator', got ${JSON.stringify(raw.source)}`);
  if (raw.decision !== FLATTEN || raw.action !== FLATTEN) return fail('decision', 'decision and action must be FLATTEN');
  if (raw.reduceOnly !== true) return fail('reduce_only', `reduceOnly must be true (boolean), got ${JSON.stringify(raw.reduceOnly)}`);
  if (raw.type !== 'MARKET') return fail('type', `type must be MARKET, got ${JSON.stringify(raw.type)}`);
  if (typeof raw.reason !== 'string' || raw.reason.trim() === '') return fail('reason', 'a FLATTEN needs a reason');
  if (typeof raw.symbol !== 'string' || !allowlist.includes(raw.symbol)) return fail('allowlist', `symbol ${JSON.stringify(raw.symbol)} not in the allowlist`);
  const ts = raw.ts_ms;
  if (typeof ts !== 'number' || !Number.isFinite(ts) || Math.abs(nowMs - ts) > maxAgeMs) return fail('stale_plan', `plan ts_ms ${JSON.stringify(ts)} outside ${maxAgeMs} ms of now`);
  if (raw.qty !== undefined && raw.qty !== null && parseDecimal(raw.qty) === null) return fail('qty', 'qty, when given, must be a decimal (it is ignored: the fresh position decides)');
  return { ok: true };
}

/**
 * The order that flattens `position` (signed base amount), or null when there is nothing to close at this
 * lot step.
 * @param stepSize the symbol's lot step (base asset), > 0
 */
export function flattenOrder(position: Decimal, stepSize: Decimal): { side: 'BUY' | 'SELL'; qty: Decimal } | null {
  if (position.isZero() || !stepSize.isFinite() || stepSize.lte(0)) return null;
  const qty = roundDownToStep(position.abs(), stepSize);
  if (qty.lte(0)) return null;
  return { side: position.isNeg() ? 'BUY' : 'SELL', qty };
}
