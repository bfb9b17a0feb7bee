/**
 * A private `redis-server` for the bench (harness/redis-server.ts), so a bench never touches the
 * machine's Redis on 6379. Stopped and removed by `stop()`.
 */
import { RedisServerMissing, startRedisServer } from '../../harness/redis-server.js';


/** A running private Redis. */
export interface BenchRedis {
  /** `redis://127.0.0.1:<port>` */
  url: string;
  /** pid of the redis-server process (for its peak RSS). */
  pid: number;
  /** Kills the server and removes its folder. Never throws. */
  stop(): Promise<void>;
}

/**
 * Starts a private redis-server.
 * @throws Error when redis-server is not on PATH or does not answer within 10 s
 */
export async function startBenchRedis(): Promise<BenchRedis> {
  try {
    const srv = await startRedisServer('p3-bench-redis-');
    return { url: srv.url, pid: srv.pid(), stop: srv.stop };
  } catch (err) {
    if (err instanceof RedisServerMissing) throw new Error(`${err.message}; install it (apt-get install -y redis-server)`);
    throw err;
  }
}
