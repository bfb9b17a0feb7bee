/** Helpers of the reconcile-engine tests: writing the seeds' states, reading events and metrics. */
import type { Redis } from 'ioredis';
import { STREAMS, keys } from '../../src/adapters/redis/keys.js';
import { fieldsToObject } from '../../src/adapters/redis/consumer.js';
import { createReconcileEngineService, type ReconcileEngineService } from '../../src/services/reconcile-engine/index.js';
import { startServices, stopServices, type RunningService } from '../../src/host/lifecycle.js';

export const SYM = 'BTCUSDT';

/** Writes a snapshot the way the position brain does: hash + notification entry in one MULTI. */
export async function writeSnapshot(redis: Redis, symbol: string, amt: string, side: string, tsMs = Date.now(), stepSize = '0.001'): Promise<void> {
  await redis
    .multi()
    .hset(keys.snapshot(symbol), { position_amt: amt, side, entry_price: '95000', mark_price: '96000', ts_epoch: String(Math.floor(tsMs / 1000)), ts_ms: String(tsMs), step_size: stepSize })
    .xadd(STREAMS.positionSnapshot, 'MAXLEN', '~', '1000', '*', 'symbol', symbol, 'ts_ms', String(tsMs))
    .exec();
}

/** Adds an apply result entry (as the apply layer does). */
export async function addResult(redis: Redis, f: Record<string, string>): Promise<void> {
  const fields = { decision: 'EXECUTE', status: 'EXECUTED', executed: 'true', would_execute: 'true', error: '', dedupe_hit: 'false', reason: '', ...f };
  await redis.xadd(STREAMS.applyResult, '*', ...Object.entries(fields).flat());
}

/** Every event of the reconcile events stream (optionally only `name`), oldest first. */
export async function events(redis: Redis, name?: string, symbol?: string): Promise<Array<Record<string, string>>> {
  const all = (await redis.xrange(STREAMS.reconcileEvents, '-', '+')).map(([, f]) => fieldsToObject(f));
  return all.filter((e) => (!name || e.event === name) && (!symbol || e.symbol === symbol));
}

/** Default engine environment for tests (fast cadence, generous freshness, silent logs, any free port). */
export function engineEnv(url: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    REDIS_URL: url,
    P34_ALLOWLIST: SYM,
    P34_LOOP_CADENCE_SEC: '0.2',
    P34_EXCHANGE_FRESHNESS_SEC: '60',
    P34_PROMETHEUS_PORT: '0',
    P34_LOG_LEVEL: 'silent',
    P34_RECONCILE_CLOSE_ENABLED: 'false',
    ...extra,
  };
}

/** A started engine with its metrics server. */
export interface RunningEngine {
  svc: ReconcileEngineService;
  port: number;
  metrics(): Promise<string>;
  ready(): Promise<number>;
  stop(): Promise<void>;
}

/** Starts an engine service (loops + HTTP server) with {@link engineEnv}. */
export async function startEngine(url: string, extra: Record<string, string> = {}): Promise<RunningEngine> {
  const svc = await createReconcileEngineService(engineEnv(url, extra));
  const running: RunningService[] = await startServices([svc]);
  const port = running[0]!.ops.port;
  return {
    svc,
    port,
    metrics: async () => (await fetch(`http://127.0.0.1:${port}/metrics`)).text(),
    ready: async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).status,
    stop: () => stopServices(running),
  };
}

/** Value of a metric line (service label ignored), or null when absent. */
export function metricValue(text: string, name: string, labels: Record<string, string>): number | null {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const ok = Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`));
    if (ok) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return null;
}

/** The seed 000 state: legacy ledger SELL 0.002, fifty SKIP results, fresh snapshot LONG 0.007. */
export async function seed000(redis: Redis): Promise<void> {
  await redis.hset(keys.ledger(SYM), { last_known_amt: '0.002', last_side: 'SELL', last_executed_qty: '0.0', updated_at: '1769299637' });
  for (let i = 0; i < 50; i++) {
    await addResult(redis, { plan_id: `skip${i}`, symbol: SYM, status: 'SKIPPED', executed: 'false', would_execute: 'false', side: 'SELL', qty: '0', filled_qty: '0', ts_ms: String(Date.now()) });
  }
  await writeSnapshot(redis, SYM, '0.007', 'LONG');
}
