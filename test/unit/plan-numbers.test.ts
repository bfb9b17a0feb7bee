/**
 * The plan schema refuses non-finite and absurd numbers at the edge: `1e9000000000000001` (which
 * decimal.js reads as Infinity), exponent notation, zero and negative sizes, sizes above 1e9 base units
 * or 1e12 USD, more than 18 decimals, endless digit strings, and absurd `kill_score` / `ts_ms` values.
 * A refused plan is a reasoned `invalid_schema` rejection, never an exception.
 */
import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { PlanSchema, verifyPlanEntry } from '../../src/domain/plan.js';

const KEY = 'exit-brain-key';
const exit = { plan_id: 'p1', symbol: 'BTCUSDT', decision: 'EXECUTE', action: 'REDUCE', side: 'SELL', reduceOnly: true, source: 'exit_brain', ts_ms: 1_700_000_000_000, qty: '0.5' };
const entry = { plan_id: 'p2', symbol: 'BTCUSDT', decision: 'EXECUTE', action: 'OPEN', side: 'BUY', reduceOnly: false, source: 'exit_brain', ts_ms: 1_700_000_000_000, notional_usd: '100' };
const close = { plan_id: 'c1', symbol: 'BTCUSDT', decision: 'RECONCILE_CLOSE', action: 'RECONCILE_CLOSE', side: 'SELL', reduceOnly: true, reason: 'reconcile_drift', source: 'p3.4', ts_ms: 1_700_000_000_000, qty: '0.5', drift_sig: 'abc', basis_amt: '0.5' };

/** A stream entry carrying `json` exactly, MAC'd with the strategy's key (so only the schema can refuse it). */
function entryOf(json: string): Record<string, string> {
  return { plan: json, mac: createHmac('sha256', KEY).update(json).digest('hex') };
}
const verify = (json: string) => verifyPlanEntry(entryOf(json), () => KEY);

describe('plan numbers at the edge', () => {
  it('qty 1e9000000000000001 (Infinity to decimal.js) is refused by the schema and by verifyPlanEntry', () => {
    expect(PlanSchema.safeParse({ ...exit, qty: '1e9000000000000001' }).success).toBe(false);
    const v = verify(JSON.stringify({ ...exit, qty: '1e9000000000000001' }));
    expect(v).toMatchObject({ ok: false, reason: 'invalid_schema' });
    expect(v.ok ? '' : v.detail).toMatch(/^qty: /);
  });

  it('refuses exponent notation, zero, negative zero, NaN/Infinity spellings, and tiny exponents that read as 0', () => {
    for (const qty of ['1e3', '1E-3', '1e-9000000000000001', '0', '0.000', '-0', '-0.5', 'NaN', 'Infinity', '-Infinity', '+1', '0x10', '1,5', '.5', '5.', '', ' ']) {
      expect(PlanSchema.safeParse({ ...exit, qty }).success, qty).toBe(false);
    }
    for (const qty of [0, -0, -1, Number.NaN, Number.POSITIVE_INFINITY]) expect(PlanSchema.safeParse({ ...exit, qty }).success, String(qty)).toBe(false);
    // a JSON number too large for a double arrives as Infinity
    expect(verify(`{"plan_id":"p1","symbol":"BTCUSDT","decision":"EXECUTE","action":"REDUCE","side":"SELL","reduceOnly":true,"source":"exit_brain","ts_ms":1700000000000,"qty":1e400}`)).toMatchObject({ ok: false, reason: 'invalid_schema' });
  });

  it('refuses sizes above the bounds, more than 18 decimals, and endless digit strings', () => {
    expect(PlanSchema.safeParse({ ...exit, qty: '1000000000.000000000000000001' }).success).toBe(false);
    expect(PlanSchema.safeParse({ ...exit, qty: '1000000001' }).success).toBe(false);
    expect(PlanSchema.safeParse({ ...exit, qty: 1e10 }).success).toBe(false);
    expect(PlanSchema.safeParse({ ...exit, qty: '0.0000000000000000001' }).success).toBe(false);
    expect(PlanSchema.safeParse({ ...exit, qty: `1${'0'.repeat(5000)}` }).success).toBe(false);
    expect(PlanSchema.safeParse({ ...exit, qty: `0.${'0'.repeat(5000)}1` }).success).toBe(false);
    expect(PlanSchema.safeParse({ ...entry, notional_usd: '1000000000000.01' }).success).toBe(false);
    expect(PlanSchema.safeParse({ ...entry, notional_usd: '1e13' }).success).toBe(false);
    expect(PlanSchema.safeParse({ ...close, basis_amt: `-1${'0'.repeat(400)}` }).success).toBe(false);
    expect(PlanSchema.safeParse({ ...close, basis_amt: '-1000000000.5' }).success).toBe(false);
  });

  it('refuses an absurd kill_score or ts_ms', () => {
    for (const kill_score of [1e300, -1e300, 1_000_001]) expect(PlanSchema.safeParse({ ...exit, kill_score }).success, String(kill_score)).toBe(false);
    for (const ts_ms of [9_000_000_000_000_000, 253_402_300_800_000, -1, 1.5]) expect(PlanSchema.safeParse({ ...exit, ts_ms }).success, String(ts_ms)).toBe(false);
    expect(verify(JSON.stringify({ ...exit, kill_score: 1e300 }))).toMatchObject({ ok: false, reason: 'invalid_schema' });
  });

  it('accepts sane values at the bounds, carried on in plain notation', () => {
    expect(PlanSchema.parse({ ...exit, qty: '1000000000' }).qty).toBe('1000000000');
    expect(PlanSchema.parse({ ...exit, qty: ' 0.000000000000000001 ' }).qty).toBe('0.000000000000000001');
    expect(PlanSchema.parse({ ...exit, qty: 1e-7 }).qty).toBe('0.0000001');
    expect(PlanSchema.parse({ ...exit, qty: 0.5 }).qty).toBe('0.5');
    expect(PlanSchema.parse({ ...entry, notional_usd: '1000000000000' }).notional_usd).toBe('1000000000000');
    expect(PlanSchema.parse({ ...exit, kill_score: -0.539, ts_ms: 253_402_300_799_999 }).kill_score).toBe(-0.539);
    expect(PlanSchema.parse({ ...close, basis_amt: '-1000000000' }).basis_amt).toBe('-1000000000');
    expect(PlanSchema.parse({ ...close, basis_amt: '-0.001' }).basis_amt).toBe('-0.001');
  });
});
