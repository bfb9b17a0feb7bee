/**
 * Every service connects with its own ACL user (`p3 redis-acl`) to a Redis whose default user
 * is off, and the whole self-heal path still works: seed 000 and seed 004 (and its further manual
 * +0.016) heal, a strategy plan passes both permits and executes. Redis's ACL LOG then shows no
 * command refused to any service user (a missing right would show there even when the code retried).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import type { Redis } from 'ioredis';
import { fieldsToObject } from '../../src/adapters/redis/consumer.js';
import { STREAMS, keys } from '../../src/adapters/redis/keys.js';
import { submitPlan } from '../../src/plans/submit.js';
import { submitFlatten } from '../../src/plans/flatten.js';
import { buildServices } from '../../src/services/index.js';
import type { ServiceName } from '../../src/host/service-names.js';
import { startServices, stopServices, type RunningService } from '../../src/host/lifecycle.js';
import { adminOrders, adminPositions, adminTrade, startPaperExchange, type PaperExchange } from '../helpers/paper.js';
import { waitFor } from '../helpers/redis.js';
import { startAclRedis, type AclRedis } from './helpers.js';

const SERVICE_USER: Record<ServiceName, string> = { governor: 'p3-governor', 'position-state-brain': 'p3-brain', 'reconcile-engine': 'p3-engine', 'apply-layer': 'p3-apply' };
const EXIT_KEY = 'acl-e2e-exit-brain-key-0123456789';
const OPERATOR_KEY = 'acl-e2e-operator-key-0123456789';

let acl: AclRedis;
let paper: PaperExchange;
let operator: Redis;
let strategy: Redis;
let running: RunningService[] = [];

beforeAll(async () => {
  acl = await startAclRedis();
  paper = await startPaperExchange({ symbols: ['BTCUSDT', 'ETHUSDT'], positions: { BTCUSDT: '0.007', ETHUSDT: '0.046' } });
  operator = acl.connect('p3-operator');
  strategy = acl.connect('p3-strategy');
  // the seeds' legacy ledgers, written as an operator would with redis-cli --user p3-operator
  await operator.hset(keys.ledger('BTCUSDT'), { last_known_amt: '0.002', last_side: 'SELL', last_executed_qty: '0.0', updated_at: '1769299637' });
  await operator.hset(keys.legacyLedger004('ETHUSDT'), 'ledger_amount', '0.002');
  const env = {
    P3_ALLOWLIST: 'BTCUSDT,ETHUSDT',
    EXCHANGE: 'paper',
    EXCHANGE_BASE_URL: paper.url,
    EXCHANGE_API_KEY: paper.apiKey,
    EXCHANGE_API_SECRET: paper.apiSecret,
    P3_KEY_P3_4: 'acl-e2e-engine-key-0123456789',
    P3_KEY_EXIT_BRAIN: EXIT_KEY,
    P3_KEY_GOVERNOR: 'acl-e2e-governor-permit-key',
    P3_KEY_P33: 'acl-e2e-p33-permit-key',
    P3_KEY_OPERATOR: OPERATOR_KEY,
    APPLY_MODE: 'testnet',
    GOVERNOR_MODE: 'paper',
    GOVERNOR_MAX_GROSS_USD: '1000000', // the exposure limits' reads and reservation script run as p3-governor
    P33_SNAPSHOT_INTERVAL_MS: '100',
    P34_RECONCILE_CLOSE_ENABLED: 'true',
    P34_PROMETHEUS_PORT: '0',
    P33_PROMETHEUS_PORT: '0',
    APPLY_PROMETHEUS_PORT: '0',
    GOVERNOR_PROMETHEUS_PORT: '0',
    P34_LOG_LEVEL: 'error',
    P33_LOG_LEVEL: 'error',
    APPLY_LOG_LEVEL: 'error',
    GOVERNOR_LOG_LEVEL: 'error',
  };
  const names: ServiceName[] = ['governor', 'position-state-brain', 'reconcile-engine', 'reconcile-engine', 'apply-layer', 'apply-layer'];
  const services = [];
  for (const [i, name] of names.entries()) {
    const [svc] = await buildServices([name], { ...env, REDIS_URL: acl.urlFor(SERVICE_USER[name]), P3_INSTANCE_ID: `${name}-${i}` });
    services.push(svc!);
  }
  running = await startServices(services);
}, 60_000);

afterAll(async () => {
  await stopServices(running);
  await paper?.close();
  await acl?.stop();
});

async function closeOrders(symbol: string) {
  return (await adminOrders(paper.url)).filter((o) => o.symbol === symbol && o.reduceOnly);
}
async function healed(symbol: string): Promise<boolean> {
  const [hold, status] = await Promise.all([operator.exists(keys.hold(symbol)), operator.hget(keys.reconcileState(symbol), 'status')]);
  return hold === 0 && (status === 'OK' || status === 'REPAIRED');
}
/** Refusals the send-time gate makes by design when the symbol moved under a plan. */
const RACE_REASONS = new Set(['snapshot_superseded', 'order_in_flight', 'reconcile_hold_active']);
/** Until `symbol` is healed, its snapshot is newer than its last fill and no order of it is in flight. */
async function quiet(symbol: string): Promise<void> {
  await waitFor(async () => {
    const [snap, lastFill, inflight] = await Promise.all([operator.hgetall(keys.snapshot(symbol)), operator.get(keys.lastFill(symbol)), operator.exists(keys.applyInflight(symbol))]);
    return (await healed(symbol)) && inflight === 0 && Number(snap.ts_ms) > Number(lastFill ?? 0);
  }, 30_000, 50, `${symbol} quiet (healed, snapshot newer than the last fill, nothing in flight)`);
}
/**
 * Submits a strategy plan as p3-strategy once `symbol` is quiet and returns its result. The producer
 * contract (README): a plan refused by a race (its snapshot superseded, another order in flight, a hold set
 * meanwhile) is re-submitted as a new plan; anything else ends the loop. At most 3 plans.
 * @returns the last plan's result and every result as JSON (for the assertion message)
 */
async function submitStrategyPlan(req: Parameters<typeof submitPlan>[1]): Promise<{ result: Record<string, string> | undefined; tries: string[] }> {
  await quiet(req.symbol);
  let result: Record<string, string> | undefined;
  const tries: string[] = [];
  for (let attempt = 0; attempt < 3; attempt++) {
    const planId = await submitPlan(strategy, req, EXIT_KEY);
    result = await waitFor(
      async () => (await strategy.xrevrange(STREAMS.applyResult, '+', '-', 'COUNT', 200)).map(([, f]) => fieldsToObject(f)).find((r) => r.plan_id === planId),
      30_000,
      50,
      `result of ${planId}`,
    );
    tries.push(JSON.stringify(result));
    if (!(result.status === 'SKIPPED' && RACE_REASONS.has(result.reason ?? ''))) break;
    await quiet(req.symbol);
  }
  return { result, tries };
}
async function events(type: string, symbol: string) {
  return (await operator.xrange(STREAMS.reconcileEvents, '-', '+')).map(([, f]) => fieldsToObject(f)).filter((e) => e.event === type && e.symbol === symbol);
}

describe('self-heal with one ACL user per service', () => {
  it('the default user is off: no unauthenticated command', async () => {
    const reply = await new Promise<string>((resolve, reject) => {
      const s = connect(acl.srv.port, '127.0.0.1', () => s.write(`GET ${keys.hold('BTCUSDT')}\r\n`));
      s.once('data', (d) => {
        resolve(d.toString());
        s.destroy();
      });
      s.once('error', reject);
    });
    expect(reply).toMatch(/^-NOAUTH/);
  });

  it('seed 000 and seed 004 (then a manual +0.016) heal with one close each', async () => {
    await waitFor(async () => (await events('HOLD_CLEARED', 'BTCUSDT')).length > 0 && (await healed('BTCUSDT')), 40_000, 50, 'seed 000 healed');
    expect((await closeOrders('BTCUSDT')).map((o) => `${o.side} ${o.qty} ${o.status}`)).toEqual(['SELL 0.007 FILLED']);
    expect(await operator.hgetall(keys.ledger('BTCUSDT'))).toMatchObject({ ledger_amt: '0', ledger_side: 'FLAT', source: 'p34_auto' });
    await waitFor(async () => (await events('HOLD_CLEARED', 'ETHUSDT')).length > 0 && (await healed('ETHUSDT')), 40_000, 50, 'seed 004 healed');
    expect((await closeOrders('ETHUSDT')).map((o) => `${o.side} ${o.qty}`)).toEqual(['SELL 0.044']);
    await adminTrade(paper.url, 'ETHUSDT', 'BUY', '0.016');
    await waitFor(async () => (await events('HOLD_CLEARED', 'ETHUSDT')).length > 1 && (await healed('ETHUSDT')), 40_000, 50, 'second drift healed');
    expect((await closeOrders('ETHUSDT')).map((o) => `${o.side} ${o.qty}`)).toEqual(['SELL 0.044', 'SELL 0.016']);
    expect((await adminPositions(paper.url)).ETHUSDT?.positionAmt).toBe('0.002');
  }, 120_000);

  it('a strategy plan submitted as p3-strategy passes both signed permits and executes; the strategy reads its result', async () => {
    // The symbol must be quiet first: the heal's close just filled, and a plan sized on a snapshot older
    // than that fill (or while the engine still holds) is refused by design; a race refusal
    // after that is re-submitted (submitStrategyPlan); anything else is a failure
    const { result, tries } = await submitStrategyPlan({ symbol: 'ETHUSDT', action: 'PARTIAL_50' });
    expect(result, tries.join('\n')).toMatchObject({ status: 'EXECUTED', side: 'SELL', qty: '0.001' });
    expect((await adminPositions(paper.url)).ETHUSDT?.positionAmt).toBe('0.001');
  }, 60_000);

  it('an operator FLATTEN submitted as p3-operator is executed by the apply layer', async () => {
    // the strategy plan's fill just landed: the engine may still be reconciling it (a hold set meanwhile)
    await quiet('ETHUSDT');
    const { planId } = await submitFlatten(operator, { symbol: 'ETHUSDT', reason: 'acl e2e', by: 'ops', nowMs: Date.now() }, OPERATOR_KEY);
    const result = await waitFor(
      async () => (await operator.xrevrange(STREAMS.applyResult, '+', '-', 'COUNT', 200)).map(([, f]) => fieldsToObject(f)).find((r) => r.plan_id === planId),
      30_000,
      50,
      `result of ${planId}`,
    );
    expect(result).toMatchObject({ status: 'EXECUTED', side: 'SELL', filled_qty: '0.001' });
    expect((await adminPositions(paper.url)).ETHUSDT?.positionAmt).toBe('0');
    // the event follows the result (the apply layer reads the position again after the fill first)
    await waitFor(async () => (await events('FLATTEN_EXECUTED', 'ETHUSDT')).length === 1, 20_000, 50, 'FLATTEN_EXECUTED event');
    // ledger 0.001 vs exchange 0 is within the one-lot tolerance of ETHUSDT: in sync, no hold
    await waitFor(() => healed('ETHUSDT'), 30_000, 50, 'ETHUSDT in sync after the flatten');
  }, 60_000);

  it('an entry (OPEN by notional) passes the exposure limits and the send-time position check as the service users', async () => {
    await waitFor(async () => {
      const [snap, lastFill] = await Promise.all([operator.hgetall(keys.snapshot('ETHUSDT')), operator.get(keys.lastFill('ETHUSDT'))]);
      return snap.position_amt === '0' && Number(snap.ts_ms) > Number(lastFill ?? 0);
    }, 30_000, 50, 'ETHUSDT snapshot flat and newer than the flatten fill');
    // as the strategy plan above: quiet first (healed, nothing in flight), a race refusal re-submitted
    const { result, tries } = await submitStrategyPlan({ symbol: 'ETHUSDT', action: 'OPEN', side: 'BUY', notionalUsd: '100' });
    expect(result, tries.join('\n')).toMatchObject({ status: 'EXECUTED', side: 'BUY' });
  }, 60_000);

  it('no command of any service user was refused (ACL LOG), metrics scrape included', async () => {
    for (const r of running) await r.service.registry.metrics(); // the DLQ and back-off gauges read Redis at scrape time
    const services = new Set(Object.values(SERVICE_USER));
    const refused = (await acl.aclLog()).filter((e) => services.has(e.username ?? ''));
    expect(refused.map((e) => `${e.username}: ${e.reason} ${e.context} ${e.object}`)).toEqual([]);
  });
});
