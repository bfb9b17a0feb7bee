/**
 * An entry is not reduce-only: the apply layer reads the position FRESH from the exchange before sending it,
 * so a manual trade the snapshot has not shown yet can never make an entry flip a position (found by
 * `p3 chaos`, seed 12: an OPEN SELL permitted on a flat snapshot, a manual BUY 0.002 120 ms before the send).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keys } from '../../src/adapters/redis/keys.js';
import { adminPositions, adminSetPosition } from '../helpers/paper.js';
import { allowPermits, ordersOf, planId, startRig, submitPlan, waitResult, type Rig } from './helpers.js';

let rig: Rig;
beforeAll(async () => {
  rig = await startRig({ BTCUSDT: '0' });
  await rig.startApply();
});
afterAll(async () => {
  await rig.stop();
});

describe('entries at send time', () => {
  it('an OPEN sized on a flat snapshot is SKIPPED position_changed when the exchange is no longer flat: nothing sent, no flip', async () => {
    const now = Date.now();
    // the brain's last snapshot still says flat ...
    await rig.redis.hset(keys.snapshot('BTCUSDT'), { position_amt: '0', side: 'FLAT', ts_ms: String(now), ts_epoch: (now / 1000).toFixed(3), step_size: '0.001' });
    // ... but someone bought 0.002 on the exchange since
    await adminSetPosition(rig.paper.url, 'BTCUSDT', '0.002');
    const id = planId('open');
    await submitPlan(rig.redis, { plan_id: id, action: 'OPEN', side: 'SELL', qty: '0.003', reduceOnly: false });
    await allowPermits(rig.redis, id, '0.003', 'SELL', '0.003', 'BTCUSDT', now);
    expect(await waitResult(rig.redis, id)).toMatchObject({ status: 'SKIPPED', reason: 'position_changed' });
    expect(await ordersOf(rig.paper, id)).toHaveLength(0);
    expect((await adminPositions(rig.paper.url)).BTCUSDT?.positionAmt).toBe('0.002');
  });

  it('the same OPEN on a position that really is flat executes with reduceOnly false', async () => {
    const now = Date.now();
    await adminSetPosition(rig.paper.url, 'BTCUSDT', '0');
    await rig.redis.hset(keys.snapshot('BTCUSDT'), { position_amt: '0', side: 'FLAT', ts_ms: String(now), ts_epoch: (now / 1000).toFixed(3), step_size: '0.001' });
    const id = planId('open-ok');
    await submitPlan(rig.redis, { plan_id: id, action: 'OPEN', side: 'SELL', qty: '0.003', reduceOnly: false });
    await allowPermits(rig.redis, id, '0.003', 'SELL', '0.003', 'BTCUSDT', now);
    expect(await waitResult(rig.redis, id)).toMatchObject({ status: 'EXECUTED', side: 'SELL', filled_qty: '0.003' });
    expect(((await ordersOf(rig.paper, id)) as Array<{ reduceOnly: boolean }>).map((o) => o.reduceOnly)).toEqual([false]);
  });
});
