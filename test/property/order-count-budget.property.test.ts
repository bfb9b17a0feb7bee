import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { checkOrderCountBudget, type OrderCountWindow } from '../../src/domain/risk-controls/order-count-budget.js';

const windowArb = fc.record({
  windowMs: fc.constantFrom(10_000, 60_000),
  limit: fc.integer({ min: 1, max: 2000 }),
  used: fc.option(fc.integer({ min: 0, max: 2500 }), { nil: null }),
  age: fc.integer({ min: 0, max: 120_000 }),
});

describe('order-count budget', () => {
  it('never allows an entry past the entry share of a window still in force; never refuses an exit', () => {
    fc.assert(fc.property(fc.array(windowArb, { maxLength: 3 }), fc.integer({ min: 0, max: 100 }), (ws, pct) => {
      const now = 1_000_000;
      const windows: OrderCountWindow[] = ws.map((w) => ({ windowMs: w.windowMs, limit: w.limit, used: w.used, observedMs: w.used === null ? null : now - w.age }));
      expect(checkOrderCountBudget(false, windows, now, pct).ok).toBe(true);
      const v = checkOrderCountBudget(true, windows, now, pct);
      const inForce = (w: OrderCountWindow): number => (w.used !== null && now - (w.observedMs as number) < w.windowMs ? w.used : 0);
      const breach = windows.some((w) => inForce(w) + 1 > Math.floor((w.limit * pct) / 100));
      expect(v.ok).toBe(!breach);
    }));
  });

  it('fails closed on a count observed in the future', () => {
    const v = checkOrderCountBudget(true, [{ windowMs: 10_000, limit: 300, used: 0, observedMs: 2_000_000 }], 1_000_000, 80);
    expect(v).toMatchObject({ ok: false, reason: 'order_count_budget' });
  });

  it('an entry at 239 used of 300 × 80 % passes, at 240 it is denied', () => {
    const w = (used: number): OrderCountWindow => ({ windowMs: 10_000, limit: 300, used, observedMs: 1_000 });
    expect(checkOrderCountBudget(true, [w(239)], 2_000, 80).ok).toBe(true);
    expect(checkOrderCountBudget(true, [w(240)], 2_000, 80)).toMatchObject({ ok: false, reason: 'order_count_budget' });
    expect(checkOrderCountBudget(false, [w(300)], 2_000, 80).ok).toBe(true);
  });
});

describe('parseOrderCountHeaders', () => {
  it('reads the 10 s and 1 min counts, case-insensitive, and leaves out garbage', async () => {
    const { parseOrderCountHeaders } = await import('../../src/domain/risk-controls/order-count-budget.js');
    const m = parseOrderCountHeaders({ 'X-MBX-ORDER-COUNT-10S': '7', 'x-mbx-order-count-1m': '42', 'x-mbx-order-count-1d': 'x', 'content-type': 'application/json' });
    expect([...m.entries()]).toEqual([[10_000, 7], [60_000, 42]]);
  });
});
