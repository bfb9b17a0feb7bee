/**
 * Found by `p3 chaos --sentinel --faults all --seed 102`: two apply layers handled the same plan entry (a
 * redelivery after a takeover while the first was still working). The second took the claim over (its
 * token); the first, fenced, ACKNOWLEDGED the entry when it finished — XACK is group-wide, so the entry left
 * the pending list of the consumer that now owned the work; that consumer was then killed, and the plan
 * never got a final result (every re-submission was DROPPED_DUPLICATE against the orphaned claim).
 *
 * Now a fenced handler whose entry's claim is held by another unfinished token leaves the entry pending
 * (HandedOver); the consumer looks at it again later and, the other handler being gone, finishes it.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { STREAMS, keys } from '../../src/adapters/redis/keys.js';
import { dedupeValue } from '../../src/domain/apply.js';
import { APPLY_GROUP } from '../../src/services/apply-layer/index.js';
import { waitFor } from '../helpers/redis.js';
import { ordersOf, planId, resultsOf, startRig, submitPlan, waitResult, writePermits, type Rig } from './helpers.js';

let rig: Rig;
beforeAll(async () => {
  rig = await startRig({ BTCUSDT: '0.010' });
  await rig.startApply();
}, 60_000);
afterAll(async () => {
  await rig.stop();
});

it('a plan whose claim another consumer took over (then died) is not acknowledged by the fenced handler, and still gets exactly one result', async () => {
  const id = planId('handover');
  const entryId = await submitPlan(rig.redis, { plan_id: id }); // no permits yet: the apply layer claims it and waits
  const mine = await waitFor(async () => {
    const v = await rig.redis.get(keys.applyDedupe(id));
    return v?.startsWith(`claimed|${entryId}|`) ? v : undefined;
  }, 10_000, 5, 'the apply layer claims the plan');
  // another apply layer takes the entry's work over (a redelivery after a takeover) and is then killed
  const other = dedupeValue('claimed', entryId, 'apply-other:0badf00d');
  expect(await rig.redis.set(keys.applyDedupe(id), other, 'KEEPTTL')).toBe('OK');
  expect(other).not.toBe(mine);
  // the permits arrive: the first handler decides (SKIPPED on the DENY) and finds itself fenced
  await writePermits(rig.redis, id, {
    gov: { decision: 'DENY', reason: 'over_max_order_usd', context: '{}', symbol: 'BTCUSDT', ts_ms: String(Date.now()) },
    p33: { decision: 'ALLOW', reason: 'ok', context: JSON.stringify({ snapshot_ts_ms: Date.now() }), qty: '0.005', side: 'SELL', symbol: 'BTCUSDT', ts_ms: String(Date.now()) },
  });
  // the fenced handler published nothing and left the entry pending (before the fix: acknowledged, lost)
  await new Promise((r) => setTimeout(r, 1500));
  expect(await resultsOf(rig.redis, id)).toEqual([]);
  const pending = (await rig.redis.xpending(STREAMS.applyPlan, APPLY_GROUP, '-', '+', 10)) as Array<[string, string, number, number]>;
  expect(pending.map((p) => p[0])).toContain(entryId);
  // the other handler never finishes: the pending entry is handled again, the orphaned claim resumed, and
  // the plan ends with exactly one final result
  expect(await waitResult(rig.redis, id, [], 30_000)).toMatchObject({ status: 'SKIPPED', reason: 'over_max_order_usd' });
  await waitFor(async () => ((await rig.redis.xpending(STREAMS.applyPlan, APPLY_GROUP, '-', '+', 10)) as unknown[]).length === 0, 10_000, 50, 'entry acknowledged');
  expect((await resultsOf(rig.redis, id)).map((r) => r.status)).toEqual(['SKIPPED']);
  expect(await rig.redis.get(keys.applyDedupe(id))).toMatch(/^done\|/);
  expect(await ordersOf(rig.paper, id)).toHaveLength(0);
}, 60_000);
