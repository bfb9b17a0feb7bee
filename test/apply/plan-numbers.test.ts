/**
 * A plan validly signed by its strategy but carrying a non-finite or absurd number (`qty`
 * `1e9000000000000001`, which decimal.js reads as Infinity) is refused at the edge by the real apply
 * layer: REJECTED_INVALID `invalid_schema`, dead-lettered, nothing sent — even with ALLOW permits present.
 */
import { waitFor } from '../helpers/redis.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { STREAMS, dlq, keys } from '../../src/adapters/redis/keys.js';
import { canonicalJson, hmacHex } from '../../src/domain/plan.js';
import { EXIT_KEY, allowPermits, ordersOf, planId, settle, startRig, waitResult, type Rig } from './helpers.js';

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

/** Adds `plan` as its canonical JSON with a valid mac of the strategy's key (signPlan would refuse to sign it). */
async function addSigned(plan: Record<string, unknown>): Promise<void> {
  const json = canonicalJson(plan);
  await rig.redis.xadd(STREAMS.applyPlan, '*', 'plan', json, 'mac', hmacHex(EXIT_KEY, json));
}

describe('plan numbers at the apply layer', () => {
  it('REDUCE qty 1e9000000000000001 with ALLOW permits: REJECTED_INVALID invalid_schema, dead-lettered, no order', async () => {
    await rig.startApply();
    const id = planId('inf');
    const before = await rig.redis.xlen(dlq(STREAMS.applyPlan));
    await addSigned({ plan_id: id, symbol: 'BTCUSDT', decision: 'EXECUTE', action: 'REDUCE', side: 'SELL', qty: '1e9000000000000001', type: 'MARKET', reduceOnly: true, reason: 'exit', source: 'exit_brain', ts_ms: Date.now() });
    await allowPermits(rig.redis, id, '0.001'); // signed for the entry just added
    const r = await waitResult(rig.redis, id);
    expect(r).toMatchObject({ status: 'REJECTED_INVALID', reason: 'invalid_schema' });
    expect(r.error).toMatch(/^qty: /);
    // the result is published just before the entry is dead-lettered
    await waitFor(async () => (await rig.redis.xlen(dlq(STREAMS.applyPlan))) === before + 1, 10_000, 50, 'dead-lettered');
    await settle(300);
    expect(await ordersOf(rig.paper, id)).toHaveLength(0);
  });
});
