import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { STREAMS, dlq, keys } from '../../src/adapters/redis/keys.js';
import { clientOrderIdFor } from '../../src/domain/apply.js';
import { Decimal, fmt } from '../../src/domain/decimal.js';
import { APPLY_GROUP } from '../../src/services/apply-layer/index.js';
import { waitFor } from '../helpers/redis.js';
import { adminFaults, adminOrders, adminPositions, adminRequests, clearFaults } from '../helpers/paper.js';
import { allowPermits, writePermits, ordersOf, planId, resultsOf, settle, startRig, submitPlan, waitResult, type Rig } from './helpers.js';

let rig: Rig;
beforeAll(async () => {
  rig = await startRig({ BTCUSDT: '1', ETHUSDT: '-2' });
  await rig.redis.hset(keys.ledger('BTCUSDT'), { ledger_amt: '1', ledger_side: 'LONG', ts_epoch: '1', source: 'init', version: '3' });
});
afterAll(async () => {
  await rig.stop();
});
afterEach(async () => {
  await clearFaults(rig.paper.url);
  for (const s of rig.services.splice(0)) await s.stop();
});

describe('apply layer: exactly-once execution of permitted plans', () => {
  it('executes a plan with both permits once; the ledger follows in the same step', async () => {
    await rig.startApply();
    const id = planId('exec');
    await allowPermits(rig.redis, id, '0.0059'); // rounded down to the lot step 0.001
    await submitPlan(rig.redis, { plan_id: id });
    const r = await waitResult(rig.redis, id, ['EXECUTED']);
    expect(r).toMatchObject({ status: 'EXECUTED', executed: 'true', would_execute: 'true', side: 'SELL', qty: '0.005', filled_qty: '0.005', dedupe_hit: 'false', decision: 'EXECUTE', client_order_id: clientOrderIdFor(id) });
    expect(clientOrderIdFor(id)).toMatch(/^[.A-Z:/a-z0-9_-]{1,36}$/);
    const orders = (await ordersOf(rig.paper, id)) as Array<{ reduceOnly: boolean; qty: string; status: string }>;
    expect(orders).toHaveLength(1);
    expect(orders[0]).toMatchObject({ reduceOnly: true, status: 'FILLED' });
    expect(await rig.redis.hgetall(keys.ledger('BTCUSDT'))).toMatchObject({ ledger_amt: '0.995', ledger_side: 'LONG', source: 'apply', version: '4' });
    expect(Number((await rig.redis.hget(keys.ledger('BTCUSDT'), 'ts_epoch')) ?? 0) * 1000).toBeCloseTo(Number(r.ts_ms), -1);
    expect(await rig.redis.hget(keys.applyInflight('BTCUSDT'), clientOrderIdFor(id))).toBeNull();
    expect((await adminPositions(rig.paper.url)).BTCUSDT?.positionAmt).toBe('0.995');
    expect(await resultsOf(rig.redis, id)).toHaveLength(1);
  });

  it('migrates a seed 004 legacy ledger with the fill, and a short position is signed', async () => {
    await rig.redis.hset(keys.legacyLedger004('ETHUSDT'), { ledger_amount: '2', ledger_side: 'SHORT' });
    await rig.startApply();
    const id = planId('legacy');
    await allowPermits(rig.redis, id, '0.5', 'BUY', '0.5', 'ETHUSDT');
    await submitPlan(rig.redis, { plan_id: id, symbol: 'ETHUSDT', side: 'BUY', action: 'PARTIAL_25' });
    await waitResult(rig.redis, id, ['EXECUTED']);
    expect(await rig.redis.hgetall(keys.ledger('ETHUSDT'))).toMatchObject({ ledger_amt: '-1.5', ledger_side: 'SHORT', source: 'apply', version: '1' });
    expect(await rig.redis.hget(keys.legacyLedger004('ETHUSDT'), 'ledger_amount')).toBeNull();
    const ev = await rig.redis.xrange(STREAMS.reconcileEvents, '-', '+');
    expect(ev.some(([, f]) => f.includes('LEDGER_MIGRATED'))).toBe(true);
  });

  it('a hold set after the permits were issued stops the order at the last moment (SKIPPED, no order)', async () => {
    await rig.startApply();
    const id = planId('held');
    await allowPermits(rig.redis, id, '0.001');
    await rig.redis.setex(keys.hold('BTCUSDT'), 300, '1');
    try {
      await submitPlan(rig.redis, { plan_id: id });
      const r = await waitResult(rig.redis, id, ['SKIPPED']);
      expect(r).toMatchObject({ status: 'SKIPPED', reason: 'reconcile_hold_active', executed: 'false' });
      await settle(300);
      expect(await ordersOf(rig.paper, id)).toHaveLength(0);
      expect(await rig.redis.hget(keys.applyInflight('BTCUSDT'), clientOrderIdFor(id))).toBeNull();
    } finally {
      await rig.redis.del(keys.hold('BTCUSDT'));
    }
  });

  it('the same plan id submitted twice gives one order and DROPPED_DUPLICATE', async () => {
    await rig.startApply();
    const id = planId('twice');
    await allowPermits(rig.redis, id, '0.001');
    await submitPlan(rig.redis, { plan_id: id });
    await submitPlan(rig.redis, { plan_id: id });
    const dup = await waitResult(rig.redis, id, ['DROPPED_DUPLICATE']);
    expect(dup).toMatchObject({ dedupe_hit: 'true', executed: 'false' });
    await waitResult(rig.redis, id, ['EXECUTED']);
    await settle(500);
    expect(await ordersOf(rig.paper, id)).toHaveLength(1);
    expect((await resultsOf(rig.redis, id)).filter((r) => r.status === 'EXECUTED')).toHaveLength(1);
  });

  it('a stream replay (group rewound to 0) sends no order again', async () => {
    await rig.startApply();
    const id = planId('replay');
    await allowPermits(rig.redis, id, '0.001');
    await submitPlan(rig.redis, { plan_id: id });
    await waitResult(rig.redis, id, ['EXECUTED']);
    const ordersBefore = (await adminOrders(rig.paper.url)).length;
    await rig.redis.xgroup('SETID', STREAMS.applyPlan, APPLY_GROUP, '0');
    await waitResult(rig.redis, id, ['DROPPED_DUPLICATE']);
    await settle(500);
    expect((await adminOrders(rig.paper.url)).length).toBe(ordersBefore);
    expect(await ordersOf(rig.paper, id)).toHaveLength(1);
  });

  it('two apply layers at once: every plan gives at most one order and one final result', async () => {
    await rig.startApply();
    await rig.startApply();
    const ids = Array.from({ length: 6 }, () => planId('pair'));
    // all six permits sized on one snapshot: the send-time gate lets the first through and skips the
    // rest (order_in_flight / snapshot_superseded), whichever apply layer holds them
    for (const id of ids) await allowPermits(rig.redis, id, '0.001');
    for (const id of ids) {
      await submitPlan(rig.redis, { plan_id: id });
      await submitPlan(rig.redis, { plan_id: id }); // and every one twice
    }
    for (const id of ids) await waitResult(rig.redis, id, ['EXECUTED', 'SKIPPED']);
    await settle(800);
    let executed = 0;
    for (const id of ids) {
      const finals = (await resultsOf(rig.redis, id)).filter((r) => r.status !== 'DROPPED_DUPLICATE');
      expect(finals).toHaveLength(1);
      expect((await resultsOf(rig.redis, id)).filter((r) => r.status === 'DROPPED_DUPLICATE')).toHaveLength(1);
      const f = finals[0]!;
      if (f.status === 'EXECUTED') executed++;
      else expect(['order_in_flight', 'snapshot_superseded']).toContain(f.reason);
      expect(await ordersOf(rig.paper, id)).toHaveLength(f.status === 'EXECUTED' ? 1 : 0);
    }
    expect(executed).toBe(1);
  });

  for (const kind of ['http_503_unknown', 'timeout', 'http_408'] as const) {
    it(`${kind} on the order (executed, reply lost) ends in EXECUTED with no second order`, async () => {
      await rig.startApply();
      const id = planId(kind);
      await allowPermits(rig.redis, id, '0.002');
      await adminFaults(rig.paper.url, { kind, count: 1, endpoints: ['order'], methods: ['POST'] });
      const ledgerBefore = await rig.redis.hget(keys.ledger('BTCUSDT'), 'ledger_amt');
      await submitPlan(rig.redis, { plan_id: id });
      const r = await waitResult(rig.redis, id, ['EXECUTED', 'FAILED']);
      expect(r).toMatchObject({ status: 'EXECUTED', filled_qty: '0.002', reason: 'resolved_by_lookup' });
      await settle(500);
      expect(await ordersOf(rig.paper, id)).toHaveLength(1);
      expect(await rig.redis.hget(keys.ledger('BTCUSDT'), 'ledger_amt')).toBe(fmt(new Decimal(ledgerBefore!).sub('0.002')));
    });
  }

  for (const kind of ['http_503_unavailable', 'http_1001'] as const) {
    it(`${kind} on the order (Binance: 100% failure) ends FAILED order_failed with no order and the ledger unchanged`, async () => {
      await rig.startApply();
      const id = planId(kind);
      await allowPermits(rig.redis, id, '0.002');
      await adminFaults(rig.paper.url, { kind, count: 1, endpoints: ['order'], methods: ['POST'] });
      const ledgerBefore = await rig.redis.hget(keys.ledger('BTCUSDT'), 'ledger_amt');
      await submitPlan(rig.redis, { plan_id: id });
      const r = await waitResult(rig.redis, id, ['EXECUTED', 'FAILED']);
      expect(r).toMatchObject({ status: 'FAILED', reason: 'order_failed' });
      await settle(500);
      expect(await ordersOf(rig.paper, id)).toHaveLength(0);
      expect(await rig.redis.hget(keys.ledger('BTCUSDT'), 'ledger_amt')).toBe(ledgerBefore);
    });
  }

  it('http_1008 (system throttle) exempts reduce-only orders: a reduce-only exit executes once', async () => {
    await rig.startApply();
    const id = planId('throttled');
    await allowPermits(rig.redis, id, '0.002');
    await adminFaults(rig.paper.url, { kind: 'http_1008', count: 1 });
    await submitPlan(rig.redis, { plan_id: id });
    const r = await waitResult(rig.redis, id, ['EXECUTED', 'FAILED']);
    expect(r).toMatchObject({ status: 'EXECUTED', filled_qty: '0.002' });
    await settle(500);
    expect(await ordersOf(rig.paper, id)).toHaveLength(1);
    await clearFaults(rig.paper.url);
  });

  it('killed between send and record: a new instance resolves the order by lookup, no second order', async () => {
    let sent: (cid: string) => void = () => undefined;
    const sentP = new Promise<string>((r) => (sent = r));
    const a = await rig.startApply(
      { P3_INSTANCE_ID: 'crashy' },
      {
        hooks: {
          afterSend: (cid, signal) =>
            new Promise<void>((_, reject) => {
              sent(cid);
              signal.addEventListener('abort', () => reject(new Error('process killed (test seam)')));
            }),
        },
      },
    );
    const id = planId('crash');
    await allowPermits(rig.redis, id, '0.003');
    const ledgerBefore = await rig.redis.hget(keys.ledger('BTCUSDT'), 'ledger_amt');
    await submitPlan(rig.redis, { plan_id: id });
    const cid = await sentP;
    await a.stop(); // the process dies after the order was sent, before anything was recorded
    rig.services.splice(rig.services.indexOf(a), 1);
    expect(await ordersOf(rig.paper, id)).toHaveLength(1);
    expect(await resultsOf(rig.redis, id)).toHaveLength(0);
    expect(await rig.redis.hget(keys.applyInflight('BTCUSDT'), cid)).not.toBeNull(); // the engine's grace rule sees it
    await rig.startApply({ P3_INSTANCE_ID: 'restarted' });
    const r = await waitResult(rig.redis, id, ['EXECUTED', 'FAILED']);
    expect(r).toMatchObject({ status: 'EXECUTED', filled_qty: '0.003' });
    await settle(3500); // the dead consumer's entry is claimed (APPLY_CLAIM_IDLE_MS 3000) and must not send again
    expect(await ordersOf(rig.paper, id)).toHaveLength(1);
    expect((await resultsOf(rig.redis, id)).filter((x) => x.status === 'EXECUTED')).toHaveLength(1);
    expect(await rig.redis.hget(keys.ledger('BTCUSDT'), 'ledger_amt')).toBe(fmt(new Decimal(ledgerBefore!).sub('0.003')));
    expect(await rig.redis.hget(keys.applyInflight('BTCUSDT'), cid)).toBeNull();
  });

  it('a 429 storm gives RETRYABLE_RATE_LIMIT and no request before Retry-After', async () => {
    await rig.startApply();
    await rig.redis.del(keys.exchangeBackoffUntil());
    const id1 = planId('rl1');
    const id2 = planId('rl2');
    await allowPermits(rig.redis, id1, '0.001');
    await allowPermits(rig.redis, id2, '0.001');
    await adminFaults(rig.paper.url, { kind: 'http_429', retry_after_s: 3, duration_ms: 30_000 });
    const t0 = Date.now();
    await submitPlan(rig.redis, { plan_id: id1 });
    const r1 = await waitResult(rig.redis, id1);
    expect(r1).toMatchObject({ status: 'RETRYABLE_RATE_LIMIT', executed: 'false' });
    await submitPlan(rig.redis, { plan_id: id2 });
    const r2 = await waitResult(rig.redis, id2);
    expect(r2.status).toBe('RETRYABLE_RATE_LIMIT');
    const reqs = (await adminRequests(rig.paper.url)).filter((q) => q.ts_ms >= t0);
    const first429 = reqs.find((q) => q.status === 429);
    expect(first429).toBeDefined();
    const early = reqs.filter((q) => q.ts_ms > first429!.ts_ms && q.ts_ms < first429!.ts_ms + 3000);
    expect(early).toEqual([]);
    expect(await ordersOf(rig.paper, id1)).toHaveLength(0);
    expect(await ordersOf(rig.paper, id2)).toHaveLength(0);
    await rig.redis.del(keys.exchangeBackoffUntil());
  });

  it('dry_run sends nothing and leaves the ledger alone', async () => {
    await rig.startApply({ APPLY_MODE: 'dry_run' });
    const id = planId('dry');
    await allowPermits(rig.redis, id, '0.004');
    const before = await rig.redis.hgetall(keys.ledger('BTCUSDT'));
    const reqsBefore = (await adminRequests(rig.paper.url)).length;
    await submitPlan(rig.redis, { plan_id: id });
    const r = await waitResult(rig.redis, id);
    expect(r).toMatchObject({ status: 'SKIPPED', reason: 'dry_run', would_execute: 'true', executed: 'false', qty: '0.004' });
    expect(await ordersOf(rig.paper, id)).toHaveLength(0);
    expect((await adminRequests(rig.paper.url)).length).toBe(reqsBefore);
    expect(await rig.redis.hgetall(keys.ledger('BTCUSDT'))).toEqual(before);
  });

  it('a DENY skips with its reason, a missing permit times out, a mismatch skips; no orders', async () => {
    // the deny/mismatch permits are written by the test's poller only after the claim, with no permit
    // notification (the plan sees them on its 100 ms fallback re-read): a generous wait so that, on a loaded
    // machine, only the plan whose p33 permit is never written can time out (it takes the full 5 s)
    await rig.startApply({ APPLY_PERMIT_WAIT_MS: '5000' });
    const deny = planId('deny');
    await writePermits(rig.redis, deny, {
      gov: { decision: 'ALLOW', reason: 'ok', qty: '0.001', symbol: 'BTCUSDT', ts_ms: String(Date.now()) },
      p33: { decision: 'DENY', reason: 'reconcile_required_qty_mismatch', symbol: 'BTCUSDT', ts_ms: String(Date.now()) },
    });
    const missing = planId('missing');
    await writePermits(rig.redis, missing, { gov: { decision: 'ALLOW', reason: 'ok', ts_ms: String(Date.now()) } });
    const mism = planId('mismatch');
    await allowPermits(rig.redis, mism, '0.005', 'SELL', '0.002');
    // one symbol's plans are handled in stream order: the one that times out goes last
    for (const id of [deny, mism, missing]) await submitPlan(rig.redis, { plan_id: id });
    expect(await waitResult(rig.redis, deny)).toMatchObject({ status: 'SKIPPED', reason: 'reconcile_required_qty_mismatch' });
    expect(await waitResult(rig.redis, missing)).toMatchObject({ status: 'SKIPPED', reason: 'permit_timeout' });
    expect(await waitResult(rig.redis, mism)).toMatchObject({ status: 'SKIPPED', reason: 'permit_mismatch' });
    for (const id of [deny, missing, mism]) expect(await ordersOf(rig.paper, id)).toHaveLength(0);
  });

  it('a badly signed, unsigned or oversized plan is dead-lettered, never executed, and gets no result under the plan id it names', async () => {
    await rig.startApply();
    const id = planId('forged');
    await allowPermits(rig.redis, id, '0.001');
    const dlqBefore = await rig.redis.xlen(dlq(STREAMS.applyPlan));
    await submitPlan(rig.redis, { plan_id: id }, 'wrong-key');
    // what a writer with the strategy's Redis password alone can add: unsigned, and far larger than any plan
    await rig.redis.xadd(STREAMS.applyPlan, '*', 'plan', JSON.stringify({ plan_id: id, symbol: 'BTCUSDT', source: 'exit_brain' }), 'mac', '');
    await rig.redis.xadd(STREAMS.applyPlan, '*', 'plan', JSON.stringify({ plan_id: id, symbol: 'BTCUSDT', source: 'exit_brain', pad: 'x'.repeat(100_000) }), 'mac', 'x');
    await waitFor(async () => (await rig.redis.xlen(dlq(STREAMS.applyPlan))) >= dlqBefore + 3, 10_000, 50, 'three dead letters');
    const dead = (await rig.redis.xrange(dlq(STREAMS.applyPlan), '-', '+')).slice(-3).map(([, f]) => f[f.indexOf('dlq_reason') + 1]);
    expect(dead).toEqual(['bad_mac', 'bad_mac', 'too_large']);
    expect(await resultsOf(rig.redis, id)).toEqual([]); // no forged result under someone else's plan id
    expect(await ordersOf(rig.paper, id)).toHaveLength(0);
    expect(await rig.redis.exists(keys.applyDedupe(id))).toBe(0); // a forgery cannot burn the real plan's id
  });
});
