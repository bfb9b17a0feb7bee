/**
 * Shared set-up of the permit-chain tests: a private Redis, governors and P3.3 permit consumers built
 * as components with capturing loggers, and helpers to write snapshots/ledgers and submit plans.
 */
import { pino, type Logger } from 'pino';
import { Registry } from 'prom-client';
import type { Redis } from 'ioredis';
import { createRedis } from '../../src/adapters/redis/client.js';
import { STREAMS, keys } from '../../src/adapters/redis/keys.js';
import type { Env } from '../../src/config/env.js';
import type { PlanInput } from '../../src/domain/plan.js';
import { readPermit, submitPlan, submitSignedPlan, type StoredPermit } from '../../src/plans/index.js';
import { parseGovernorConfig } from '../../src/services/governor/config.js';
import { Governor } from '../../src/services/governor/governor.js';
import { PermitConsumer } from '../../src/services/position-state-brain/permits.js';
import { waitFor } from '../helpers/redis.js';

export const KEY = 'test-key-exit-brain';
export const P34_KEY = 'test-key-p34';
/** Permit-signing keys of the governor and the brain (docs/architecture.md#least-privilege-and-signed-permits). */
export const GOV_KEY = 'test-key-governor-permits';
export const P33_KEY = 'test-key-p33-permits';

/** Log lines captured from one component. */
export interface Captured {
  logger: Logger;
  lines: Array<Record<string, unknown> & { msg: string }>;
}

/** A pino logger that keeps every line in memory. */
export function captureLogger(): Captured {
  const lines: Captured['lines'] = [];
  // debug: the per-plan steps before a decision line are logged at debug and tests read them
  const logger = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as Captured['lines'][number]) });
  return { logger, lines };
}

/** A running component with its connection, logs and registry. */
export interface Running {
  redis: Redis;
  registry: Registry;
  logs: Captured;
  stop(): Promise<void>;
}

/** Base environment of the tests. */
export function baseEnv(url: string, extra: Env = {}): Env {
  return { REDIS_URL: url, P3_KEY_EXIT_BRAIN: KEY, P3_KEY_P3_4: P34_KEY, P3_KEY_GOVERNOR: GOV_KEY, P3_KEY_P33: P33_KEY, GOVERNOR_CLAIM_IDLE_MS: '500', P33_CLAIM_IDLE_MS: '500', ...extra };
}

function conn(url: string, name: string): Redis {
  return createRedis(url, { name, overrides: { retryStrategy: () => 100 } });
}

/** Starts a governor component (consumer `instance` in its group). */
export async function startGovernor(url: string, instance: string, extra: Env = {}): Promise<Running & { gov: Governor }> {
  const env = baseEnv(url, extra);
  const redis = conn(url, `gov-${instance}`);
  const registry = new Registry();
  const logs = captureLogger();
  const gov = new Governor({ redis, logger: logs.logger, registry, instanceId: instance, env }, parseGovernorConfig(env));
  await gov.start();
  return {
    gov,
    redis,
    registry,
    logs,
    stop: async () => {
      await gov.stop();
      redis.disconnect();
    },
  };
}

/** Starts a P3.3 permit consumer component (consumer `instance` in its group). */
export async function startBrain(url: string, instance: string, extra: Env = {}): Promise<Running & { brain: PermitConsumer }> {
  const env = baseEnv(url, extra);
  const redis = conn(url, `p33-${instance}`);
  const registry = new Registry();
  const logs = captureLogger();
  const brain = new PermitConsumer({ redis, logger: logs.logger, registry, instanceId: instance }, env);
  await brain.start();
  return {
    brain,
    redis,
    registry,
    logs,
    stop: async () => {
      await brain.stop();
      redis.disconnect();
    },
  };
}

/** Writes a fresh exchange snapshot (as the publisher does): signed amount, side, mark price, lot step. */
export async function setSnapshot(redis: Redis, sym: string, amt: string, o: { mark?: string; index?: string; step?: string | null; ageMs?: number } = {}): Promise<void> {
  const ts = Date.now() - (o.ageMs ?? 0);
  const side = amt.startsWith('-') ? 'SHORT' : Number(amt) === 0 ? 'FLAT' : 'LONG';
  await redis.del(keys.snapshot(sym));
  const h: Record<string, string> = { position_amt: amt, side, entry_price: '94000', mark_price: o.mark ?? '95000', index_price: o.index ?? o.mark ?? '95000', ts_ms: String(ts), ts_epoch: String(Math.floor(ts / 1000)) };
  if (o.step !== null) h.step_size = o.step ?? '0.001';
  await redis.hset(keys.snapshot(sym), h);
}

/** Writes a canonical ledger. */
export async function setLedger(redis: Redis, sym: string, amt: string): Promise<void> {
  const side = amt.startsWith('-') ? 'SHORT' : Number(amt) === 0 ? 'FLAT' : 'LONG';
  await redis.del(keys.ledger(sym), keys.legacyLedger004(sym));
  await redis.hset(keys.ledger(sym), { ledger_amt: amt, ledger_side: side, ts_epoch: String(Date.now() / 1000), source: 'init', version: '1' });
}

/** Submits a signed exit plan with the test key. */
export function submit(redis: Redis, symbol: string, action: 'FULL_CLOSE' | 'PARTIAL_75' | 'PARTIAL_50' | 'PARTIAL_25' = 'PARTIAL_75', extra: { planId?: string; tsMs?: number } = {}): Promise<string> {
  return submitPlan(redis, { symbol, action, killScore: 0.539, ...extra }, KEY);
}

/** Submits any signed plan (explicit qty, not reduce-only, ...). */
export async function submitRaw(redis: Redis, plan: Partial<PlanInput> & { plan_id: string; symbol: string }): Promise<string> {
  const full: PlanInput = { decision: 'EXECUTE', action: 'FULL_CLOSE', reduceOnly: true, source: 'exit_brain', ts_ms: Date.now(), type: 'MARKET', ...plan };
  return (await submitSignedPlan(redis, full, KEY)).planId;
}

/** Waits for the permit(s) of a plan. */
export async function permits(redis: Redis, planId: string, which: Array<'governor' | 'p33'> = ['governor', 'p33']): Promise<Record<'governor' | 'p33', StoredPermit>> {
  const out = {} as Record<'governor' | 'p33', StoredPermit>;
  for (const w of which) out[w] = await waitFor(() => readPermit(redis, w, planId), 20_000, 25, `${w} permit of ${planId}`);
  return out;
}

/** Number of entries in the plan DLQ. */
export async function dlqEntries(redis: Redis): Promise<Array<Record<string, string>>> {
  const rows = await redis.xrange(`${STREAMS.applyPlan}.dlq`, '-', '+');
  return rows.map(([, f]) => {
    const o: Record<string, string> = {};
    for (let i = 0; i + 1 < f.length; i += 2) o[f[i] as string] = f[i + 1] as string;
    return o;
  });
}
