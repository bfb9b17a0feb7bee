/**
 * P3Client against the real stack (test/client/stack.ts), connected as the strategy's ACL user `p3-strategy`:
 * - OPEN then FULL_CLOSE: both EXECUTED with the filled quantity and average price; the exchange has the two orders;
 * - a governor DENY (max position) comes back as DENY with both permits' decisions, nothing sent;
 * - an invalid plan throws before anything is submitted; a timeout and an abort reject, and the plan's result
 *   still reaches onResult;
 * - status/positions from the result stream; the ACL LOG has no denial for the client.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { P3Client, P3AbortError, P3InvalidPlanError, P3TimeoutError, type P3Result } from '../../src/client/index.js';
import { adminOrders, adminPositions } from '../helpers/paper.js';
import { waitFor } from '../helpers/redis.js';
import { CLIENT_KEYS, startClientStack, type ClientStack } from './stack.js';

let s: ClientStack;
let c: P3Client;
const results: P3Result[] = [];

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
    expect(results.map((r) => r.planId)).toEqual([open.planId, close.planId]);
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
  });

  it('a client from the environment (REDIS_URL as p3-strategy, P3_KEY_EXIT_BRAIN) works under the ACL', async () => {
    const e = P3Client.fromEnv(s.strategyEnv);
    try {
      await waitFor(async () => (await c.status('ETHUSDT')).inFlight.length === 0, 20_000, 50, 'the aborted close finished');
      const r = await e.submit({ symbol: 'ETHUSDT', action: 'FULL_CLOSE' });
      expect(['EXECUTED', 'DENY', 'SKIPPED']).toContain(r.status);
    } finally {
      await e.close();
    }
    const log = (await s.admin.call('ACL', 'LOG', '100')) as Array<Array<string | number>>;
    expect(log.map((e) => e.map(String).join(' ')).filter((l) => l.includes('p3-strategy'))).toEqual([]);
  });
});
