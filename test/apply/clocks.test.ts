/**
 * Every timestamp that gates an order is bounded (real Redis, the real ccxt gateway, the paper exchange):
 * - a plan dated more than the trusted producer skew (1 s) after Redis added its entry is refused before
 *   anything is sent (the duplicate protection after a Redis loss trusts `ts_ms` within that skew; before, the
 *   apply layer accepted plans up to its 120 s max age in the future);
 * - an order whose outcome stays unknown longer than the in-flight hash's TTL stays in flight (before, the
 *   record expired after APPLY_INFLIGHT_TTL_SEC while the order could still be unresolved, and the send-time
 *   gate and the engine's grace rule lost sight of it);
 * - a fill time found in the future (a writer's clock jumped) counts as the Redis server's now in the send-time
 *   gate, so it does not block the symbol's orders until that time (applyRecord-8.lua also clamps what it writes).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { keys } from '../../src/adapters/redis/keys.js';
import { clientOrderIdFor } from '../../src/domain/apply.js';
import { adminFaults, adminSetPosition, clearFaults } from '../helpers/paper.js';
import { waitFor } from '../helpers/redis.js';
import { allowPermits, ordersOf, planId, settle, startRig, submitPlan, waitResult, type Rig } from './helpers.js';

let rig: Rig;
beforeAll(async () => {
  rig = await startRig({ BTCUSDT: '0.007', ETHUSDT: '0' });
  await rig.startApply({ APPLY_INFLIGHT_TTL_SEC: '2', APPLY_INFLIGHT_SETTLE_MS: '1000', APPLY_INFLIGHT_SWEEP_MS: '300', APPLY_LOOKUP_ATTEMPTS: '1' });
});
afterAll(async () => {
  await rig?.stop();
});
beforeEach(async () => {
  await clearFaults(rig.paper.url);
  await adminSetPosition(rig.paper.url, 'BTCUSDT', '0.007');
});

describe('clocks', () => {
  it('a plan dated 5 s after its entry was added is SKIPPED plan_from_future, nothing sent', async () => {
    const id = planId('future');
    await submitPlan(rig.redis, { plan_id: id, ts_ms: Date.now() + 5000 });
    await allowPermits(rig.redis, id, '0.003');
    expect(await waitResult(rig.redis, id)).toMatchObject({ status: 'SKIPPED', reason: 'plan_from_future' });
    await settle(200);
    expect(await ordersOf(rig.paper, id)).toHaveLength(0);
  });

  it('an order unresolved for longer than the in-flight TTL stays in flight until it is resolved', async () => {
    const id = planId('unresolved');
    const cid = clientOrderIdFor(id);
    // every order request and lookup answers 503 "Unknown error" (execution status unknown)
    await adminFaults(rig.paper.url, { kind: 'http_503_unknown', duration_ms: 60_000, endpoints: ['order'] });
    await submitPlan(rig.redis, { plan_id: id });
    await allowPermits(rig.redis, id, '0.003');
    await waitFor(async () => (await rig.redis.hexists(keys.applyInflight('BTCUSDT'), cid)) === 1, 20_000, 50, 'marked in flight');
    await settle(5000); // more than twice the 2 s TTL
    expect(await rig.redis.hexists(keys.applyInflight('BTCUSDT'), cid)).toBe(1);
    await clearFaults(rig.paper.url);
    await waitFor(async () => (await rig.redis.hexists(keys.applyInflight('BTCUSDT'), cid)) === 0, 60_000, 100, 'resolved and out of flight');
  }, 90_000);

  it('a fill time found in the future does not block the symbol (it counts as now)', async () => {
    // found in the future (written before this bound existed, or by hand): the next order still goes out
    await rig.redis.set(keys.lastFill('BTCUSDT'), String(Date.now() + 3_600_000), 'EX', 3600);
    const id = planId('after-future-fill');
    await submitPlan(rig.redis, { plan_id: id });
    await allowPermits(rig.redis, id, '0.003', 'SELL', '0.003', 'BTCUSDT', Date.now() + 1000);
    expect(await waitResult(rig.redis, id)).toMatchObject({ status: 'EXECUTED' });
    await rig.redis.del(keys.lastFill('BTCUSDT'));
  });
});
