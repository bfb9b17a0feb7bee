/**
 * The apply layer's last-moment refusals and FLATTEN (docs/architecture.md#plans, docs/architecture.md#reconcile_close-invariants, docs/architecture.md#risk-limits-and-trading-states):
 * - the kill switch at send time: an EXECUTE whose permits were issued before HALTED, and a RECONCILE_CLOSE
 *   queued before it, are refused (SKIPPED trading_halted), never sent, not guardrail violations;
 * - a close whose position moved since it was sized (basis_amt) is SKIPPED close_superseded, never sent;
 * - FLATTEN: executed under HALTED and under a hold, exactly once; refused (dead-lettered or REJECTED_INVALID)
 *   when unsigned, signed with another key, from another source, stale, or outside the allowlist.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Counter } from 'prom-client';
import { STREAMS, dlq, keys } from '../../src/adapters/redis/keys.js';
import { signPlan, type PlanInput } from '../../src/domain/plan.js';
import { buildFlattenPlan } from '../../src/domain/flatten.js';
import { submitFlatten } from '../../src/plans/flatten.js';
import { setTradingState } from '../../src/services/governor/trading-state.js';
import type { Service } from '../../src/host/service.js';
import { adminOrders, adminPositions, adminSetPosition } from '../helpers/paper.js';
import { waitFor } from '../helpers/redis.js';
import { P34_KEY, allowPermits, ordersOf, planId, resultsOf, settle, startRig, submitPlan, waitResult, type Rig } from './helpers.js';

const OP_KEY = 'test-operator-key';
const SIG = 'killswitch-sig-1';
let rig: Rig;
let svc: Service;

beforeAll(async () => {
  rig = await startRig({ BTCUSDT: '0.007', ETHUSDT: '0.5' });
  svc = await rig.startApply({ P3_KEY_OPERATOR: OP_KEY });
});
afterAll(async () => {
  await rig.stop();
});
beforeEach(async () => {
  await setTradingState(rig.redis, { state: 'ACTIVE', reason: 'test reset', by: 'test' });
  await rig.redis.del(keys.hold('BTCUSDT'), keys.holdReason('BTCUSDT'), keys.holdSig('BTCUSDT'), keys.closeSent('BTCUSDT', SIG));
});

async function counter(name: string, labels: Record<string, string>): Promise<number> {
  const m = svc.registry.getSingleMetric(name) as Counter<string> | undefined;
  const v = (await m?.get())?.values.find((x) => Object.entries(labels).every(([k, l]) => x.labels[k] === l));
  return v?.value ?? 0;
}

async function publishClose(p: Partial<PlanInput> & Record<string, unknown>): Promise<string> {
  const id = planId('close');
  const plan = { plan_id: id, symbol: 'BTCUSDT', decision: 'RECONCILE_CLOSE', action: 'RECONCILE_CLOSE', side: 'SELL', qty: '0.007', type: 'MARKET', reduceOnly: true, reason: 'reconcile_drift', source: 'p3.4', ts_ms: Date.now(), drift_sig: SIG, ...p } as PlanInput;
  const f = signPlan(plan, P34_KEY);
  await rig.redis.xadd(STREAMS.reconcileClose, '*', 'plan', f.plan, 'mac', f.mac);
  return id;
}
const holdFor = (sig: string) => rig.redis.multi().set(keys.hold('BTCUSDT'), '1', 'EX', 60).set(keys.holdReason('BTCUSDT'), 'qty_mismatch_no_evidence', 'EX', 60).set(keys.holdSig('BTCUSDT'), sig, 'EX', 60).exec();

describe('the kill switch at send time', () => {
  it('an EXECUTE whose permits were issued before HALTED is SKIPPED trading_halted, never sent', async () => {
    await adminSetPosition(rig.paper.url, 'BTCUSDT', '0.007');
    const id = planId('halt');
    await submitPlan(rig.redis, { plan_id: id });
    await setTradingState(rig.redis, { state: 'HALTED', reason: 'test', by: 'test' });
    await allowPermits(rig.redis, id, '0.003');
    const r = await waitResult(rig.redis, id);
    expect(r).toMatchObject({ status: 'SKIPPED', reason: 'trading_halted', executed: 'false' });
    expect(await ordersOf(rig.paper, id)).toHaveLength(0);
  });

  it('a symbol HALTED (or its state unreadable) stops it too', async () => {
    await rig.redis.hset(keys.tradingState('BTCUSDT'), { reason: 'no state field: unreadable' });
    const id = planId('halt-sym');
    await submitPlan(rig.redis, { plan_id: id });
    await allowPermits(rig.redis, id, '0.003');
    expect(await waitResult(rig.redis, id)).toMatchObject({ status: 'SKIPPED', reason: 'trading_halted' });
    await rig.redis.del(keys.tradingState('BTCUSDT'));
  });

  it('a RECONCILE_CLOSE queued before HALTED is SKIPPED trading_halted: hold kept, not a guardrail violation', async () => {
    await adminSetPosition(rig.paper.url, 'BTCUSDT', '0.007');
    await holdFor(SIG);
    const violations = await counter('reconcile_close_guardrail_fail_total', {});
    await setTradingState(rig.redis, { state: 'HALTED', reason: 'test', by: 'test' });
    const id = await publishClose({ basis_amt: '0.007' });
    expect(await waitResult(rig.redis, id)).toMatchObject({ status: 'SKIPPED', reason: 'trading_halted' });
    expect(await ordersOf(rig.paper, id)).toHaveLength(0);
    expect(await rig.redis.exists(keys.hold('BTCUSDT'))).toBe(1);
    expect(await rig.redis.exists(keys.closeSent('BTCUSDT', SIG))).toBe(0);
    expect(await counter('reconcile_close_rejected_total', { symbol: 'BTCUSDT', reason: 'trading_halted' })).toBe(1);
    expect(await counter('reconcile_close_guardrail_fail_total', {})).toBe(violations);
  });
});

describe('a close sized on a position that moved', () => {
  it('is SKIPPED close_superseded (counted as superseded), never sent; the marker is not taken', async () => {
    await adminSetPosition(rig.paper.url, 'BTCUSDT', '0.009');
    await holdFor(SIG);
    const id = await publishClose({ basis_amt: '0.007', qty: '0.005' });
    expect(await waitResult(rig.redis, id)).toMatchObject({ status: 'SKIPPED', reason: 'close_superseded' });
    expect(await ordersOf(rig.paper, id)).toHaveLength(0);
    expect(await rig.redis.exists(keys.closeSent('BTCUSDT', SIG))).toBe(0);
    expect(await counter('reconcile_close_rejected_total', { symbol: 'BTCUSDT', reason: 'superseded' })).toBe(1);
    // the same close on the position it was sized on executes
    const ok = await publishClose({ basis_amt: '0.009', qty: '0.002' });
    expect(await waitResult(rig.redis, ok)).toMatchObject({ status: 'EXECUTED', filled_qty: '0.002', basis_amt: '0.009' });
  });
});

describe('FLATTEN', () => {
  it('flattens under HALTED and under a hold with one reduce-only order; a second request is already_flat', async () => {
    await adminSetPosition(rig.paper.url, 'ETHUSDT', '-0.5');
    await setTradingState(rig.redis, { state: 'HALTED', reason: 'incident', by: 'test' });
    await rig.redis.set(keys.hold('ETHUSDT'), '1', 'EX', 60);
    const { planId: id } = await submitFlatten(rig.redis, { symbol: 'ETHUSDT', reason: 'incident 7', by: 'cli:alice@h', nowMs: Date.now() }, OP_KEY);
    expect(await waitResult(rig.redis, id)).toMatchObject({ status: 'EXECUTED', decision: 'FLATTEN', side: 'BUY', filled_qty: '0.5', basis_amt: '-0.5' });
    expect((await adminPositions(rig.paper.url)).ETHUSDT?.positionAmt).toBe('0');
    expect(((await ordersOf(rig.paper, id)) as Array<{ reduceOnly: boolean }>).map((o) => o.reduceOnly)).toEqual([true]);
    const again = await submitFlatten(rig.redis, { symbol: 'ETHUSDT', reason: 'again', by: 'cli:alice@h', nowMs: Date.now() }, OP_KEY);
    expect(await waitResult(rig.redis, again.planId)).toMatchObject({ status: 'SKIPPED', reason: 'already_flat' });
    await settle(500);
    expect((await adminOrders(rig.paper.url)).filter((o) => o.symbol === 'ETHUSDT' && o.source === 'api')).toHaveLength(1);
    await rig.redis.del(keys.hold('ETHUSDT'));
  });

  it('refuses a forged, foreign, stale or off-allowlist FLATTEN: nothing sent', async () => {
    await adminSetPosition(rig.paper.url, 'ETHUSDT', '0.5');
    const before = (await adminOrders(rig.paper.url)).length;
    const add = async (plan: PlanInput, key: string) => {
      const f = signPlan(plan, key);
      await rig.redis.xadd(STREAMS.applyFlatten, '*', 'plan', f.plan, 'mac', f.mac);
      return plan.plan_id;
    };
    const base = (over: Partial<PlanInput> = {}) => ({ ...buildFlattenPlan({ symbol: 'ETHUSDT', reason: 'x', by: 'cli:mallory@h', nowMs: Date.now() }), ...over });
    const forged = await add(base(), 'not-the-operator-key');
    const foreign = await add(base({ source: 'exit_brain' }), 'test-exit-brain-key');
    const stale = await add(base({ ts_ms: Date.now() - 10 * 60_000 }), OP_KEY);
    const offList = await add(base({ symbol: 'SOLUSDT' }), OP_KEY);
    await rig.redis.xadd(STREAMS.applyFlatten, '*', 'plan', '{not json', 'mac', 'x');
    expect(await waitResult(rig.redis, stale)).toMatchObject({ status: 'REJECTED_INVALID', reason: 'stale_plan' });
    expect(await waitResult(rig.redis, offList)).toMatchObject({ status: 'REJECTED_INVALID', reason: 'allowlist' });
    await waitFor(async () => (await rig.redis.xlen(dlq(STREAMS.applyFlatten))) >= 3, 10_000, 50, 'dead letters');
    // an entry whose MAC does not verify is dead-lettered with its reason, and gets NO result under the plan id it names
    const dead = (await rig.redis.xrange(dlq(STREAMS.applyFlatten), '-', '+')).map(([, f]) => f[f.indexOf('dlq_reason') + 1]);
    expect(dead).toEqual(expect.arrayContaining(['bad_mac', 'unknown_source', 'malformed']));
    expect(await resultsOf(rig.redis, forged)).toEqual([]);
    expect(await resultsOf(rig.redis, foreign)).toEqual([]);
    await settle(300);
    expect((await adminOrders(rig.paper.url)).length).toBe(before);
    expect((await adminPositions(rig.paper.url)).ETHUSDT?.positionAmt).toBe('0.5');
  });
});
