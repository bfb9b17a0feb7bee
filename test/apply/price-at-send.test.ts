/**
 * The price collar and the stale-mark check repeated at the last moment before an entry's request goes out
 * (src/services/apply-layer/send/price-at-send.ts, docs/risk-controls.md#price-collar): the mark moves while the
 * order waits in the (simulated) client throttle queue, after both permits were issued. The real ccxt gateway
 * and the paper exchange carry the order.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { keys } from '../../src/adapters/redis/keys.js';
import { adminSetPosition } from '../helpers/paper.js';
import { allowPermits, ordersOf, planId, startRig, submitPlan, waitResult, type Rig } from './helpers.js';

let rig: Rig;
let inQueue: (() => Promise<void>) | null = null;

beforeAll(async () => {
  rig = await startRig({ BTCUSDT: '0', ETHUSDT: '0' });
  await rig.startApply(
    { GOVERNOR_PRICE_COLLAR_BPS: '100', GOVERNOR_MARK_INDEX_MAX_BPS: '200', GOVERNOR_MARK_MAX_AGE_MS: '5000' },
    { hooks: { beforeOrderRequest: async () => void (await inQueue?.()) } },
  );
});
afterAll(async () => {
  await rig?.stop();
});
beforeEach(async () => {
  inQueue = null;
  await adminSetPosition(rig.paper.url, 'ETHUSDT', '0');
  const now = Date.now();
  await rig.redis.del(keys.snapshot('ETHUSDT'));
  await rig.redis.hset(keys.snapshot('ETHUSDT'), { position_amt: '0', side: 'FLAT', ts_ms: String(now), ts_epoch: String(now / 1000), step_size: '0.001', mark_price: '50000', mark_ts_ms: String(now), index_price: '50000' });
});

/** An OPEN of ETHUSDT (ref_price as given) whose order waits in the queue while `meanwhile` runs. */
async function openWith(refPrice: string | undefined, meanwhile: () => Promise<unknown>): Promise<{ r: Record<string, string>; id: string }> {
  const id = planId('collar');
  inQueue = async () => void (await meanwhile());
  await submitPlan(rig.redis, { plan_id: id, symbol: 'ETHUSDT', action: 'OPEN', side: 'BUY', qty: '0.002', reduceOnly: false, reason: 'entry', ...(refPrice ? { ref_price: refPrice } : {}) });
  await allowPermits(rig.redis, id, '0.002', 'BUY', '0.002', 'ETHUSDT');
  return { r: await waitResult(rig.redis, id), id };
}
const moveMark = (mark: string, index = mark) => rig.redis.hset(keys.snapshot('ETHUSDT'), { mark_price: mark, index_price: index, mark_ts_ms: String(Date.now()) });

describe('the price just before sending an entry', () => {
  it('the mark moved 2 % away from ref_price between permit and send: SKIPPED price_collar, nothing sent', async () => {
    const { r, id } = await openWith('50000', () => moveMark('51000'));
    expect(r).toMatchObject({ status: 'SKIPPED', reason: 'price_collar' });
    expect(await ordersOf(rig.paper, id)).toHaveLength(0);
  });

  it('no ref_price and the mark left the index meanwhile (3 %): SKIPPED price_collar, nothing sent', async () => {
    const { r, id } = await openWith(undefined, () => moveMark('50000', '48500'));
    expect(r).toMatchObject({ status: 'SKIPPED', reason: 'price_collar' });
    expect(await ordersOf(rig.paper, id)).toHaveLength(0);
  });

  it('the mark went stale meanwhile: SKIPPED stale_mark, nothing sent', async () => {
    const { r, id } = await openWith('50000', () => rig.redis.hset(keys.snapshot('ETHUSDT'), 'mark_ts_ms', String(Date.now() - 6000)));
    expect(r).toMatchObject({ status: 'SKIPPED', reason: 'stale_mark' });
    expect(await ordersOf(rig.paper, id)).toHaveLength(0);
  });

  it('within the collar (0.5 %): EXECUTED', async () => {
    const { r, id } = await openWith('50000', () => moveMark('50250'));
    expect(r).toMatchObject({ status: 'EXECUTED' });
    expect(await ordersOf(rig.paper, id)).toHaveLength(1);
  });
});
