/**
 * The venue's record as evidence end to end (docs/architecture.md#venue-journal): paper exchange through the
 * real ccxt gateway, a position brain journaling fills (user data stream + REST verifier), a governor, an
 * engine and an apply layer on one Redis.
 * - Redis rolls back past our OPEN's fill (ledger, result, last-fill time AND the journal lost; nobody
 *   re-submits): the verifier re-reads the fill, the engine repairs the ledger (AUTO_REPAIR, evidence source
 *   `exchange`, order and trade ids), no order is sent, no hold is left;
 * - the same past our FULL_CLOSE's fill (exchange flat, ledger 0.05): ledger := 0, no MANUAL_REQUIRED;
 * - `POST /admin/liquidate` of part of a long: event LIQUIDATION, ledger = exchange, no order sent;
 *   with `P34_VENUE_CLOSE_POLICY=hold`: MANUAL_REQUIRED `venue_close`;
 * - a manual (foreign) trade is held without waiting out the grace window.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STREAMS, keys } from '../../src/adapters/redis/keys.js';
import { fieldsToObject } from '../../src/adapters/redis/consumer.js';
import { submitPlan } from '../../src/plans/submit.js';
import { adminOrders, adminPositions, adminTrade, adminVenueClose } from '../helpers/paper.js';
import { waitFor } from '../helpers/redis.js';
import { resultsOf } from '../apply/helpers.js';
import { STACK_KEYS, startStack, type Stack } from './stack.js';

const LIMITS = { GOVERNOR_RATE_PER_MIN: '6000', GOVERNOR_SYMBOL_RATE_PER_MIN: '6000', GOVERNOR_MAX_ORDER_USD: '1000000', GOVERNOR_MAX_POSITION_USD: '10000000', GOVERNOR_MAX_GROSS_USD: '100000000', P33_VENUE_VERIFY_INTERVAL_MS: '1000', P33_REST_VERIFY_INTERVAL_MS: '1000' };

/** Writes a symbol's ledger back to an old value and drops what Redis lost with it (no re-submission). */
async function rollBack(s: Stack, sym: string, amount: string, planId: string): Promise<void> {
  const side = amount.startsWith('-') ? 'SHORT' : Number(amount) === 0 ? 'FLAT' : 'LONG';
  // one atomic step, as a Redis rollback is a point in time: an engine pass between a rolled-back ledger and a
  // result still present would (rightly) repair from the result instead of the venue's record
  const results = (await s.redis.xrange(STREAMS.applyResult, '-', '+')).filter(([, f]) => fieldsToObject(f).plan_id === planId).map(([id]) => id);
  const m = s.redis.multi().hset(keys.ledger(sym), { ledger_amt: amount, ledger_side: side, ts_epoch: String((Date.now() - 30_000) / 1000), source: 'apply', version: '1' });
  for (const id of results) m.xdel(STREAMS.applyResult, id);
  await m.del(keys.lastFill(sym), STREAMS.exchangeFills, keys.venueTrades(sym), keys.venueCursor(sym)).exec();
}

const apiOrders = async (s: Stack, sym: string) => (await adminOrders(s.paper.url)).filter((o) => o.symbol === sym && o.source === 'api');
const state = (s: Stack, sym: string) => s.redis.hgetall(keys.reconcileState(sym));

describe('adopt (default)', () => {
  let s: Stack;
  beforeAll(async () => {
    s = await startStack({ positions: { BTCUSDT: '0', ETHUSDT: '0.05', SOLUSDT: '0.01', XRPUSDT: '0.01' }, ledgers: {}, governors: 1, extraEnv: LIMITS });
    await waitFor(async () => {
      for (const sym of ['BTCUSDT', 'ETHUSDT', 'SOLUSDT', 'XRPUSDT']) if ((await s.redis.hget(keys.reconcileState(sym), 'status')) !== 'OK') return false;
      return true;
    }, 30_000, 50, 'reconciled');
  });
  afterAll(async () => {
    await s?.stop();
  });
  const submit = (p: Parameters<typeof submitPlan>[1]) => submitPlan(s.redis, p, STACK_KEYS.P3_KEY_EXIT_BRAIN);
  const executed = (id: string) => waitFor(async () => (await resultsOf(s.redis, id)).find((r) => r.status === 'EXECUTED') ?? null, 20_000, 25, `result of ${id}`);

  it('a rollback past our OPEN fill: AUTO_REPAIR from the exchange record, no order, no hold', async () => {
    const id = await submit({ symbol: 'BTCUSDT', action: 'OPEN', side: 'BUY', qty: '0.002' });
    await executed(id);
    expect(await s.redis.hget(keys.ledger('BTCUSDT'), 'ledger_amt')).toBe('0.002');
    await rollBack(s, 'BTCUSDT', '0', id);
    const ev = await waitFor(async () => (await s.events('AUTO_REPAIR', 'BTCUSDT')).find((e) => e.evidence_source === 'exchange') ?? null, 30_000, 25, 'AUTO_REPAIR from the exchange').catch(async (e) => {
      console.log(JSON.stringify(await state(s, 'BTCUSDT')), JSON.stringify((await s.redis.xrange(STREAMS.reconcileEvents, '-', '+')).map(([, f]) => fieldsToObject(f)).filter((x) => x.symbol === 'BTCUSDT')), JSON.stringify(await s.redis.xrange(STREAMS.exchangeFills, '-', '+')), JSON.stringify(await s.redis.hgetall(keys.ledger('BTCUSDT'))), JSON.stringify(await s.redis.hgetall(keys.venueCursor('BTCUSDT'))));
      throw e;
    });
    expect(ev).toMatchObject({ old_ledger_amt: '0', new_ledger_amt: '0.002', evidence_origin: 'ours' });
    expect(ev.evidence_order_id).toMatch(/^\d+$/);
    expect(ev.evidence_trade_id).toMatch(/^\d+$/);
    expect(await s.redis.hget(keys.ledger('BTCUSDT'), 'ledger_amt')).toBe('0.002');
    await new Promise((r) => setTimeout(r, 3500)); // past the grace: nothing else happens
    expect((await apiOrders(s, 'BTCUSDT')).length).toBe(1);
    expect(await s.redis.exists(keys.hold('BTCUSDT'))).toBe(0);
    expect((await s.events('MANUAL_REQUIRED', 'BTCUSDT')).length).toBe(0);
    expect((await s.events('HOLD_SET', 'BTCUSDT')).length).toBe(0);
  });

  it('a rollback past our FULL_CLOSE fill (exchange flat, ledger 0.05): ledger := 0, no MANUAL_REQUIRED, no order', async () => {
    const id = await submit({ symbol: 'ETHUSDT', action: 'FULL_CLOSE', side: 'SELL' } as Parameters<typeof submitPlan>[1]);
    await executed(id);
    expect((await adminPositions(s.paper.url)).ETHUSDT?.positionAmt).toBe('0');
    await rollBack(s, 'ETHUSDT', '0.05', id);
    const ev = await waitFor(async () => (await s.events('AUTO_REPAIR', 'ETHUSDT')).find((e) => e.evidence_source === 'exchange') ?? null, 30_000, 25, 'AUTO_REPAIR from the exchange').catch(async (e) => {
      console.log(JSON.stringify(await state(s, 'ETHUSDT')), JSON.stringify((await s.redis.xrange(STREAMS.reconcileEvents, '-', '+')).map(([, f]) => fieldsToObject(f)).filter((x) => x.symbol === 'ETHUSDT')), JSON.stringify(await s.redis.xrange(STREAMS.exchangeFills, '-', '+')), JSON.stringify(await s.redis.hgetall(keys.ledger('ETHUSDT'))), JSON.stringify(await s.redis.hgetall(keys.venueCursor('ETHUSDT'))));
      throw e;
    });
    expect(ev).toMatchObject({ old_ledger_amt: '0.05', new_ledger_amt: '0' });
    await new Promise((r) => setTimeout(r, 3500));
    expect((await apiOrders(s, 'ETHUSDT')).length).toBe(1);
    expect(await s.healed('ETHUSDT')).toBe(true);
    expect((await s.events('MANUAL_REQUIRED', 'ETHUSDT')).length).toBe(0);
  });

  it('a partial liquidation of a long: event LIQUIDATION naming the order, ledger = exchange, no order sent', async () => {
    const { order } = await adminVenueClose(s.paper.url, 'liquidate', 'SOLUSDT', '0.004');
    const ev = await waitFor(async () => (await s.events('LIQUIDATION', 'SOLUSDT'))[0] ?? null, 30_000, 25, 'LIQUIDATION event');
    expect(ev).toMatchObject({ old_ledger_amt: '0.01', new_ledger_amt: '0.006', evidence_source: 'exchange', evidence_order_id: String(order.orderId), evidence_origin: 'liquidation' });
    expect(await s.redis.hget(keys.ledger('SOLUSDT'), 'ledger_amt')).toBe('0.006');
    await new Promise((r) => setTimeout(r, 3500));
    expect((await apiOrders(s, 'SOLUSDT')).length).toBe(0);
    expect(await s.healed('SOLUSDT')).toBe(true);
  });

  it('a foreign trade is held at once, without waiting out the grace window', async () => {
    const t0 = Date.now();
    await adminTrade(s.paper.url, 'XRPUSDT', 'BUY', '0.001');
    await waitFor(async () => ((await s.redis.exists(keys.hold('XRPUSDT'))) === 1 ? true : null), 10_000, 5, 'hold');
    expect(Date.now() - t0).toBeLessThan(2000); // P34_GRACE_MS is 3000
    const st = await state(s, 'XRPUSDT');
    expect(st.detail ?? '').toMatch(/foreign fill: BUY 0\.001 trade \d+/);
    // and it heals: the close brings the exchange back to the ledger
    await waitFor(() => s.healed('XRPUSDT'), 20_000, 50, 'healed');
    expect((await adminPositions(s.paper.url)).XRPUSDT?.positionAmt).toBe('0.01');
  });
});

describe('P34_VENUE_CLOSE_POLICY=hold', () => {
  let s: Stack;
  beforeAll(async () => {
    s = await startStack({ positions: { BTCUSDT: '0.01' }, ledgers: {}, extraEnv: { ...LIMITS, P34_VENUE_CLOSE_POLICY: 'hold' } });
    await waitFor(async () => ((await s.redis.hget(keys.reconcileState('BTCUSDT'), 'status')) === 'OK' ? true : null), 30_000, 50, 'reconciled');
  });
  afterAll(async () => {
    await s?.stop();
  });

  it('a partial liquidation: MANUAL_REQUIRED venue_close, ledger untouched, no order sent', async () => {
    await adminVenueClose(s.paper.url, 'liquidate', 'BTCUSDT', '0.004');
    const st = await waitFor(async () => {
      const h = await state(s, 'BTCUSDT');
      return h.status === 'MANUAL_REQUIRED' ? h : null;
    }, 15_000, 25, 'MANUAL_REQUIRED');
    expect(st).toMatchObject({ reason: 'venue_close' });
    expect(await s.redis.hget(keys.ledger('BTCUSDT'), 'ledger_amt')).toBe('0.01');
    expect((await s.events('MANUAL_REQUIRED', 'BTCUSDT')).length).toBe(1);
    await new Promise((r) => setTimeout(r, 2000));
    expect((await apiOrders(s, 'BTCUSDT')).length).toBe(0);
  });
});
