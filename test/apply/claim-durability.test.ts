/**
 * Exactly-once when Redis comes back with less than it had (docs/architecture.md#claim-durability): a host crash under
 * `appendfsync everysec` or a failover to a lagging replica can lose a plan's dedupe claim, its result and its
 * ledger update after its MARKET order filled. Binance keeps client order ids unique only among open orders,
 * so re-sending would execute again. Simulated by hand here (the keys deleted after the send, Redis restarted
 * from its AOF — the restart is what tells the apply layer that writes may have been lost — and the same
 * signed entry added again), against a real Redis and the paper exchange through the real ccxt gateway:
 * - P3_CLAIM_DURABILITY=exchange-query (default): no second order, exactly one EXECUTED result recovered from
 *   the exchange (before the permits could refuse it), the ledger updated once; the same for RECONCILE_CLOSE;
 * - a plan created before the restart that the exchange does not know is sent as usual (-2013 = not sent);
 *   a plan created after it needs no query;
 * - replica-wait: without a replica acknowledging the claim nothing is sent (FAILED claim_not_durable); with
 *   one it sends;
 * - the dataset epoch: a master's start time, or for a promoted replica the first time it was seen.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { STREAMS, keys } from '../../src/adapters/redis/keys.js';
import { createRedis } from '../../src/adapters/redis/client.js';
import { signPlan, type PlanInput } from '../../src/domain/plan.js';
import { APPLY_CLOSE_GROUP } from '../../src/services/apply-layer/index.js';
import { claimNeedsQuery, notFoundIsFinal, redisEpochSince } from '../../src/services/apply-layer/claim/durability.js';
import type { ApplyDeps } from '../../src/services/apply-layer/deps.js';
import { adminPositions, adminSetPosition } from '../helpers/paper.js';
import { startTestRedis, waitFor } from '../helpers/redis.js';
import { EXIT_KEY, P34_KEY, allowPermits, ordersOf, planId, resultsOf, settle, startRig, waitResult, type Rig } from './helpers.js';

let rig: Rig;
beforeAll(async () => {
  rig = await startRig({ BTCUSDT: '0', ETHUSDT: '0' }, ['--appendonly', 'yes']);
  await rig.redis.xgroup('CREATE', STREAMS.reconcileClose, APPLY_CLOSE_GROUP, '$', 'MKSTREAM');
  await rig.startApply();
});
afterAll(async () => {
  await rig.stop();
});
beforeEach(async () => {
  await adminSetPosition(rig.paper.url, 'BTCUSDT', '0');
  await rig.redis.hset(keys.ledger('BTCUSDT'), { ledger_amt: '0', ledger_side: 'FLAT', ts_epoch: '1', source: 'init', version: '1' });
});

/** A signed entry, added once per call with the SAME plan JSON and MAC (a producer re-submitting it). */
function signedOpen(id: string, qty = '0.003'): { plan: string; mac: string } {
  const plan: PlanInput = { plan_id: id, symbol: 'BTCUSDT', decision: 'EXECUTE', action: 'OPEN', side: 'BUY', qty, type: 'MARKET', reduceOnly: false, reason: 'entry', source: 'exit_brain', kill_score: 0.5, ts_ms: Date.now() };
  return signPlan(plan, EXIT_KEY);
}

async function add(stream: string, f: { plan: string; mac: string }): Promise<string> {
  return (await rig.redis.xadd(stream, '*', 'plan', f.plan, 'mac', f.mac)) as string;
}

/**
 * What a host crash loses after the fill: the claim, the plan's results, the ledger update (back to `ledger`);
 * then Redis restarts (kill -9, reload of the AOF that holds these deletions).
 */
async function loseRecord(id: string, ledger: Record<string, string>): Promise<void> {
  const ids = (await rig.redis.xrange(STREAMS.applyResult, '-', '+')).filter(([, f]) => f[f.indexOf('plan_id') + 1] === id).map(([eid]) => eid);
  const m = rig.redis.multi().del(keys.applyDedupe(id)).del(keys.ledger('BTCUSDT')).hset(keys.ledger('BTCUSDT'), ledger);
  for (const e of ids) m.xdel(STREAMS.applyResult, e);
  await m.exec();
  await rig.srv.restart(100);
  await waitFor(async () => (await rig.redis.ping()) === 'PONG', 20_000, 50, 'Redis back');
}

describe('a plan whose dedupe claim Redis lost after its order filled', () => {
  it('re-added: no second order, exactly one EXECUTED result recovered from the exchange, the ledger updated once', async () => {
    const id = planId('lost-claim');
    const now = Date.now();
    await rig.redis.hset(keys.snapshot('BTCUSDT'), { position_amt: '0', side: 'FLAT', ts_ms: String(now), ts_epoch: (now / 1000).toFixed(3), step_size: '0.001' });
    const f = signedOpen(id);
    await add(STREAMS.applyPlan, f);
    await allowPermits(rig.redis, id, '0.003', 'BUY', '0.003', 'BTCUSDT', now);
    expect(await waitResult(rig.redis, id)).toMatchObject({ status: 'EXECUTED', filled_qty: '0.003' });
    expect((await rig.redis.hgetall(keys.ledger('BTCUSDT'))).ledger_amt).toBe('0.003');

    await loseRecord(id, { ledger_amt: '0', ledger_side: 'FLAT', ts_epoch: '1', source: 'init', version: '1' });
    expect(await resultsOf(rig.redis, id)).toHaveLength(0);
    await add(STREAMS.applyPlan, f); // the same signed plan again; its permits (write-once) name the first entry
    const r = await waitResult(rig.redis, id);
    expect(r).toMatchObject({ status: 'EXECUTED', reason: 'recovered_from_exchange', executed: 'true', filled_qty: '0.003', side: 'BUY' });
    await settle(500);
    expect(await ordersOf(rig.paper, id)).toHaveLength(1);
    expect((await resultsOf(rig.redis, id)).filter((x) => x.status !== 'DROPPED_DUPLICATE')).toHaveLength(1);
    expect((await rig.redis.hgetall(keys.ledger('BTCUSDT'))).ledger_amt).toBe('0.003');
    expect((await adminPositions(rig.paper.url)).BTCUSDT?.positionAmt).toBe('0.003');
    expect((await rig.redis.get(keys.applyDedupe(id))) ?? '').toMatch(/^done\|/);
  });

  it('when the ledger was already repaired to the exchange since, the recovered result is evidence only (no double count)', async () => {
    const id = planId('lost-claim-repaired');
    const now = Date.now();
    await rig.redis.hset(keys.snapshot('BTCUSDT'), { position_amt: '0', side: 'FLAT', ts_ms: String(now), ts_epoch: (now / 1000).toFixed(3), step_size: '0.001' });
    const f = signedOpen(id, '0.002');
    await add(STREAMS.applyPlan, f);
    await allowPermits(rig.redis, id, '0.002', 'BUY', '0.002', 'BTCUSDT', now);
    expect(await waitResult(rig.redis, id)).toMatchObject({ status: 'EXECUTED', filled_qty: '0.002' });
    // lost, and meanwhile the reconcile engine set the ledger to the exchange (0.002)
    await loseRecord(id, { ledger_amt: '0.002', ledger_side: 'LONG', ts_epoch: String(Date.now() / 1000), source: 'p34_adopt', version: '7' });
    await add(STREAMS.applyPlan, f);
    expect(await waitResult(rig.redis, id)).toMatchObject({ status: 'EXECUTED', reason: 'recovered_from_exchange', filled_qty: '0.002' });
    expect(await ordersOf(rig.paper, id)).toHaveLength(1);
    expect(await rig.redis.hgetall(keys.ledger('BTCUSDT'))).toMatchObject({ ledger_amt: '0.002', version: '7' });
  });

  it('REVIEW: ledger already repaired, a ONE-LOT fill (0.001): the recovered result must not count the fill again', async () => {
    const id = planId('lost-claim-repaired-1lot');
    const now = Date.now();
    await rig.redis.hset(keys.snapshot('BTCUSDT'), { position_amt: '0', side: 'FLAT', ts_ms: String(now), ts_epoch: (now / 1000).toFixed(3), step_size: '0.001' });
    const f = signedOpen(id, '0.001');
    await add(STREAMS.applyPlan, f);
    await allowPermits(rig.redis, id, '0.001', 'BUY', '0.001', 'BTCUSDT', now);
    expect(await waitResult(rig.redis, id)).toMatchObject({ status: 'EXECUTED', filled_qty: '0.001' });
    // lost, and meanwhile the reconcile engine set the ledger to the exchange (0.001)
    await loseRecord(id, { ledger_amt: '0.001', ledger_side: 'LONG', ts_epoch: String(Date.now() / 1000), source: 'p34_adopt', version: '7' });
    await add(STREAMS.applyPlan, f);
    expect(await waitResult(rig.redis, id)).toMatchObject({ status: 'EXECUTED', reason: 'recovered_from_exchange', filled_qty: '0.001' });
    expect(await ordersOf(rig.paper, id)).toHaveLength(1);
    expect(await rig.redis.hgetall(keys.ledger('BTCUSDT'))).toMatchObject({ ledger_amt: '0.001', version: '7' });
  });

  it('a RECONCILE_CLOSE whose record was lost after it filled: re-added, no second close, one EXECUTED result', async () => {
    await adminSetPosition(rig.paper.url, 'BTCUSDT', '0.004');
    const sig = `sig-${Date.now()}`;
    await rig.redis.multi().set(keys.hold('BTCUSDT'), '1', 'EX', 300).set(keys.holdReason('BTCUSDT'), 'qty_mismatch_no_evidence', 'EX', 300).set(keys.holdSig('BTCUSDT'), sig, 'EX', 300).exec();
    const id = planId('lost-close');
    const plan = { plan_id: id, symbol: 'BTCUSDT', decision: 'RECONCILE_CLOSE', action: 'RECONCILE_CLOSE', side: 'SELL', qty: '0.004', type: 'MARKET', reduceOnly: true, reason: 'reconcile_drift', source: 'p3.4', ts_ms: Date.now(), drift_sig: sig, basis_amt: '0.004' } as PlanInput;
    const f = signPlan(plan, P34_KEY);
    await add(STREAMS.reconcileClose, f);
    expect(await waitResult(rig.redis, id)).toMatchObject({ status: 'EXECUTED', filled_qty: '0.004' });
    expect((await adminPositions(rig.paper.url)).BTCUSDT?.positionAmt).toBe('0');
    await loseRecord(id, { ledger_amt: '0', ledger_side: 'FLAT', ts_epoch: '1', source: 'init', version: '1' });
    await rig.redis.del(keys.closeSent('BTCUSDT', sig));
    await add(STREAMS.reconcileClose, f);
    // the position is flat now: without the query the close would be refused (qty > |position|) as a guardrail violation
    expect(await waitResult(rig.redis, id)).toMatchObject({ status: 'EXECUTED', reason: 'recovered_from_exchange', filled_qty: '0.004', basis_amt: '0.004' });
    await settle(300);
    expect(await ordersOf(rig.paper, id)).toHaveLength(1);
    await rig.redis.del(keys.hold('BTCUSDT'), keys.holdReason('BTCUSDT'), keys.holdSig('BTCUSDT'));
  });

  it('a plan created before a Redis restart that the exchange does not know (-2013) is sent as usual; one created after needs no query', async () => {
    const id = planId('fresh');
    const f = signedOpen(id, '0.002'); // created now ...
    await rig.srv.restart(100); // ... and Redis restarts before it is handled
    await waitFor(async () => (await rig.redis.ping()) === 'PONG', 20_000, 50, 'Redis back');
    await settle(1500);
    const now = Date.now();
    await rig.redis.hset(keys.snapshot('BTCUSDT'), { position_amt: '0', side: 'FLAT', ts_ms: String(now), ts_epoch: (now / 1000).toFixed(3), step_size: '0.001' });
    await add(STREAMS.applyPlan, f);
    await allowPermits(rig.redis, id, '0.002', 'BUY', '0.002', 'BTCUSDT', now);
    expect(await waitResult(rig.redis, id)).toMatchObject({ status: 'EXECUTED', reason: '', filled_qty: '0.002' });
    expect(await ordersOf(rig.paper, id)).toHaveLength(1);
    await settle(1500); // the next plan is created more than the clock-skew margin after the restart
    const id2 = planId('after');
    const now2 = Date.now();
    await rig.redis.hset(keys.snapshot('BTCUSDT'), { position_amt: '0.002', side: 'LONG', ts_ms: String(now2), ts_epoch: (now2 / 1000).toFixed(3), step_size: '0.001' });
    const plan2: PlanInput = { plan_id: id2, symbol: 'BTCUSDT', decision: 'EXECUTE', action: 'FULL_CLOSE', side: 'SELL', type: 'MARKET', reduceOnly: true, reason: 'exit', source: 'exit_brain', kill_score: 0.5, ts_ms: Date.now() };
    await add(STREAMS.applyPlan, signPlan(plan2, EXIT_KEY));
    await allowPermits(rig.redis, id2, '0.002', 'SELL', '0.002', 'BTCUSDT', now2);
    expect(await waitResult(rig.redis, id2)).toMatchObject({ status: 'EXECUTED', filled_qty: '0.002' });
    const metrics = await rig.services[0]!.registry.metrics();
    expect(metrics).toMatch(/apply_claim_query_total\{outcome="not_needed"[^}]*\} [1-9]/);
    expect(metrics).toMatch(/apply_claim_query_total\{outcome="not_found"[^}]*\} [1-9]/);
    expect(metrics).toMatch(/apply_claim_query_total\{outcome="found"[^}]*\} [1-9]/);
  });
});

describe('P3_CLAIM_DURABILITY=replica-wait', () => {
  it('no replica acknowledges the claim: nothing sent, FAILED claim_not_durable; with a replica: sent', async () => {
    const srv = await startTestRedis();
    const replica = await startTestRedis({ args: ['--replicaof', '127.0.0.1', String(srv.port)] });
    const conn = createRedis(srv.url, { name: 'test-wait' });
    const local = await startRig({ BTCUSDT: '0' });
    try {
      // a rig on a master without replicas
      await local.startApply({ P3_CLAIM_DURABILITY: 'replica-wait', APPLY_CLAIM_WAIT_TIMEOUT_MS: '50' });
      const id = planId('wait-none');
      const now = Date.now();
      await local.redis.hset(keys.snapshot('BTCUSDT'), { position_amt: '0', side: 'FLAT', ts_ms: String(now), ts_epoch: (now / 1000).toFixed(3), step_size: '0.001' });
      const f = signedOpen(id, '0.002');
      await local.redis.xadd(STREAMS.applyPlan, '*', 'plan', f.plan, 'mac', f.mac);
      await allowPermits(local.redis, id, '0.002', 'BUY', '0.002', 'BTCUSDT', now);
      expect(await waitResult(local.redis, id)).toMatchObject({ status: 'FAILED', reason: 'claim_not_durable' });
      expect(await ordersOf(local.paper, id)).toHaveLength(0);
      expect(await local.redis.hlen(keys.applyInflight('BTCUSDT'))).toBe(0);

      // an apply layer on a master with one replica (same paper exchange)
      await waitFor(async () => /master_link_status:up/.test(await createRedis(replica.url, { name: 'probe' }).info('replication').catch(() => '')), 20_000, 100, 'replica linked');
      await local.startApply({ REDIS_URL: srv.url, P3_INSTANCE_ID: 'apply-replicated', P3_CLAIM_DURABILITY: 'replica-wait', APPLY_CLAIM_WAIT_TIMEOUT_MS: '1000' });
      const id2 = planId('wait-acked');
      const now2 = Date.now();
      await conn.hset(keys.snapshot('BTCUSDT'), { position_amt: '0', side: 'FLAT', ts_ms: String(now2), ts_epoch: (now2 / 1000).toFixed(3), step_size: '0.001' });
      const f2 = signedOpen(id2, '0.002');
      await conn.xadd(STREAMS.applyPlan, '*', 'plan', f2.plan, 'mac', f2.mac);
      await allowPermits(conn, id2, '0.002', 'BUY', '0.002', 'BTCUSDT', now2);
      expect(await waitResult(conn, id2)).toMatchObject({ status: 'EXECUTED', filled_qty: '0.002' });
    } finally {
      for (const s of local.services.splice(0)) await s.stop().catch(() => undefined);
      conn.disconnect();
      await local.stop();
      await replica.stop();
      await srv.stop();
    }
  });
});

describe('P3_CLAIM_DURABILITY=fsync-always', () => {
  it('skips the query only while Redis shows the AOF on and has no replica; otherwise asks the exchange', async () => {
    const master = await startTestRedis({ args: ['--appendonly', 'yes'] });
    const plain = await startTestRedis();
    const conns = [createRedis(master.url, { name: 'fsync-m' }), createRedis(plain.url, { name: 'fsync-p' })];
    const warnings: string[] = [];
    const deps = (redis: (typeof conns)[number]) =>
      ({ cfg: { mode: 'testnet', claimDurability: 'fsync-always' }, gateway: {}, redis, logger: { warn: (m: string) => warnings.push(m) } }) as unknown as ApplyDeps;
    let replica: Awaited<ReturnType<typeof startTestRedis>> | null = null;
    try {
      expect(await claimNeedsQuery(deps(conns[0]!))).toBe(false); // AOF on, no replica
      expect(await claimNeedsQuery(deps(conns[1]!))).toBe(true); // no AOF (appendonly no)
      replica = await startTestRedis({ args: ['--replicaof', '127.0.0.1', String(master.port)] });
      await waitFor(async () => /connected_slaves:1/.test(await conns[0]!.info('replication')), 20_000, 100, 'replica connected');
      expect(await claimNeedsQuery(deps(conns[0]!))).toBe(true); // a fresh deps (no cache): a replica could be promoted lagging
      expect(warnings.length).toBe(2);
    } finally {
      for (const c of conns) c.disconnect();
      await replica?.stop();
      await plain.stop();
      await master.stop();
    }
  });
});

describe('the Redis dataset epoch', () => {
  it('a master never promoted: its start time; a promoted replica: when it was first seen', async () => {
    const master = await startTestRedis();
    const replica = await startTestRedis({ args: ['--replicaof', '127.0.0.1', String(master.port)] });
    const m = createRedis(master.url, { name: 'epoch-m' });
    const r = createRedis(replica.url, { name: 'epoch-r' });
    try {
      const uptime = Number(/uptime_in_seconds:(\d+)/.exec(await m.info('server'))?.[1]);
      const since = await redisEpochSince(m);
      expect(since).toBeLessThanOrEqual(Date.now() - uptime * 1000 + 5);
      await waitFor(async () => /master_link_status:up/.test(await r.info('replication')), 20_000, 100, 'replica linked');
      await r.call('REPLICAOF', 'NO', 'ONE'); // a failover: the replica is the master now
      const before = Date.now();
      const promoted = await redisEpochSince(r);
      expect(promoted).toBeGreaterThanOrEqual(before); // first seen now, not the replica's (older) start
      expect(await redisEpochSince(r)).toBe(promoted); // stable while the same server answers
    } finally {
      m.disconnect();
      r.disconnect();
      await replica.stop();
      await master.stop();
    }
  });

  it('"not found" is final for plans created after the epoch, or once the epoch is older than the settle time', () => {
    const since = 1_000_000;
    expect(notFoundIsFinal(since + 5000, since, since + 6000, 10_000)).toBe(true); // created after the loss
    expect(notFoundIsFinal(since - 100, since, since + 6000, 10_000)).toBe(false); // created before: wait
    expect(notFoundIsFinal(since + 500, since, since + 6000, 10_000)).toBe(false); // within the clock skew
    expect(notFoundIsFinal(since - 100, since, since + 10_000, 10_000)).toBe(true); // settled
    expect(notFoundIsFinal(since + 60_000, since, since + 6000, 10_000)).toBe(false); // ts_ms in the future: not trusted
    expect(notFoundIsFinal(null, since, since + 6000, 10_000)).toBe(false);
  });
});
