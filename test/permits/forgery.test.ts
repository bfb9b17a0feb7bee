/**
 * Someone with write access to Redis cannot approve a plan. The real governor and position
 * brain decide plans; permits then rewritten by hand (fields copied from real permits, or a real permit
 * of another plan) are refused by the apply layer as `SKIPPED permit_signature_invalid`, counted and
 * never sent to the (paper) exchange, while the plan with genuine permits executes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keys } from '../../src/adapters/redis/keys.js';
import { GOV_KEY, P33_KEY, EXIT_KEY, ordersOf, planId, startRig, submitPlan, waitResult, type Rig } from '../apply/helpers.js';
import { permits, setLedger, setSnapshot, startBrain, startGovernor, type Running } from './helpers.js';

let rig: Rig;
const running: Running[] = [];
const keyEnv = { P3_KEY_EXIT_BRAIN: EXIT_KEY, P3_KEY_GOVERNOR: GOV_KEY, P3_KEY_P33: P33_KEY, P3_ALLOWLIST: 'BTCUSDT' };

beforeAll(async () => {
  rig = await startRig({ BTCUSDT: '0.010' });
  await setSnapshot(rig.redis, 'BTCUSDT', '0.010');
  await setLedger(rig.redis, 'BTCUSDT', '0.010');
  // one plan per symbol passes the governor's rate, every later one is DENY
  running.push(await startGovernor(rig.srv.url, 'g1', { ...keyEnv, GOVERNOR_SYMBOL_RATE_BURST: '1', GOVERNOR_SYMBOL_RATE_PER_MIN: '0.0001' }));
  running.push(await startBrain(rig.srv.url, 'b1', keyEnv));
});
afterAll(async () => {
  for (const r of running) await r.stop();
  await rig?.stop();
});

describe('forged permits', () => {
  it('a denied plan stays unexecuted when ALLOW permits are written by hand; a real permit of another plan is refused', async () => {
    const allowed = planId('real');
    await submitPlan(rig.redis, { plan_id: allowed, action: 'PARTIAL_50' });
    const real = await permits(rig.redis, allowed);
    expect(real.governor.decision).toBe('ALLOW');
    expect(real.p33.decision).toBe('ALLOW');
    expect(real.governor.fields.sig).toMatch(/^[0-9a-f]{64}$/);

    // 1. the governor denied this plan; its permit is replaced by the brain's real ALLOW permit, fields copied
    const denied = planId('denied');
    await submitPlan(rig.redis, { plan_id: denied, action: 'PARTIAL_25' });
    const d = await permits(rig.redis, denied);
    expect(d.governor.decision).toBe('DENY');
    expect(d.p33.decision).toBe('ALLOW');
    await rig.redis.multi().del(keys.permitGovernor(denied)).hset(keys.permitGovernor(denied), { ...d.p33.fields, decision: 'ALLOW' }).expire(keys.permitGovernor(denied), 60).exec();

    // 2. another denied plan gets both real, validly signed permits of the allowed plan (plan_id rewritten too)
    const other = planId('other');
    await submitPlan(rig.redis, { plan_id: other, action: 'PARTIAL_25' });
    expect((await permits(rig.redis, other)).governor.decision).toBe('DENY');
    await rig.redis
      .multi()
      .del(keys.permitGovernor(other), keys.permitP33(other))
      .hset(keys.permitGovernor(other), { ...real.governor.fields, plan_id: other })
      .hset(keys.permitP33(other), real.p33.fields)
      .exec();

    // 3. the same plan's own real permits with one field changed (a bigger qty)
    const tampered = planId('tampered');
    await submitPlan(rig.redis, { plan_id: tampered, action: 'PARTIAL_25' });
    const t = await permits(rig.redis, tampered);
    await rig.redis.multi().hset(keys.permitGovernor(tampered), 'decision', 'ALLOW').hset(keys.permitP33(tampered), 'qty', '0.010').exec();
    void t;

    const apply = await rig.startApply({ ...keyEnv, P3_ALLOWLIST: 'BTCUSDT,ETHUSDT' });
    expect(await waitResult(rig.redis, allowed, ['EXECUTED'])).toMatchObject({ qty: '0.005' });
    for (const id of [denied, other, tampered]) {
      expect(await waitResult(rig.redis, id)).toMatchObject({ status: 'SKIPPED', reason: 'permit_signature_invalid', executed: 'false' });
      expect(await ordersOf(rig.paper, id)).toHaveLength(0);
    }
    expect(await ordersOf(rig.paper, allowed)).toHaveLength(1);
    const metric = await apply.registry.getSingleMetric('apply_permit_signature_invalid_total')!.get();
    const total = metric.values.reduce((a, v) => a + v.value, 0);
    expect(total).toBe(3);
    expect(metric.values.find((v) => v.labels.issuer === 'governor' && v.labels.symbol === 'BTCUSDT')?.value).toBe(3);
  });
});
