/**
 * Properties of the RECONCILE_CLOSE guardrails (docs/architecture.md#reconcile_close-invariants), the FLATTEN rules and the permit decisions
 * (docs/architecture.md#plans): every mutation of a valid close plan that breaks an invariant is rejected by the rule that
 * names it; no permit ALLOWs an order that would flip a position or exceed it; the governor never ALLOWs
 * over its max notional in live mode.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Decimal, fmt } from '../../src/domain/decimal.js';
import { checkClosePlan, checkClosePosition, type CloseRule } from '../../src/domain/close-guardrails.js';
import { checkFlattenPlan, flattenOrder } from '../../src/domain/flatten.js';
import { decideP33 } from '../../src/domain/permits.js';
import { decideGovernorPreRate, readTradingState } from '../../src/domain/governor.js';
import { readLedger, readSnapshot } from '../../src/domain/position.js';
import { PlanSchema } from '../../src/domain/plan.js';
import { params, STEPS } from './runs.js';

const NOW = 1_800_000_000_000;
const ALLOW = ['BTCUSDT', 'ETHUSDT'];
const MAX_AGE = 120_000;

const validClose = fc.record({
  plan_id: fc.stringMatching(/^[a-z0-9:]{1,20}$/),
  symbol: fc.constantFrom(...ALLOW),
  decision: fc.constant('RECONCILE_CLOSE'),
  action: fc.constant('RECONCILE_CLOSE'),
  side: fc.constantFrom('BUY', 'SELL'),
  qty: fc.integer({ min: 1, max: 1_000_000 }).map((n) => fmt(new Decimal(n).div(1000))),
  type: fc.constant('MARKET'),
  reduceOnly: fc.constant(true),
  reason: fc.constant('reconcile_drift'),
  source: fc.constant('p3.4'),
  ts_ms: fc.integer({ min: NOW - MAX_AGE, max: NOW + MAX_AGE }),
  drift_sig: fc.stringMatching(/^[0-9a-f]{12}$/),
});

/** A mutation that breaks exactly one invariant, and the rule that must name it. */
const mutations: Array<[CloseRule, fc.Arbitrary<Record<string, unknown>>]> = [
  ['source', fc.record({ source: fc.constantFrom('attacker', 'exit_brain', '', 'P3.4', null) })],
  ['decision', fc.record({ decision: fc.constantFrom('EXECUTE', 'FLATTEN', 'reconcile_close', null) })],
  ['reduce_only', fc.record({ reduceOnly: fc.constantFrom(false, 'true', 'false', 1, null, undefined) })],
  ['type', fc.record({ type: fc.constantFrom('LIMIT', 'STOP_MARKET', 'market', '') })],
  ['reason', fc.record({ reason: fc.constantFrom('', 'manual', 'reconcile_drift ') })],
  ['allowlist', fc.record({ symbol: fc.constantFrom('SOLUSDT', 'btcusdt', '', 42) })],
  ['stale_plan', fc.record({ ts_ms: fc.oneof(fc.integer({ min: 1, max: NOW - MAX_AGE - 1 }), fc.integer({ min: NOW + MAX_AGE + 1, max: NOW * 2 }), fc.constantFrom('now', null, Number.NaN)) })],
  ['drift_sig', fc.record({ drift_sig: fc.constantFrom('', null, undefined, 7) })],
  ['qty', fc.record({ qty: fc.constantFrom('0', '-0.001', 'abc', '', null, '1e', -1) })],
  ['side', fc.record({ side: fc.constantFrom('HOLD', 'buy', '', null) })],
];

describe('RECONCILE_CLOSE guardrails (docs/architecture.md#reconcile_close-invariants)', () => {
  it('a valid close plan passes; every mutation that breaks one invariant is rejected by the rule that names it', () => {
    fc.assert(
      fc.property(validClose, fc.integer({ min: 0, max: mutations.length }), fc.nat(), (plan, which, seed) => {
        expect(checkClosePlan({ raw: plan, macOk: true, allowlist: ALLOW, nowMs: NOW, maxAgeMs: MAX_AGE })).toEqual({ ok: true });
        if (which === mutations.length) {
          const v = checkClosePlan({ raw: plan, macOk: false, allowlist: ALLOW, nowMs: NOW, maxAgeMs: MAX_AGE });
          expect(v.ok ? null : v.rule).toBe('mac');
          return;
        }
        const [rule, arb] = mutations[which]!;
        const patch = fc.sample(arb, { numRuns: 1, seed })[0]!;
        const v = checkClosePlan({ raw: { ...plan, ...patch }, macOk: true, allowlist: ALLOW, nowMs: NOW, maxAgeMs: MAX_AGE });
        expect(v.ok ? null : v.rule).toBe(rule);
      }),
      params(2000),
    );
  });

  it('checkClosePosition passes only a reduce-only order: 0 < qty <= |position|, side opposite', () => {
    const amt = fc.integer({ min: -100_000, max: 100_000 }).map((n) => new Decimal(n).div(1000));
    fc.assert(
      fc.property(amt, amt, fc.constantFrom('BUY' as const, 'SELL' as const), (qty, pos, side) => {
        const v = checkClosePosition(qty, side, pos);
        const reduces = !pos.isZero() && qty.gt(0) && qty.lte(pos.abs()) && side === (pos.isNeg() ? 'BUY' : 'SELL');
        expect(v.ok).toBe(reduces);
      }),
      params(2000),
    );
  });
});

describe('FLATTEN (docs/architecture.md#plans, docs/architecture.md#risk-limits-and-trading-states)', () => {
  it('a FLATTEN order closes exactly the position rounded down to the lot step, opposite side, never flips', () => {
    fc.assert(
      fc.property(fc.constantFrom(...STEPS), fc.integer({ min: -10_000_000, max: 10_000_000 }), (stepRaw, n) => {
        const step = new Decimal(stepRaw);
        const pos = step.mul(n).div(7);
        const o = flattenOrder(pos, step);
        if (o === null) {
          expect(pos.abs().lt(step)).toBe(true);
          return;
        }
        expect(o.side).toBe(pos.isNeg() ? 'BUY' : 'SELL');
        expect(o.qty.lte(pos.abs()) && o.qty.gt(pos.abs().minus(step))).toBe(true);
        expect(o.qty.mod(step).isZero()).toBe(true);
      }),
      params(1000),
    );
  });

  it('only an operator FLATTEN, MARKET, reduceOnly true, with a reason, in the allowlist and young enough passes', () => {
    const valid = { plan_id: 'f1', symbol: 'BTCUSDT', decision: 'FLATTEN', action: 'FLATTEN', type: 'MARKET', reduceOnly: true, reason: 'cli:a@h: x', source: 'operator', ts_ms: NOW };
    expect(checkFlattenPlan(valid, ALLOW, NOW, MAX_AGE)).toEqual({ ok: true });
    const bad: Array<[string, Record<string, unknown>]> = [
      ['source', { source: 'p3.4' }],
      ['decision', { decision: 'EXECUTE' }],
      ['decision', { action: 'FULL_CLOSE' }],
      ['reduce_only', { reduceOnly: 'true' }],
      ['type', { type: 'LIMIT' }],
      ['reason', { reason: ' ' }],
      ['allowlist', { symbol: 'SOLUSDT' }],
      ['stale_plan', { ts_ms: NOW - MAX_AGE - 1 }],
    ];
    for (const [rule, patch] of bad) {
      const v = checkFlattenPlan({ ...valid, ...patch }, ALLOW, NOW, MAX_AGE);
      expect(v.ok ? null : v.rule).toBe(rule);
    }
  });
});

describe('permits never ALLOW an order that flips or exceeds a position, or a limit', () => {
  const exitArb = fc.record({
    action: fc.constantFrom('FULL_CLOSE', 'PARTIAL_75', 'PARTIAL_50', 'PARTIAL_25', 'REDUCE'),
    side: fc.option(fc.constantFrom('BUY' as const, 'SELL' as const), { nil: undefined }),
    // a size of 0 is not a plan (the schema refuses it: sizes are > 0)
    qty: fc.option(fc.integer({ min: 1, max: 200_000 }).map((n) => fmt(new Decimal(n).div(1000))), { nil: undefined }),
    reduceOnly: fc.constantFrom(true, 'true'),
  }).map((p) => (p.action === 'REDUCE' && p.qty === undefined ? { ...p, qty: '0.01' } : p));
  const entryArb = fc
    .record({
      action: fc.constantFrom('OPEN', 'INCREASE'),
      side: fc.constantFrom('BUY' as const, 'SELL' as const),
      size: fc.oneof(fc.integer({ min: 1, max: 200_000 }).map((n) => ({ qty: fmt(new Decimal(n).div(1000)) })), fc.integer({ min: 1, max: 100_000 }).map((n) => ({ notional_usd: String(n) }))),
      reduceOnly: fc.constantFrom(false, 'false'),
    })
    .map(({ size, ...p }) => ({ ...p, ...size }));
  const planArb = fc.oneof(exitArb, entryArb);
  const posArb = fc.integer({ min: -100_000, max: 100_000 }).map((n) => fmt(new Decimal(n).div(1000)));

  /** The position after an ALLOWed order never flips; exits never grow it; entries only from flat (OPEN) or on its side (INCREASE). */
  const checkAllowed = (action: string, position: Decimal, qty: Decimal, side: 'BUY' | 'SELL') => {
    const after = side === 'BUY' ? position.plus(qty) : position.minus(qty);
    expect(qty.gt(0)).toBe(true);
    if (action === 'OPEN') expect(position.isZero()).toBe(true);
    else if (action === 'INCREASE') expect(position.isZero() || position.isNeg() !== (side === 'BUY')).toBe(true);
    else {
      expect(position.isZero()).toBe(false);
      expect(qty.lte(position.abs())).toBe(true);
      expect(side).toBe(position.isNeg() ? 'BUY' : 'SELL');
    }
    if (!position.isZero() && !after.isZero()) expect(after.isNeg()).toBe(position.isNeg());
  };

  it('position brain: every ALLOW is reduce-only within |position| and opposite its side (exits), or an entry that cannot flip', () => {
    fc.assert(
      fc.property(planArb, posArb, fc.constantFrom(...STEPS.slice(0, 5)), (p, pos, step) => {
        const plan = PlanSchema.parse({ plan_id: 'p', symbol: 'BTCUSDT', decision: 'EXECUTE', source: 'exit_brain', ts_ms: NOW, ...p });
        const snapshot = readSnapshot({ position_amt: pos, ts_ms: String(NOW - 100), step_size: step, mark_price: '50000', min_qty: step, min_notional: '5' });
        const o = decideP33({ plan, nowMs: NOW, holdActive: false, snapshot, ledger: readLedger({ ledger_amt: pos, version: '1', ts_epoch: '1' }, {}), tolerance: new Decimal(step), freshnessSec: 10, allowlist: ['BTCUSDT'] });
        if (o.decision !== 'ALLOW') return;
        checkAllowed(plan.action, new Decimal(pos), o.qty!, o.side!);
        if (p.action === 'OPEN' || p.action === 'INCREASE') expect(o.qty!.mul(50000).gte(5)).toBe(true);
      }),
      params(1500),
    );
  });

  it('governor (live): never ALLOWs above the max notional, never under HALTED, never an increase under REDUCING', () => {
    fc.assert(
      fc.property(planArb, posArb, fc.integer({ min: 1, max: 100_000 }), fc.constantFrom('ACTIVE', 'REDUCING', 'HALTED', 'bogus'), (p, pos, maxUsd, state) => {
        const plan = PlanSchema.parse({ plan_id: 'p', symbol: 'BTCUSDT', decision: 'EXECUTE', source: 'exit_brain', ts_ms: NOW, ...p });
        const snapshot = readSnapshot({ position_amt: pos, ts_ms: String(NOW - 100), step_size: '0.001', mark_price: '50000', min_qty: '0.001', min_notional: '5' });
        const o = decideGovernorPreRate({
          plan,
          nowMs: NOW,
          globalState: readTradingState({ state }),
          symbolState: readTradingState({}),
          breakerOpen: false,
          holdActive: false,
          snapshot,
          limits: { mode: 'live', maxPlanAgeSec: 30, futureSkewSec: 5, freshnessSec: 10, maxNotionalUsd: new Decimal(maxUsd), allowlist: ['BTCUSDT'] },
        });
        if (o.decision !== 'ALLOW') return;
        expect(state === 'ACTIVE' || state === 'REDUCING').toBe(true);
        if (state === 'REDUCING') expect(['OPEN', 'INCREASE']).not.toContain(plan.action);
        expect(o.qty!.mul(50000).lte(maxUsd)).toBe(true);
        checkAllowed(plan.action, new Decimal(pos), o.qty!, o.side!);
      }),
      params(1500),
    );
  });
});

describe('exposure limits (docs/architecture.md#risk-limits-and-trading-states)', () => {
  it('an entry passes only when the position and gross limits, reservations included, still hold after it', async () => {
    const { checkExposure } = await import('../../src/domain/exposure.js');
    const usd = fc.integer({ min: 0, max: 100_000 }).map((n) => new Decimal(n));
    const amt = fc.integer({ min: -2000, max: 2000 }).map((n) => new Decimal(n).div(1000));
    const book = fc.array(fc.record({ symbol: fc.constantFrom('A', 'B', 'C'), amount: fc.option(amt, { nil: null, freq: 10 }), mark: fc.option(fc.integer({ min: 1, max: 100_000 }).map((n) => new Decimal(n)), { nil: null, freq: 10 }) }), { maxLength: 3 });
    const res = fc.array(fc.record({ planId: fc.string(), symbol: fc.constantFrom('A', 'B', 'C'), usd, expiresMs: fc.constant(0) }), { maxLength: 3 });
    fc.assert(
      fc.property(amt, fc.integer({ min: 1, max: 1000 }).map((n) => new Decimal(n).div(1000)), fc.integer({ min: 1, max: 100_000 }).map((n) => new Decimal(n)), book, res, fc.option(usd, { nil: null }), fc.option(usd, { nil: null }), (position, qty, mark, b, r, maxPos, maxGross) => {
        const v = checkExposure({ symbol: 'A', qty, mark, position, reservations: r, book: b, limits: { maxPositionUsd: maxPos, maxGrossUsd: maxGross } });
        if (!v.ok) return;
        expect(v.reserveUsd.eq(qty.mul(mark))).toBe(true);
        const reservedA = r.filter((x) => x.symbol === 'A').reduce((a, x) => a.plus(x.usd), new Decimal(0));
        if (maxPos !== null) expect(position.abs().plus(qty).mul(mark).plus(reservedA).lte(maxPos)).toBe(true);
        if (maxGross !== null) {
          expect(b.every((x) => x.amount !== null && (x.amount.isZero() || x.mark !== null))).toBe(true);
          const gross = b.reduce((a, x) => a.plus(x.amount!.abs().mul(x.mark ?? 0)), new Decimal(0));
          const reserved = r.reduce((a, x) => a.plus(x.usd), new Decimal(0));
          expect(gross.plus(reserved).plus(qty.mul(mark)).lte(maxGross)).toBe(true);
        }
      }),
      params(1500),
    );
  });
});
