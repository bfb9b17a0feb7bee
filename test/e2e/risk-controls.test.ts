/**
 * The pre-trade risk controls end to end (docs/risk-controls.md): paper exchange through the real ccxt
 * gateway, a position brain publishing mark and index prices, a governor, an engine and an apply layer.
 * - the mark moved 2 % away from the plan's ref_price: DENY price_collar, nothing sent;
 * - no ref_price and the index 3 % away from the mark (a dislocated market): DENY price_collar;
 *   within the band: ALLOW and the order goes out;
 * - a restricted symbol: entries DENY restricted_symbol, an exit passes;
 * - the max order quantity in base units and the fat finger (share of the position limit) deny entries.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keys } from '../../src/adapters/redis/keys.js';
import { submitPlan } from '../../src/plans/submit.js';
import { adminOrders, setIndexPrice, setMarkPrice } from '../helpers/paper.js';
import { waitFor } from '../helpers/redis.js';
import { STACK_KEYS, startStack, type Stack } from './stack.js';
import { resultsOf } from '../apply/helpers.js';

let s: Stack;
const SYMS = ['BTCUSDT', 'ETHUSDT', 'SOLUSDT', 'XRPUSDT'];

beforeAll(async () => {
  s = await startStack({
    positions: { BTCUSDT: '0', ETHUSDT: '0', SOLUSDT: '0.01', XRPUSDT: '0' },
    ledgers: {},
    governors: 1,
    extraEnv: {
      GOVERNOR_RATE_PER_MIN: '6000',
      GOVERNOR_SYMBOL_RATE_PER_MIN: '6000',
      GOVERNOR_MAX_ORDER_USD: '100000',
      GOVERNOR_RESTRICTED_SYMBOLS: 'SOLUSDT',
      GOVERNOR_MAX_ORDER_QTY_ETHUSDT: '0.005',
      GOVERNOR_MAX_POSITION_USD_XRPUSDT: '1000',
      GOVERNOR_MAX_ORDER_PCT_OF_POSITION_LIMIT: '50',
    },
  });
  for (const sym of SYMS) await setMarkPrice(s.paper.url, sym, '50000');
  await waitFor(async () => {
    for (const sym of SYMS) {
      const [st, snap] = await Promise.all([s.redis.hget(keys.reconcileState(sym), 'status'), s.redis.hgetall(keys.snapshot(sym))]);
      if (st !== 'OK' || snap.mark_price !== '50000' || snap.index_price !== '50000' || !snap.mark_ts_ms) return false;
    }
    return true;
  }, 30_000, 50, 'reconciled with marks and index prices');
});
afterAll(async () => {
  await s?.stop();
});

const submit = (p: Parameters<typeof submitPlan>[1]) => submitPlan(s.redis, p, STACK_KEYS.P3_KEY_EXIT_BRAIN);
const permit = async (id: string) =>
  waitFor(async () => {
    const h = await s.redis.hgetall(keys.permitGovernor(id));
    return h.decision ? h : null;
  }, 20_000, 25, `governor permit of ${id}`);
const finalResult = (id: string) => waitFor(async () => (await resultsOf(s.redis, id))[0] ?? null, 20_000, 25, `result of ${id}`);
const apiOrders = async (sym: string) => (await adminOrders(s.paper.url)).filter((o) => o.symbol === sym && o.source === 'api');
const snapshotShows = (sym: string, field: 'mark_price' | 'index_price', v: string) => waitFor(async () => (await s.redis.hget(keys.snapshot(sym), field)) === v, 10_000, 25, `${sym} ${field} ${v}`);

describe('price collar', () => {
  it('the mark moved 2 % between the strategy’s ref_price and the permit: DENY price_collar, nothing sent', async () => {
    await setMarkPrice(s.paper.url, 'BTCUSDT', '51000');
    await setIndexPrice(s.paper.url, 'BTCUSDT', '51000');
    await snapshotShows('BTCUSDT', 'mark_price', '51000');
    const id = await submit({ symbol: 'BTCUSDT', action: 'OPEN', side: 'BUY', qty: '0.001', refPrice: '50000' });
    const g = await permit(id);
    expect(g).toMatchObject({ decision: 'DENY', reason: 'price_collar' });
    expect(JSON.parse(g.context ?? '{}')).toMatchObject({ against: 'ref_price', ref_price: '50000', mark_price: '51000', deviation_bps: '200.00', collar_bps: '100' });
    expect(await finalResult(id)).toMatchObject({ status: 'SKIPPED' });
    expect(await apiOrders('BTCUSDT')).toEqual([]);
    // within the collar (50,400 is 80 bps from 51,000): ALLOW and the order goes out
    const ok = await submit({ symbol: 'BTCUSDT', action: 'OPEN', side: 'BUY', qty: '0.001', refPrice: '50600' });
    expect(await permit(ok)).toMatchObject({ decision: 'ALLOW' });
    expect(await finalResult(ok)).toMatchObject({ status: 'EXECUTED' });
  });

  it('no ref_price and the index 3 % away from the mark: DENY price_collar (against the index)', async () => {
    await setIndexPrice(s.paper.url, 'ETHUSDT', '48500');
    await snapshotShows('ETHUSDT', 'index_price', '48500');
    const id = await submit({ symbol: 'ETHUSDT', action: 'OPEN', side: 'BUY', qty: '0.001' });
    const g = await permit(id);
    expect(g).toMatchObject({ decision: 'DENY', reason: 'price_collar' });
    expect(JSON.parse(g.context ?? '{}')).toMatchObject({ against: 'index_price', index_price: '48500', mark_price: '50000', mark_index_max_bps: '200' });
    expect(await apiOrders('ETHUSDT')).toEqual([]);
    await setIndexPrice(s.paper.url, 'ETHUSDT', '50000');
    await snapshotShows('ETHUSDT', 'index_price', '50000');
  });
});

describe('order limits', () => {
  it('a restricted symbol: OPEN is DENY restricted_symbol, an exit passes', async () => {
    const id = await submit({ symbol: 'SOLUSDT', action: 'INCREASE', side: 'BUY', qty: '0.001' });
    expect(await permit(id)).toMatchObject({ decision: 'DENY', reason: 'restricted_symbol' });
    const exit = await submit({ symbol: 'SOLUSDT', action: 'PARTIAL_50' });
    expect(await permit(exit)).toMatchObject({ decision: 'ALLOW' });
    expect(await finalResult(exit)).toMatchObject({ status: 'EXECUTED' });
  });

  it('GOVERNOR_MAX_ORDER_QTY_ETHUSDT=0.005: OPEN 0.006 is DENY max_order_qty_exceeded, 0.005 passes', async () => {
    const id = await submit({ symbol: 'ETHUSDT', action: 'OPEN', side: 'BUY', qty: '0.006' });
    const g = await permit(id);
    expect(g).toMatchObject({ decision: 'DENY', reason: 'max_order_qty_exceeded' });
    expect(JSON.parse(g.context ?? '{}')).toMatchObject({ qty: '0.006', max_order_qty: '0.005' });
    const ok = await submit({ symbol: 'ETHUSDT', action: 'OPEN', side: 'BUY', qty: '0.005' });
    expect(await permit(ok)).toMatchObject({ decision: 'ALLOW' });
  });

  it('fat finger: position limit 1000 USD, 50 % per order: OPEN 0.011 (550 USD) is DENY fat_finger, 0.01 (500 USD) passes', async () => {
    const id = await submit({ symbol: 'XRPUSDT', action: 'OPEN', side: 'SELL', qty: '0.011' });
    const g = await permit(id);
    expect(g).toMatchObject({ decision: 'DENY', reason: 'fat_finger' });
    expect(JSON.parse(g.context ?? '{}')).toMatchObject({ notional: '550', cap_usd: '500' });
    const ok = await submit({ symbol: 'XRPUSDT', action: 'OPEN', side: 'SELL', qty: '0.01' });
    expect(await permit(ok)).toMatchObject({ decision: 'ALLOW' });
  });
});
