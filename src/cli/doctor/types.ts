/**
 * The shapes of `p3 doctor`: one result line per check and the doctor's inputs. Kept apart from the checks so
 * every module of checks can use them without importing the others.
 */
import type { Env } from '../../config/env.js';
import type { SentinelConfig } from '../../config/redis.js';
import type { ServiceName } from '../../host/service-names.js';

/** Outcome of one check. */
export type CheckStatus = 'OK' | 'WARN' | 'FAIL';

/** One line of the report. */
export interface CheckResult {
  check: string;
  status: CheckStatus;
  detail: string;
}

/** Inputs of {@link runDoctor}. */
export interface DoctorOptions {
  /** Redis to inspect (`REDIS_URL`). */
  redisUrl: string;
  /** Sentinel settings (`REDIS_SENTINELS`, `REDIS_SENTINEL_NAME`): inspect the master they name. */
  sentinel?: SentinelConfig | null;
  /** Environment of each service (its env file, or the process environment). */
  envs: Partial<Record<ServiceName, Env>>;
  /** Services expected to run (heartbeats, configuration). */
  services: ServiceName[];
  /** Timeout of the exchange time request, ms (default 5000). */
  exchangeTimeoutMs?: number;
  /** `envs` are the services' own env files (`--env-dir`): their `REDIS_URL` users are checked. */
  envFiles?: boolean;
}
