/**
 * The engine survives Redis going away and coming back, and several engines against one Redis neither
 * fight nor duplicate events.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { createRedis } from '../../src/adapters/redis/client.js';
import { keys } from '../../src/adapters/redis/keys.js';
import { startTestRedis, waitFor, type TestRedis } from '../helpers/redis.js';
import { SYM, addResult, events, metricValue, seed000, startEngine, writeSnapshot, type RunningEngine } from './helpers.js';

let srv: TestRedis;
let redis: Redis;
let engines: RunningEngine[] = [];

beforeAll(async () => {
  srv = await startTestRedis();
  redis = createRedis(srv.url, { name: 'test', overrides: { retryStrategy: () => 50 } });
  redis.on('error', () => undefined);
});
afterAll(async () => {
  redis.disconnect();
  await srv.stop();
});
beforeEach(async () => {
  await redis.flushall();
});
afterEach(async () => {
  for (const e of engines) await e.stop();
  engines = [];
});

const state = () => redis.hgetall(keys.reconcileState(SYM));

describe('Redis down or restarted', () => {
  it('keeps running, reports not ready while Redis is down, resumes after a restart', async () => {
    await redis.hset(keys.ledger(SYM), { ledger_amt: '0.007', ledger_side: 'LONG', version: '1', ts_epoch: '1' });
    await writeSnapshot(redis, SYM, '0.007', 'LONG');
    const e = await startEngine(srv.url);
    engines.push(e);
    await waitFor(async () => (await state()).status === 'OK', 10_000, 25, 'OK');
    await waitFor(async () => (await e.ready()) === 200, 10_000, 50, 'ready');

    await srv.kill();
    await waitFor(async () => (await e.ready()) === 503, 20_000, 50, 'not ready while Redis is down');
    expect(await fetch(`http://127.0.0.1:${e.port}/healthz`).then((r) => r.status)).toBe(200);
    await srv.start();
    // An empty Redis after the restart: no snapshot → the engine holds missing_exchange.
    await waitFor(async () => (await redis.hgetall(keys.reconcileState(SYM))).reason === 'missing_exchange', 20_000, 50, 'pass after restart');
    await waitFor(async () => (await e.ready()) === 200, 20_000, 50, 'ready again');
    expect((await redis.get(keys.hold(SYM))) === '1').toBe(true);
    const errors = metricValue(await e.metrics(), 'p34_reconcile_pass_errors_total', { trigger: 'sweep' });
    expect(errors).toBeGreaterThan(0);

    // State restored by the brain and the apply layer: the engine clears its hold.
    await redis.hset(keys.ledger(SYM), { ledger_amt: '0.007', ledger_side: 'LONG', version: '1', ts_epoch: '1' });
    await writeSnapshot(redis, SYM, '0.007', 'LONG');
    await waitFor(async () => (await redis.get(keys.hold(SYM))) === null, 20_000, 25, 'hold cleared');
  });

  it('TestRedis.restart() mid-run: snapshot notifications work again on the re-connected blocking connection', async () => {
    await redis.hset(keys.ledger(SYM), { ledger_amt: '0.007', version: '1', ts_epoch: '1' });
    await writeSnapshot(redis, SYM, '0.007', 'LONG');
    const e = await startEngine(srv.url, { P34_LOOP_CADENCE_SEC: '3600' });
    engines.push(e);
    await waitFor(async () => (await state()).status === 'OK', 10_000, 25, 'first sweep');
    await srv.restart(300);
    await waitFor(async () => {
      // The sweep is an hour away: only a notification can trigger this pass.
      await redis.hset(keys.ledger(SYM), { ledger_amt: '0.002', version: '1', ts_epoch: '1' });
      await writeSnapshot(redis, SYM, '0.046', 'LONG');
      return (await state()).reason === 'qty_mismatch_no_evidence';
    }, 30_000, 500, 'pass triggered by a notification after the restart');
  });
});

describe('several engines against one Redis', () => {
  it('two engines on seed 000: one HOLD_SET, one MANUAL_REQUIRED, one drift episode; one HOLD_CLEARED after Option B', async () => {
    await seed000(redis);
    engines.push(await startEngine(srv.url, { P34_LOOP_CADENCE_SEC: '0.1', P3_INSTANCE_ID: 'eng-a' }));
    engines.push(await startEngine(srv.url, { P34_LOOP_CADENCE_SEC: '0.1', P3_INSTANCE_ID: 'eng-b' }));
    await waitFor(async () => (await state()).status === 'MANUAL_REQUIRED', 10_000, 25, 'HOLD');
    // Hammer: both engines also run explicit passes concurrently with their loops.
    for (let i = 0; i < 20; i++) await Promise.all(engines.map((e) => e.svc.engine.pass([SYM])));
    expect(await events(redis, 'HOLD_SET')).toHaveLength(1);
    expect(await events(redis, 'MANUAL_REQUIRED')).toHaveLength(1);
    const episodes = (await Promise.all(engines.map(async (e) => metricValue(await e.metrics(), 'p34_reconcile_drift_total', { symbol: SYM, reason: 'side_mismatch' }) ?? 0))).reduce((a, b) => a + b, 0);
    expect(episodes).toBe(1);
    expect(await state()).toMatchObject({ status: 'MANUAL_REQUIRED', reason: 'side_mismatch' });

    await redis.hset(keys.ledger(SYM), 'last_known_amt', '0.007', 'last_side', 'LONG');
    await waitFor(async () => (await redis.get(keys.hold(SYM))) === null, 10_000, 10, 'hold cleared');
    for (let i = 0; i < 10; i++) await Promise.all(engines.map((e) => e.svc.engine.pass([SYM])));
    expect(await events(redis, 'HOLD_CLEARED')).toHaveLength(1);
    expect((await state()).status).toBe('OK');
  });

  it('two engines repairing the same lost update: one AUTO_REPAIR, version bumped once', async () => {
    await redis.hset(keys.ledger(SYM), { ledger_amt: '0.007', ledger_side: 'LONG', version: '9', ts_epoch: String((Date.now() - 60_000) / 1000) });
    await addResult(redis, { plan_id: 'plan-x', symbol: SYM, side: 'BUY', qty: '0.005', filled_qty: '0.005', order_id: '42', ts_ms: String(Date.now() - 2000) });
    await writeSnapshot(redis, SYM, '0.012', 'LONG');
    engines.push(await startEngine(srv.url, { P34_LOOP_CADENCE_SEC: '3600', P3_INSTANCE_ID: 'eng-a' }));
    engines.push(await startEngine(srv.url, { P34_LOOP_CADENCE_SEC: '3600', P3_INSTANCE_ID: 'eng-b' }));
    for (let i = 0; i < 10; i++) await Promise.all(engines.map((e) => e.svc.engine.pass([SYM])));
    expect(await events(redis, 'AUTO_REPAIR')).toHaveLength(1);
    expect(await redis.hgetall(keys.ledger(SYM))).toMatchObject({ ledger_amt: '0.012', version: '10', source: 'p34_auto' });
    expect((await state()).status).toBe('OK');
  });
});
