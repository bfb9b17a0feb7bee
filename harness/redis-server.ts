/**
 * A private `redis-server` process (from PATH) on a free loopback port, in a temporary folder, without
 * persistence. Used by the demo (when no Redis answers at `REDIS_URL`), the benchmarks and the tests, so
 * none of them touches the machine's Redis on 6379.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openRedis } from '../src/adapters/redis/client.js';

/** Thrown when `redis-server` is not on PATH (spawn failed). */
export class RedisServerMissing extends Error {}

/** Returns a TCP port that was free a moment ago on 127.0.0.1. */
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

/**
 * The `process_id` of the Redis answering at `url` (INFO server), `undefined` when it answers but does not say
 * (INFO refused to the probe's user), null when nothing answers within `timeoutMs`. Never throws.
 */
export async function redisProcessId(url: string, timeoutMs = 1500): Promise<number | null | undefined> {
  const c = openRedis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: timeoutMs });
  c.on('error', () => undefined);
  try {
    await c.connect();
    await c.ping();
  } catch {
    c.disconnect();
    return null;
  }
  try {
    const pid = Number(/^process_id:(\d+)/m.exec(String(await c.call('INFO', 'server')))?.[1] ?? NaN);
    return Number.isFinite(pid) ? pid : undefined;
  } catch {
    return undefined;
  } finally {
    c.disconnect();
  }
}

/** True when a Redis at `url` answers PING within `timeoutMs` (one attempt, no retries). Never throws. */
export async function redisAnswers(url: string, timeoutMs = 1500): Promise<boolean> {
  return (await redisProcessId(url, timeoutMs)) !== null;
}

/** Thrown when another process answers on the port a new redis-server was given (a free port taken meanwhile). */
export class RedisPortTaken extends Error {}

/**
 * Spawns `redis-server <args>` and waits until `probeUrl` answers PING (polled every 50 ms) from THIS process
 * (INFO server `process_id`, when the probe may read it): a port found free and taken by another process
 * before redis-server bound it (parallel test files) is never mistaken for ours.
 * @param onSpawn receives the child process as soon as it exists (so a caller can kill it while waiting)
 * @param timeoutMs how long to wait for the first PONG, ms
 * @throws RedisServerMissing when redis-server is not on PATH; Error when it exits or does not answer in time
 */
export async function spawnRedisUntilReady(args: string[], probeUrl: string, timeoutMs: number, onSpawn: (p: ChildProcess) => void, logHint = ''): Promise<ChildProcess> {
  const p = spawn('redis-server', args, { stdio: 'ignore' });
  onSpawn(p);
  const spawnError = new Promise<Error>((resolve) => p.once('error', resolve));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const err = await Promise.race([spawnError, new Promise<null>((r) => setTimeout(() => r(null), 50))]);
    if (err) throw new RedisServerMissing(`cannot start redis-server (${err.message})`);
    const pid = await redisProcessId(probeUrl);
    if (pid !== null && (pid === undefined || pid === p.pid)) return p;
    if (pid !== null || p.exitCode !== null) {
      // someone else answers on the port (ours exited: address in use, or is still starting behind it)
      if (pid !== null) {
        await killChild(p);
        throw new RedisPortTaken(`another process (pid ${pid}) answers at ${probeUrl.replace(/\/\/[^@]*@/, '//')}${logHint}`);
      }
      throw new Error(`redis-server exited with code ${p.exitCode}${logHint}`);
    }
    if (Date.now() > deadline) throw new Error(`redis-server did not answer at ${probeUrl.replace(/\/\/[^@]*@/, '//')} within ${timeoutMs} ms${logHint}`);
  }
}

/** SIGKILLs a child process (a crash) and resolves when it is gone; nothing when it is null or already gone. Never throws. */
export async function killChild(p: ChildProcess | null): Promise<void> {
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    p.once('exit', () => resolve());
    p.kill('SIGKILL');
  });
}

/** A private redis-server. */
export interface RedisServer {
  /** `redis://127.0.0.1:<port>` */
  url: string;
  port: number;
  /** Its data folder (removed by `stop`). */
  dir: string;
  /** pid of the current process (0 while killed). */
  pid(): number;
  /** Kills the process (SIGKILL: as a crash); the folder stays so `start()` can bring it back on the same port. */
  kill(): Promise<void>;
  /** Starts it again (empty: there is no persistence) on the same port; waits until it answers. */
  start(): Promise<void>;
  /** Kills it and removes its folder. Never throws. */
  stop(): Promise<void>;
  /** Synchronous best-effort kill and folder removal, for process `exit` handlers. */
  killSync(): void;
}

/** Options of {@link startRedisServer}. */
export interface RedisServerOptions {
  /** Extra redis-server arguments, e.g. `['--aclfile', path]`. */
  args?: string[];
  /** Credentials the readiness probe uses (`user:password`), when the default user is off. */
  probeAuth?: { user: string; password: string };
}

/**
 * Starts a private redis-server and waits until it answers.
 * @param prefix name prefix of the temporary folder (e.g. `p3-demo-redis-`)
 * @throws RedisServerMissing when redis-server is not on PATH; Error when it does not answer within 10 s
 */
export async function startRedisServer(prefix = 'p3-redis-', opts: RedisServerOptions = {}): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  let port = await freePort();
  const probeUrl = () => (opts.probeAuth ? `redis://${encodeURIComponent(opts.probeAuth.user)}:${encodeURIComponent(opts.probeAuth.password)}@127.0.0.1:${port}` : `redis://127.0.0.1:${port}`);
  let proc: ChildProcess | null = null;

  const start = async () => {
    await spawnRedisUntilReady(['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...(opts.args ?? [])], probeUrl(), 10_000, (p) => (proc = p));
  };
  const kill = async () => {
    const p = proc;
    proc = null;
    await killChild(p);
  };
  const killSync = () => {
    const p = proc;
    proc = null;
    if (p && p.exitCode === null) p.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    // the first start may find its free port taken meanwhile (parallel tests): a new port, at most 3 times
    for (let attempt = 1; ; attempt++) {
      try {
        await start();
        break;
      } catch (err) {
        if (!(err instanceof RedisPortTaken) || attempt >= 3) throw err;
        port = await freePort();
      }
    }
  } catch (err) {
    killSync();
    throw err;
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    pid: () => (proc as ChildProcess | null)?.pid ?? 0,
    kill,
    start,
    stop: async () => {
      await kill().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
    killSync,
  };
}
