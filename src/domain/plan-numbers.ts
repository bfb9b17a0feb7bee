/**
 * The numeric fields of a plan, checked at the edge (the plan schema, `p3 plan submit`) so that nothing
 * downstream ever sees a non-finite, negative, absurdly large or absurdly precise number. Pure, zod-free
 * (the CLI uses it without loading zod).
 *
 * Bounds (a plan outside them is invalid: dead-lettered with the reason, never decided):
 * - `qty` (base asset): a decimal with 0 < qty <= 1e9 ({@link PLAN_MAX_QTY}).
 * - `notional_usd` (USD): 0 < notional <= 1e12 ({@link PLAN_MAX_NOTIONAL_USD}).
 * - `basis_amt` (signed base asset, RECONCILE_CLOSE): |basis| <= 1e9.
 * - `ref_price` (USD per base unit, the price the strategy saw): 0 < price <= 1e12 ({@link PLAN_MAX_REF_PRICE}).
 * - every decimal: at most 18 digits after the point ({@link PLAN_MAX_DECIMALS}).
 * - `kill_score`: a finite number with |score| <= 1e6 ({@link PLAN_MAX_ABS_KILL_SCORE}).
 * - `ts_ms`: an integer epoch-ms in [0, 253402300799999] (up to 9999-12-31T23:59:59.999Z, {@link PLAN_MAX_TS_MS}).
 *
 * Decimal grammar: a string is plain notation only — digits, optionally one point followed by digits
 * (`^\d+(\.\d+)?$`, a leading `-` only for `basis_amt`), surrounding whitespace ignored, at most
 * {@link PLAN_MAX_DECIMAL_CHARS} characters. Exponent notation (`1e9000000000000001`), `NaN`, `Infinity`,
 * signs, hex and grouping are refused as strings, never parsed. A JSON number is accepted when finite (a
 * JSON `1e400` parses to Infinity and is refused) and normalised to plain notation; the bounds then apply.
 * Values are compared with decimal.js, never as floats.
 */
import { Decimal, fmt } from './decimal.js';

/** Largest `qty` of a plan, base-asset units. */
export const PLAN_MAX_QTY = '1000000000';
/** Largest `notional_usd` of a plan, USD. */
export const PLAN_MAX_NOTIONAL_USD = '1000000000000';
/** Largest |basis_amt| of a RECONCILE_CLOSE plan, base-asset units. */
export const PLAN_MAX_ABS_BASIS = '1000000000';
/** Largest `ref_price` of a plan, USD per base unit. */
export const PLAN_MAX_REF_PRICE = '1000000000000';
/** Most digits after the decimal point in any plan decimal. */
export const PLAN_MAX_DECIMALS = 18;
/** Longest plan decimal string, characters (after trimming whitespace). */
export const PLAN_MAX_DECIMAL_CHARS = 40;
/** Largest |kill_score|. */
export const PLAN_MAX_ABS_KILL_SCORE = 1e6;
/** Largest `ts_ms`: 9999-12-31T23:59:59.999Z. */
export const PLAN_MAX_TS_MS = 253_402_300_799_999;

/** A checked plan decimal: its plain-notation string (what the plan carries on) or why it was refused. */
export type PlanDecimalCheck = { ok: true; value: string; decimal: Decimal } | { ok: false; reason: string };

/** Which bounds apply: `positive` (0 < v <= max) or `signed` (|v| <= max). */
export interface PlanDecimalBounds {
  /** Field name, for the reason. */
  field: string;
  /** Upper bound (inclusive) of the value, or of its absolute value when `signed`, as a decimal string. */
  max: string;
  signed?: boolean;
}

const PLAIN = /^\d+(\.\d+)?$/;
const PLAIN_SIGNED = /^-?\d+(\.\d+)?$/;

/**
 * Checks one plan decimal (see the module comment for the grammar and the bounds). Never throws.
 * @param raw the field as it came in the plan JSON (string or number; anything else is refused)
 * @returns `{ok: true, value, decimal}` with `value` in plain notation (a string input trimmed, as given;
 *   a number input formatted without exponent), else `{ok: false, reason}` naming the field and the rule
 */
export function checkPlanDecimal(raw: unknown, b: PlanDecimalBounds): PlanDecimalCheck {
  const f = b.field;
  let text: string;
  let d: Decimal;
  if (typeof raw === 'number') {
    if (!Number.isFinite(raw)) return { ok: false, reason: `${f} must be a finite number` };
    d = new Decimal(String(raw));
    text = fmt(d);
  } else if (typeof raw === 'string') {
    text = raw.trim();
    if (text.length > PLAN_MAX_DECIMAL_CHARS) return { ok: false, reason: `${f} must be at most ${PLAN_MAX_DECIMAL_CHARS} characters` };
    if (!(b.signed ? PLAIN_SIGNED : PLAIN).test(text)) return { ok: false, reason: `${f} must be a plain decimal (digits, optional point; no exponent, sign or NaN/Infinity)` };
    d = new Decimal(text);
  } else {
    return { ok: false, reason: `${f} must be a decimal string or a number` };
  }
  const point = text.indexOf('.');
  if (point >= 0 && text.length - point - 1 > PLAN_MAX_DECIMALS) return { ok: false, reason: `${f} must have at most ${PLAN_MAX_DECIMALS} decimals` };
  if (!d.isFinite()) return { ok: false, reason: `${f} must be finite` };
  if (b.signed) {
    if (d.abs().gt(b.max)) return { ok: false, reason: `${f} must be within ±${b.max}` };
    return { ok: true, value: d.isZero() ? '0' : text, decimal: d };
  }
  if (d.lte(0)) return { ok: false, reason: `${f} must be > 0` };
  if (d.gt(b.max)) return { ok: false, reason: `${f} must be <= ${b.max}` };
  return { ok: true, value: text, decimal: d };
}

/** Bounds of `qty`. */
export const QTY_BOUNDS: PlanDecimalBounds = { field: 'qty', max: PLAN_MAX_QTY };
/** Bounds of `notional_usd`. */
export const NOTIONAL_BOUNDS: PlanDecimalBounds = { field: 'notional_usd', max: PLAN_MAX_NOTIONAL_USD };
/** Bounds of `ref_price` (the price collar's reference, docs/risk-controls.md). */
export const REF_PRICE_BOUNDS: PlanDecimalBounds = { field: 'ref_price', max: PLAN_MAX_REF_PRICE };
/** Bounds of `basis_amt`. */
export const BASIS_BOUNDS: PlanDecimalBounds = { field: 'basis_amt', max: PLAN_MAX_ABS_BASIS, signed: true };

/**
 * Checks `kill_score`: a finite number with |score| <= {@link PLAN_MAX_ABS_KILL_SCORE}. Never throws.
 * @returns null when acceptable, else the reason
 */
export function killScoreProblem(v: number): string | null {
  if (!Number.isFinite(v)) return 'kill_score must be a finite number';
  if (Math.abs(v) > PLAN_MAX_ABS_KILL_SCORE) return `kill_score must be within ±${PLAN_MAX_ABS_KILL_SCORE}`;
  return null;
}
