/**
 * Hostile review of the HandedOver fix: two LIVE apply layers, a plan whose handler stays in stage `claimed`
 * longer than APPLY_CLAIM_IDLE_MS (its permits never come; APPLY_PERMIT_WAIT_MS > claim idle, as in the chaos
 * stack: 5000 vs 10000). XAUTOCLAIM may hand the entry to the other layer, whose redelivery takes the claim
 * over, and the fenced handler leaves the entry pending (HandedOver) instead of acknowledging it. Guard: this
 * never turns into an endless steal-back; the plan ends with exactly one final result (SKIPPED permit_timeout).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { keys } from '../../src/adapters/redis/keys.js';
import { planId, resultsOf, startRig, submitPlan, waitResult, type Rig } from './helpers.js';

let rig: Rig;
beforeAll(async () => {
  rig = await startRig({ BTCUSDT: '0.010' });
  const extra = { APPLY_CLAIM_IDLE_MS: '1000', APPLY_PERMIT_WAIT_MS: '4000' };
  await rig.startApply(extra);
  await rig.startApply(extra);
}, 60_000);
afterAll(async () => {
  await rig.stop();
});

it('a plan whose permits never come ends SKIPPED permit_timeout (exactly one result) with two live apply layers', async () => {
  const id = planId('livelock');
  await submitPlan(rig.redis, { plan_id: id });
  const tokens = new Set<string>();
  const poll = setInterval(() => void rig.redis.get(keys.applyDedupe(id)).then((v) => v && tokens.add(v)), 50);
  try {
    // one permit wait (4 s) plus a takeover or two is plenty; a livelock never gets here
    const r = await waitResult(rig.redis, id, [], 25_000).catch((e: Error) => ({ error: e.message }));
    expect({ r, claims: [...tokens] }).toMatchObject({ r: { status: 'SKIPPED', reason: 'permit_timeout' } });
    expect((await resultsOf(rig.redis, id)).map((x) => x.status)).toEqual(['SKIPPED']);
  } finally {
    clearInterval(poll);
  }
}, 60_000);
