/**
 * The real governor and position brain decide payload X of plan P at stream entry E. The plan stream is
 * then lost and rebuilt (as after a failover to a replica that never had the entry) and entry E of plan P
 * now carries another payload X', validly signed by the strategy: the issuers keep their first decision
 * (write-once), so the permits in Redis are those of X. The apply layer must not execute X' on them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STREAMS, keys } from '../../src/adapters/redis/keys.js';
import { planDigest, signPlan, type PlanInput } from '../../src/domain/plan.js';
import { GOV_KEY, P33_KEY, EXIT_KEY, ordersOf, planId, settle, startRig, waitResult, type Rig } from '../apply/helpers.js';
import { permits, setLedger, setSnapshot, startBrain, startGovernor, type Running } from './helpers.js';

let rig: Rig;
const running: Running[] = [];
const keyEnv = { P3_KEY_EXIT_BRAIN: EXIT_KEY, P3_KEY_GOVERNOR: GOV_KEY, P3_KEY_P33: P33_KEY, P3_ALLOWLIST: 'BTCUSDT' };

beforeAll(async () => {
  rig = await startRig({ BTCUSDT: '0.010' });
  await setSnapshot(rig.redis, 'BTCUSDT', '0.010');
  await setLedger(rig.redis, 'BTCUSDT', '0.010');
  running.push(await startGovernor(rig.srv.url, 'g1', { ...keyEnv, GOVERNOR_MODE: 'live', GOVERNOR_MAX_NOTIONAL_USD: '1000000' }));
  running.push(await startBrain(rig.srv.url, 'b1', keyEnv));
});
afterAll(async () => {
  for (const r of running) await r.stop();
  await rig?.stop();
});

describe('a permit decided for one payload, presented for another under the same plan id and entry id', () => {
  it('is refused by the apply layer (SKIPPED permit_plan_mismatch), nothing sent', async () => {
    const id = planId('swap');
    const x: PlanInput = { plan_id: id, symbol: 'BTCUSDT', decision: 'EXECUTE', action: 'PARTIAL_25', side: 'SELL', type: 'MARKET', reduceOnly: true, reason: 'exit', source: 'exit_brain', kill_score: 0.5, ts_ms: Date.now() };
    const sx = signPlan(x, EXIT_KEY);
    const entryId = (await rig.redis.xadd(STREAMS.applyPlan, '*', 'plan', sx.plan, 'mac', sx.mac)) as string;
    const real = await permits(rig.redis, id);
    expect(real.governor.decision).toBe('ALLOW');
    expect(real.p33.decision).toBe('ALLOW');
    // the real issuers bind the payload they decided
    expect(real.governor.fields.plan_digest).toBe(planDigest(sx.plan));
    expect(real.p33.fields.plan_digest).toBe(planDigest(sx.plan));

    // the stream is lost and rebuilt: entry E of plan P now carries X' (a FULL_CLOSE), validly signed
    const sx2 = signPlan({ ...x, action: 'FULL_CLOSE' }, EXIT_KEY);
    await rig.redis.del(STREAMS.applyPlan);
    await rig.redis.xadd(STREAMS.applyPlan, entryId, 'plan', sx2.plan, 'mac', sx2.mac);

    await rig.startApply({ ...keyEnv, P3_ALLOWLIST: 'BTCUSDT,ETHUSDT' });
    expect(await waitResult(rig.redis, id)).toMatchObject({ status: 'SKIPPED', reason: 'permit_plan_mismatch', executed: 'false' });
    await settle(300);
    expect(await ordersOf(rig.paper, id)).toHaveLength(0);
    // the issuers kept their first decision (write-once): the permits are still those of X
    expect((await rig.redis.hget(keys.permitGovernor(id), 'plan_digest')) ?? '').toBe(planDigest(sx.plan));
  });
});
