/**
 * Where the demo keeps its state: the Redis at `REDIS_URL` when it answers (in a database of its own,
 * never one holding other data), else a private `redis-server` from PATH on a free port in a temporary
 * folder, stopped and removed on exit.
 */
import { openRedis } from '../../src/adapters/redis/client.js';
import { RedisServerMissing, redisAnswers, startRedisServer } from '../redis-server.js';

/** Marker key that says a database belongs to the demo (so a later demo may reuse and flush it). */
export const DEMO_MARKER_KEY = 'quantum:demo:owner';

/** Thrown when no Redis can be reached or started (the CLI exits 2 with this message). */
export class NoRedisError extends Error {}

/** The Redis the demo uses. */
export interface DemoRedis {
  /** URL including the database, e.g. `redis://127.0.0.1:6379/15`. */
  url: string;
  /** Human description printed at start. */
  description: string;
  /** Stops a private server and removes its folder; no-op for an external Redis. Never throws. */
  close(): Promise<void>;
  /** Synchronous best-effort kill for process exit handlers. */
  killSync(): void;
}

function withDb(url: string, db: number): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

/**
 * Picks a database of an external Redis: one marked as the demo's (flushed and reused), else the highest
 * empty one. @throws NoRedisError when every database 1-15 holds other data
 */
async function pickDatabase(url: string): Promise<{ db: number; reused: boolean }> {
  const c = openRedis(url, { maxRetriesPerRequest: 1 });
  c.on('error', () => undefined);
  try {
    let empty: number | null = null;
    for (let db = 15; db >= 1; db--) {
      await c.select(db);
      if ((await c.exists(DEMO_MARKER_KEY)) === 1) {
        await c.flushdb();
        await c.set(DEMO_MARKER_KEY, String(process.pid));
        return { db, reused: true };
      }
      if (empty === null && (await c.dbsize()) === 0) empty = db;
    }
    if (empty === null) throw new NoRedisError(`every database 1-15 of ${url} holds other data; set REDIS_URL to another Redis`);
    await c.select(empty);
    await c.set(DEMO_MARKER_KEY, String(process.pid));
    return { db: empty, reused: false };
  } finally {
    c.disconnect();
  }
}

/**
 * Finds or starts the demo's Redis.
 * @param redisUrl `REDIS_URL` (default `redis://127.0.0.1:6379`)
 * @throws NoRedisError when the URL does not answer and `redis-server` is not on PATH
 */
export async function acquireDemoRedis(redisUrl: string | undefined): Promise<DemoRedis> {
  const base = redisUrl ?? 'redis://127.0.0.1:6379';
  if (await redisAnswers(base)) {
    const { db, reused } = await pickDatabase(base);
    const url = withDb(base, db);
    return {
      url,
      description: `Redis at ${base}, database ${db} (${reused ? 'a previous demo database, flushed' : 'was empty'}; demo keys only, marked by ${DEMO_MARKER_KEY})`,
      close: async () => undefined,
      killSync: () => undefined,
    };
  }
  try {
    const srv = await startRedisServer('p3-demo-redis-');
    return {
      url: `${srv.url}/0`,
      description: `private redis-server on port ${srv.port} in ${srv.dir} (no Redis answered at ${base}; stopped and removed on exit)`,
      close: srv.stop,
      killSync: srv.killSync,
    };
  } catch (err) {
    if (err instanceof RedisServerMissing) {
      throw new NoRedisError(
        `no Redis answers at ${base} and redis-server is not on PATH. Install it (Debian/Ubuntu: apt-get install -y redis-server) or point REDIS_URL at a Redis.`,
      );
    }
    throw new NoRedisError(`no Redis answers at ${base} and a private redis-server did not start: ${(err as Error).message}`);
  }
}
