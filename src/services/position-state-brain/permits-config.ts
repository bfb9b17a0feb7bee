/**
 * Configuration of the position brain's permit consumer (P3.3), `P33_*` variables (docs/architecture.md#interfaces). The
 * brain's service-wide variables (`P33_PROMETHEUS_PORT`, `P33_LOG_LEVEL`, snapshot publisher) are parsed
 * in `config.ts`. A bad value throws `ConfigError` naming the variable.
 */
import { z } from 'zod';
import { ConfigError, envz, parseEnv, parseToleranceConfig, type Env, type ToleranceConfig } from '../../config/env.js';
import { checkKeyVariables } from '../../config/keys.js';

/** Parsed permit-consumer configuration. */
export interface PermitsConfig {
  /** `P33_PERMITS_ENABLED` (default true): run the permit consumer in this brain instance. */
  enabled: boolean;
  /** Max snapshot age for an ALLOW, seconds (`P33_EXCHANGE_FRESHNESS_SEC`, default 10). */
  exchangeFreshnessSec: number;
  /** `P3_ALLOWLIST`; plans of other symbols are denied `symbol_not_allowed` (empty = any symbol). */
  allowlist: string[];
  /** Shared tolerance (`P3_QTY_TOLERANCE_ABS`, `P3_QTY_TOLERANCE_ABS_<SYM>`, else the lot step). */
  tolerance: ToleranceConfig;
  /** Permit TTL, seconds (`P33_PERMIT_TTL_SEC`, default 60). */
  permitTtlSec: number;
  /** Consumer group on `quantum:stream:apply.plan` (`P33_CONSUMER_GROUP`, default `p33`). */
  group: string;
  /** Idle time before another instance's pending plan is claimed, ms (`P33_CLAIM_IDLE_MS`, default 30000). */
  claimIdleMs: number;
  /** `P3_KEY_P33`: the key every P3.3 permit is signed with (docs/architecture.md#least-privilege-and-signed-permits); required when `enabled`. */
  permitKey: string;
}

const SHAPE = {
  P33_PERMITS_ENABLED: envz.bool(true),
  P33_EXCHANGE_FRESHNESS_SEC: envz.positive(10),
  P3_ALLOWLIST: envz.symbols(),
  P33_PERMIT_TTL_SEC: envz.int(60, 1),
  P33_CONSUMER_GROUP: z.string().regex(/^[A-Za-z0-9:._-]{1,64}$/).default('p33'),
  P33_CLAIM_IDLE_MS: envz.int(30_000, 100),
  P3_KEY_P33: z.string().optional(),
};

/**
 * Parses the permit consumer's variables.
 * @throws ConfigError naming the first bad variable, `P3_KEY_P33` when permits are enabled without it, and a
 *   placeholder `P3_KEY_*` or two sharing a value (src/config/keys.ts)
 */
export function parsePermitsConfig(env: Env): PermitsConfig {
  const e = parseEnv(SHAPE, env);
  checkKeyVariables(env);
  if (e.P33_PERMITS_ENABLED && !e.P3_KEY_P33) {
    throw new ConfigError('P3_KEY_P33', 'must be set (the position brain signs every permit with it; the apply layer verifies it), or set P33_PERMITS_ENABLED=false');
  }
  return {
    enabled: e.P33_PERMITS_ENABLED,
    exchangeFreshnessSec: e.P33_EXCHANGE_FRESHNESS_SEC,
    allowlist: e.P3_ALLOWLIST,
    tolerance: parseToleranceConfig(env),
    permitTtlSec: e.P33_PERMIT_TTL_SEC,
    group: e.P33_CONSUMER_GROUP,
    claimIdleMs: e.P33_CLAIM_IDLE_MS,
    permitKey: e.P3_KEY_P33 ?? '',
  };
}
