/**
 * Service-wide configuration of the position-state-brain (`P33_*`, DESIGN §10) and of its snapshot
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
 * | `P33_SNAPSHOT_READY_MAX_AGE_MS` | `max(5 × interval, 5000)` | `/readyz` fails when the last successful poll is older |
 * | `P33_PROMETHEUS_PORT` | `8045` | `/metrics`, `/healthz`, `/readyz` |
 * | `P33_LOG_LEVEL` | `info` | pino level |
 */
import { z } from 'zod';
import { ConfigError, envz, parseEnv, type Env } from '../../config/env.js';
import type { LogLevel } from '../../adapters/logging/logger.js';

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
}

const SHAPE = {
  REDIS_URL: envz.redisUrl(),
  P3_INSTANCE_ID: z.string().regex(/^[A-Za-z0-9:._-]{1,128}$/, 'must match [A-Za-z0-9:._-]{1,128}').optional(),
  P3_ALLOWLIST: envz.symbols(),
  P33_SNAPSHOTS_ENABLED: envz.bool(true),
  P33_SNAPSHOT_INTERVAL_MS: envz.int(1000, 50, 3_600_000),
  P33_SNAPSHOT_READY_MAX_AGE_MS: envz.int(0, 0, 86_400_000),
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
  return {
    redisUrl: e.REDIS_URL,
    instanceId: e.P3_INSTANCE_ID,
    metricsPort: e.P33_PROMETHEUS_PORT,
    logLevel: e.P33_LOG_LEVEL,
    snapshots: {
      enabled: e.P33_SNAPSHOTS_ENABLED,
      allowlist: e.P3_ALLOWLIST,
      intervalMs,
      readyMaxAgeMs: e.P33_SNAPSHOT_READY_MAX_AGE_MS > 0 ? e.P33_SNAPSHOT_READY_MAX_AGE_MS : Math.max(5 * intervalMs, 5000),
    },
  };
}
