/**
 * The Redis connection of a one-shot CLI command: `REDIS_URL` (validated), a few quick reconnect
 * attempts, and a clear error when Redis cannot be reached (instead of ioredis' "Connection is closed").
 */
import type { Redis } from 'ioredis';
import { createRedis, waitReady } from '../adapters/redis/client.js';
import { RedisDatabaseError } from '../adapters/redis/database-guard.js';
import { ConfigError } from '../config/errors.js';
import { describeRedisTarget, parseRedisTarget } from '../config/redis.js';

/**
 * Opens a connection to `REDIS_URL` (through Sentinel when `REDIS_SENTINELS` is set) and waits until it answers.
 * @throws ConfigError for a bad `REDIS_URL` or Sentinel variable, and for a database the server refuses
 *   (`/99` on a server with 16: never a fall-back to database 0); Error "Redis unreachable at <url> ..." after ~3 s
 */
export async function cliRedis(): Promise<Redis> {
  const target = parseRedisTarget(process.env);
  const redis = createRedis(target, { name: 'p3:cli', overrides: { retryStrategy: (t) => (t > 3 ? null : 200) } });
  let lastError = '';
  redis.on('error', (err: Error) => {
    lastError = err.message;
  });
  try {
    await waitReady(redis, 3000);
  } catch (err) {
    redis.disconnect();
    if (err instanceof RedisDatabaseError) throw new ConfigError('REDIS_URL', err.message.replace(/^REDIS_URL /, ''));
    throw new Error(`Redis unreachable at ${describeRedisTarget(target)}${lastError ? ` (${lastError})` : ''}: is redis-server running, is REDIS_URL right?`);
  }
  return redis;
}

/** Runs `fn` with a CLI connection and always disconnects. */
export async function withCliRedis<T>(fn: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = await cliRedis();
  try {
    return await fn(redis);
  } finally {
    redis.disconnect();
  }
}
