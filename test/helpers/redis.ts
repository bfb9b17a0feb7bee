/**
 * A private `redis-server` per test file, on a free port, in a temporary folder, without persistence.
 * Tests never touch the machine's Redis on 6379. `restart()` kills and restarts it on the same port
 * (an empty Redis, as a crash without persistence leaves it).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

/** Returns a TCP port that was free a moment ago on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** A running private Redis. */
export interface TestRedis {
  url: string;
  port: number;
  /** Stops the server (SIGKILL-free shutdown) and removes its folder. */
  stop(): Promise<void>;
  /** Kills the server, waits `downMs`, starts a new empty one on the same port. */
  restart(downMs?: number): Promise<void>;
  /** Kills the server without restarting it. */
  kill(): Promise<void>;
  /** Starts it again after `kill()`. */
  start(): Promise<void>;
}

async function waitPing(url: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const c = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    c.on('error', () => undefined);
    try {
      await c.connect();
      await c.ping();
      c.disconnect();
      return;
    } catch {
      c.disconnect();
      if (Date.now() > deadline) throw new Error(`redis-server at ${url} did not start`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** Starts a private redis-server (from PATH) on a free port. */
export async function startTestRedis(): Promise<TestRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'p3-redis-'));
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  let proc: ChildProcess | null = null;

  const start = async () => {
    proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], {
      stdio: 'ignore',
    });
    await waitPing(url);
  };
  const kill = async () => {
    const p = proc;
    proc = null;
    if (!p || p.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill('SIGKILL');
    });
  };
  await start();
  return {
    url,
    port,
    start,
    kill,
    restart: async (downMs = 200) => {
      await kill();
      await new Promise((r) => setTimeout(r, downMs));
      await start();
    },
    stop: async () => {
      await kill();
      rmSync(dir, { recursive: true, force: true });
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
