/**
 * Services as child processes, exactly as production runs them (`node bin/p3.mjs run <service>`, one
 * process per service, configured by environment), so each one's peak RSS can be read from
 * `/proc/<pid>/status` (`VmHWM`). Logs go to a file per service in the bench's temporary folder.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { keys } from '../../src/adapters/redis/keys.js';
import type { ServiceName } from '../../src/host/service-names.js';
import { sleep } from '../../src/lib/sleep.js';
import { fromRoot } from '../../src/lib/root.js';

const BIN = fromRoot('bin/p3.mjs');

/** Variables never inherited from the bench's own environment (the bench sets what it needs). */
const OWN_PREFIXES = /^(REDIS_URL|P3_|P33_|P34_|APPLY_|GOVERNOR_|EXCHANGE)/;

/** A service running as a child process. */
export interface ChildService {
  name: ServiceName;
  pid: number;
  /** Log file (stdout + stderr). */
  log: string;
  /** Peak resident set size so far (`VmHWM`), MB; null when /proc is unavailable or the process ended. */
  peakRssMb(): number | null;
  /** CPU time used so far (user + system, `/proc/<pid>/stat`), ms; null when unavailable. */
  cpuMs(): number | null;
  /** SIGTERM (drain), SIGKILL after 10 s. Never throws. */
  stop(): Promise<void>;
}

/** `VmHWM` of `pid` in MB (1 decimal), or null. */
export function peakRssMb(pid: number): number | null {
  try {
    const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round((Number(m[1]) / 1024) * 10) / 10 : null;
  } catch {
    return null;
  }
}

/** User + system CPU time of `pid` so far, ms (`/proc/<pid>/stat` fields 14 and 15, clock ticks of 10 ms), or null. */
export function cpuMs(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // fields after the command name (which may contain spaces), which ends at the last ')'
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return null;
  }
}

/**
 * Extra node options of the service processes, from `BENCH_NODE_ARGS` (space-separated), e.g.
 * `BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof"` to profile every service (Node refuses
 * `--cpu-prof` in NODE_OPTIONS). A profile is written when the service exits after its SIGTERM drain.
 */
function nodeArgs(): string[] {
  return (process.env.BENCH_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
}

/** Starts `p3 run <name>` with `env` (instance id `bench-<name>`). Does not wait for readiness. */
export function spawnService(name: ServiceName, env: Record<string, string>, logDir: string): ChildService {
  const base: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !OWN_PREFIXES.test(k)) base[k] = v;
  const log = join(logDir, `${name}.log`);
  const fd = openSync(log, 'a');
  const proc: ChildProcess = spawn(process.execPath, [...nodeArgs(), BIN, 'run', name], { env: { ...base, ...env, P3_INSTANCE_ID: `bench-${name}` }, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const pid = proc.pid ?? 0;
  return {
    name,
    pid,
    log,
    peakRssMb: () => peakRssMb(pid),
    cpuMs: () => cpuMs(pid),
    stop: async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
        proc.once('exit', () => {
          clearTimeout(t);
          resolve();
        });
        proc.kill('SIGTERM');
      });
    },
  };
}

/**
 * Starts services and waits until each one's heartbeat hash exists (written right after its start).
 * @throws Error (after stopping them) when one does not start within `timeoutMs`
 */
export async function startServices(names: ServiceName[], env: Record<string, string>, logDir: string, redis: Redis, timeoutMs = 60_000): Promise<ChildService[]> {
  const children = names.map((n) => spawnService(n, env, logDir));
  const deadline = Date.now() + timeoutMs;
  try {
    for (const c of children) {
      while ((await redis.exists(keys.heartbeat(c.name, `bench-${c.name}`))) !== 1) {
        if (Date.now() > deadline) throw new Error(`${c.name} did not start within ${timeoutMs} ms (log: ${c.log})`);
        await sleep(50);
      }
    }
  } catch (err) {
    await stopAll(children);
    throw err;
  }
  return children;
}

/** Stops children in parallel. Never throws. */
export async function stopAll(children: ChildService[]): Promise<void> {
  await Promise.all(children.map((c) => c.stop()));
}

/**
 * Waits until every `symbols` has reconcile status OK (the engine initialised the ledgers from the
 * exchange and compared them).
 * @throws Error after `timeoutMs`
 */
export async function waitReconciled(redis: Redis, symbols: string[], timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = redis.multi();
    for (const s of symbols) m.hget(keys.reconcileState(s), 'status');
    const res = ((await m.exec()) ?? []).map(([, v]) => v);
    if (res.every((v) => v === 'OK')) return;
    if (Date.now() > deadline) throw new Error(`symbols not reconciled within ${timeoutMs} ms: ${symbols.filter((_, i) => res[i] !== 'OK').join(',')}`);
    await sleep(50);
  }
}

/**
 * Waits until `stream` has the consumer groups `groups` (a service creates its group after it started;
 * plans added before would never reach it).
 */
export async function waitGroups(redis: Redis, stream: string, groups: string[], timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const info = (await redis.call('XINFO', 'GROUPS', stream)) as Array<Array<string | number>>;
      const names = new Set(info.map((g) => String(g[1])));
      if (groups.every((g) => names.has(g))) return;
    } catch {
      // stream not created yet
    }
    if (Date.now() > deadline) throw new Error(`consumer groups ${groups.join(',')} not on ${stream} within ${timeoutMs} ms`);
    await sleep(50);
  }
}
