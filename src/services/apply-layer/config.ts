/**
 * Configuration of the apply layer (`APPLY_*`, docs/architecture.md#interfaces). A bad value throws `ConfigError` naming
 * the variable (the CLI exits 2).
 */
import { z } from 'zod';
import { ConfigError, envz, parseEnv, type Env } from '../../config/env.js';
import type { LogLevel } from '../../config/env.js';
import { exchangeEndpoint, isSafeEndpoint } from '../../config/exchange-endpoint.js';
import { checkKeyVariables } from '../../config/keys.js';
import { parseRiskConfig, type RiskConfig } from '../governor/risk/config.js';

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
  /**
   * Consume `quantum:stream:reconcile.close` (APPLY_RECONCILE_CLOSE_ENABLED; default true on a loopback/demo
   * endpoint and in dry_run, false on a production or unknown one: healing closes there must be asked for).
   */
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
  /** Permit verification keys (docs/architecture.md#least-privilege-and-signed-permits): `P3_KEY_GOVERNOR` and `P3_KEY_P33`, both required. */
  permitKeys: { governor: string; p33: string };
  /** How a dedupe claim is proven durable before an order is sent (docs/architecture.md#exactly-once-execution; see {@link ClaimDurability}). */
  claimDurability: ClaimDurability;
  /**
   * `exchange-query`: a "not found" (-2013) answer only proves nothing was sent once the Redis dataset (its
   * server's run_id) has been unchanged this long, ms (APPLY_CLAIM_QUERY_SETTLE_MS, default 10000; at least
   * EXCHANGE_RECV_WINDOW_MS + 1000): an order request signed before Redis lost data is refused by the exchange
   * once its recvWindow has passed, so after this no earlier send of the plan can still appear.
   */
  claimQuerySettleMs: number;
  /**
   * Validity of a permit from its `ts_ms`, ms (APPLY_PERMIT_MAX_AGE_MS, default 55000: the issuers' 60 s permit TTL
   * less a margin for host clock skew). An EXECUTE order whose older permit is older than this at the last moment
   * before sending is not sent (`SKIPPED permit_expired`).
   */
  permitMaxAgeMs: number;
  /**
   * Longest delay between marking an order in flight and sending it, ms (APPLY_SEND_MAX_DELAY_MS, default
   * APPLY_CLAIM_QUERY_SETTLE_MS - EXCHANGE_RECV_WINDOW_MS, 5000 with the defaults; at most that). The pre-send
   * query of a claim Redis may have lost assumes no request is signed later than this; an order held longer (a
   * client throttle queue, a stalled process) is not sent (`SKIPPED send_delayed`). Only with
   * `P3_CLAIM_DURABILITY=exchange-query` (Infinity otherwise: a durable claim needs no such bound).
   */
  maxSendDelayMs: number;
  /** `replica-wait`: replicas that must acknowledge the claim (`WAIT n`), APPLY_CLAIM_WAIT_REPLICAS, default 1. */
  claimWaitReplicas: number;
  /** `replica-wait`: WAIT timeout, ms (APPLY_CLAIM_WAIT_TIMEOUT_MS, default 100); fewer acks = nothing sent. */
  claimWaitTimeoutMs: number;
  /** The governor's price collar and stale-mark settings, repeated at send time for entries (price-at-send.ts). */
  risk: RiskConfig;
}

/**
 * `P3_CLAIM_DURABILITY` (docs/architecture.md#exactly-once-execution, docs/reliability.md#durability-exactly-once-when-redis-loses-its-last-writes):
 * - `exchange-query` (default): before the first send of a freshly claimed plan (and before any refusal
 *   could record it as not executed) the apply layer asks the exchange for the plan's client order id;
 *   an existing order is recorded as the plan's result, never sent again. Safe against any Redis loss.
 * - `replica-wait`: after marking the order in flight, `WAIT <APPLY_CLAIM_WAIT_REPLICAS> <timeout>`; fewer
 *   acknowledgements = the order is not sent (`FAILED claim_not_durable`). No query; needs a Sentinel
 *   deployment whose failover promotes an acknowledging replica and a crashed master that does not come back
 *   as master before the failover.
 * - `fsync-always`: Redis runs `appendfsync always` (asserted by the operator; the apply layer checks AOF is
 *   on with `INFO persistence` and queries the exchange while it cannot see it). No query, no WAIT; not for
 *   Sentinel failover (replication is asynchronous).
 */
export const CLAIM_DURABILITY_MODES = ['exchange-query', 'replica-wait', 'fsync-always'] as const;
/** One of {@link CLAIM_DURABILITY_MODES}. */
export type ClaimDurability = (typeof CLAIM_DURABILITY_MODES)[number];

/**
 * Reads the apply layer's variables.
 * @throws ConfigError for a bad value, for `APPLY_MODE=live` without `APPLY_ALLOW_LIVE=yes`, for
 *   `APPLY_MODE=testnet` on an endpoint that is not certainly loopback or demo (src/config/exchange-endpoint.ts)
 *   without `APPLY_ALLOW_LIVE=yes`, for an empty `P3_ALLOWLIST`, for a missing `P3_KEY_GOVERNOR` /
 *   `P3_KEY_P33`, and for a placeholder `P3_KEY_*` or two sharing a value (src/config/keys.ts)
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
      APPLY_RECONCILE_CLOSE_ENABLED: z.string().optional(),
      APPLY_CLAIM_IDLE_MS: envz.positive(60_000),
      P3_KEY_P3_4: z.string().optional(),
      P3_KEY_OPERATOR: z.string().optional(),
      P3_KEY_GOVERNOR: envz.secret('the apply layer verifies every governor permit with it'),
      P3_KEY_P33: envz.secret('the apply layer verifies every P3.3 permit with it'),
      P3_CLAIM_DURABILITY: z.enum(CLAIM_DURABILITY_MODES).default('exchange-query'),
      APPLY_CLAIM_QUERY_SETTLE_MS: envz.int(10_000, 0, 600_000),
      APPLY_CLAIM_WAIT_REPLICAS: envz.int(1, 1, 16),
      APPLY_PERMIT_MAX_AGE_MS: envz.int(55_000, 1000, 3_600_000),
      APPLY_SEND_MAX_DELAY_MS: z.string().optional(),
      APPLY_CLAIM_WAIT_TIMEOUT_MS: envz.int(100, 1, 60_000),
      EXCHANGE_RECV_WINDOW_MS: envz.int(5000, 1, 60000),
    },
    env,
  );
  const allowLive = (c.APPLY_ALLOW_LIVE ?? '').toLowerCase() === 'yes';
  if (c.APPLY_MODE === 'live' && !allowLive) {
    throw new ConfigError('APPLY_ALLOW_LIVE', 'APPLY_MODE=live sends real orders; set APPLY_ALLOW_LIVE=yes to allow it');
  }
  // what decides real money is where the orders go, not what the mode is called
  const endpoint = exchangeEndpoint(env);
  if (c.APPLY_MODE !== 'dry_run' && !isSafeEndpoint(endpoint.kind) && !allowLive) {
    throw new ConfigError('APPLY_ALLOW_LIVE', `APPLY_MODE=${c.APPLY_MODE} would send orders to a production or unknown exchange endpoint (${endpoint.why}); set APPLY_ALLOW_LIVE=yes if real orders are intended, else point EXCHANGE_BASE_URL at the paper exchange or set EXCHANGE_DEMO=true`);
  }
  checkKeyVariables(env);
  // a -2013 only proves nothing was sent once no request signed before a Redis loss can be accepted any more
  // (Binance: timestamp at most 1000 ms ahead of the server, at most recvWindow behind); 0 is for tests only
  // the longest delay between marking an order in flight and sending it that the pre-send query's reasoning allows
  const delayBound = env.APPLY_CLAIM_QUERY_SETTLE_MS === '0' ? 5000 : c.APPLY_CLAIM_QUERY_SETTLE_MS - c.EXCHANGE_RECV_WINDOW_MS;
  let sendDelay = delayBound;
  if (c.APPLY_SEND_MAX_DELAY_MS !== undefined) {
    sendDelay = Number(c.APPLY_SEND_MAX_DELAY_MS);
    if (!/^\d+$/.test(c.APPLY_SEND_MAX_DELAY_MS) || sendDelay < 100 || sendDelay > delayBound) {
      throw new ConfigError('APPLY_SEND_MAX_DELAY_MS', `must be an integer from 100 to APPLY_CLAIM_QUERY_SETTLE_MS - EXCHANGE_RECV_WINDOW_MS (${delayBound})`);
    }
  }
  if (env.APPLY_CLAIM_QUERY_SETTLE_MS !== '0' && c.APPLY_CLAIM_QUERY_SETTLE_MS < c.EXCHANGE_RECV_WINDOW_MS + 1000) {
    throw new ConfigError('APPLY_CLAIM_QUERY_SETTLE_MS', `must be at least EXCHANGE_RECV_WINDOW_MS + 1000 (${c.EXCHANGE_RECV_WINDOW_MS + 1000})`);
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
    // healing closes on a production endpoint only when asked for explicitly: the engine decides its own default
    // from its own variables, which need not say where this apply layer's orders really go
    closeEnabled: c.APPLY_RECONCILE_CLOSE_ENABLED === undefined ? isSafeEndpoint(endpoint.kind) || c.APPLY_MODE === 'dry_run' : parseEnv({ APPLY_RECONCILE_CLOSE_ENABLED: envz.bool(true) }, env).APPLY_RECONCILE_CLOSE_ENABLED,
    claimIdleMs: c.APPLY_CLAIM_IDLE_MS,
    p34Key: c.P3_KEY_P3_4 && c.P3_KEY_P3_4.length > 0 ? c.P3_KEY_P3_4 : undefined,
    operatorKey: c.P3_KEY_OPERATOR && c.P3_KEY_OPERATOR.length > 0 ? c.P3_KEY_OPERATOR : undefined,
    permitKeys: { governor: c.P3_KEY_GOVERNOR, p33: c.P3_KEY_P33 },
    claimDurability: c.P3_CLAIM_DURABILITY,
    claimQuerySettleMs: c.APPLY_CLAIM_QUERY_SETTLE_MS,
    claimWaitReplicas: c.APPLY_CLAIM_WAIT_REPLICAS,
    permitMaxAgeMs: c.APPLY_PERMIT_MAX_AGE_MS,
    // only `exchange-query` relies on the bound (a durable claim in the other modes needs no such assumption)
    maxSendDelayMs: c.P3_CLAIM_DURABILITY === 'exchange-query' ? sendDelay : Number.POSITIVE_INFINITY,
    claimWaitTimeoutMs: c.APPLY_CLAIM_WAIT_TIMEOUT_MS,
    risk: parseRiskConfig(env),
  };
}
