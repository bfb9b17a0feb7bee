/**
 * The apply layer wakes a plan waiting for its permits on the permit's notification
 * (`permitWrite-1.lua` publishes on `quantum:notify:permit` in the same step as the write), and a lost
 * notification still ends in a decision through the fallback re-read. No timed assertions: with the
 * fallback re-read set to 10 minutes, only the notification can bring the decision within the test's wait.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { CHANNELS, keys } from '../../src/adapters/redis/keys.js';
import { signPermit } from '../../src/domain/permit-signature.js';
import { writePermitOnce } from '../../src/plans/permit-store.js';
import type { PermitFields } from '../../src/domain/permits.js';
import { planIdOfNotification } from '../../src/services/apply-layer/permit-waker.js';
import { waitFor } from '../helpers/redis.js';
import { GOV_KEY, P33_KEY, entryBinding, planId, settle, startRig, submitPlan, waitResult, type Rig } from './helpers.js';

let rig: Rig;
beforeAll(async () => {
  rig = await startRig({ BTCUSDT: '1' });
});
afterAll(async () => {
  await rig.stop();
});
afterEach(async () => {
  for (const s of rig.services.splice(0)) await s.stop();
});

/** Fallback re-read and total wait so long that a decision within the test's wait can only come from a notification. */
const NO_FALLBACK = { APPLY_MODE: 'dry_run', APPLY_PERMIT_POLL_MS: '600000', APPLY_PERMIT_WAIT_MS: '600000' };

/** The entry id an apply layer claimed for the plan (`claimed|<entry>|<token>`), once it did. */
async function claimedEntry(redis: Redis, id: string): Promise<string> {
  return waitFor(async () => ((await redis.get(keys.applyDedupe(id))) ?? '').split('|')[1], 20_000, 10, `claim of ${id}`);
}

/** A permit as the governor / brain write it: signed for the entry, through permitWrite-1.lua (which publishes). */
async function issue(redis: Redis, issuer: 'governor' | 'p33', id: string, entryId: string, over: Record<string, string> = {}, key = issuer === 'governor' ? GOV_KEY : P33_KEY): Promise<void> {
  const fields = {
    decision: 'ALLOW',
    reason: 'ok',
    context: issuer === 'p33' ? JSON.stringify({ snapshot_ts_ms: Date.now() }) : '{}',
    ts_ms: String(Date.now()),
    plan_id: id,
    symbol: 'BTCUSDT',
    side: 'SELL',
    qty: '0.002',
    entry_id: entryId,
    ...over,
  } as PermitFields;
  expect(await writePermitOnce(redis, issuer, signPermit(issuer, key, await entryBinding(redis, id, entryId), fields), 60)).toBe(true);
}

/** Subscribers of the permit channel (the apply layers' waker connections). */
async function subscribers(redis: Redis): Promise<number> {
  const r = (await redis.call('PUBSUB', 'NUMSUB', CHANNELS.permitWritten)) as [string, number];
  return Number(r[1]);
}

describe('permit notifications', () => {
  it('the notification names the permit key; the plan id is read back from either issuer', () => {
    expect(planIdOfNotification(keys.permitGovernor('p-1:a.b'))).toBe('p-1:a.b');
    expect(planIdOfNotification(keys.permitP33('p-2'))).toBe('p-2');
    expect(planIdOfNotification('quantum:permit:governor:')).toBeNull();
    expect(planIdOfNotification('something else')).toBeNull();
  });

  it('permitWrite-1.lua publishes the key in the same step as the write, and nothing when the permit exists', async () => {
    const sub = rig.redis.duplicate();
    const got: string[] = [];
    sub.on('message', (_c: string, m: string) => got.push(m));
    await sub.subscribe(CHANNELS.permitWritten);
    try {
      const id = planId('pub');
      await issue(rig.redis, 'governor', id, '1-1');
      expect(await writePermitOnce(rig.redis, 'governor', signPermit('governor', GOV_KEY, await entryBinding(rig.redis, id, '1-1'), { decision: 'DENY', plan_id: id } as unknown as PermitFields), 60)).toBe(false);
      await issue(rig.redis, 'p33', id, '1-1');
      await waitFor(() => got.length >= 2, 5000, 10, 'two notifications');
      await settle(200);
      expect(got).toEqual([keys.permitGovernor(id), keys.permitP33(id)]);
      expect(await rig.redis.hget(keys.permitGovernor(id), 'decision')).toBe('ALLOW');
    } finally {
      sub.disconnect();
    }
  });

  it('permits written after the plan is waiting wake it: decided without any fallback re-read', async () => {
    await rig.startApply(NO_FALLBACK);
    await waitFor(async () => (await subscribers(rig.redis)) >= 1, 10_000, 20, 'the waker subscribed');
    const id = planId('wake');
    await submitPlan(rig.redis, { plan_id: id });
    const entryId = await claimedEntry(rig.redis, id);
    await settle(300); // the plan has read its (missing) permits and waits
    await issue(rig.redis, 'governor', id, entryId);
    await settle(300); // one permit is not enough: still waiting
    await issue(rig.redis, 'p33', id, entryId);
    expect(await waitResult(rig.redis, id)).toMatchObject({ status: 'SKIPPED', reason: 'dry_run', would_execute: 'true', qty: '0.002' });
  });

  it('a woken plan still checks every permit: a forged one is a DENY (permit_signature_invalid), a DENY skips', async () => {
    await rig.startApply(NO_FALLBACK);
    await waitFor(async () => (await subscribers(rig.redis)) >= 1, 10_000, 20, 'the waker subscribed');
    const forged = planId('wake-forged');
    await submitPlan(rig.redis, { plan_id: forged });
    const e1 = await claimedEntry(rig.redis, forged);
    await settle(300);
    await issue(rig.redis, 'governor', forged, e1);
    await issue(rig.redis, 'p33', forged, e1, {}, 'not-the-p33-key');
    expect(await waitResult(rig.redis, forged)).toMatchObject({ status: 'SKIPPED', reason: 'permit_signature_invalid' });

    const denied = planId('wake-deny');
    await submitPlan(rig.redis, { plan_id: denied });
    const e2 = await claimedEntry(rig.redis, denied);
    await settle(300);
    await issue(rig.redis, 'p33', denied, e2, { decision: 'DENY', reason: 'stale_exchange', qty: '', side: '' });
    expect(await waitResult(rig.redis, denied)).toMatchObject({ status: 'SKIPPED', reason: 'stale_exchange' });
  });

  it('a permit verified on one read and altered before the next is verified again (permit_signature_invalid)', async () => {
    await rig.startApply(NO_FALLBACK);
    await waitFor(async () => (await subscribers(rig.redis)) >= 1, 10_000, 20, 'the waker subscribed');
    const id = planId('wake-altered');
    await submitPlan(rig.redis, { plan_id: id });
    const entryId = await claimedEntry(rig.redis, id);
    await settle(300);
    await issue(rig.redis, 'governor', id, entryId);
    await settle(300); // the genuine governor permit was read and verified; the plan waits for the p33 one
    await rig.redis.hset(keys.permitGovernor(id), 'qty', '5'); // same signature, another quantity
    await issue(rig.redis, 'p33', id, entryId);
    expect(await waitResult(rig.redis, id)).toMatchObject({ status: 'SKIPPED', reason: 'permit_signature_invalid' });
  });

  it('a lost notification still ends in a decision through the fallback re-read', async () => {
    await rig.startApply({ APPLY_MODE: 'dry_run', APPLY_PERMIT_POLL_MS: '200', APPLY_PERMIT_WAIT_MS: '600000' });
    const id = planId('lost');
    await submitPlan(rig.redis, { plan_id: id });
    const entryId = await claimedEntry(rig.redis, id);
    await settle(300);
    // written without the script: no notification at all
    const binding = await entryBinding(rig.redis, id, entryId);
    const m = rig.redis.multi();
    m.hset(keys.permitGovernor(id), signPermit('governor', GOV_KEY, binding, { decision: 'ALLOW', reason: 'ok', context: '{}', plan_id: id, entry_id: entryId, symbol: 'BTCUSDT', side: 'SELL', qty: '0.001', ts_ms: String(Date.now()) }));
    m.hset(keys.permitP33(id), signPermit('p33', P33_KEY, binding, { decision: 'ALLOW', reason: 'ok', context: JSON.stringify({ snapshot_ts_ms: Date.now() }), plan_id: id, entry_id: entryId, symbol: 'BTCUSDT', side: 'SELL', qty: '0.001', ts_ms: String(Date.now()) }));
    await m.exec();
    expect(await waitResult(rig.redis, id)).toMatchObject({ status: 'SKIPPED', reason: 'dry_run', qty: '0.001' });
  });

  it('a killed subscriber connection: the notification meanwhile is lost (fallback decides), then it resubscribes and wakes plans again', async () => {
    await rig.startApply({ APPLY_MODE: 'dry_run', APPLY_PERMIT_POLL_MS: '300', APPLY_PERMIT_WAIT_MS: '600000' });
    await waitFor(async () => (await subscribers(rig.redis)) >= 1, 10_000, 20, 'the waker subscribed');
    const lost = planId('killed');
    await submitPlan(rig.redis, { plan_id: lost });
    const e1 = await claimedEntry(rig.redis, lost);
    await settle(300);
    await rig.redis.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
    await issue(rig.redis, 'governor', lost, e1);
    await issue(rig.redis, 'p33', lost, e1);
    expect(await waitResult(rig.redis, lost)).toMatchObject({ status: 'SKIPPED', reason: 'dry_run' });
    for (const s of rig.services.splice(0)) await s.stop();

    // the same again with the fallback out of reach: only a resubscribed waker can decide it
    await rig.startApply(NO_FALLBACK);
    await waitFor(async () => (await subscribers(rig.redis)) >= 1, 10_000, 20, 'the waker subscribed');
    await rig.redis.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
    await waitFor(async () => (await subscribers(rig.redis)) >= 1, 20_000, 50, 'the waker resubscribed');
    const woken = planId('resubscribed');
    await submitPlan(rig.redis, { plan_id: woken });
    const e2 = await claimedEntry(rig.redis, woken);
    await settle(300);
    await issue(rig.redis, 'governor', woken, e2);
    await issue(rig.redis, 'p33', woken, e2);
    expect(await waitResult(rig.redis, woken)).toMatchObject({ status: 'SKIPPED', reason: 'dry_run' });
  });
});
