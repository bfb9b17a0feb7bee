/**
 * A private `redis-server` for the bench (from PATH, free loopback port, temporary folder, no
 * persistence), so a bench never touches the machine's Redis on 6379. Stopped and removed by `stop()`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

/** A running private Redis. */
export interface BenchRedis {
  /** `redis://127.0.0.1:<port>` */
  url: string;
  /** pid of the redis-server process (for its peak RSS). */
  pid: number;
  /** Kills the server and removes its folder. Never throws. */
  stop(): Promise<void>;
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      srv.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

async function ping(url: string): Promise<boolean> {
  const c = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  c.on('error', () => undefined);
  try {
    await c.connect();
    await c.ping();
    return true;
  } catch {
    return false;
  } finally {
    c.disconnect();
  }
}

/**
 * Starts a private redis-server.
 * @throws Error when redis-server is not on PATH or does not answer within 10 s
 */
export async function startBenchRedis(): Promise<BenchRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'p3-bench-redis-'));
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  const proc: ChildProcess = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  const spawnError = new Promise<Error>((resolve) => proc.once('error', resolve));
  const deadline = Date.now() + 10_000;
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      await new Promise<void>((resolve) => {
        proc.once('exit', () => resolve());
        proc.kill('SIGKILL');
      });
    }
    rmSync(dir, { recursive: true, force: true });
  };
  for (;;) {
    const err = await Promise.race([spawnError, new Promise<null>((r) => setTimeout(() => r(null), 50))]);
    if (err) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`cannot start redis-server (${err.message}); install it (apt-get install -y redis-server)`);
    }
    if (await ping(url)) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`redis-server did not answer on port ${port}`);
    }
  }
  return { url, pid: proc.pid ?? 0, stop };
}
