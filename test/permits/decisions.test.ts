/** The pure decisions (src/domain/permits.ts, src/domain/governor.ts): every reason, exact decimals. */
import { describe, expect, it } from 'vitest';
import { Decimal, fmt } from '../../src/domain/decimal.js';
import { decideGovernorPreRate, readTradingState, stricter, type GovernorInput } from '../../src/domain/governor.js';
import { decideP33, resolvePlanQty, type P33Input } from '../../src/domain/permits.js';
import { PlanSchema, type Plan, type PlanInput } from '../../src/domain/plan.js';
import { readLedger, readSnapshot } from '../../src/domain/position.js';

const NOW = 1_769_300_828_845;
const plan = (p: Partial<PlanInput> = {}): Plan =>
  PlanSchema.parse({ plan_id: 'p1', symbol: 'BTCUSDT', decision: 'EXECUTE', action: 'PARTIAL_75', reduceOnly: true, source: 'exit_brain', ts_ms: NOW, ...p });
const snap = (amt: string, extra: Record<string, string> = {}) => readSnapshot({ position_amt: amt, ts_ms: String(NOW - 1000), mark_price: '95000', step_size: '0.001', ...extra });

/** A snapshot view for resolvePlanQty: position, lot step, mark 95000, min qty 0.001, min notional 5. */
const sv = (pos: string | Decimal, step: Decimal | null, extra: Partial<{ markPrice: Decimal | null; minQty: Decimal | null; minNotional: Decimal | null }> = {}) => ({
  amount: new Decimal(pos),
  stepSize: step,
  markPrice: new Decimal('95000'),
  minQty: new Decimal('0.001'),
  minNotional: new Decimal('100'),
  ...extra,
});

describe('resolvePlanQty', () => {
  const step = new Decimal('0.001');
  it('fractions of the position, rounded down to the lot step, side opposite', () => {
    const r = resolvePlanQty(plan(), sv('0.046', step));
    expect(r.ok && [fmt(r.qty), r.side]).toEqual(['0.034', 'SELL']);
    const s = resolvePlanQty(plan({ action: 'PARTIAL_50' }), sv('-0.007', step));
    expect(s.ok && [fmt(s.qty), s.side]).toEqual(['0.003', 'BUY']);
    const f = resolvePlanQty(plan({ action: 'FULL_CLOSE' }), sv('0.1', new Decimal('0.01')));
    expect(f.ok && fmt(f.qty)).toBe('0.1');
  });
  it.each([
    ['lot_step_unknown', plan(), '0.046', null],
    ['nothing_to_close', plan(), '0', '0.001'],
    ['nothing_to_close', plan({ action: 'PARTIAL_25' }), '0.003', '0.001'],
    ['side_not_reducing', plan({ side: 'BUY' }), '0.046', '0.001'],
    ['reduce_only_exceeds_position', plan({ qty: '0.05' }), '0.046', '0.001'],
    ['below_min_qty', plan({ action: 'OPEN', reduceOnly: false, side: 'BUY', qty: '0.0004' }), '0', '0.001'],
    ['below_min_notional', plan({ action: 'OPEN', reduceOnly: false, side: 'BUY', notional_usd: '100' }), '0', '0.001'],
    ['position_not_flat', plan({ action: 'OPEN', reduceOnly: false, side: 'BUY', qty: '0.01' }), '0.002', '0.001'],
    ['side_conflict', plan({ action: 'INCREASE', reduceOnly: false, side: 'BUY', qty: '0.01' }), '-0.002', '0.001'],
    ['side_conflict', plan({ action: 'INCREASE', reduceOnly: false, side: 'SELL', qty: '0.01' }), '0', '0.001'],
    ['nothing_to_close', plan({ action: 'REDUCE', qty: '0.01' }), '0', '0.001'],
  ])('%s', (reason, p, pos, st) => {
    const r = resolvePlanQty(p, sv(pos, st === null ? null : new Decimal(st)));
    expect(r.ok ? 'ok' : r.reason).toBe(reason);
  });
  it('a plan whose reduceOnly contradicts its action, or that gives both or neither size, is invalid (schema)', () => {
    for (const bad of [
      { reduceOnly: false },
      { reduceOnly: 'TRUE' }, // one reading of the flag everywhere: "TRUE" is not reduce-only
      { reduceOnly: ' true' },
      { action: 'OPEN', reduceOnly: true, side: 'BUY', qty: '0.01' },
      { action: 'OPEN', reduceOnly: false, qty: '0.01' },
      { action: 'OPEN', reduceOnly: false, side: 'BUY' },
      { action: 'INCREASE', reduceOnly: false, side: 'BUY', qty: '0.01', notional_usd: '100' },
      { action: 'REDUCE' },
      { action: 'PARTIAL_50', notional_usd: '100' },
      { action: 'REBALANCE' },
    ] as Array<Partial<PlanInput>>) {
      expect(() => plan(bad), JSON.stringify(bad)).toThrow();
    }
  });
  it('entries: qty or notional / mark, rounded DOWN to the lot step, side as asked, reduceOnly false; REDUCE capped at the position', () => {
    const o = resolvePlanQty(plan({ action: 'OPEN', reduceOnly: false, side: 'SELL', qty: '0.0109' }), sv('0', step));
    expect(o.ok && [fmt(o.qty), o.side, o.reduceOnly]).toEqual(['0.01', 'SELL', false]);
    const n = resolvePlanQty(plan({ action: 'OPEN', reduceOnly: 'false', side: 'BUY', notional_usd: '1000' }), sv('0', step));
    expect(n.ok && fmt(n.qty)).toBe('0.01'); // 1000 / 95000 = 0.01052... → 0.010
    const i = resolvePlanQty(plan({ action: 'INCREASE', reduceOnly: false, side: 'SELL', qty: '0.005' }), sv('-0.01', step));
    expect(i.ok && [fmt(i.qty), i.side]).toEqual(['0.005', 'SELL']);
    const r = resolvePlanQty(plan({ action: 'REDUCE', qty: '5' }), sv('-0.0123', step));
    expect(r.ok && [fmt(r.qty), r.side, r.reduceOnly]).toEqual(['0.012', 'BUY', true]);
    expect(resolvePlanQty(plan({ action: 'OPEN', reduceOnly: false, side: 'BUY', qty: '0.01' }), sv('0', step, { markPrice: null })).ok).toBe(false);
    expect(resolvePlanQty(plan({ action: 'OPEN', reduceOnly: false, side: 'BUY', qty: '0.01' }), sv('0', step, { minNotional: null })).ok).toBe(false);
  });
  it('reduceOnly as the string "true" counts; an explicit qty within the position is used as given (rounded down)', () => {
    const r = resolvePlanQty(plan({ reduceOnly: 'true', qty: '0.0209' }), sv('0.046', step));
    expect(r.ok && fmt(r.qty)).toBe('0.02');
  });
});

describe('decideP33', () => {
  const base = (over: Partial<P33Input> = {}): P33Input => ({
    plan: plan(),
    nowMs: NOW,
    holdActive: false,
    snapshot: snap('0.046'),
    ledger: readLedger({ ledger_amt: '0.046', ledger_side: 'LONG' }, {}),
    tolerance: new Decimal('0.001'),
    freshnessSec: 10,
    allowlist: [],
    ...over,
  });
  it('ALLOW with the resolved qty (a fill older than the snapshot does not matter)', () => {
    expect(decideP33(base({ newestFillTsMs: NOW - 5000, inFlight: 0 })).decision).toBe('ALLOW');
    const o = decideP33(base());
    expect([o.decision, o.reason, o.qty && fmt(o.qty), o.side]).toEqual(['ALLOW', 'ok', '0.034', 'SELL']);
  });
  it('seed 004: exchange 0.046 vs legacy ledger 0.002 → reconcile_required_qty_mismatch', () => {
    const o = decideP33(base({ ledger: readLedger({}, { ledger_amount: '0.002' }) }));
    expect(o).toMatchObject({ decision: 'DENY', reason: 'reconcile_required_qty_mismatch', context: { exchange_amt: '0.046', ledger_amt: '0.002', diff: '0.044', tolerance: '0.001' } });
  });
  it('a diff exactly at the tolerance matches (shared model, inclusive)', () => {
    expect(decideP33(base({ ledger: readLedger({ ledger_amt: '0.045' }, {}) })).decision).toBe('ALLOW');
    expect(decideP33(base({ ledger: readLedger({ ledger_amt: '0.0449' }, {}) })).reason).toBe('reconcile_required_qty_mismatch');
  });
  it.each([
    ['unsupported_decision', { plan: plan({ decision: 'RECONCILE_CLOSE' }) }],
    ['symbol_not_allowed', { allowlist: ['ETHUSDT'] }],
    ['reconcile_hold_active', { holdActive: true }],
    // sized from a snapshot the position moved away from: an order in flight, a fill newer than the snapshot
    ['order_in_flight', { inFlight: 1 }],
    ['snapshot_older_than_fill', { newestFillTsMs: NOW - 500 }],
    ['invalid_exchange', { snapshot: snap('0.046', { ts_ms: String(NOW + 3000) }) }], // dated in the future
    ['missing_exchange', { snapshot: readSnapshot({}) }],
    ['invalid_exchange', { snapshot: readSnapshot({ position_amt: 'abc', ts_ms: String(NOW) }) }],
    ['stale_exchange', { snapshot: readSnapshot({ position_amt: '0.046', ts_ms: String(NOW - 10_001) }) }],
    ['invalid_ledger', { ledger: readLedger({ ledger_amt: '-1', ledger_side: 'LONG' }, {}) }],
    ['missing_ledger', { ledger: readLedger({}, {}) }],
    ['reconcile_required_qty_mismatch', { ledger: readLedger({ ledger_amt: '-0.046' }, {}) }],
    ['reduce_only_exceeds_position', { plan: plan({ qty: '1' }) }],
    ['lot_step_unknown', { snapshot: snap('0.046', { step_size: '' }) }],
  ] as Array<[string, Partial<P33Input>]>)('%s', (reason, over) => {
    expect(decideP33(base(over))).toMatchObject({ decision: 'DENY', reason });
  });
  it('nothing_to_close when flat on both sides', () => {
    expect(decideP33(base({ snapshot: snap('0'), ledger: readLedger({ ledger_amt: '0' }, {}) })).reason).toBe('nothing_to_close');
  });
});

describe('decideGovernorPreRate', () => {
  const active = readTradingState({});
  const base = (over: Partial<GovernorInput> = {}, limits: Partial<GovernorInput['limits']> = {}): GovernorInput => ({
    plan: plan(),
    nowMs: NOW,
    globalState: active,
    symbolState: active,
    breakerOpen: false,
    holdActive: false,
    snapshot: snap('0.046'),
    ...over,
    limits: { mode: 'live', maxPlanAgeSec: 30, futureSkewSec: 5, freshnessSec: 10, maxNotionalUsd: new Decimal('10000'), allowlist: [], ...limits },
  });
  it('ALLOW records qty, side, notional and mark price exactly', () => {
    const o = decideGovernorPreRate(base());
    expect([o.decision, o.reason, fmt(o.qty!), o.side, o.notional!.toFixed(2), fmt(o.markPrice!)]).toEqual(['ALLOW', 'ok', '0.034', 'SELL', '3230.00', '95000']);
  });
  it('testnet/paper auto-approve skips only the notional cap and still records the real exposure', () => {
    const o = decideGovernorPreRate(base({}, { mode: 'testnet', maxNotionalUsd: new Decimal('100') }));
    expect(o).toMatchObject({ decision: 'ALLOW', reason: 'auto_approve', autoApproved: true, context: { would_deny: 'max_notional_exceeded' } });
    expect(o.notional!.toFixed(2)).toBe('3230.00');
    for (const over of [{ holdActive: true }, { snapshot: readSnapshot({}) }, { globalState: readTradingState({ state: 'HALTED' }) }, { breakerOpen: true }]) {
      expect(decideGovernorPreRate(base(over, { mode: 'paper' })).decision).toBe('DENY');
    }
  });
  it.each([
    ['unsupported_decision', { plan: plan({ decision: 'RECONCILE_CLOSE' }) }, {}],
    ['symbol_not_allowed', {}, { allowlist: ['ETHUSDT'] }],
    ['plan_too_old', { plan: plan({ ts_ms: NOW - 30_001 }) }, {}],
    ['plan_from_future', { plan: plan({ ts_ms: NOW + 5_001 }) }, {}],
    ['trading_state_invalid', { symbolState: readTradingState({ state: 'PAUSED' }) }, {}],
    ['trading_halted', { symbolState: readTradingState({ state: 'HALTED', reason: 'x' }) }, {}],
    ['trading_halted', { globalState: readTradingState({ state: 'HALTED' }), symbolState: readTradingState({ state: 'REDUCING' }) }, {}],
    ['trading_state_reducing', { globalState: readTradingState({ state: 'REDUCING' }), plan: plan({ action: 'OPEN', reduceOnly: false, side: 'BUY', qty: '0.01' }) }, {}],
    ['circuit_breaker_open', { breakerOpen: true }, {}],
    ['reconcile_hold_active', { holdActive: true }, {}],
    ['missing_exchange', { snapshot: readSnapshot({}) }, {}],
    ['invalid_exchange', { snapshot: readSnapshot({ position_amt: '1', side: 'FLAT', ts_ms: String(NOW) }) }, {}],
    ['stale_exchange', { snapshot: snap('0.046', { ts_ms: String(NOW - 11_000) }) }, {}],
    ['lot_step_unknown', { snapshot: snap('0.046', { step_size: '0' }) }, {}],
    ['nothing_to_close', { snapshot: snap('0') }, {}],
    ['side_not_reducing', { plan: plan({ side: 'BUY' }) }, {}],
    ['mark_price_unknown', { snapshot: snap('0.046', { mark_price: '' }) }, {}],
    ['max_notional_exceeded', {}, { maxNotionalUsd: new Decimal('3229.99') }],
  ] as Array<[string, Partial<GovernorInput>, Partial<GovernorInput['limits']>]>)('%s', (reason, over, limits) => {
    expect(decideGovernorPreRate(base(over, limits))).toMatchObject({ decision: 'DENY', reason });
  });
  it('REDUCING passes reduce-only exits; the stricter of global and symbol wins', () => {
    expect(decideGovernorPreRate(base({ symbolState: readTradingState({ state: 'REDUCING' }) })).decision).toBe('ALLOW');
    expect(stricter('REDUCING', 'HALTED')).toBe('HALTED');
    expect(stricter('ACTIVE', 'REDUCING')).toBe('REDUCING');
  });
});
