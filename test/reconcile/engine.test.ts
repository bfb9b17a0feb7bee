/**
 * The reconcile engine against a real Redis: seed 000's incident and Option B runbook edit, seed 001's
 * runbook commands, the policy rows end to end, corrupt hashes.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { createRedis } from '../../src/adapters/redis/client.js';
import { STREAMS, keys } from '../../src/adapters/redis/keys.js';
import { createReconcileEngineService, type ReconcileEngineService } from '../../src/services/reconcile-engine/index.js';
import { startTestRedis, waitFor, type TestRedis } from '../helpers/redis.js';
import { SYM, addResult, engineEnv, events, metricValue, seed000, startEngine, writeSnapshot, type RunningEngine } from './helpers.js';

let srv: TestRedis;
let redis: Redis;
let engine: RunningEngine | null = null;
let svc: ReconcileEngineService | null = null;

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
  await engine?.stop();
  engine = null;
  await svc?.stop();
  svc = null;
});

/** An engine without loops: the test drives passes itself. */
async function passEngine(extra: Record<string, string> = {}): Promise<ReconcileEngineService> {
  svc = await createReconcileEngineService(engineEnv(srv.url, extra));
  return svc;
}
const state = (sym = SYM) => redis.hgetall(keys.reconcileState(sym));

describe('seed 000', () => {
  it('one pass gives HOLD side_mismatch, one HOLD_SET event, hold_active 1; Option B clears it within a cadence', async () => {
    await seed000(redis);
    engine = await startEngine(srv.url);
    await waitFor(async () => (await state()).status === 'MANUAL_REQUIRED', 20_000, 25, 'HOLD');
    const st = await state();
    expect(st).toMatchObject({ status: 'MANUAL_REQUIRED', reason: 'side_mismatch', exchange_amt: '0.007', ledger_amt: '-0.002', diff_amt: '0.009', hold_owner: 'engine' });
    expect(await redis.get(keys.hold(SYM))).toBe('1');
    expect(await redis.get(keys.holdReason(SYM))).toBe('side_mismatch');
    const sig = await redis.get(keys.holdSig(SYM));
    expect(sig).toMatch(/^[0-9a-f]{12}$/);
    const ttl = await redis.ttl(keys.hold(SYM));
    expect(ttl).toBeGreaterThan(800);
    expect(ttl).toBeLessThanOrEqual(900);
    expect(await redis.ttl(keys.holdSig(SYM))).toBeGreaterThan(800);
    await waitFor(async () => metricValue(await engine!.metrics(), 'p34_reconcile_hold_active', { symbol: SYM }) === 1, 5000, 25, 'hold_active 1');

    // Several more passes (cadence 0.2 s): still one HOLD_SET, one drift episode.
    const passes = Number((await state()).last_seen_ts_ms);
    await waitFor(async () => Number((await state()).last_seen_ts_ms) > passes + 800, 10_000, 50, 'more passes');
    expect(await events(redis, 'HOLD_SET')).toHaveLength(1);
    expect(metricValue(await engine.metrics(), 'p34_reconcile_drift_total', { symbol: SYM, reason: 'side_mismatch' })).toBe(1);
    // Closes are disabled here: a person must act, said once.
    expect(await events(redis, 'MANUAL_REQUIRED')).toHaveLength(1);

    // Option B (seed 000 runbook): edit the legacy fields by hand.
    await redis.hset(keys.ledger(SYM), 'last_known_amt', '0.007');
    await redis.hset(keys.ledger(SYM), 'last_side', 'LONG');
    await waitFor(async () => (await redis.get(keys.hold(SYM))) === null, 20_000, 10, 'hold cleared');
    await waitFor(async () => (await state()).status === 'OK', 5000, 25, 'OK');
    expect(await events(redis, 'HOLD_CLEARED')).toHaveLength(1);
    expect(await redis.get(keys.holdSig(SYM))).toBeNull();
    await waitFor(async () => metricValue(await engine!.metrics(), 'p34_reconcile_hold_active', { symbol: SYM }) === 0, 5000, 25, 'hold_active 0');
  });
});

describe('seed 001 runbook', () => {
  it('manual hold (SETEX ... 300 1) is respected: never renewed nor cleared; DEL ends it', async () => {
    await redis.hset(keys.ledger(SYM), { ledger_amt: '0.062', ledger_side: 'LONG', version: '1', ts_epoch: '1' });
    await writeSnapshot(redis, SYM, '0.062', 'LONG');
    const s = await passEngine();
    await s.engine.pass([SYM]);
    expect((await state()).status).toBe('OK');
    await redis.setex(keys.hold(SYM), 300, '1');
    for (let i = 0; i < 3; i++) await s.engine.pass([SYM]);
    expect(await redis.get(keys.hold(SYM))).toBe('1');
    expect(await redis.ttl(keys.hold(SYM))).toBeLessThanOrEqual(300);
    expect(await state()).toMatchObject({ status: 'HOLD', reason: 'operator_hold', hold_owner: 'operator' });
    expect(await events(redis, 'HOLD_CLEARED')).toHaveLength(0);
    // a hold set with redis-cli leaves its own trace: the engine records it once when it first sees it
    expect((await events(redis, 'HOLD_SET')).filter((e) => e.owner === 'operator')).toHaveLength(1);
    await redis.del(keys.hold(SYM));
    await s.engine.pass([SYM]);
    expect(await redis.get(keys.hold(SYM))).toBeNull();
    expect((await state()).status).toBe('OK');
    expect((await events(redis, 'HOLD_CLEARED')).filter((e) => e.owner === 'operator')).toHaveLength(1);
  });

  it('SETEX on top of an engine hold makes it an operator hold: no more closes, never cleared by the engine', async () => {
    await redis.flushall();
    await redis.hset(keys.ledger(SYM), { ledger_amt: '0.002', ledger_side: 'LONG', version: '1', ts_epoch: '1' });
    await writeSnapshot(redis, SYM, '0.062', 'LONG');
    const s = await passEngine({ P34_RECONCILE_CLOSE_ENABLED: 'true', P3_KEY_P3_4: 'k' });
    await s.engine.pass([SYM]);
    expect(await redis.get(keys.holdSig(SYM))).not.toBeNull(); // the engine's hold
    expect(await redis.xlen(STREAMS.reconcileClose)).toBe(1);
    await redis.setex(keys.hold(SYM), 300, '1'); // seed 001's runbook, to stop the automation
    for (let i = 0; i < 3; i++) await s.engine.pass([SYM]);
    expect(await redis.get(keys.holdSig(SYM))).toBeNull();
    expect(await state()).toMatchObject({ status: 'MANUAL_REQUIRED', reason: 'qty_mismatch_no_evidence', hold_owner: 'operator' });
    // the drift ends (ledger fixed by hand): an operator hold stays until the operator lifts it
    await redis.hset(keys.ledger(SYM), 'ledger_amt', '0.062');
    await s.engine.pass([SYM]);
    expect(await redis.get(keys.hold(SYM))).toBe('1');
    expect(await state()).toMatchObject({ status: 'HOLD', reason: 'operator_hold' });
    expect(await redis.xlen(STREAMS.reconcileClose)).toBe(1);
  });

  it('fix ledger with HSET ledger_amt (qty mismatch) clears the hold on the next pass', async () => {
    await redis.hset(keys.ledger(SYM), { ledger_amt: '0.002', ledger_side: 'LONG', version: '7', ts_epoch: '1', source: 'apply' });
    await writeSnapshot(redis, SYM, '0.062', 'LONG');
    const s = await passEngine();
    await s.engine.pass([SYM]);
    expect(await state()).toMatchObject({ status: 'MANUAL_REQUIRED', reason: 'qty_mismatch_no_evidence', diff_amt: '0.06' });
    await redis.hset(keys.ledger(SYM), 'ledger_amt', '0.062');
    await s.engine.pass([SYM]);
    expect(await redis.get(keys.hold(SYM))).toBeNull();
    expect((await state()).status).toBe('OK');
  });

  it('fix side with HSET ledger_side LONG clears a side_mismatch hold', async () => {
    await redis.hset(keys.ledger(SYM), { ledger_amt: '0.062', ledger_side: 'SHORT', version: '7', ts_epoch: '1' });
    await writeSnapshot(redis, SYM, '0.062', 'LONG');
    const s = await passEngine();
    await s.engine.pass([SYM]);
    expect(await state()).toMatchObject({ status: 'MANUAL_REQUIRED', reason: 'side_mismatch' });
    await redis.hset(keys.ledger(SYM), 'ledger_side', 'LONG');
    await s.engine.pass([SYM]);
    expect(await redis.get(keys.hold(SYM))).toBeNull();
  });

  it('DEL of an engine hold while the drift lasts: the engine holds again (fail closed), one new HOLD_SET', async () => {
    await redis.hset(keys.ledger(SYM), { ledger_amt: '0.002', version: '1', ts_epoch: '1' });
    await writeSnapshot(redis, SYM, '0.046', 'LONG');
    const s = await passEngine();
    await s.engine.pass([SYM]);
    await redis.del(keys.hold(SYM));
    await s.engine.pass([SYM]);
    expect(await redis.get(keys.hold(SYM))).toBe('1');
    expect(await events(redis, 'HOLD_SET')).toHaveLength(2);
  });
});

describe('policy rows end to end', () => {
  it('missing and stale snapshots hold', async () => {
    await redis.hset(keys.ledger(SYM), { ledger_amt: '0', version: '1', ts_epoch: '1' });
    const s = await passEngine({ P34_ALLOWLIST: 'BTCUSDT,ETHUSDT' });
    await writeSnapshot(redis, 'ETHUSDT', '0', 'FLAT', Date.now() - 61_000);
    await s.engine.pass(['BTCUSDT', 'ETHUSDT']);
    expect(await state('BTCUSDT')).toMatchObject({ status: 'HOLD', reason: 'missing_exchange' });
    expect(await state('ETHUSDT')).toMatchObject({ status: 'HOLD', reason: 'stale_exchange' });
    expect(await redis.get(keys.holdReason('ETHUSDT'))).toBe('stale_exchange');
  });

  it('no ledger: LEDGER_INIT from the exchange (source init, version 1)', async () => {
    await writeSnapshot(redis, SYM, '0.25', 'SHORT');
    const s = await passEngine();
    await s.engine.pass([SYM]);
    expect(await redis.hgetall(keys.ledger(SYM))).toMatchObject({ ledger_amt: '-0.25', ledger_side: 'SHORT', source: 'init', version: '1' });
    expect(await events(redis, 'LEDGER_INIT')).toHaveLength(1);
    expect((await state()).status).toBe('OK');
  });

  it('a lost ledger update is repaired from evidence (source p34_auto, version+1, event names plan and order)', async () => {
    await redis.hset(keys.ledger(SYM), { ledger_amt: '0.007', ledger_side: 'LONG', version: '4', ts_epoch: String((Date.now() - 60_000) / 1000), source: 'apply' });
    await addResult(redis, { plan_id: 'plan-a', symbol: SYM, side: 'BUY', qty: '0.005', filled_qty: '0.005', order_id: '11961912854', client_order_id: 'p3-plan-a', ts_ms: String(Date.now() - 5000) });
    await writeSnapshot(redis, SYM, '0.012', 'LONG');
    const s = await passEngine();
    await s.engine.pass([SYM]);
    expect(await redis.hgetall(keys.ledger(SYM))).toMatchObject({ ledger_amt: '0.012', source: 'p34_auto', version: '5' });
    const ev = await events(redis, 'AUTO_REPAIR');
    expect(ev).toHaveLength(1);
    expect(ev[0]).toMatchObject({ symbol: SYM, old_ledger_amt: '0.007', new_ledger_amt: '0.012', evidence_plan_id: 'plan-a', evidence_order_id: '11961912854', reason: 'auto_fixed' });
    expect(await state()).toMatchObject({ status: 'REPAIRED', reason: 'auto_fixed' });
    expect(await redis.get(keys.hold(SYM))).toBeNull();
    await s.engine.pass([SYM]);
    expect((await state()).status).toBe('OK');
    expect(await events(redis, 'AUTO_REPAIR')).toHaveLength(1);
    const text = await s.registry.metrics();
    expect(metricValue(text, 'p34_reconcile_auto_repair_total', { symbol: SYM })).toBe(1);
  });

  it('an order in flight gives DRIFT without a hold; once it is gone, the drift holds', async () => {
    await redis.hset(keys.ledger(SYM), { ledger_amt: '0.007', version: '1', ts_epoch: '1' });
    await redis.hset(keys.applyInflight(SYM), 'p3-plan-b', String(Date.now()));
    await writeSnapshot(redis, SYM, '0.012', 'LONG');
    const s = await passEngine();
    await s.engine.pass([SYM]);
    expect(await state()).toMatchObject({ status: 'DRIFT', reason: 'in_flight' });
    expect(await redis.get(keys.hold(SYM))).toBeNull();
    await redis.del(keys.applyInflight(SYM));
    await s.engine.pass([SYM]);
    expect(await state()).toMatchObject({ status: 'MANUAL_REQUIRED', reason: 'qty_mismatch_no_evidence' });
  });

  it('a leftover in-flight record older than the evidence window does not block the hold (the decision saw it)', async () => {
    await redis.hset(keys.ledger(SYM), { ledger_amt: '0.007', version: '1', ts_epoch: '1' });
    await redis.hset(keys.applyInflight(SYM), 'p3-leftover', String(Date.now() - 3_600_000));
    await writeSnapshot(redis, SYM, '0.012', 'LONG');
    const s = await passEngine();
    await s.engine.pass([SYM]);
    expect(await state()).toMatchObject({ status: 'MANUAL_REQUIRED', reason: 'qty_mismatch_no_evidence' });
    expect(await redis.get(keys.hold(SYM))).toBe('1');
    await redis.del(keys.applyInflight(SYM));
  });

  it('a snapshot notification triggers a pass without waiting for the sweep', async () => {
    await redis.hset(keys.ledger(SYM), { ledger_amt: '0.007', version: '1', ts_epoch: '1' });
    await writeSnapshot(redis, SYM, '0.007', 'LONG');
    engine = await startEngine(srv.url, { P34_LOOP_CADENCE_SEC: '30' });
    await waitFor(async () => (await state()).status === 'OK', 10_000, 25, 'first sweep');
    await waitFor(async () => (await engine!.ready()) === 200, 10_000, 50, 'ready');
    await writeSnapshot(redis, SYM, '-0.007', 'SHORT');
    await waitFor(async () => (await state()).reason === 'side_mismatch', 10_000, 10, 'pass from notification');
  });
});

describe('corrupt hashes', () => {
  it('a bad hash holds that symbol only; the others are reconciled', async () => {
    const s = await passEngine({ P34_ALLOWLIST: 'BTCUSDT,ETHUSDT,SOLUSDT,XRPUSDT' });
    await redis.hset(keys.ledger('BTCUSDT'), { ledger_amt: '0.007', version: '1', ts_epoch: '1' });
    await writeSnapshot(redis, 'BTCUSDT', '0.007', 'LONG');
    await redis.set(keys.snapshot('ETHUSDT'), 'garbage'); // wrong type
    await redis.hset(keys.ledger('ETHUSDT'), { ledger_amt: '1', version: '1', ts_epoch: '1' });
    await writeSnapshot(redis, 'SOLUSDT', '5', 'LONG');
    await redis.hset(keys.ledger('SOLUSDT'), { ledger_amt: 'five', version: '1', ts_epoch: '1' });
    await writeSnapshot(redis, 'XRPUSDT', '-10', 'LONG'); // negative with LONG
    await redis.hset(keys.ledger('XRPUSDT'), { ledger_amt: '-10', version: '1', ts_epoch: '1' });
    const res = await s.engine.pass(['BTCUSDT', 'ETHUSDT', 'SOLUSDT', 'XRPUSDT']);
    expect(res.map((r) => r.result)).toEqual(['applied', 'applied', 'applied', 'applied']);
    expect((await state('BTCUSDT')).status).toBe('OK');
    expect(await state('ETHUSDT')).toMatchObject({ status: 'HOLD', reason: 'invalid_exchange' });
    expect(await state('SOLUSDT')).toMatchObject({ status: 'HOLD', reason: 'invalid_ledger' });
    expect(await state('XRPUSDT')).toMatchObject({ status: 'HOLD', reason: 'invalid_exchange' });
    for (const sym of ['ETHUSDT', 'SOLUSDT', 'XRPUSDT']) expect(await redis.get(keys.hold(sym))).toBe('1');
    expect(await redis.get(keys.hold('BTCUSDT'))).toBeNull();
  });
});
