/**
 * The self-healing loop, engine side: RECONCILE_CLOSE publication (docs/architecture.md#heal-target) and the heal after our close fills.
 * The apply layer is simulated by writing its result entries and the snapshots it would cause.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { createRedis } from '../../src/adapters/redis/client.js';
import { STREAMS, keys } from '../../src/adapters/redis/keys.js';
import { fieldsToObject } from '../../src/adapters/redis/consumer.js';
import { envKeyLookup, verifyPlanEntry, type Plan } from '../../src/domain/plan.js';
import { createReconcileEngineService, type ReconcileEngineService } from '../../src/services/reconcile-engine/index.js';
import { startTestRedis, waitFor, type TestRedis } from '../helpers/redis.js';
import { SYM, addResult, engineEnv, events, metricValue, seed000, writeSnapshot } from './helpers.js';

const KEY = 'test-key-p3.4';
let srv: TestRedis;
let redis: Redis;
let svcs: ReconcileEngineService[] = [];

beforeAll(async () => {
  srv = await startTestRedis();
  redis = createRedis(srv.url, { name: 'test' });
});
afterAll(async () => {
  redis.disconnect();
  await srv.stop();
});
beforeEach(async () => {
  await redis.flushall();
});
afterEach(async () => {
  for (const s of svcs) await s.stop();
  svcs = [];
});

async function engine(extra: Record<string, string> = {}): Promise<ReconcileEngineService> {
  const s = await createReconcileEngineService(engineEnv(srv.url, { P3_KEY_P3_4: KEY, P34_RECONCILE_CLOSE_ENABLED: 'true', ...extra }));
  svcs.push(s);
  return s;
}

async function closes(): Promise<Plan[]> {
  const entries = await redis.xrange(STREAMS.reconcileClose, '-', '+');
  return entries.map(([, f]) => {
    const v = verifyPlanEntry(fieldsToObject(f), envKeyLookup({ P3_KEY_P3_4: KEY }));
    if (!v.ok) throw new Error(`close entry does not verify: ${v.reason} ${v.detail}`);
    return v.plan;
  });
}
const state = () => redis.hgetall(keys.reconcileState(SYM));

describe('RECONCILE_CLOSE publication', () => {
  it('seed 000: one signed close SELL 0.007 reduce-only with drift_sig = hold_sig; no duplicate on later passes', async () => {
    await seed000(redis);
    const s = await engine();
    const [r] = await s.engine.pass([SYM]);
    expect(r!.closePublished).toBe(true);
    expect(await state()).toMatchObject({ status: 'HOLD', reason: 'side_mismatch', manual_required: '0' });
    const sig = await redis.get(keys.holdSig(SYM));
    const plans = await closes();
    expect(plans).toHaveLength(1);
    const p = plans[0]!;
    expect(p).toMatchObject({ symbol: SYM, decision: 'RECONCILE_CLOSE', action: 'RECONCILE_CLOSE', source: 'p3.4', reason: 'reconcile_drift', type: 'MARKET', reduceOnly: true, side: 'SELL', qty: '0.007', drift_sig: sig });
    expect(p.plan_id).toMatch(new RegExp(`^reconclose:BTCUSDT:${sig}:\\d+$`));
    const bucket = p.plan_id.split(':')[3]!;
    const cd = keys.closeCooldown(SYM, sig!, bucket);
    expect(await redis.get(cd)).toBe('1');
    const ttl = await redis.ttl(cd);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(120);
    expect((await events(redis, 'RECONCILE_CLOSE_PUBLISHED'))[0]).toMatchObject({ symbol: SYM, plan_id: p.plan_id, qty: '0.007', side: 'SELL', drift_sig: sig });
    for (let i = 0; i < 5; i++) await s.engine.pass([SYM]);
    expect(await closes()).toHaveLength(1);
    expect(metricValue(await s.registry.metrics(), 'p34_reconcile_close_published_total', { symbol: SYM })).toBe(1);
  });

  it('seed 000 heals: our close fills, the exchange is flat → ledger flat (p34_auto, names the order), hold cleared', async () => {
    await seed000(redis);
    const s = await engine();
    await s.engine.pass([SYM]);
    const [plan] = await closes();
    // The apply layer executes the close (result, no ledger write), then the brain publishes the flat position.
    await addResult(redis, { plan_id: plan!.plan_id, symbol: SYM, decision: 'RECONCILE_CLOSE', side: 'SELL', qty: '0.007', filled_qty: '0.007', order_id: '11961912854', client_order_id: 'rc-1', ts_ms: String(Date.now()) });
    const [wait] = await s.engine.pass([SYM]);
    expect(wait!.outcome!.reason).toBe('snapshot_older_than_fill');
    expect(await redis.get(keys.hold(SYM))).toBe('1');
    await new Promise((r) => setTimeout(r, 5));
    await writeSnapshot(redis, SYM, '0', 'FLAT');
    await s.engine.pass([SYM]);
    expect(await redis.hgetall(keys.ledger(SYM))).toMatchObject({ ledger_amt: '0', ledger_side: 'FLAT', source: 'p34_auto', version: '1' });
    const rep = await events(redis, 'AUTO_REPAIR');
    expect(rep).toHaveLength(1);
    expect(rep[0]).toMatchObject({ reason: 'healed_after_close', evidence_order_id: '11961912854', evidence_plan_id: plan!.plan_id, old_ledger_amt: '-0.002', new_ledger_amt: '0' });
    expect(await redis.get(keys.hold(SYM))).toBeNull();
    expect(await events(redis, 'HOLD_CLEARED')).toHaveLength(1);
    await s.engine.pass([SYM]);
    expect((await state()).status).toBe('OK');
    expect(await closes()).toHaveLength(1);
  });

  it('seed 004: close 0.044; then a further manual +0.016 is a new drift with a new close of 0.016', async () => {
    await redis.hset(keys.ledger(SYM), { ledger_amt: '0.002', ledger_side: 'LONG', version: '3', ts_epoch: '1', source: 'apply' });
    await writeSnapshot(redis, SYM, '0.046', 'LONG');
    const s = await engine();
    await s.engine.pass([SYM]);
    const first = await closes();
    expect(first.map((p) => `${p.side} ${p.qty}`)).toEqual(['SELL 0.044']);
    await addResult(redis, { plan_id: first[0]!.plan_id, symbol: SYM, decision: 'RECONCILE_CLOSE', side: 'SELL', qty: '0.044', filled_qty: '0.044', order_id: '1', ts_ms: String(Date.now()) });
    await new Promise((r) => setTimeout(r, 5));
    await writeSnapshot(redis, SYM, '0.002', 'LONG');
    await s.engine.pass([SYM]);
    expect((await state()).status).toBe('OK');
    expect(await redis.get(keys.hold(SYM))).toBeNull();
    // Manual +0.016 in the exchange UI, noticed after the grace of the close's fill.
    await new Promise((r) => setTimeout(r, 50));
    await writeSnapshot(redis, SYM, '0.018', 'LONG');
    const s2 = await engine({ P34_GRACE_MS: '0' });
    await s2.engine.pass([SYM]);
    const all = await closes();
    expect(all.map((p) => `${p.side} ${p.qty}`)).toEqual(['SELL 0.044', 'SELL 0.016']);
    expect(all[1]!.drift_sig).not.toBe(all[0]!.drift_sig);
    expect(all[1]!.drift_sig).toBe(await redis.get(keys.holdSig(SYM)));
  });

  it('three engines at once publish exactly one close per drift', async () => {
    await seed000(redis);
    const engines = [await engine({ P3_INSTANCE_ID: 'a' }), await engine({ P3_INSTANCE_ID: 'b' }), await engine({ P3_INSTANCE_ID: 'c' })];
    for (let i = 0; i < 10; i++) await Promise.all(engines.map((e) => e.engine.pass([SYM])));
    expect(await closes()).toHaveLength(1);
    expect(await events(redis, 'RECONCILE_CLOSE_PUBLISHED')).toHaveLength(1);
    expect(await events(redis, 'HOLD_SET')).toHaveLength(1);
  });

  it('the next cooldown bucket publishes again while the drift lasts (e.g. after a rate-limited close)', async () => {
    await seed000(redis);
    const s = await engine({ P34_RECONCILE_CLOSE_COOLDOWN_SEC: '1' });
    await s.engine.pass([SYM]);
    await waitFor(async () => {
      await s.engine.pass([SYM]);
      return (await closes()).length === 2;
    }, 10_000, 200, 'a second close in the next bucket');
    const ids = (await closes()).map((p) => p.plan_id);
    expect(new Set(ids).size).toBe(2);
  });

  it('never for missing, stale or invalid data, an operator hold, a snapshot older than a fill, or when disabled', async () => {
    const syms = ['BTCUSDT', 'ETHUSDT', 'SOLUSDT', 'XRPUSDT', 'BNBUSDT'];
    const s = await engine({ P34_ALLOWLIST: syms.join(','), P34_EXCHANGE_FRESHNESS_SEC: '10' });
    for (const sym of syms) await redis.hset(keys.ledger(sym), { ledger_amt: '0.002', version: '1', ts_epoch: '1' });
    // BTCUSDT: missing snapshot. ETHUSDT: stale. SOLUSDT: invalid. XRPUSDT: operator hold. BNBUSDT: fill newer than the snapshot.
    await writeSnapshot(redis, 'ETHUSDT', '0.046', 'LONG', Date.now() - 11_000);
    await writeSnapshot(redis, 'SOLUSDT', '-0.046', 'LONG');
    await writeSnapshot(redis, 'XRPUSDT', '0.046', 'LONG');
    await redis.setex(keys.hold('XRPUSDT'), 300, '1');
    // (snapshot 6 s old, fill 5 s old: outside the 3 s grace, so only the older-than-fill rule holds it back)
    await writeSnapshot(redis, 'BNBUSDT', '0.046', 'LONG', Date.now() - 6000);
    await addResult(redis, { plan_id: 'p', symbol: 'BNBUSDT', side: 'BUY', qty: '0.01', filled_qty: '0.01', order_id: '9', ts_ms: String(Date.now() - 5000) });
    for (let i = 0; i < 3; i++) await s.engine.pass(syms);
    expect(await closes()).toHaveLength(0);
    const reasons = Object.fromEntries(await Promise.all(syms.map(async (x) => [x, await redis.hget(keys.reconcileState(x), 'reason')] as const)));
    expect(reasons).toMatchObject({ BTCUSDT: 'missing_exchange', ETHUSDT: 'stale_exchange', SOLUSDT: 'invalid_exchange', BNBUSDT: 'snapshot_older_than_fill' });
    expect((await redis.hgetall(keys.reconcileState('XRPUSDT'))).manual_required).toBe('1');

    await redis.flushall();
    await seed000(redis);
    const off = await createReconcileEngineService(engineEnv(srv.url, { P3_KEY_P3_4: KEY, P34_RECONCILE_CLOSE_ENABLED: 'false' }));
    svcs.push(off);
    await off.engine.pass([SYM]);
    expect(await closes()).toHaveLength(0);
    expect(await state()).toMatchObject({ status: 'MANUAL_REQUIRED', reason: 'side_mismatch', manual_required: '1' });
  });
});
