/**
 * P3Client against the real stack (test/client/stack.ts), connected as the strategy's ACL user `p3-strategy`:
 * - OPEN then FULL_CLOSE: both EXECUTED with the filled quantity and average price; the exchange has the two orders;
 * - a governor DENY (max position) comes back as DENY with both permits' decisions, nothing sent;
 * - an invalid plan throws before anything is submitted, a reused plan id is refused (no hang); a timeout and an abort reject, and the plan's result
 *   still reaches onResult;
 * - a hold: the plan is DENY reconcile_hold_active, onHold reports it, status(symbol) shows it;
 * - status/positions from the result stream; the ACL LOG has no denial for the client.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { P3Client, P3AbortError, P3InvalidPlanError, P3TimeoutError, type P3Result } from '../../src/client/index.js';
import { adminOrders, adminPositions } from '../helpers/paper.js';
import { waitFor } from '../helpers/redis.js';
import { clearHold, setOperatorHold } from '../../src/services/reconcile-engine/operator.js';
import type { HoldEvent } from '../../src/client/index.js';
import { CLIENT_KEYS, startClientStack, type ClientStack } from './stack.js';

let s: ClientStack;
let c: P3Client;
const results: P3Result[] = [];
let abortedPlan = '';

beforeAll(async () => {
  s = await startClientStack({ symbols: ['BTCUSDT', 'ETHUSDT'], extraEnv: { GOVERNOR_MAX_POSITION_USD_ETHUSDT: '600' } });
  c = new P3Client({ redis: s.strategyUrl, key: CLIENT_KEYS.P3_KEY_EXIT_BRAIN, timeoutMs: 30_000 });
  c.onResult((r) => results.push(r));
});
afterAll(async () => {
  await c?.close();
  await s?.stop();
});

const apiOrders = async (sym: string) => (await adminOrders(s.paper.url)).filter((o) => o.symbol === sym && o.source === 'api');

describe('P3Client', () => {
  it('OPEN 0.002 then FULL_CLOSE: both EXECUTED with filled qty and average price, two orders at the exchange', async () => {
    const open = await c.submit({ symbol: 'BTCUSDT', action: 'OPEN', side: 'BUY', qty: '0.002' });
    expect(open).toMatchObject({ status: 'EXECUTED', side: 'BUY', filledQty: '0.002', avgPrice: '50000', symbol: 'BTCUSDT' });
    const close = await c.submit({ symbol: 'BTCUSDT', action: 'FULL_CLOSE' });
    expect(close).toMatchObject({ status: 'EXECUTED', side: 'SELL', filledQty: '0.002' });
    expect((await apiOrders('BTCUSDT')).map((o) => `${o.side} ${o.qty} reduceOnly=${o.reduceOnly}`)).toEqual(['BUY 0.002 reduceOnly=false', 'SELL 0.002 reduceOnly=true']);
    expect((await adminPositions(s.paper.url)).BTCUSDT?.positionAmt).toBe('0');
    expect((await c.positions()).find((p) => p.symbol === 'BTCUSDT')).toMatchObject({ netQty: '0', side: 'FLAT', fills: 2 });
    const st = await c.status('BTCUSDT');
    expect(st.lastResult?.planId).toBe(close.planId);
    expect(st.hold).toBeNull();
    // (a transient refusal re-tried as a new plan would also be in onResult, before the EXECUTED one)
    expect(results.filter((r) => r.status === 'EXECUTED').map((r) => r.planId)).toEqual([open.planId, close.planId]);
  });

  it('an operator hold: DENY reconcile_hold_active, reported by onHold and status(symbol); nothing sent', async () => {
    const holds: HoldEvent[] = [];
    const off = c.onHold((h) => holds.push(h));
    await setOperatorHold(s.admin, { symbol: 'BTCUSDT', ttlSec: 60, reason: 'client test', by: 'test' });
    try {
      const before = (await apiOrders('BTCUSDT')).length;
      const r = await c.submit({ symbol: 'BTCUSDT', action: 'OPEN', side: 'BUY', qty: '0.001' }, { retries: 0 });
      expect(r).toMatchObject({ status: 'DENY', reason: 'reconcile_hold_active' });
      await waitFor(() => holds.find((h) => h.planId === r.planId), 5000, 20, 'onHold');
      expect(holds.find((h) => h.planId === r.planId)).toMatchObject({ symbol: 'BTCUSDT', reason: 'reconcile_hold_active' });
      expect((await c.status('BTCUSDT')).hold).toMatchObject({ planId: r.planId, reason: 'reconcile_hold_active' });
      expect((await apiOrders('BTCUSDT')).length).toBe(before);
    } finally {
      off();
      await clearHold(s.admin, { symbol: 'BTCUSDT', by: 'test' });
    }
  });

  it('a governor DENY is DENY with both permits: the max position reason, nothing sent', async () => {
    const r = await c.submit({ symbol: 'ETHUSDT', action: 'OPEN', side: 'BUY', qty: '0.02' });
    expect(r.status).toBe('DENY');
    if (r.status !== 'DENY') return;
    expect(r.reason).toBe('max_position_exceeded');
    expect(r.governor).toEqual({ decision: 'DENY', reason: 'max_position_exceeded' });
    expect(['ALLOW', 'PENDING']).toContain(r.p33.decision);
    expect(await apiOrders('ETHUSDT')).toEqual([]);
  });

  it('an invalid plan throws P3InvalidPlanError and submits nothing', async () => {
    await expect(c.submit({ symbol: 'BTCUSDT', action: 'OPEN', side: 'BUY' })).rejects.toBeInstanceOf(P3InvalidPlanError);
    await expect(c.submit({ symbol: 'BTCUSDT', action: 'REDUCE', qty: '-1' })).rejects.toBeInstanceOf(P3InvalidPlanError);
  });

  it('a plan id used by an earlier plan (another client) is refused with P3InvalidPlanError, not a hang; nothing sent', async () => {
    const used = results.find((r) => r.status === 'EXECUTED')!.planId;
    const before = (await apiOrders('BTCUSDT')).length;
    const other = new P3Client({ redis: s.strategyUrl, key: CLIENT_KEYS.P3_KEY_EXIT_BRAIN, timeoutMs: 20_000 });
    try {
      const err = await other.submit({ symbol: 'BTCUSDT', action: 'OPEN', side: 'BUY', qty: '0.001', planId: used }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(P3InvalidPlanError);
      expect((err as Error).message).toMatch(/already used by an earlier plan/);
    } finally {
      await other.close();
    }
    expect((await apiOrders('BTCUSDT')).length).toBe(before);
  });

  it('timeout and abort stop the wait, not the plan: its result still reaches onResult', async () => {
    const t = c.submit({ symbol: 'ETHUSDT', action: 'OPEN', side: 'BUY', qty: '0.001' }, { timeoutMs: 1 });
    await expect(t).rejects.toBeInstanceOf(P3TimeoutError);
    const planId = ((await t.catch((e: P3TimeoutError) => e)) as P3TimeoutError).planId;
    await waitFor(() => results.find((r) => r.planId === planId), 20_000, 50, 'the timed-out plan in onResult');
    expect(results.find((r) => r.planId === planId)).toMatchObject({ status: 'EXECUTED' });
    const ac = new AbortController();
    const a = c.submit({ symbol: 'ETHUSDT', action: 'FULL_CLOSE' }, { signal: ac.signal });
    ac.abort();
    await expect(a).rejects.toBeInstanceOf(P3AbortError);
    abortedPlan = ((await a.catch((e: P3AbortError) => e)) as P3AbortError).planId;
    expect(abortedPlan).not.toBe('');
  });

  it('a client from the environment (REDIS_URL as p3-strategy, P3_KEY_EXIT_BRAIN) works under the ACL', async () => {
    const e = P3Client.fromEnv(s.strategyEnv);
    try {
      // the aborted FULL_CLOSE above was still decided (EXECUTED, or refused when sized on a snapshot older than the open's fill)
      await waitFor(() => results.find((r) => r.planId === abortedPlan), 20_000, 50, 'the aborted close');
      if ((await e.positions()).find((p) => p.symbol === 'ETHUSDT')?.side !== 'FLAT') {
        expect(await e.submit({ symbol: 'ETHUSDT', action: 'FULL_CLOSE' })).toMatchObject({ status: 'EXECUTED' });
      }
      const open = await e.submit({ symbol: 'ETHUSDT', action: 'OPEN', side: 'SELL', qty: '0.001' });
      expect(open).toMatchObject({ status: 'EXECUTED', side: 'SELL', filledQty: '0.001' });
      const close = await e.submit({ symbol: 'ETHUSDT', action: 'FULL_CLOSE' });
      expect(close).toMatchObject({ status: 'EXECUTED', side: 'BUY', filledQty: '0.001' });
      expect(await e.drain(15_000)).toBe(true);
    } finally {
      await e.close();
    }
    const log = (await s.admin.call('ACL', 'LOG', '100')) as Array<Array<string | number>>;
    expect(log.map((e) => e.map(String).join(' ')).filter((l) => l.includes('p3-strategy'))).toEqual([]);
  });
});
