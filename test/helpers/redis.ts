/**
 * A private `redis-server` per test file, on a free port, in a temporary folder, without persistence
 * (harness/redis-server.ts). Tests never touch the machine's Redis on 6379. `restart()` kills and restarts
 * it on the same port (an empty Redis, as a crash without persistence leaves it).
 */
import type { Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { createRedis } from '../../src/adapters/redis/client.js';
import { freePort, startRedisServer, type RedisServerOptions } from '../../harness/redis-server.js';

export { freePort };

/** A running private Redis. */
export interface TestRedis {
  url: string;
  port: number;
  /** Stops the server and removes its folder. */
  stop(): Promise<void>;
  /** Kills the server, waits `downMs`, starts a new empty one on the same port. */
  restart(downMs?: number): Promise<void>;
  /** Kills the server without restarting it. */
  kill(): Promise<void>;
  /** Starts it again after `kill()`. */
  start(): Promise<void>;
}

/** Starts a private redis-server (from PATH) on a free port (`opts`: extra arguments such as `--aclfile`). */
export async function startTestRedis(opts: RedisServerOptions = {}): Promise<TestRedis> {
  const srv = await startRedisServer('p3-redis-', opts);
  return {
    url: srv.url,
    port: srv.port,
    start: srv.start,
    kill: srv.kill,
    stop: srv.stop,
    restart: async (downMs = 200) => {
      await srv.kill();
      await new Promise((r) => setTimeout(r, downMs));
      await srv.start();
    },
  };
}

/** Polls `fn` every `intervalMs` until it returns a truthy value or `timeoutMs` passes (then throws). */
export async function waitFor<T>(fn: () => Promise<T> | T, timeoutMs = 20_000, intervalMs = 25, what = 'condition'): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * Registers beforeAll/afterAll hooks for a private Redis and a connection to it (scripts loaded);
 * read `srv` and `redis` inside tests (they are set once beforeAll ran).
 */
export function useTestRedis(): { srv: TestRedis; redis: Redis } {
  const h = {} as { srv: TestRedis; redis: Redis };
  beforeAll(async () => {
    h.srv = await startTestRedis();
    h.redis = createRedis(h.srv.url, { name: 'test' });
  });
  afterAll(async () => {
    h.redis?.disconnect();
    await h.srv?.stop();
  });
  return h;
}
