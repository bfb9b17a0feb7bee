/**
 * Entries end to end: through the same gates as exits (docs/architecture.md#plans, docs/architecture.md#risk-limits-and-trading-states). Paper exchange through
 * the real ccxt gateway, TWO governors, a position brain, an engine and an apply layer on one Redis.
 * - OPEN BUY 0.01 on a flat symbol: one order with reduceOnly false, position and ledger 0.01, no hold;
 * - mark 50,000 and GOVERNOR_MAX_POSITION_USD=600: OPEN 0.02 is DENY max_position_exceeded with the numbers;
 * - GOVERNOR_MAX_GROSS_USD=800: two OPEN 0.01 on two symbols at the same moment give exactly one ALLOW;
 * - REDUCING: OPEN is DENY trading_state_reducing, PARTIAL_50 passes; an OPEN on a held symbol never
 *   reaches the exchange.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keys } from '../../src/adapters/redis/keys.js';
import { submitPlan } from '../../src/plans/submit.js';
import { setTradingState } from '../../src/services/governor/trading-state.js';
import { adminOrders, adminPositions, setMarkPrice } from '../helpers/paper.js';
import { waitFor } from '../helpers/redis.js';
import { STACK_KEYS, startStack, type Stack } from './stack.js';
import { resultsOf } from '../apply/helpers.js';

let s: Stack;
const SYMS = ['BTCUSDT', 'ETHUSDT', 'SOLUSDT', 'XRPUSDT'];

beforeAll(async () => {
  s = await startStack({
    positions: { BTCUSDT: '0', ETHUSDT: '0', SOLUSDT: '0.005', XRPUSDT: '0' },
    ledgers: {},
    governors: 2,
    // the fat finger (an entry above a share of the position limit, test/e2e/risk-controls.test.ts) off: this file tests the limits themselves
    extraEnv: { GOVERNOR_MAX_POSITION_USD_ETHUSDT: '600', GOVERNOR_MAX_GROSS_USD: '800', GOVERNOR_RATE_PER_MIN: '6000', GOVERNOR_SYMBOL_RATE_PER_MIN: '6000', GOVERNOR_MAX_ORDER_USD: '100000', GOVERNOR_MAX_ORDER_PCT_OF_POSITION_LIMIT: 'off' },
  });
  for (const sym of SYMS) await setMarkPrice(s.paper.url, sym, '50000');
  // every symbol reconciled (ledgers initialised from the exchange) and snapshots carrying the mark
  await waitFor(async () => {
    for (const sym of SYMS) {
      const [st, mark] = await Promise.all([s.redis.hget(keys.reconcileState(sym), 'status'), s.redis.hget(keys.snapshot(sym), 'mark_price')]);
      if (st !== 'OK' || mark !== '50000') return false;
    }
    return true;
  }, 30_000, 50, 'reconciled with marks');
});
afterAll(async () => {
  await s?.stop();
});

const submit = (p: Parameters<typeof submitPlan>[1]) => submitPlan(s.redis, p, STACK_KEYS.P3_KEY_EXIT_BRAIN);
const permit = async (issuer: 'governor' | 'p33', id: string) => waitFor(async () => {
  const h = await s.redis.hgetall(issuer === 'governor' ? keys.permitGovernor(id) : keys.permitP33(id));
  return h.decision ? h : null;
}, 20_000, 25, `${issuer} permit of ${id}`);
const finalResult = (id: string) => waitFor(async () => (await resultsOf(s.redis, id))[0] ?? null, 20_000, 25, `result of ${id}`);

describe('entries through the gates', () => {
  it('OPEN BUY 0.01 on a flat symbol: one order with reduceOnly false, position and ledger 0.01, no hold', async () => {
    const id = await submit({ symbol: 'BTCUSDT', action: 'OPEN', side: 'BUY', qty: '0.01' });
    expect(await finalResult(id)).toMatchObject({ status: 'EXECUTED', side: 'BUY', filled_qty: '0.01' });
    const orders = (await adminOrders(s.paper.url)).filter((o) => o.symbol === 'BTCUSDT' && o.source === 'api');
    expect(orders.map((o) => `${o.side} ${o.qty} reduceOnly=${o.reduceOnly}`)).toEqual(['BUY 0.01 reduceOnly=false']);
    expect((await adminPositions(s.paper.url)).BTCUSDT?.positionAmt).toBe('0.01');
    expect(await s.redis.hgetall(keys.ledger('BTCUSDT'))).toMatchObject({ ledger_amt: '0.01', ledger_side: 'LONG', source: 'apply' });
    await new Promise((r) => setTimeout(r, 4000)); // past the engine's grace: no false hold
    expect(await s.redis.exists(keys.hold('BTCUSDT'))).toBe(0);
    expect(await s.redis.hget(keys.reconcileState('BTCUSDT'), 'status')).toBe('OK');
  });

  it('GOVERNOR_MAX_POSITION_USD_ETHUSDT=600 at mark 50,000: OPEN 0.02 is DENY max_position_exceeded with the numbers', async () => {
    const id = await submit({ symbol: 'ETHUSDT', action: 'OPEN', side: 'BUY', qty: '0.02' });
    const g = await permit('governor', id);
    expect(g).toMatchObject({ decision: 'DENY', reason: 'max_position_exceeded' });
    expect(JSON.parse(g.context ?? '{}')).toMatchObject({ position_usd_after: '1000', max_position_usd: '600' });
    expect(await finalResult(id)).toMatchObject({ status: 'SKIPPED' });
    expect((await adminPositions(s.paper.url)).ETHUSDT?.positionAmt).toBe('0');
  });

  it('GOVERNOR_MAX_GROSS_USD=800: two OPEN at the same moment on two symbols, two governors, room for one → exactly one ALLOW', async () => {
    // gross now: BTCUSDT 0.01 × 50,000 = 500 + SOLUSDT 0.005 × 50,000 = 250 → 750 of 800: one 0.001 (50) fits, two do not
    const [a, b] = await Promise.all([
      submit({ symbol: 'ETHUSDT', action: 'OPEN', side: 'BUY', qty: '0.001' }),
      submit({ symbol: 'XRPUSDT', action: 'OPEN', side: 'SELL', qty: '0.001' }),
    ]);
    const ga = await permit('governor', a);
    const gb = await permit('governor', b);
    expect([ga.decision, gb.decision].sort()).toEqual(['ALLOW', 'DENY']);
    const denied = [ga, gb].find((x) => x.decision === 'DENY')!;
    expect(denied.reason).toBe('max_gross_exceeded');
    expect(JSON.parse(denied.context ?? '{}')).toMatchObject({ max_gross_usd: '800', gross_usd_after: '850' });
    const allowed = ga.decision === 'ALLOW' ? a : b;
    expect(await finalResult(allowed)).toMatchObject({ status: 'EXECUTED', filled_qty: '0.001' });
  });

  it('REDUCING: OPEN is DENY trading_state_reducing, PARTIAL_50 passes; an OPEN on a held symbol never reaches the exchange', async () => {
    await setTradingState(s.redis, { state: 'REDUCING', reason: 'risk off', by: 'test' });
    const open = await submit({ symbol: 'XRPUSDT', action: 'OPEN', side: 'BUY', notionalUsd: '100' });
    expect(await permit('governor', open)).toMatchObject({ decision: 'DENY', reason: 'trading_state_reducing' });
    const exit = await submit({ symbol: 'BTCUSDT', action: 'PARTIAL_50' });
    expect(await finalResult(exit)).toMatchObject({ status: 'EXECUTED', side: 'SELL', filled_qty: '0.005' });
    await setTradingState(s.redis, { state: 'ACTIVE', reason: 'risk on', by: 'test' });

    await s.redis.set(keys.hold('XRPUSDT'), '1', 'EX', 30);
    const before = (await adminOrders(s.paper.url)).length;
    const held = await submit({ symbol: 'XRPUSDT', action: 'OPEN', side: 'BUY', qty: '0.001' });
    expect(await permit('governor', held)).toMatchObject({ decision: 'DENY', reason: 'reconcile_hold_active' });
    expect((await finalResult(held)).status).toBe('SKIPPED');
    expect((await adminOrders(s.paper.url)).length).toBe(before);
    await s.redis.del(keys.hold('XRPUSDT'));
  });
});
