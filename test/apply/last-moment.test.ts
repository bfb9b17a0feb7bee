/**
 * HALTED, REDUCING, the circuit breaker, the permits' validity and the order's in-flight age are checked at the
 * last moment before the request goes out (inside the exchange adapter, after a client throttle queue), not only
 * before the slow exchange calls. The throttle queue is simulated by the `beforeOrderRequest` seam, which waits
 * while the test changes the state; the real ccxt gateway and the paper exchange carry the order.
 * Before the fix each of these orders was sent.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { STREAMS, keys } from '../../src/adapters/redis/keys.js';
import { signPlan, type PlanInput } from '../../src/domain/plan.js';
import { setTradingState } from '../../src/services/governor/trading-state.js';
import { adminSetPosition } from '../helpers/paper.js';
import { P34_KEY, allowPermits, ordersOf, planId, startRig, submitPlan, waitResult, type Rig } from './helpers.js';

let rig: Rig;
/** What the simulated throttle queue does while the order waits in it. */
let inQueue: (() => Promise<void>) | null = null;

beforeAll(async () => {
  rig = await startRig({ BTCUSDT: '0.007', ETHUSDT: '0' });
  await rig.startApply({ APPLY_PERMIT_MAX_AGE_MS: '1500', APPLY_SEND_MAX_DELAY_MS: '2500' }, { hooks: { beforeOrderRequest: async () => void (await inQueue?.()) } });
});
afterAll(async () => {
  await rig?.stop();
});
beforeEach(async () => {
  inQueue = null;
  await setTradingState(rig.redis, { state: 'ACTIVE', reason: 'test reset', by: 'test' });
  await setTradingState(rig.redis, { state: 'ACTIVE', reason: 'test reset', by: 'test', symbol: 'ETHUSDT' }).catch(() => undefined);
  await rig.redis.del(keys.governorBreaker('BTCUSDT'), keys.governorBreaker('ETHUSDT'), keys.hold('BTCUSDT'), keys.holdSig('BTCUSDT'));
  await adminSetPosition(rig.paper.url, 'BTCUSDT', '0.007');
  await adminSetPosition(rig.paper.url, 'ETHUSDT', '0');
  const now = Date.now();
  await rig.redis.hset(keys.snapshot('ETHUSDT'), { position_amt: '0', side: 'FLAT', ts_ms: String(now), ts_epoch: String(now / 1000), step_size: '0.001' });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** An exit of BTCUSDT whose order waits in the queue while `meanwhile` runs; returns its result. */
async function exitWith(meanwhile: () => Promise<unknown>): Promise<{ r: Record<string, string>; id: string }> {
  const id = planId('lm');
  inQueue = async () => void (await meanwhile());
  await submitPlan(rig.redis, { plan_id: id });
  await allowPermits(rig.redis, id, '0.003');
  return { r: await waitResult(rig.redis, id), id };
}

describe('the last moment before an order request goes out', () => {
  it('HALTED set while the order waits in the throttle queue: SKIPPED trading_halted, nothing sent', async () => {
    const { r, id } = await exitWith(() => setTradingState(rig.redis, { state: 'HALTED', reason: 'test', by: 'test' }));
    expect(r).toMatchObject({ status: 'SKIPPED', reason: 'trading_halted' });
    expect(await ordersOf(rig.paper, id)).toHaveLength(0);
  });

  it('the circuit breaker tripped meanwhile: SKIPPED breaker_open, nothing sent', async () => {
    const { r, id } = await exitWith(() => rig.redis.set(keys.governorBreaker('BTCUSDT'), '1', 'EX', 60));
    expect(r).toMatchObject({ status: 'SKIPPED', reason: 'breaker_open' });
    expect(await ordersOf(rig.paper, id)).toHaveLength(0);
  });

  it('a permit past its validity when the request would go out: SKIPPED permit_expired, nothing sent', async () => {
    const { r, id } = await exitWith(() => sleep(1600));
    expect(r).toMatchObject({ status: 'SKIPPED', reason: 'permit_expired' });
    expect(await ordersOf(rig.paper, id)).toHaveLength(0);
  });

  it('REDUCING set meanwhile stops an entry (OPEN), not an exit', async () => {
    const id = planId('lm-open');
    inQueue = async () => void (await setTradingState(rig.redis, { state: 'REDUCING', reason: 'test', by: 'test' }));
    await submitPlan(rig.redis, { plan_id: id, symbol: 'ETHUSDT', action: 'OPEN', side: 'BUY', qty: '0.002', reduceOnly: false, reason: 'entry' });
    await allowPermits(rig.redis, id, '0.002', 'BUY', '0.002', 'ETHUSDT');
    expect(await waitResult(rig.redis, id)).toMatchObject({ status: 'SKIPPED', reason: 'trading_state_reducing' });
    expect(await ordersOf(rig.paper, id)).toHaveLength(0);
    const { r } = await exitWith(async () => undefined);
    expect(r).toMatchObject({ status: 'EXECUTED' });
  });

  it('the breaker stops a RECONCILE_CLOSE as HALTED does', async () => {
    const sig = 'lm-sig';
    await rig.redis.multi().set(keys.hold('BTCUSDT'), '1', 'EX', 60).set(keys.holdReason('BTCUSDT'), 'qty_mismatch_no_evidence', 'EX', 60).set(keys.holdSig('BTCUSDT'), sig, 'EX', 60).exec();
    await rig.redis.set(keys.governorBreaker('BTCUSDT'), '1', 'EX', 60);
    const id = planId('lm-close');
    const plan = { plan_id: id, symbol: 'BTCUSDT', decision: 'RECONCILE_CLOSE', action: 'RECONCILE_CLOSE', side: 'SELL', qty: '0.007', type: 'MARKET', reduceOnly: true, reason: 'reconcile_drift', source: 'p3.4', ts_ms: Date.now(), drift_sig: sig } as PlanInput;
    const f = signPlan(plan, P34_KEY);
    await rig.redis.xadd(STREAMS.reconcileClose, '*', 'plan', f.plan, 'mac', f.mac);
    expect(await waitResult(rig.redis, id)).toMatchObject({ status: 'SKIPPED', reason: 'breaker_open' });
    expect(await ordersOf(rig.paper, id)).toHaveLength(0);
  });
});
