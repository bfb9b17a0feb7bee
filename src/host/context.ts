/**
 * The pieces every service builds the same way: logger, Redis connection (scripts loaded), metrics
 * registry, instance id. A service's own configuration is parsed in its folder's `config.ts`.
 */
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import type { Registry } from 'prom-client';
import { createLogger, type Logger } from '../adapters/logging/logger.js';
import type { LogLevel } from '../config/env.js';
import { createRedis } from '../adapters/redis/client.js';
import type { RedisTarget } from '../config/redis.js';
import { createRegistry } from './service.js';

/** Shared infrastructure of one service instance. */
export interface ServiceContext {
  name: string;
  /** `P3_INSTANCE_ID`, else `<hostname>-<pid>`; used as consumer name and heartbeat id. */
  instanceId: string;
  logger: Logger;
  redis: Redis;
  registry: Registry;
}

/**
 * Builds a {@link ServiceContext}. Does not wait for Redis (services start and report not-ready).
 * @param opts.redis where Redis is (`parseRedisTarget(env)`: `REDIS_URL`, and Sentinel when configured)
 */
export function createServiceContext(name: string, opts: { redis: RedisTarget; logLevel: LogLevel; instanceId?: string }): ServiceContext {
  // asynchronous writes (see createLogger): a service logs a line per decision
  const logger = createLogger(name, opts.logLevel, { async: true });
  const instanceId = opts.instanceId ?? `${hostname()}-${process.pid}`;
  const redis = createRedis(opts.redis, { name: `p3:${name}:${instanceId}`, logger });
  return { name, instanceId, logger, redis, registry: createRegistry(name) };
}
