/**
 * A plan whose handling fails again and again must still end with exactly one final result. Reproduces the lost
 * result of the hostile review: Redis restarts (so a fresh claim cannot be trusted and the apply layer must ask
 * the exchange whether the plan's order exists) while the exchange answers nothing useful for longer than the
 * consumer's five attempts. Before, the entry was dead-lettered and acknowledged after the fifth failure, its
 * dedupe claim stayed `claimed|…` for 24 h, and every re-submission was DROPPED_DUPLICATE: no final result, ever.
 * Now the entry is parked (kept pending, retried with a back-off) and gets its one final result once the
 * exchange answers; a re-submission meanwhile is DROPPED_DUPLICATE and sends nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STREAMS, dlq, keys } from '../../src/adapters/redis/keys.js';
import { signPlan, type PlanInput } from '../../src/domain/plan.js';
import { adminFaults, adminRequests, clearFaults } from '../helpers/paper.js';
import { waitFor } from '../helpers/redis.js';
import { APPLY_GROUP } from '../../src/services/apply-layer/index.js';
import { EXIT_KEY, allowPermits, ordersOf, planId, resultsOf, startRig, type Rig } from './helpers.js';

let rig: Rig;
beforeAll(async () => {
  rig = await startRig({ BTCUSDT: '0', ETHUSDT: '0' }, ['--appendonly', 'yes']);
  await rig.startApply({ APPLY_LOOKUP_ATTEMPTS: '1', APPLY_LOOKUP_BACKOFF_MS: '50' });
});
afterAll(async () => {
  await rig?.stop();
});

describe('a plan whose pre-send query fails more often than the consumer tries', () => {
  it('is parked, not dead-lettered, and ends with exactly one final result once the exchange answers', async () => {
    const id = planId('parked');
    const now = Date.now();
    const plan: PlanInput = { plan_id: id, symbol: 'BTCUSDT', decision: 'EXECUTE', action: 'OPEN', side: 'BUY', qty: '0.002', type: 'MARKET', reduceOnly: false, reason: 'entry', source: 'exit_brain', kill_score: 0.5, ts_ms: now };
    const f = signPlan(plan, EXIT_KEY);
    // the plan exists before Redis restarts: its claim must be checked against the exchange
    await rig.srv.restart(100);
    await waitFor(async () => (await rig.redis.ping()) === 'PONG', 20_000, 50, 'Redis back');
    await rig.redis.hset(keys.ledger('BTCUSDT'), { ledger_amt: '0', ledger_side: 'FLAT', ts_epoch: '1', source: 'init', version: '1' });
    // the exchange answers every order query with 503 "Unknown error" (execution status unknown)
    await adminFaults(rig.paper.url, { kind: 'http_503_unknown', duration_ms: 20_000, endpoints: ['order'] });
    const t = Date.now();
    await rig.redis.hset(keys.snapshot('BTCUSDT'), { position_amt: '0', side: 'FLAT', ts_ms: String(t), ts_epoch: (t / 1000).toFixed(3), step_size: '0.001' });
    await rig.redis.xadd(STREAMS.applyPlan, '*', 'plan', f.plan, 'mac', f.mac);
    await allowPermits(rig.redis, id, '0.002', 'BUY', '0.002', 'BTCUSDT', t);
    // more than the consumer's five attempts fail (each asks the exchange at least once): the entry must not be
    // dead-lettered nor acknowledged
    await waitFor(async () => (await adminRequests(rig.paper.url)).filter((r) => r.method === 'GET' && r.path.includes('/order') && r.status === 503).length >= 20, 60_000, 200, 'more failed order queries than five attempts make (3 each)');
    expect(await rig.redis.xlen(dlq(STREAMS.applyPlan))).toBe(0);
    expect(Number((await rig.redis.xpending(STREAMS.applyPlan, APPLY_GROUP))[0])).toBe(1);
    await waitFor(async () => /apply_entries_parked_total\{stream="quantum:stream:apply\.plan"[^}]*\} [1-9]/.test(await rig.services[0]!.registry.metrics()), 60_000, 200, 'the plan entry parked');
    expect(await rig.redis.xlen(dlq(STREAMS.applyPlan))).toBe(0);
    // the producer re-submits meanwhile: answered DROPPED_DUPLICATE, nothing sent
    await rig.redis.xadd(STREAMS.applyPlan, '*', 'plan', f.plan, 'mac', f.mac);
    await waitFor(async () => (await resultsOf(rig.redis, id)).some((r) => r.status === 'DROPPED_DUPLICATE'), 20_000, 100, 'the re-submission answered');
    expect((await resultsOf(rig.redis, id)).filter((r) => r.status !== 'DROPPED_DUPLICATE')).toHaveLength(0);
    // the exchange answers again: exactly one final result, at most one order
    await clearFaults(rig.paper.url);
    await waitFor(async () => (await resultsOf(rig.redis, id)).some((r) => r.status !== 'DROPPED_DUPLICATE'), 60_000, 100, 'a final result');
    const finals = (await resultsOf(rig.redis, id)).filter((r) => r.status !== 'DROPPED_DUPLICATE');
    expect(finals).toHaveLength(1);
    expect(['EXECUTED', 'SKIPPED']).toContain(finals[0]!.status);
    expect((await ordersOf(rig.paper, id)).length).toBeLessThanOrEqual(1);
    expect(await rig.redis.get(keys.applyDedupe(id))).toMatch(/^done\|/);
    await waitFor(async () => Number((await rig.redis.xpending(STREAMS.applyPlan, APPLY_GROUP))[0] ?? 0) === 0, 20_000, 100, 'nothing pending');
    expect(await rig.redis.xlen(dlq(STREAMS.applyPlan))).toBe(0);
  }, 180_000);
});
