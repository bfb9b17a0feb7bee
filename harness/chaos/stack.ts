/**
 * The system under test of a chaos run: a durable private Redis (redis.ts), the paper exchange in this
 * process, and the services as separate processes (processes.ts), configured like production except for
 * cadences shortened so a run of minutes sees many cycles (listed in {@link chaosServiceEnv}).
 *
 * With `sentinel` (`p3 chaos --sentinel`, sentinel.ts) Redis is a master, a replica and three sentinels,
 * and every service and harness connection finds the master through the sentinels.
 *
 * Invariants: nothing here uses the machine's Redis or `REDIS_URL`; every key is random per run; the
 * run folder holds every log and the AOF.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { createRedis } from '../../src/adapters/redis/client.js';
import type { RedisTarget } from '../../src/config/redis.js';
import { keys, STREAMS } from '../../src/adapters/redis/keys.js';
import { startPaperExchange, type PaperExchange } from '../paper-exchange/index.js';
import { sleep } from '../../src/lib/sleep.js';
import { startDurableRedis, type DurableRedis } from './redis.js';
import { startSentinelRedis, type SentinelRedis } from './sentinel.js';
import { buildProcesses, CHAOS_TOPOLOGY, type SupervisedService, type UnexpectedDeath } from './processes.js';
import { stackServiceEnv, type StackKeys } from '../stack-env.js';

/** The HMAC keys of a run (random per run). */
export type ChaosKeys = StackKeys;

/** A running stack. */
export interface ChaosStack {
  runDir: string;
  /** The Redis node (with `sentinel`: the first master; faults go through `sentinel`, which knows the current one). */
  redis: DurableRedis;
  /** Where every connection goes (the sentinels with `--sentinel`). */
  target: RedisTarget;
  /** The sentinel topology (`--sentinel`), else null. */
  sentinel: SentinelRedis | null;
  paper: PaperExchange;
  keys: ChaosKeys;
  processes: SupervisedService[];
  /** Deaths the supervisor did not cause. */
  deaths: UnexpectedDeath[];
  /** A connection of the harness (driver, observer); reconnects after Redis restarts. */
  conn: Redis;
  /** Stops every service (drain), closes the exchange, kills Redis. Never throws. */
  stop(): Promise<void>;
  /** Synchronous best-effort kill of everything, for exit handlers. */
  killSync(): void;
}

/**
 * Environment of the service processes (harness/stack-env.ts): production settings except the cadences
 * (snapshots every 250 ms, close cooldown 5 s, consumer take-over after 5 s idle, breaker cooldown 10 s,
 * exchange timeout 5 s) and rate limits sized for a strategy that trades several times a second.
 */
export function chaosServiceEnv(redis: RedisTarget | string, paper: PaperExchange, symbols: string[], k: ChaosKeys): Record<string, string> {
  return stackServiceEnv({
    redis,
    paper,
    symbols,
    keys: k,
    snapshotIntervalMs: 250,
    logLevel: 'info',
    extra: {
      EXCHANGE_TIMEOUT_MS: '5000',
      P34_RECONCILE_CLOSE_COOLDOWN_SEC: '5',
      APPLY_CLAIM_IDLE_MS: '5000',
      GOVERNOR_CLAIM_IDLE_MS: '5000',
      P33_CLAIM_IDLE_MS: '5000',
      GOVERNOR_BREAKER_COOLDOWN_SEC: '10',
      GOVERNOR_RATE_PER_MIN: '1200',
      GOVERNOR_RATE_BURST: '100',
      GOVERNOR_SYMBOL_RATE_PER_MIN: '300',
      GOVERNOR_SYMBOL_RATE_BURST: '20',
    },
  });
}

/** Consumer groups that must exist on the plan stream before the strategy starts (else its first plans reach nobody). */
const PLAN_GROUPS = ['apply', 'governor', 'p33'];

async function waitUntil(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`${what} not reached within ${timeoutMs} ms`);
    await sleep(100);
  }
}

/**
 * Starts the stack in `runDir` and waits until every service beats, the plan groups exist and every
 * symbol is reconciled (status OK).
 * @throws RedisServerMissing; Error when the stack does not become ready within `readyTimeoutMs` (everything started is stopped)
 */
export async function startChaosStack(runDir: string, symbols: string[], readyTimeoutMs = 90_000, opts: { sentinel?: boolean; env?: Record<string, string> } = {}): Promise<ChaosStack> {
  const logDir = join(runDir, 'logs');
  mkdirSync(logDir, { recursive: true });
  const sentinel = opts.sentinel ? await startSentinelRedis(runDir) : null;
  const redis = sentinel ? (sentinel.nodes[0] as DurableRedis) : await startDurableRedis(runDir);
  const target: RedisTarget = sentinel ? sentinel.target : { url: redis.url, sentinel: null };
  let paper: PaperExchange | null = null;
  let processes: SupervisedService[] = [];
  let conn: Redis | null = null;
  const deaths: UnexpectedDeath[] = [];
  const killSync = () => {
    for (const p of processes) p.killSync();
    if (sentinel) sentinel.killSync();
    else redis.killSync();
  };
  const stop = async () => {
    await Promise.all(processes.map((p) => p.stop()));
    conn?.disconnect();
    await paper?.close().catch(() => undefined);
    if (sentinel) await sentinel.kill();
    else await redis.kill();
  };
  try {
    paper = await startPaperExchange({ symbols });
    const key = () => randomBytes(32).toString('hex');
    const k: ChaosKeys = { strategy: key(), engine: key(), operator: key(), governor: key(), p33: key() };
    const env = { ...chaosServiceEnv(target, paper, symbols, k), ...opts.env };
    processes = buildProcesses(env, logDir, (d) => deaths.push(d));
    conn = createRedis(target, { name: 'p3:chaos' });
    for (const p of processes) p.start();
    const c = conn;
    await waitUntil('service heartbeats', readyTimeoutMs, async () => {
      const m = c.multi();
      for (const t of CHAOS_TOPOLOGY) m.exists(keys.heartbeat(t.service, t.instance));
      const res = (await m.exec()) ?? [];
      return res.length === CHAOS_TOPOLOGY.length && res.every(([, v]) => Number(v) === 1);
    });
    await waitUntil('plan consumer groups', readyTimeoutMs, async () => {
      const info = (await c.call('XINFO', 'GROUPS', STREAMS.applyPlan)) as Array<Array<string | number>>;
      const names = new Set(info.map((g) => String(g[1])));
      return PLAN_GROUPS.every((g) => names.has(g));
    });
    await waitUntil('every symbol reconciled', readyTimeoutMs, async () => {
      const st = await Promise.all(symbols.map((s) => c.hget(keys.reconcileState(s), 'status')));
      return st.every((s) => s === 'OK');
    });
    if (deaths.length > 0) throw new Error(`a service died during start: ${deaths[0]?.instance} (log: ${join(logDir, `${deaths[0]?.instance}.log`)})`);
    return { runDir, redis, target, sentinel, paper, keys: k, processes, deaths, conn, stop, killSync };
  } catch (err) {
    await stop();
    throw err;
  }
}
