import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Counter } from 'prom-client';
import { STREAMS, keys } from '../../src/adapters/redis/keys.js';
import { canonicalJson, hmacHex, signPlan, type PlanInput } from '../../src/domain/plan.js';
import type { Service } from '../../src/host/service.js';
import { adminFaults, adminPositions, adminSetPosition, clearFaults } from '../helpers/paper.js';
import { P34_KEY, ordersOf, planId, resultsOf, settle, startRig, waitResult, type Rig } from './helpers.js';
import { waitFor } from '../helpers/redis.js';

let rig: Rig;
let svc: Service;
const SIG = 'drift-sig-416d86940859';

beforeAll(async () => {
  rig = await startRig({ BTCUSDT: '0.007' });
  svc = await rig.startApply();
});
afterAll(async () => {
  await rig.stop();
});
beforeEach(async () => {
  await adminSetPosition(rig.paper.url, 'BTCUSDT', '0.007');
  await rig.redis.del(keys.exchangeBackoffUntil(), keys.closeSent('BTCUSDT', SIG));
  // seed 002 battle test: a short (60 s) hold, renewed by the apply layer before executing
  await rig.redis.multi().set(keys.hold('BTCUSDT'), '1', 'EX', 60).set(keys.holdReason('BTCUSDT'), 'qty_mismatch_no_evidence', 'EX', 60).set(keys.holdSig('BTCUSDT'), SIG, 'EX', 60).exec();
  await rig.redis.hset(keys.ledger('BTCUSDT'), { ledger_amt: '0', ledger_side: 'FLAT', ts_epoch: '1', source: 'init', version: '1' });
});
afterEach(async () => {
  await clearFaults(rig.paper.url);
});

/** Publishes a RECONCILE_CLOSE plan (valid by default) to quantum:stream:reconcile.close. */
async function publishClose(p: Partial<PlanInput> & Record<string, unknown>, key = P34_KEY): Promise<string> {
  const id = planId('close');
  const plan = { plan_id: id, symbol: 'BTCUSDT', decision: 'RECONCILE_CLOSE', action: 'RECONCILE_CLOSE', side: 'SELL', qty: '0.007', type: 'MARKET', reduceOnly: true, reason: 'reconcile_drift', source: 'p3.4', ts_ms: Date.now(), drift_sig: SIG, ...p } as PlanInput;
  // a plan the schema refuses (a forgery) is signed as it is, as a buggy or hostile producer would
  let f: { plan: string; mac: string };
  try {
    f = signPlan(plan, key);
  } catch {
    const payload = canonicalJson(plan);
    f = { plan: payload, mac: hmacHex(key, payload) };
  }
  await rig.redis.xadd(STREAMS.reconcileClose, '*', 'plan', f.plan, 'mac', f.mac);
  return id;
}

async function counter(name: string, labels: Record<string, string>): Promise<number> {
  const m = svc.registry.getSingleMetric(name) as Counter<string> | undefined;
  const v = (await m?.get())?.values.find((x) => Object.entries(labels).every(([k, l]) => x.labels[k] === l));
  return v?.value ?? 0;
}

describe('RECONCILE_CLOSE: the apply layer side (docs/architecture.md#reconcile_close-invariants)', () => {
  it('executes a valid close: reduce-only SELL 0.007, lease renewed, ledger untouched, audit counted', async () => {
    const before = await counter('reconcile_close_executed_total', { symbol: 'BTCUSDT', status: 'success' });
    const id = await publishClose({});
    const r = await waitResult(rig.redis, id);
    expect(r).toMatchObject({ status: 'EXECUTED', decision: 'RECONCILE_CLOSE', side: 'SELL', filled_qty: '0.007', executed: 'true' });
    const orders = (await ordersOf(rig.paper, id)) as Array<{ reduceOnly: boolean; side: string }>;
    expect(orders).toHaveLength(1);
    expect(orders[0]).toMatchObject({ reduceOnly: true, side: 'SELL' });
    expect((await adminPositions(rig.paper.url)).BTCUSDT?.positionAmt).toBe('0');
    expect(await rig.redis.hget(keys.ledger('BTCUSDT'), 'ledger_amt')).toBe('0'); // the fill is evidence, not a ledger write
    for (const k of [keys.hold('BTCUSDT'), keys.holdReason('BTCUSDT'), keys.holdSig('BTCUSDT')]) expect(await rig.redis.ttl(k)).toBeGreaterThan(800);
    expect(await counter('reconcile_close_executed_total', { symbol: 'BTCUSDT', status: 'success' })).toBe(before + 1);
  });

  it('a replayed close plan id is dropped as duplicate (no second order)', async () => {
    const id = await publishClose({});
    await waitResult(rig.redis, id, ['EXECUTED']);
    await adminSetPosition(rig.paper.url, 'BTCUSDT', '0.007');
    const again = signPlan({ plan_id: id, symbol: 'BTCUSDT', decision: 'RECONCILE_CLOSE', action: 'RECONCILE_CLOSE', side: 'SELL', qty: '0.007', type: 'MARKET', reduceOnly: true, reason: 'reconcile_drift', source: 'p3.4', ts_ms: Date.now(), drift_sig: SIG }, P34_KEY);
    await rig.redis.xadd(STREAMS.reconcileClose, '*', 'plan', again.plan, 'mac', again.mac);
    expect(await waitResult(rig.redis, id, ['DROPPED_DUPLICATE'])).toMatchObject({ dedupe_hit: 'true' });
    await settle(300);
    expect(await ordersOf(rig.paper, id)).toHaveLength(1);
  });

  it('429: RETRYABLE_RATE_LIMIT, the hold stays', async () => {
    await adminFaults(rig.paper.url, { kind: 'http_429', retry_after_s: 1, count: 50 });
    const id = await publishClose({});
    expect(await waitResult(rig.redis, id)).toMatchObject({ status: 'RETRYABLE_RATE_LIMIT', executed: 'false' });
    expect(await rig.redis.exists(keys.hold('BTCUSDT'))).toBe(1);
    expect(await ordersOf(rig.paper, id)).toHaveLength(0);
    await settle(1200);
  });

  it('seed 002 battle test: 60 s hold, ten entries of backlog ahead, lease renewed, close executes', async () => {
    for (let i = 0; i < 10; i++) await publishClose({ source: 'attacker', qty: '100.0' });
    const id = await publishClose({});
    expect(await waitResult(rig.redis, id)).toMatchObject({ status: 'EXECUTED', filled_qty: '0.007' });
    expect(await rig.redis.ttl(keys.hold('BTCUSDT'))).toBeGreaterThan(800);
    expect(await ordersOf(rig.paper, id)).toHaveLength(1);
  });

  it('two close plans of one drift that does not flatten the position: one order, the second dropped as its duplicate', async () => {
    // exchange 0.040 vs ledger 0.030: each plan asks 0.010 <= |position|, so only the one-close-per-drift
    // marker can stop the second (two cooldown buckets of a backlog, same signature).
    await adminSetPosition(rig.paper.url, 'BTCUSDT', '0.040');
    const a = await publishClose({ qty: '0.010' });
    const b = await publishClose({ qty: '0.010' });
    const ra = await waitResult(rig.redis, a);
    const rb = await waitResult(rig.redis, b);
    expect([ra.status, rb.status].sort()).toEqual(['DROPPED_DUPLICATE', 'EXECUTED']);
    expect([ra.reason, rb.reason]).toContain('one_close_per_drift');
    expect((await ordersOf(rig.paper, a)).length + (await ordersOf(rig.paper, b)).length).toBe(1);
    expect((await adminPositions(rig.paper.url)).BTCUSDT?.positionAmt).toBe('0.03');
  });

  it('a close recorded as not executed (429) releases the drift marker: the next bucket executes', async () => {
    await adminFaults(rig.paper.url, { kind: 'http_429', count: 1, retry_after_s: 1, endpoints: ['order'], methods: ['POST'] });
    const a = await publishClose({});
    expect((await waitResult(rig.redis, a)).status).toBe('RETRYABLE_RATE_LIMIT');
    expect(await rig.redis.exists(keys.closeSent('BTCUSDT', SIG))).toBe(0);
    await settle(1200);
    await rig.redis.del(keys.exchangeBackoffUntil());
    const b = await publishClose({});
    expect((await waitResult(rig.redis, b)).status).toBe('EXECUTED');
    expect(await ordersOf(rig.paper, b)).toHaveLength(1);
  });

  it('two apply layers and several plans for one drift: exactly one close order', async () => {
    const second = await rig.startApply();
    const ids = await Promise.all([publishClose({}), publishClose({}), publishClose({})]);
    const results = await Promise.all(ids.map((id) => waitResult(rig.redis, id)));
    // the later plans of the same drift are its duplicates, not invariant violations (nothing pages)
    expect(results.map((r) => r.status).sort()).toEqual(['DROPPED_DUPLICATE', 'DROPPED_DUPLICATE', 'EXECUTED']);
    let orders = 0;
    for (const id of ids) orders += (await ordersOf(rig.paper, id)).length;
    expect(orders).toBe(1);
    expect((await adminPositions(rig.paper.url)).BTCUSDT?.positionAmt).toBe('0');
    await second.stop();
    rig.services.splice(rig.services.indexOf(second), 1);
  });

  const violations: Array<[string, string, () => Promise<string>]> = [
    ['wrong decision', 'decision', () => publishClose({ decision: 'EXECUTE' })],
    ['source "attacker"', 'source', () => publishClose({ source: 'attacker', qty: '100.0' })],
    ['source "p3.4" with a forged MAC', 'mac', () => publishClose({}, 'forged-key')],
    ['reduceOnly false', 'reduce_only', () => publishClose({ reduceOnly: false })],
    ['reduceOnly "false" (string)', 'reduce_only', () => publishClose({ reduceOnly: 'false' })],
    ['LIMIT', 'type', () => publishClose({ type: 'LIMIT' })],
    ['wrong reason', 'reason', () => publishClose({ reason: 'alpha' })],
    ['qty above the position', 'qty', () => publishClose({ qty: '0.008' })],
    ['wrong side', 'side', () => publishClose({ side: 'BUY' })],
    ['symbol outside the allowlist', 'allowlist', () => publishClose({ symbol: 'SOLUSDT' })],
  ];
  for (const [what, rule, publish] of violations) {
    it(`rejects ${what} (rule ${rule}) with no order`, async () => {
      const label = rule === 'allowlist' ? 'other' : 'BTCUSDT';
      const before = await counter('reconcile_close_guardrail_fail_total', { symbol: label, rule });
      const id = await publish();
      if (rule === 'source' || rule === 'mac') {
        // the MAC never verified: counted and logged as a violation, but no result under the plan id it names
        await waitFor(async () => (await counter('reconcile_close_guardrail_fail_total', { symbol: label, rule })) === before + 1, 10_000, 50, 'violation counted');
        await settle(200);
        expect(await resultsOf(rig.redis, id)).toEqual([]);
      } else {
        const r = await waitResult(rig.redis, id);
        expect(r).toMatchObject({ status: 'REJECTED_GUARDRAIL', reason: rule, executed: 'false' });
        expect(await counter('reconcile_close_guardrail_fail_total', { symbol: label, rule })).toBe(before + 1);
      }
      await settle(200);
      expect(await ordersOf(rig.paper, id)).toHaveLength(0);
      expect((await adminPositions(rig.paper.url)).BTCUSDT?.positionAmt).toBe('0.007');
    });
  }

  // Races, not forgeries: a correctly signed close superseded by a newer drift, a healed drift or age
  // ends SKIPPED under reconcile_close_rejected_total{reason=superseded|expired}; the critical guardrail
  // counter does not move (nothing pages).
  const superseded: Array<[string, string, string, string, () => Promise<string>]> = [
    ['no hold (drift healed meanwhile)', 'hold_key', 'hold_cleared', 'superseded', async () => {
      await rig.redis.del(keys.hold('BTCUSDT'));
      return publishClose({});
    }],
    ['hold_sig mismatch (drift changed meanwhile)', 'hold_sig', 'drift_superseded', 'superseded', () => publishClose({ drift_sig: 'another-sig' })],
    ['a plan older than APPLY_CLOSE_MAX_AGE_SEC', 'stale_plan', 'close_expired', 'expired', () => publishClose({ ts_ms: Date.now() - 600_000 })],
  ];
  for (const [what, rule, reason, metric, publish] of superseded) {
    it(`${what}: SKIPPED ${reason}, counted as ${metric}, no guardrail violation, dedupe finished`, async () => {
      const beforeRule = await counter('reconcile_close_guardrail_fail_total', { symbol: 'BTCUSDT', rule });
      const beforeMetric = await counter('reconcile_close_rejected_total', { symbol: 'BTCUSDT', reason: metric });
      const id = await publish();
      const r = await waitResult(rig.redis, id);
      expect(r).toMatchObject({ status: 'SKIPPED', reason, executed: 'false' });
      expect(await counter('reconcile_close_rejected_total', { symbol: 'BTCUSDT', reason: metric })).toBe(beforeMetric + 1);
      expect(await counter('reconcile_close_guardrail_fail_total', { symbol: 'BTCUSDT', rule })).toBe(beforeRule);
      expect(await rig.redis.get(keys.applyDedupe(id))).toMatch(/^done\|/);
      await settle(200);
      expect(await ordersOf(rig.paper, id)).toHaveLength(0);
      expect((await adminPositions(rig.paper.url)).BTCUSDT?.positionAmt).toBe('0.007');
    });
  }
});
