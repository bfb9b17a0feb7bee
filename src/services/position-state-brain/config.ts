/**
 * Service-wide configuration of the position-state-brain (`P33_*`, docs/architecture.md#interfaces) and of its snapshot
 * publisher. The permit consumer's own variables are parsed in `permits-config.ts`; the exchange's in
 * `src/adapters/exchange/factory.ts` (`EXCHANGE_*`). A bad value throws `ConfigError` naming it.
 *
 * | variable | default | meaning |
 * |---|---|---|
 * | `REDIS_URL` | `redis://127.0.0.1:6379` | Redis |
 * | `P3_INSTANCE_ID` | `<hostname>-<pid>` | consumer name / heartbeat id |
 * | `P3_ALLOWLIST` | — | symbols whose snapshots are published (required while snapshots are enabled) |
 * | `P33_SNAPSHOTS_ENABLED` | `true` | run the snapshot publisher in this instance |
 * | `P33_SNAPSHOT_INTERVAL_MS` | `1000` | poll period of the exchange positions, ms (>= 50) |
 * | `P33_SNAPSHOT_READY_MAX_AGE_MS` | `max(5 × slowest poll period, 5000)` | `/readyz` fails when the last successful poll is older |
 * | `P33_USER_STREAM` | `true` | subscribe to the exchange's user data stream (snapshots pushed within ms, `source=stream`) |
 * | `P33_REST_VERIFY_INTERVAL_MS` | `5000` | REST poll period while the user data stream is healthy, ms (>= the snapshot interval; keep it well below `P34_EXCHANGE_FRESHNESS_SEC`) |
 * | `P33_USER_STREAM_WS_URL` | derived | WebSocket base URL (`wss://fstream.binance.com`, demo `wss://fstream.binancefuture.com`, paper: the base URL with `ws://`) |
 * | `P33_USER_STREAM_KEEPALIVE_MS` | `1800000` | listen key keepalive (PUT) period, ms (Binance: valid 60 min) |
 * | `P33_VENUE_JOURNAL` | `true` | with the user data stream: journal every fill on the account in `quantum:stream:exchange.fills` (docs/architecture.md#venue-journal) |
 * | `P33_VENUE_VERIFY_INTERVAL_MS` | `30000` | period of the venue journal's REST verification (`GET /fapi/v1/userTrades`, weight 5 per symbol), ms; it also runs at start, after a reconnect and after a Redis rollback |
 * | `P33_PROMETHEUS_PORT` | `8045` | `/metrics`, `/healthz`, `/readyz` |
 * | `P33_LOG_LEVEL` | `info` | pino level |
 */
import { z } from 'zod';
import { ConfigError, envz, parseEnv, type Env } from '../../config/env.js';
import type { LogLevel } from '../../config/env.js';

/** The brain's service-wide settings plus the snapshot publisher's. */
export interface BrainConfig {
  redisUrl: string;
  instanceId?: string;
  metricsPort: number;
  logLevel: LogLevel;
  snapshots: SnapshotConfig;
}

/** Snapshot publisher settings. */
export interface SnapshotConfig {
  enabled: boolean;
  /** Symbols published (`P3_ALLOWLIST`). */
  allowlist: string[];
  /** Poll period, ms. */
  intervalMs: number;
  /** Readiness threshold on the age of the last successful poll, ms. */
  readyMaxAgeMs: number;
  /** User data stream settings. */
  userStream: UserStreamConfig;
}

/** User data stream settings of the brain. */
export interface UserStreamConfig {
  /** `P33_USER_STREAM`. */
  enabled: boolean;
  /** `P33_REST_VERIFY_INTERVAL_MS`: REST period while the stream is healthy, ms. */
  restVerifyIntervalMs: number;
  /** `P33_USER_STREAM_WS_URL`, undefined = derived from the exchange configuration. */
  wsUrl?: string;
  /** `P33_USER_STREAM_KEEPALIVE_MS`. */
  keepaliveMs: number;
  /** `P33_VENUE_JOURNAL`: journal every fill (with the stream only). */
  venueJournal: boolean;
  /** `P33_VENUE_VERIFY_INTERVAL_MS`. */
  venueVerifyIntervalMs: number;
}

const SHAPE = {
  REDIS_URL: envz.redisUrl(),
  P3_INSTANCE_ID: z.string().regex(/^[A-Za-z0-9:._-]{1,128}$/, 'must match [A-Za-z0-9:._-]{1,128}').optional(),
  P3_ALLOWLIST: envz.symbols(),
  P33_SNAPSHOTS_ENABLED: envz.bool(true),
  P33_SNAPSHOT_INTERVAL_MS: envz.int(1000, 50, 3_600_000),
  P33_SNAPSHOT_READY_MAX_AGE_MS: envz.int(0, 0, 86_400_000),
  P33_USER_STREAM: envz.bool(true),
  P33_REST_VERIFY_INTERVAL_MS: envz.int(5000, 50, 3_600_000),
  P33_USER_STREAM_WS_URL: z.string().regex(/^wss?:\/\/[^\s/]+(\/[^\s]*)?$/, 'must be a ws:// or wss:// URL').optional(),
  P33_USER_STREAM_KEEPALIVE_MS: envz.int(1_800_000, 1000, 3_000_000),
  P33_VENUE_JOURNAL: envz.bool(true),
  P33_VENUE_VERIFY_INTERVAL_MS: envz.int(30_000, 1000, 3_600_000),
  P33_PROMETHEUS_PORT: envz.port(8045),
  P33_LOG_LEVEL: envz.logLevel('info'),
};

/**
 * Parses the brain's variables.
 * @throws ConfigError naming the first bad variable (`P3_ALLOWLIST` is required while snapshots are enabled)
 */
export function parseBrainConfig(env: Env): BrainConfig {
  const e = parseEnv(SHAPE, env);
  if (e.P33_SNAPSHOTS_ENABLED && e.P3_ALLOWLIST.length === 0) {
    throw new ConfigError('P3_ALLOWLIST', 'required: the symbols whose exchange snapshots the position-state-brain publishes (or set P33_SNAPSHOTS_ENABLED=false)');
  }
  const intervalMs = e.P33_SNAPSHOT_INTERVAL_MS;
  if (e.P33_USER_STREAM && e.P33_REST_VERIFY_INTERVAL_MS < intervalMs) {
    throw new ConfigError('P33_REST_VERIFY_INTERVAL_MS', `must be >= P33_SNAPSHOT_INTERVAL_MS (${intervalMs}): it is the slower REST period used while the user data stream is healthy`);
  }
  const slowest = e.P33_USER_STREAM ? Math.max(intervalMs, e.P33_REST_VERIFY_INTERVAL_MS) : intervalMs;
  return {
    redisUrl: e.REDIS_URL,
    instanceId: e.P3_INSTANCE_ID,
    metricsPort: e.P33_PROMETHEUS_PORT,
    logLevel: e.P33_LOG_LEVEL,
    snapshots: {
      enabled: e.P33_SNAPSHOTS_ENABLED,
      allowlist: e.P3_ALLOWLIST,
      intervalMs,
      readyMaxAgeMs: e.P33_SNAPSHOT_READY_MAX_AGE_MS > 0 ? e.P33_SNAPSHOT_READY_MAX_AGE_MS : Math.max(5 * slowest, 5000),
      userStream: {
        enabled: e.P33_USER_STREAM,
        restVerifyIntervalMs: e.P33_REST_VERIFY_INTERVAL_MS,
        wsUrl: e.P33_USER_STREAM_WS_URL,
        keepaliveMs: e.P33_USER_STREAM_KEEPALIVE_MS,
        venueJournal: e.P33_VENUE_JOURNAL,
        venueVerifyIntervalMs: e.P33_VENUE_VERIFY_INTERVAL_MS,
      },
    },
  };
}
