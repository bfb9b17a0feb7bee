/**
 * A whole stack in one process for end-to-end tests: a private redis-server, the paper exchange (through
 * the real ccxt gateway), a position brain, N reconcile engines and M apply layers.
 */
import type { Redis } from 'ioredis';
import { createRedis } from '../../src/adapters/redis/client.js';
import { fieldsToObject } from '../../src/adapters/redis/consumer.js';
import { STREAMS, keys } from '../../src/adapters/redis/keys.js';
import { buildServices } from '../../src/services/index.js';
import type { Service } from '../../src/host/service.js';
import { adminOrders, startPaperExchange, type PaperExchange } from '../helpers/paper.js';
import { startTestRedis, type TestRedis } from '../helpers/redis.js';

/** Keys the stack's services share. */
export const STACK_KEYS = { P3_KEY_P3_4: 'e2e-engine-key', P3_KEY_OPERATOR: 'e2e-operator-key', P3_KEY_EXIT_BRAIN: 'e2e-strategy-key', P3_KEY_GOVERNOR: 'e2e-governor-permit-key', P3_KEY_P33: 'e2e-p33-permit-key' } as const;

/** A running stack. */
export interface Stack {
  srv: TestRedis;
  paper: PaperExchange;
  redis: Redis;
  env: Record<string, string>;
  /** Reduce-only orders the exchange received for `symbol` (ours: closes and flattens). */
  closeOrders(symbol: string): Promise<Array<{ side: string; qty: string; status: string; executedQty: string }>>;
  /** Events of `type` for `symbol` on quantum:stream:reconcile.events. */
  events(type: string, symbol: string): Promise<Array<Record<string, string>>>;
  /** No hold and status OK/REPAIRED. */
  healed(symbol: string): Promise<boolean>;
  stop(): Promise<void>;
}

/**
 * Starts the stack. `ledgers` are written before any engine starts (no LEDGER_INIT from the exchange).
 * @param extraEnv environment overrides for every service (e.g. `P34_HEAL_POLICY`)
 */
export async function startStack(o: { positions: Record<string, string>; ledgers: Record<string, string>; engines?: number; applies?: number; governors?: number; extraEnv?: Record<string, string> }): Promise<Stack> {
  const symbols = Object.keys(o.positions);
  const srv = await startTestRedis();
  const paper = await startPaperExchange({ symbols, positions: o.positions });
  const redis = createRedis(srv.url, { name: 'test' });
  for (const [sym, amt] of Object.entries(o.ledgers)) {
    const side = amt.startsWith('-') ? 'SHORT' : Number(amt) === 0 ? 'FLAT' : 'LONG';
    await redis.hset(keys.ledger(sym), { ledger_amt: amt, ledger_side: side, version: '1', ts_epoch: String((Date.now() - 60_000) / 1000), source: 'apply' });
  }
  const env: Record<string, string> = {
    REDIS_URL: srv.url,
    P3_ALLOWLIST: symbols.join(','),
    EXCHANGE: 'paper',
    EXCHANGE_BASE_URL: paper.url,
    EXCHANGE_API_KEY: paper.apiKey,
    EXCHANGE_API_SECRET: paper.apiSecret,
    ...STACK_KEYS,
    APPLY_MODE: 'testnet',
    P33_SNAPSHOT_INTERVAL_MS: '100',
    P33_PERMITS_ENABLED: o.governors ? 'true' : 'false',
    P3_KEY_EXIT_BRAIN: 'e2e-strategy-key',
    GOVERNOR_PROMETHEUS_PORT: '0',
    GOVERNOR_LOG_LEVEL: 'error',
    GOVERNOR_MODE: 'live',
    P34_RECONCILE_CLOSE_ENABLED: 'true',
    P34_PROMETHEUS_PORT: '0',
    P33_PROMETHEUS_PORT: '0',
    APPLY_PROMETHEUS_PORT: '0',
    P34_LOG_LEVEL: 'error',
    P33_LOG_LEVEL: 'error',
    APPLY_LOG_LEVEL: 'error',
    ...o.extraEnv,
  };
  const names = ['position-state-brain', ...Array(o.governors ?? 0).fill('governor'), ...Array(o.engines ?? 1).fill('reconcile-engine'), ...Array(o.applies ?? 1).fill('apply-layer')] as string[];
  const services: Service[] = [];
  for (const [i, name] of names.entries()) {
    const [svc] = await buildServices([name as 'apply-layer'], { ...env, P3_INSTANCE_ID: `${name}-${i}` });
    await svc!.start();
    services.push(svc!);
  }
  return {
    srv,
    paper,
    redis,
    env,
    async closeOrders(symbol) {
      return (await adminOrders(paper.url)).filter((x) => x.symbol === symbol && x.reduceOnly && x.source === 'api');
    },
    async events(type, symbol) {
      return (await redis.xrange(STREAMS.reconcileEvents, '-', '+')).map(([, f]) => fieldsToObject(f)).filter((e) => e.event === type && e.symbol === symbol);
    },
    async healed(symbol) {
      const [hold, status] = await Promise.all([redis.exists(keys.hold(symbol)), redis.hget(keys.reconcileState(symbol), 'status')]);
      return hold === 0 && (status === 'OK' || status === 'REPAIRED');
    },
    async stop() {
      for (const s of services.reverse()) await s.stop().catch(() => undefined);
      redis.disconnect();
      await paper.close();
      await srv.stop();
    },
  };
}
