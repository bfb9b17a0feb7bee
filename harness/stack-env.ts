/**
 * The environment of the four services in a harness stack (the demo, harness/demo/run.ts; a chaos run,
 * harness/chaos/stack.ts): production settings against the paper exchange, HMAC keys of the stack, every
 * metrics port 0 (a free one), one log level, and the cadences each stack shortens on top.
 *
 * Invariant: nothing here reads the machine's environment; the stack names its Redis, exchange and keys.
 */
import { redisTargetEnv, type RedisTarget } from '../src/config/redis.js';
import type { PaperExchange } from './paper-exchange/index.js';

/** The HMAC keys of a stack (hex; random per run). */
export interface StackKeys {
  /** `P3_KEY_EXIT_BRAIN`: the strategy's plans. */
  strategy: string;
  /** `P3_KEY_P3_4`: the reconcile engines' RECONCILE_CLOSE plans. */
  engine: string;
  /** `P3_KEY_OPERATOR`: FLATTEN plans. */
  operator: string;
  /** `P3_KEY_GOVERNOR` / `P3_KEY_P33`: permit signatures (docs/architecture.md#least-privilege-and-signed-permits). */
  governor: string;
  p33: string;
}

/** What {@link stackServiceEnv} builds from. */
export interface StackEnvOptions {
  /** Where every service connects (a URL, or a sentinel target). */
  redis: RedisTarget | string;
  paper: Pick<PaperExchange, 'url' | 'apiKey' | 'apiSecret'>;
  /** Allowlist of every service. */
  symbols: string[];
  keys: StackKeys;
  /** `P33_SNAPSHOT_INTERVAL_MS`: how often the position brain takes a snapshot, ms. */
  snapshotIntervalMs: number;
  /** Log level of every service (`error` for the demo, whose own output is the timeline). */
  logLevel: string;
  /** Variables of the stack on top (shortened cadences, rate limits). */
  extra?: Record<string, string>;
}

/** The services' environment of a harness stack (see the module comment). */
export function stackServiceEnv(o: StackEnvOptions): Record<string, string> {
  const allowlist = o.symbols.join(',');
  return {
    ...redisTargetEnv(typeof o.redis === 'string' ? { url: o.redis, sentinel: null } : o.redis),
    P3_ALLOWLIST: allowlist,
    P34_ALLOWLIST: allowlist,
    EXCHANGE: 'paper',
    EXCHANGE_BASE_URL: o.paper.url,
    EXCHANGE_API_KEY: o.paper.apiKey,
    EXCHANGE_API_SECRET: o.paper.apiSecret,
    P3_KEY_EXIT_BRAIN: o.keys.strategy,
    P3_KEY_P3_4: o.keys.engine,
    P3_KEY_OPERATOR: o.keys.operator,
    P3_KEY_GOVERNOR: o.keys.governor,
    P3_KEY_P33: o.keys.p33,
    APPLY_MODE: 'testnet',
    GOVERNOR_MODE: 'paper',
    P33_SNAPSHOT_INTERVAL_MS: String(o.snapshotIntervalMs),
    P34_RECONCILE_CLOSE_ENABLED: 'true',
    P34_PROMETHEUS_PORT: '0',
    P33_PROMETHEUS_PORT: '0',
    GOVERNOR_PROMETHEUS_PORT: '0',
    APPLY_PROMETHEUS_PORT: '0',
    P34_LOG_LEVEL: o.logLevel,
    P33_LOG_LEVEL: o.logLevel,
    GOVERNOR_LOG_LEVEL: o.logLevel,
    APPLY_LOG_LEVEL: o.logLevel,
    ...o.extra,
  };
}
