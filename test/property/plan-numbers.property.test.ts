/**
 * Over generated numeric inputs (huge exponents, NaN, Infinity, negative zero, very long digit strings,
 * random text, doubles of every kind) the plan schema never accepts a non-finite or out-of-bound value and
 * never throws: it accepts a plain-notation decimal within the bounds, or returns a reasoned rejection
 * naming the field.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Decimal } from '../../src/domain/decimal.js';
import { PlanSchema, hmacHex, verifyPlanEntry } from '../../src/domain/plan.js';
import { PLAN_MAX_ABS_BASIS, PLAN_MAX_ABS_KILL_SCORE, PLAN_MAX_DECIMALS, PLAN_MAX_NOTIONAL_USD, PLAN_MAX_QTY, PLAN_MAX_TS_MS } from '../../src/domain/plan-numbers.js';
import { params } from './runs.js';

const exit = { plan_id: 'p1', symbol: 'BTCUSDT', decision: 'EXECUTE', action: 'REDUCE', side: 'SELL', reduceOnly: true, source: 'exit_brain', ts_ms: 1_700_000_000_000, qty: '0.5' };
const entry = { plan_id: 'p2', symbol: 'BTCUSDT', decision: 'EXECUTE', action: 'OPEN', side: 'BUY', reduceOnly: false, source: 'exit_brain', ts_ms: 1_700_000_000_000, notional_usd: '100' };
const close = { plan_id: 'c1', symbol: 'BTCUSDT', decision: 'RECONCILE_CLOSE', action: 'RECONCILE_CLOSE', side: 'SELL', reduceOnly: true, reason: 'reconcile_drift', source: 'p3.4', ts_ms: 1_700_000_000_000, qty: '0.5', drift_sig: 'abc', basis_amt: '0.5' };

const digits = (max: number) => fc.string({ unit: fc.constantFrom(...'0123456789'), minLength: 1, maxLength: max });
/** Numeric-looking strings of every kind, and random text. */
const numericString = fc.oneof(
  fc.constantFrom('NaN', '-NaN', 'Infinity', '-Infinity', '+Infinity', 'inf', '-0', '+0', '0', '0.0', '-0.0', '1e9000000000000001', '1e-9000000000000001', '9e15', '1E+2', '0x1f', '1_000', '1,5', '', ' ', '.', '-', '1.', '.1'),
  fc.tuple(fc.constantFrom('', '-', '+', ' '), digits(6), fc.option(digits(30)), fc.constantFrom('e', 'E', 'e+', 'e-'), fc.oneof(digits(3), fc.bigInt({ min: 0n, max: 10n ** 20n }).map(String))).map(([s, i, f, e, x]) => `${s}${i}${f ? `.${f}` : ''}${e}${x}`),
  fc.tuple(fc.constantFrom('', '-', ' '), digits(2000), fc.option(digits(2000))).map(([s, i, f]) => `${s}${i}${f ? `.${f}` : ''}`),
  fc.tuple(digits(14), fc.option(digits(22))).map(([i, f]) => `${i}${f ? `.${f}` : ''}`),
  fc.string({ maxLength: 50 }),
);
/** Doubles of every kind (NaN, ±Infinity, -0, subnormals, huge) and integers far outside the bounds. */
const anyNumber = fc.oneof(fc.double(), fc.integer(), fc.constantFrom(Number.MAX_VALUE, Number.MIN_VALUE, -0, 1e-19, 1e21, 2 ** 53 + 2));
const anyValue = fc.oneof(numericString, anyNumber);

/** The plan decimal `out` is finite, plain notation, within (0, max] (or |out| <= max when signed), at most 18 decimals. */
function withinBounds(out: unknown, max: string, signed = false): boolean {
  if (typeof out !== 'string' || !(signed ? /^-?\d+(\.\d+)?$/ : /^\d+(\.\d+)?$/).test(out)) return false;
  const d = new Decimal(out);
  if (!d.isFinite() || d.decimalPlaces() > PLAN_MAX_DECIMALS || (out.split('.')[1] ?? '').length > PLAN_MAX_DECIMALS) return false;
  return signed ? d.abs().lte(max) : d.gt(0) && d.lte(max);
}

/** safeParse never throws; on success `accept(data)` holds, on failure the first issue names `field` with a reason. */
function check(plan: Record<string, unknown>, field: string, accept: (data: Record<string, unknown>) => boolean): void {
  const r = PlanSchema.safeParse(plan);
  if (r.success) {
    expect(accept(r.data as Record<string, unknown>)).toBe(true);
  } else {
    const i = r.error.issues[0]!;
    expect(i.path[0]).toBe(field);
    expect(i.message.length).toBeGreaterThan(0);
  }
}

describe('plan numbers (property)', () => {
  it('qty, notional_usd and basis_amt: only finite, in-bound, plain decimals are accepted; nothing throws', () => {
    fc.assert(
      fc.property(anyValue, (v) => {
        check({ ...exit, qty: v }, 'qty', (p) => withinBounds(p.qty, PLAN_MAX_QTY));
        check({ ...entry, notional_usd: v }, 'notional_usd', (p) => withinBounds(p.notional_usd, PLAN_MAX_NOTIONAL_USD));
        check({ ...close, basis_amt: v }, 'basis_amt', (p) => withinBounds(p.basis_amt, PLAN_MAX_ABS_BASIS, true));
      }),
      params(3000),
    );
  });

  it('kill_score and ts_ms: only finite values within the bounds are accepted; nothing throws', () => {
    fc.assert(
      fc.property(anyNumber, (v) => {
        check({ ...exit, kill_score: v }, 'kill_score', (p) => Number.isFinite(p.kill_score) && Math.abs(p.kill_score as number) <= PLAN_MAX_ABS_KILL_SCORE);
        check({ ...exit, ts_ms: v }, 'ts_ms', (p) => Number.isSafeInteger(p.ts_ms) && (p.ts_ms as number) >= 0 && (p.ts_ms as number) <= PLAN_MAX_TS_MS);
      }),
      params(3000),
    );
  });

  it('a stream entry with any numeric text in place of qty is verified without throwing (JSON 1e400 is Infinity: refused)', () => {
    const raw = fc.oneof(numericString.map((s) => JSON.stringify(s)), fc.tuple(digits(4), fc.integer({ min: -400, max: 400 })).map(([m, e]) => `${m}e${e}`), digits(400));
    fc.assert(
      fc.property(raw, (q) => {
        const json = JSON.stringify({ ...exit, qty: 'Q' }).replace('"Q"', q);
        // a valid mac, so the schema is what decides (text that is not JSON is `malformed`)
        const v = verifyPlanEntry({ plan: json, mac: hmacHex('k', json) }, () => 'k');
        if (v.ok) expect(withinBounds(v.plan.qty, PLAN_MAX_QTY)).toBe(true);
        else expect(['malformed', 'invalid_schema']).toContain(v.reason);
      }),
      params(2000),
    );
  });
});
