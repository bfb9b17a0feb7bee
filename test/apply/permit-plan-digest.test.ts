/**
 * A permit authorises one plan payload, not merely a plan id and a stream entry id: permits validly
 * signed for entry E of plan P but for another payload (or in the format without a plan digest) are
 * refused by the real apply layer, and nothing reaches the (paper) exchange.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { keys } from '../../src/adapters/redis/keys.js';
import { signPlan, type PlanInput } from '../../src/domain/plan.js';
import { EXIT_KEY, allowPermits, ordersOf, planId, settle, startRig, submitPlan, waitResult, writePermits, type Rig } from './helpers.js';

let rig: Rig;
beforeAll(async () => {
  rig = await startRig({ BTCUSDT: '1' });
  await rig.redis.hset(keys.ledger('BTCUSDT'), { ledger_amt: '1', ledger_side: 'LONG', ts_epoch: '1', source: 'init', version: '1' });
});
afterAll(async () => {
  await rig.stop();
});
afterEach(async () => {
  for (const s of rig.services.splice(0)) await s.stop();
});

/** The permits of a small PARTIAL_25 exit, decided for `planJson` (see `PermitPair.planJson`). */
function exitPermits(planJson?: string, legacyV1?: boolean) {
  const ts = String(Date.now());
  const base = { decision: 'ALLOW', reason: 'ok', side: 'SELL', symbol: 'BTCUSDT', qty: '0.001', ts_ms: ts };
  return { gov: { ...base, context: '{}' }, p33: { ...base, context: JSON.stringify({ snapshot_ts_ms: Date.now() }) }, planJson, legacyV1 };
}

describe('permits bind the plan payload', () => {
  it('permits decided for payload X do not authorise payload X\u2032 under the same plan id and entry id', async () => {
    const apply = await rig.startApply();
    const id = planId('payload');
    const x: PlanInput = { plan_id: id, symbol: 'BTCUSDT', decision: 'EXECUTE', action: 'PARTIAL_25', side: 'SELL', type: 'MARKET', reduceOnly: true, reason: 'exit', source: 'exit_brain', kill_score: 0.5, ts_ms: Date.now() };
    const decidedFor = signPlan(x, EXIT_KEY).plan;
    // the stream entry carries X' (a FULL_CLOSE), validly signed by the strategy; the permits were decided for X
    await writePermits(rig.redis, id, exitPermits(decidedFor));
    await submitPlan(rig.redis, { ...x, action: 'FULL_CLOSE' });
    const r = await waitResult(rig.redis, id);
    expect(r).toMatchObject({ status: 'SKIPPED', reason: 'permit_plan_mismatch', executed: 'false' });
    await settle(300);
    expect(await ordersOf(rig.paper, id)).toHaveLength(0);
    // counted per issuer (the governor's permit is checked first)
    const metric = await apply.registry.getSingleMetric('apply_permit_plan_mismatch_total')!.get();
    expect(metric.values.find((v) => v.labels.issuer === 'governor' && v.labels.symbol === 'BTCUSDT')?.value).toBe(1);
  });

  it('permits without a plan digest (the first permit format) are refused, nothing sent', async () => {
    await rig.startApply();
    const id = planId('legacy');
    await writePermits(rig.redis, id, exitPermits(undefined, true));
    await submitPlan(rig.redis, { plan_id: id, action: 'PARTIAL_25' });
    expect(await waitResult(rig.redis, id)).toMatchObject({ status: 'SKIPPED', reason: 'permit_signature_invalid', executed: 'false' });
    await settle(300);
    expect(await ordersOf(rig.paper, id)).toHaveLength(0);
  });

  it('permits decided for the entry\u2019s own payload execute', async () => {
    await rig.startApply();
    const id = planId('own');
    await allowPermits(rig.redis, id, '0.001');
    await submitPlan(rig.redis, { plan_id: id, action: 'PARTIAL_25' });
    expect(await waitResult(rig.redis, id)).toMatchObject({ status: 'EXECUTED', qty: '0.001' });
    expect(await ordersOf(rig.paper, id)).toHaveLength(1);
  });
});
