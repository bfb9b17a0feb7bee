/**
 * Configuration of the reconcile engine (P3.4) from environment variables (seed 001 names and defaults,
 * docs/architecture.md#interfaces). A bad value throws ConfigError naming the variable (exit 2).
 */
import { z } from 'zod';
import { ConfigError, envz, parseEnv, parseToleranceConfig, type Env } from '../../config/env.js';
import type { LogLevel } from '../../config/env.js';
import type { ReconcileConfig } from '../../domain/reconcile.js';
import { keyEnvName } from '../../domain/plan.js';
import { RECONCILE_SOURCE } from '../../domain/reconcile-close.js';
import { HEAL_POLICIES } from '../../domain/heal-policy.js';
import { VENUE_CLOSE_POLICIES } from '../../domain/attribution.js';
import { exchangeEndpoint, isSafeEndpoint } from '../../config/exchange-endpoint.js';
import { checkKeyVariables } from '../../config/keys.js';

/** Everything the engine reads from the environment. */
export interface ReconcileEngineConfig {
  redisUrl: string;
  /** `P34_ALLOWLIST`, else `P3_ALLOWLIST` (comma list). Empty = nothing to reconcile. */
  allowlist: string[];
  /** `P34_LOOP_CADENCE_SEC` (default 1): seconds between sweeps of every allowlisted symbol. */
  cadenceSec: number;
  /** `P34_HOLD_TTL_SEC` (default 900): the hold lease, seconds. */
  holdTtlSec: number;
  /** `P34_RECONCILE_CLOSE_COOLDOWN_SEC` (default 120): cooldown bucket of close plans, seconds. */
  closeCooldownSec: number;
  /** `P34_PROMETHEUS_PORT` (default 8046). */
  metricsPort: number;
  logLevel: LogLevel;
  /** `P3_INSTANCE_ID`, when set. */
  instanceId?: string;
  /** `P3_KEY_P3_4`: HMAC key of the engine's close plans (null = none; closes then disabled). */
  closeKey: string | null;
  /** Whether the close was enabled by default (no explicit `P34_RECONCILE_CLOSE_ENABLED`) and why. */
  closeEnabledWhy: string;
  decision: ReconcileConfig;
}

/**
 * True unless the exchange settings certainly point at no real money: a loopback simulator or Binance's
 * demo/testnet (src/config/exchange-endpoint.ts). Unset or unknown settings count as live.
 */
export function isLiveExchange(env: Env): boolean {
  return !isSafeEndpoint(exchangeEndpoint(env).kind);
}

/**
 * Parses the engine's variables.
 *
 * `P34_RECONCILE_CLOSE_ENABLED`: when unset it defaults to true only when the exchange variables say the
 * orders go to no real money: `EXCHANGE_BASE_URL` on a loopback host or Binance's demo/testnet hosts, or
 * `EXCHANGE=binanceusdm` with `EXCHANGE_DEMO`. Anything else (unset, an unknown host, production) means
 * off: the engine would otherwise sell real positions by default. Closes also need the key `P3_KEY_P3_4`:
 * explicitly enabled without a key is a ConfigError; enabled by default without a key disables closes (logged at start).
 * @throws ConfigError naming the variable; for a placeholder `P3_KEY_*` or two sharing a value (src/config/keys.ts)
 */
export function parseReconcileEngineConfig(env: Env): ReconcileEngineConfig {
  const e = parseEnv(
    {
      REDIS_URL: envz.redisUrl(),
      P34_ALLOWLIST: envz.symbols(),
      P3_ALLOWLIST: envz.symbols(),
      P34_LOOP_CADENCE_SEC: envz.positive(1),
      P34_EXCHANGE_FRESHNESS_SEC: envz.positive(10),
      P34_QTY_DRIFT_TOLERANCE_PCT: envz.decimal('1.0'),
      P34_EVIDENCE_WINDOW_SEC: envz.positive(300),
      P34_HOLD_TTL_SEC: envz.int(900, 1, 86_400 * 7),
      P34_GRACE_MS: envz.nonNegative(3000),
      P34_RECONCILE_CLOSE_COOLDOWN_SEC: envz.int(120, 1, 86_400),
      P34_PROMETHEUS_PORT: envz.port(8046),
      P34_LOG_LEVEL: envz.logLevel('info'),
      P34_RECONCILE_CLOSE_ENABLED: z.string().optional(),
      P34_HEAL_POLICY: z
        .string()
        .trim()
        .toLowerCase()
        .pipe(z.enum(HEAL_POLICIES, { message: `must be one of ${HEAL_POLICIES.join(', ')}` }))
        .default('flatten'),
      P34_VENUE_EVIDENCE: envz.bool(true),
      P34_VENUE_CLOSE_POLICY: z
        .string()
        .trim()
        .toLowerCase()
        .pipe(z.enum(VENUE_CLOSE_POLICIES, { message: `must be one of ${VENUE_CLOSE_POLICIES.join(', ')}` }))
        .default('adopt'),
      P34_VENUE_GAP_MAX_MS: envz.int(15_000, 0, 3_600_000),
      P34_VENUE_SETTLE_MS: envz.int(1000, 0, 60_000),
      P3_INSTANCE_ID: z.string().max(100).optional(),
    },
    env,
  );
  checkKeyVariables(env);
  const tolerance = parseToleranceConfig(env);
  const keyVar = keyEnvName(RECONCILE_SOURCE);
  const key = env[keyVar]?.trim() ? env[keyVar]!.trim() : null;

  let closeEnabled: boolean;
  let why: string;
  if (e.P34_RECONCILE_CLOSE_ENABLED !== undefined) {
    const parsed = parseEnv({ P34_RECONCILE_CLOSE_ENABLED: envz.bool(false) }, env).P34_RECONCILE_CLOSE_ENABLED;
    closeEnabled = parsed;
    why = `P34_RECONCILE_CLOSE_ENABLED=${parsed}`;
    if (parsed && key === null) throw new ConfigError(keyVar, 'required when P34_RECONCILE_CLOSE_ENABLED=true (the key that signs close plans)');
  } else if (isLiveExchange(env)) {
    closeEnabled = false;
    why = `default off: ${exchangeEndpoint(env).why} (set EXCHANGE/EXCHANGE_BASE_URL as the apply layer has them, or P34_RECONCILE_CLOSE_ENABLED)`;
  } else if (key === null) {
    closeEnabled = false;
    why = `default for paper/testnet, but ${keyVar} is not set`;
  } else {
    closeEnabled = true;
    why = 'default for paper/testnet';
  }

  return {
    redisUrl: e.REDIS_URL,
    allowlist: e.P34_ALLOWLIST.length > 0 ? e.P34_ALLOWLIST : e.P3_ALLOWLIST,
    cadenceSec: e.P34_LOOP_CADENCE_SEC,
    holdTtlSec: e.P34_HOLD_TTL_SEC,
    closeCooldownSec: e.P34_RECONCILE_CLOSE_COOLDOWN_SEC,
    metricsPort: e.P34_PROMETHEUS_PORT,
    logLevel: e.P34_LOG_LEVEL,
    instanceId: e.P3_INSTANCE_ID,
    closeKey: key,
    closeEnabledWhy: why,
    decision: {
      freshnessSec: e.P34_EXCHANGE_FRESHNESS_SEC,
      driftTolerancePct: e.P34_QTY_DRIFT_TOLERANCE_PCT,
      evidenceWindowSec: e.P34_EVIDENCE_WINDOW_SEC,
      graceMs: e.P34_GRACE_MS,
      tolerance,
      closeEnabled,
      healPolicy: e.P34_HEAL_POLICY,
      ...(e.P34_VENUE_EVIDENCE ? { venue: { closePolicy: e.P34_VENUE_CLOSE_POLICY, gapMaxMs: e.P34_VENUE_GAP_MAX_MS, settleMs: e.P34_VENUE_SETTLE_MS } } : {}),
    },
  };
}
