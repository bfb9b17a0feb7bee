/**
 * The chaos run's private redis-server WITH the persistence the project recommends (AOF,
 * `appendfsync everysec`, `maxmemory-policy noeviction`, no RDB snapshots), in the run's folder, so a
 * `kill -9` loses at most about one second of acknowledged writes and a restart reloads the rest from the
 * AOF on the same port. Keyspace notifications for hashes (`Kh`) let the invariant checker see each
 * permit as it is written.
 *
 * Invariants: `start()` after `kill()` reuses the same folder and port (the services reconnect to the same
 * URL); `kill()` is SIGKILL (a crash, no shutdown save); nothing here ever touches the machine's Redis.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, statSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, killChild, spawnRedisUntilReady } from '../redis-server.js';

/** A durable private redis-server. */
export interface DurableRedis {
  /** `redis://127.0.0.1:<port>` */
  url: string;
  port: number;
  /** Data folder (AOF under `appendonlydir/`). */
  dir: string;
  /** pid of the running process, 0 while killed. */
  pid(): number;
  /** SIGKILL (a crash); resolves when the process is gone. Never throws. */
  kill(): Promise<void>;
  /**
   * Starts it from its AOF on the same port; resolves when it answers PING (after loading).
   * @param replicaOf start as a replica of this master (Sentinel runs: a returning old master)
   * @throws Error after 30 s
   */
  start(replicaOf?: { host: string; port: number }): Promise<void>;
  /** Kills it (synchronously, best effort), for exit handlers. */
  killSync(): void;
  /**
   * A host crash (power loss) under `appendfsync everysec`: SIGKILL, then the AOF loses what was written
   * in the last `lossMs` (the page cache never reached the disk). Simulated by truncating the active
   * incremental AOF file to the size it had `lossMs` ago (sampled every 50 ms); Redis loads the rest
   * (`aof-load-truncated yes`).
   * @returns bytes dropped (0 when the AOF was rewritten within the window: nothing is dropped then)
   */
  crashWithLoss(lossMs: number): Promise<number>;
}

/** The active incremental AOF file (Redis 7 multi-part AOF: the manifest's last `type i` entry), or null. */
export function activeIncrAof(dir: string): string | null {
  const sub = join(dir, 'appendonlydir');
  try {
    const manifest = readdirSync(sub).find((f) => f.endsWith('.manifest'));
    if (!manifest) return null;
    const incr = readFileSync(join(sub, manifest), 'utf8')
      .split('\n')
      .map((l) => /^file (\S+) seq \d+ type i/.exec(l)?.[1])
      .filter((f): f is string => Boolean(f));
    const last = incr[incr.length - 1];
    return last ? join(sub, last) : null;
  } catch {
    return null;
  }
}

/** The redis-server arguments of a chaos run (also documented in docs/reliability.md); `replicaOf`: a replica of that master. */
export function durableRedisArgs(port: number, dir: string, replicaOf?: { host: string; port: number }, extra: string[] = []): string[] {
  return [
    ...extra,
    ...(replicaOf ? ['--replicaof', replicaOf.host, String(replicaOf.port)] : []),
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--dir', dir,
    '--save', '',
    '--appendonly', 'yes',
    '--appendfsync', 'everysec',
    '--aof-load-truncated', 'yes',
    '--maxmemory-policy', 'noeviction',
    '--notify-keyspace-events', 'Kh',
    '--logfile', join(dir, 'redis.log'),
  ];
}

/**
 * Starts a durable redis-server in `<runDir>/<subdir>` (default `redis`) on a free port.
 * @param replicaOf start it as a replica of that master (the replica of a `--sentinel` run)
 * @param extraArgs more redis-server arguments (e.g. `--min-replicas-to-write 1`)
 * @throws RedisServerMissing when redis-server is not on PATH; Error when it does not answer within 30 s
 */
export async function startDurableRedis(runDir: string, subdir = 'redis', replicaOf?: { host: string; port: number }, extraArgs: string[] = []): Promise<DurableRedis> {
  const dir = join(runDir, subdir);
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  let proc: ChildProcess | null = null;

  const start = async (master?: { host: string; port: number }): Promise<void> => {
    await spawnRedisUntilReady(durableRedisArgs(port, dir, master, extraArgs), url, 30_000, (p) => (proc = p), ` (see ${join(dir, 'redis.log')})`);
  };
  const kill = async (): Promise<void> => {
    const p = proc;
    proc = null;
    await killChild(p);
  };
  // AOF size samples for crashWithLoss: [ts_ms, file, bytes], the last 10 s
  const samples: Array<[number, string, number]> = [];
  const sampler = setInterval(() => {
    const f = activeIncrAof(dir);
    if (!f) return;
    try {
      samples.push([Date.now(), f, statSync(f).size]);
    } catch {
      return;
    }
    while (samples.length > 0 && (samples[0]?.[0] ?? 0) < Date.now() - 10_000) samples.shift();
  }, 50);
  sampler.unref();
  const crashWithLoss = async (lossMs: number): Promise<number> => {
    await kill();
    const f = activeIncrAof(dir);
    if (!f) return 0;
    const cut = Date.now() - lossMs;
    const before = [...samples].reverse().find(([t]) => t <= cut);
    if (!before || before[1] !== f) return 0;
    const size = statSync(f).size;
    if (size <= before[2]) return 0;
    truncateSync(f, before[2]);
    return size - before[2];
  };
  await start(replicaOf);
  return {
    crashWithLoss,
    url,
    port,
    dir,
    pid: () => (proc as ChildProcess | null)?.pid ?? 0,
    kill,
    start,
    killSync: () => {
      clearInterval(sampler);
      const p = proc;
      proc = null;
      if (p && p.exitCode === null) p.kill('SIGKILL');
    },
  };
}
