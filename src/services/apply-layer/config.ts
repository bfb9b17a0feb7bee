/**
 * Configuration of the apply layer (`APPLY_*`, DESIGN §10). A bad value throws `ConfigError` naming
 * the variable (the CLI exits 2).
 */
import { z } from 'zod';
import { ConfigError, envz, parseEnv, type Env } from '../../config/env.js';
import type { LogLevel } from '../../adapters/logging/logger.js';

/** Parsed apply-layer configuration. Times carry their unit in the name. */
export interface ApplyConfig {
  /** `dry_run` (default: no exchange, no ledger), `testnet`, `live` (needs `APPLY_ALLOW_LIVE=yes`). */
  mode: 'dry_run' | 'testnet' | 'live';
  redisUrl: string;
  allowlist: string[];
  instanceId?: string;
  logLevel: LogLevel;
  metricsPort: number;
  /** Bounded wait for both permits, ms (APPLY_PERMIT_WAIT_MS, default 10000). */
  permitWaitMs: number;
  /**
   * Fallback permit re-read interval, ms (APPLY_PERMIT_POLL_MS, default 100): a waiting plan re-reads its
   * permits when one is written (notification) and at the latest after this long (a lost notification).
   */
  permitPollMs: number;
  /** TTL of `quantum:apply:inflight:<SYM>`, s (APPLY_INFLIGHT_TTL_SEC, default 300). */
  inflightTtlSec: number;
  /**
   * Age after which the sweep resolves an in-flight order by lookup and "not found" may be final, ms
   * (APPLY_INFLIGHT_SETTLE_MS, default 20000). A takeover records an order found final at once.
   */
  inflightSettleMs: number;
  /** In-flight sweep period, ms (APPLY_INFLIGHT_SWEEP_MS, default 5000). */
  inflightSweepMs: number;
  /** Lookups of an order with unknown outcome before "not found" is final (APPLY_LOOKUP_ATTEMPTS, default 5). */
  lookupAttempts: number;
  /** First lookup back-off, ms, doubled per attempt (APPLY_LOOKUP_BACKOFF_MS, default 500). */
  lookupBackoffMs: number;
  /** Max EXECUTE plan age, s (APPLY_MAX_PLAN_AGE_SEC, default 120). */
  maxPlanAgeSec: number;
  /** Max RECONCILE_CLOSE plan age, s (APPLY_CLOSE_MAX_AGE_SEC, default 120 = one cooldown bucket). */
  closeMaxAgeSec: number;
  /**
   * Life of the one-close-per-drift marker, s (APPLY_CLOSE_MARKER_TTL_SEC, default 300). It only has to
   * outlive the moment the snapshot shows the close's fill (the drift signature then changes); a close
   * recorded as not executed releases it at once.
   */
  closeMarkerTtlSec: number;
  /** Hold lease renewed before a close, s (P34_HOLD_TTL_SEC, default 900, seed 002). */
  holdTtlSec: number;
  /** Consume `quantum:stream:reconcile.close` (APPLY_RECONCILE_CLOSE_ENABLED, default true). */
  closeEnabled: boolean;
  /**
   * Idle time before an entry pending on a LIVE consumer is claimed (a stuck handler), ms (APPLY_CLAIM_IDLE_MS,
   * default 60000). A dead consumer's entries are taken over through its lapsed lease (consumer-liveness.ts).
   */
  claimIdleMs: number;
  /** Operator key (`P3_KEY_OPERATOR`), required to verify FLATTEN plans (`p3 flatten`); none = every FLATTEN is refused. */
  operatorKey: string | undefined;
  /** Reconcile engine key (`P3_KEY_P3_4`), required to verify RECONCILE_CLOSE plans. */
  p34Key: string | undefined;
  /** Permit verification keys (DESIGN §15): `P3_KEY_GOVERNOR` and `P3_KEY_P33`, both required. */
  permitKeys: { governor: string; p33: string };
}

/**
 * Reads the apply layer's variables.
 * @throws ConfigError for a bad value, for `APPLY_MODE=live` without `APPLY_ALLOW_LIVE=yes`, for an
 *   empty `P3_ALLOWLIST`, and for a missing `P3_KEY_GOVERNOR` / `P3_KEY_P33`
 */
export function parseApplyConfig(env: Env): ApplyConfig {
  const c = parseEnv(
    {
      APPLY_MODE: z.enum(['dry_run', 'testnet', 'live']).default('dry_run'),
      APPLY_ALLOW_LIVE: z.string().optional(),
      REDIS_URL: envz.redisUrl(),
      P3_ALLOWLIST: envz.symbols(),
      P3_INSTANCE_ID: z.string().regex(/^[A-Za-z0-9._:-]{1,64}$/, 'must be 1-64 of [A-Za-z0-9._:-]').optional(),
      APPLY_LOG_LEVEL: envz.logLevel(),
      APPLY_PROMETHEUS_PORT: envz.port(8043),
      APPLY_PERMIT_WAIT_MS: envz.positive(10_000),
      APPLY_PERMIT_POLL_MS: envz.positive(100),
      APPLY_INFLIGHT_TTL_SEC: envz.int(300, 1),
      APPLY_INFLIGHT_SETTLE_MS: envz.positive(20_000),
      APPLY_INFLIGHT_SWEEP_MS: envz.positive(5_000),
      APPLY_LOOKUP_ATTEMPTS: envz.int(5, 1, 100),
      APPLY_LOOKUP_BACKOFF_MS: envz.positive(500),
      APPLY_MAX_PLAN_AGE_SEC: envz.positive(120),
      APPLY_CLOSE_MAX_AGE_SEC: envz.positive(120),
      APPLY_CLOSE_MARKER_TTL_SEC: envz.int(300, 1, 86_400),
      P34_HOLD_TTL_SEC: envz.int(900, 1),
      APPLY_RECONCILE_CLOSE_ENABLED: envz.bool(true),
      APPLY_CLAIM_IDLE_MS: envz.positive(60_000),
      P3_KEY_P3_4: z.string().optional(),
      P3_KEY_OPERATOR: z.string().optional(),
      P3_KEY_GOVERNOR: envz.secret('the apply layer verifies every governor permit with it'),
      P3_KEY_P33: envz.secret('the apply layer verifies every P3.3 permit with it'),
    },
    env,
  );
  if (c.APPLY_MODE === 'live' && (c.APPLY_ALLOW_LIVE ?? '').toLowerCase() !== 'yes') {
    throw new ConfigError('APPLY_ALLOW_LIVE', 'APPLY_MODE=live sends real orders; set APPLY_ALLOW_LIVE=yes to allow it');
  }
  if (c.P3_ALLOWLIST.length === 0) throw new ConfigError('P3_ALLOWLIST', 'must list at least one symbol (the apply layer trades nothing else)');
  return {
    mode: c.APPLY_MODE,
    redisUrl: c.REDIS_URL,
    allowlist: c.P3_ALLOWLIST,
    instanceId: c.P3_INSTANCE_ID,
    logLevel: c.APPLY_LOG_LEVEL,
    metricsPort: c.APPLY_PROMETHEUS_PORT,
    permitWaitMs: c.APPLY_PERMIT_WAIT_MS,
    permitPollMs: c.APPLY_PERMIT_POLL_MS,
    inflightTtlSec: c.APPLY_INFLIGHT_TTL_SEC,
    inflightSettleMs: c.APPLY_INFLIGHT_SETTLE_MS,
    inflightSweepMs: c.APPLY_INFLIGHT_SWEEP_MS,
    lookupAttempts: c.APPLY_LOOKUP_ATTEMPTS,
    lookupBackoffMs: c.APPLY_LOOKUP_BACKOFF_MS,
    maxPlanAgeSec: c.APPLY_MAX_PLAN_AGE_SEC,
    closeMaxAgeSec: c.APPLY_CLOSE_MAX_AGE_SEC,
    closeMarkerTtlSec: c.APPLY_CLOSE_MARKER_TTL_SEC,
    holdTtlSec: c.P34_HOLD_TTL_SEC,
    closeEnabled: c.APPLY_RECONCILE_CLOSE_ENABLED,
    claimIdleMs: c.APPLY_CLAIM_IDLE_MS,
    p34Key: c.P3_KEY_P3_4 && c.P3_KEY_P3_4.length > 0 ? c.P3_KEY_P3_4 : undefined,
    operatorKey: c.P3_KEY_OPERATOR && c.P3_KEY_OPERATOR.length > 0 ? c.P3_KEY_OPERATOR : undefined,
    permitKeys: { governor: c.P3_KEY_GOVERNOR, p33: c.P3_KEY_P33 },
  };
}
