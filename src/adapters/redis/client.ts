/**
 * Redis connections. Commands fail fast while Redis is down (no unbounded offline queue), and ioredis
 * reconnects with capped exponential back-off, so services keep running, report not-ready and resume.
 */
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { loadScripts, scriptOptions, type ScriptedRedis } from './scripts.js';

/** Options for {@link createRedis}. */
export interface RedisConnectOptions {
  /** Connection name shown by `CLIENT LIST`, e.g. `p3:reconcile-engine`. */
  name: string;
  logger?: Logger;
  /** Extra ioredis options (tests use small retry delays). */
  overrides?: RedisOptions;
}

/**
 * Opens a Redis connection to `url` (`redis://host:port/db`) with the project's Lua scripts loaded
 * (see `scripts.ts`). Does not wait for the connection; use `waitReady` for that.
 */
export function createRedis(url: string, opts: RedisConnectOptions): ScriptedRedis {
  const redis = new Redis(url, {
    connectionName: opts.name,
    // no CLIENT SETINFO: the ACL users (src/acl/users.ts) do not grant it, and it only labels the connection
    disableClientInfo: true,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: true,
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
    scripts: scriptOptions(),
    reconnectOnError: (err) => err.message.startsWith('READONLY') || err.message.startsWith('LOADING'),
    ...opts.overrides,
  });
  let down = false;
  redis.on('error', (err: Error) => {
    if (!down) opts.logger?.warn({ err: err.message, conn: opts.name }, 'redis connection error');
    down = true;
  });
  redis.on('ready', () => {
    if (down) opts.logger?.info({ conn: opts.name }, 'redis reconnected');
    down = false;
  });
  return loadScripts(redis);
}

/** Resolves once `redis` answers PING, retrying every 200 ms until `timeoutMs` (then throws). */
export async function waitReady(redis: Redis, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await redis.ping();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`Redis not reachable after ${timeoutMs} ms: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/**
 * Iterates keys matching `pattern` with SCAN (never KEYS), `count` hint per call.
 * @returns every matching key, deduplicated (SCAN may return a key twice).
 */
export async function scanKeys(redis: Redis, pattern: string, count = 500): Promise<string[]> {
  const out = new Set<string>();
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', count);
    cursor = next;
    for (const k of batch) out.add(k);
  } while (cursor !== '0');
  return [...out];
}
