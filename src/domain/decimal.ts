/**
 * Exact decimal arithmetic for every quantity and price (docs/architecture.md#quantities). Never use IEEE floats on positions:
 * `0.007 - 0.002` must be `0.005`, not `0.0049999999999999996`.
 */
import { Decimal as DecimalJs } from 'decimal.js';

/** decimal.js configured for trading quantities: 40 significant digits, no exponent notation in strings. */
export const Decimal = DecimalJs.clone({ precision: 40, rounding: DecimalJs.ROUND_HALF_UP, toExpNeg: -40, toExpPos: 40 });
/** An exact decimal (instance of the configured decimal.js clone). */
export type Decimal = InstanceType<typeof Decimal>;

const DECIMAL_RE = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

/**
 * Parses a decimal string (as stored in Redis or sent by an exchange) exactly.
 * Accepts finite JS numbers too (converted through their shortest string form).
 * @returns the Decimal, or `null` for anything unparseable: empty, `NaN`, `Infinity`, `"1,5"`, objects.
 */
export function parseDecimal(raw: unknown): Decimal | null {
  if (typeof raw === 'number') {
    return Number.isFinite(raw) ? new Decimal(String(raw)) : null;
  }
  if (typeof raw !== 'string') return null;
  const s = raw.trim();
  if (!DECIMAL_RE.test(s)) return null;
  return new Decimal(s);
}

/** Formats a decimal as a plain string for Redis and exchanges: no exponent, no trailing zeros, `-0` as `0`. */
export function fmt(d: Decimal): string {
  if (d.isZero()) return '0';
  return d.toFixed();
}

/**
 * Rounds a non-negative base-asset quantity DOWN to the exchange's lot step (`LOT_SIZE.stepSize`),
 * so an order never asks for more than was resolved. `roundDownToStep(0.0349, 0.001)` is `0.034`.
 * @throws Error when `step` is not positive.
 */
export function roundDownToStep(qty: Decimal, step: Decimal): Decimal {
  if (step.lte(0)) throw new Error(`lot step must be positive, got ${fmt(step)}`);
  return qty.div(step).floor().mul(step);
}

/** Sign of a signed position amount: 1 long, -1 short, 0 flat. */
export function signOf(d: Decimal): -1 | 0 | 1 {
  return d.isZero() ? 0 : d.isNeg() ? -1 : 1;
}
