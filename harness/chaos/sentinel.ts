/**
 * The Redis of a `p3 chaos --sentinel` run: {@link CHAOS_REPLICAS} + 1 durable data nodes (a master and its two
 * replicas, with the AOF settings of redis.ts and {@link CHAOS_NODE_ARGS}) and three `redis-sentinel`
 * processes (quorum 2) watching them, all on free loopback ports in the run folder. The services find the master through the sentinels (REDIS_SENTINELS),
 * so a failover moves every connection without a restart.
 *
 * Faults (faults.ts): `failover()` (SENTINEL FAILOVER; kill -9 of the master and Sentinel promotes a
 * replica, then the old master comes back as a replica; or SENTINEL FAILOVER while one replica is stopped and
 * falls behind, `lagging`, which then resyncs from the new master), and the master-directed `redis_kill` /
 * `redis_crash_loss` through {@link SentinelRedis.master} and {@link SentinelRedis.restart}.
 *
 * Invariants: a killed node is always restarted as a replica of the master the sentinels name when that is
 * another node (never a second master); every `+switch-master` the sentinels publish is counted
 * (`switches`), whatever caused it; nothing here touches the machine's Redis or sentinels.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { Redis } from 'ioredis';
import { openRedis } from '../../src/adapters/redis/client.js';
import type { RedisTarget } from '../../src/config/redis.js';
import { freePort, RedisServerMissing } from '../redis-server.js';
import { sleep } from '../../src/lib/sleep.js';
import { startDurableRedis, type DurableRedis } from './redis.js';

/** Master group name of a chaos run. */
export const CHAOS_MASTER_NAME = 'p3chaos';
/** `sentinel down-after-milliseconds`: longer than a `redis_kill` outage (0.2-2.5 s), so a plain kill rarely fails over. */
export const CHAOS_DOWN_AFTER_MS = 3000;
/** Replicas of a Sentinel run: two, so that a failover can happen while one of them is behind or resyncing. */
export const CHAOS_REPLICAS = 2;
/** `min-replicas-to-write` of a Sentinel run: every replica (see {@link CHAOS_NODE_ARGS}). */
export const CHAOS_MIN_REPLICAS_TO_WRITE = CHAOS_REPLICAS;
/**
 * Data-node settings of a Sentinel run (as ops/redis/replica.conf recommends): a master accepts writes only
 * while EVERY replica is connected and acknowledged within 5 s (`min-replicas-to-write` = the replicas). A
 * master the sentinels are replacing loses a replica at the promotion, so it refuses writes (NOREPLICAS)
 * instead of accepting writes that its demotion would discard. Measured with two replicas and
 * `min-replicas-to-write 1`: the old master kept the other replica and accepted about 1 s of writes after the
 * promotion (7 lost plan results over 4 SENTINEL FAILOVERs, seed 41; again 4 in session 4 with
 * `--claim-durability replica-wait`; docs/reliability.md). The price, and what the runs exercise: after a
 * failover writes stop until both replicas are in sync again (the demoted master, and a replica that was behind),
 * and every service must go on by itself as soon as they are.
 * `repl-diskless-sync-delay 0`: a restarted master syncs its replica at once (the default waits 5 s for more
 * replicas to join, 5 s without writes under `min-replicas-to-write`).
 */
export const CHAOS_NODE_ARGS = ['--min-replicas-to-write', String(CHAOS_MIN_REPLICAS_TO_WRITE), '--min-replicas-max-lag', '5', '--repl-diskless-sync-delay', '0'];
/** `sentinel failover-timeout`. */
export const CHAOS_FAILOVER_TIMEOUT_MS = 5000;

/** How a failover is caused (see {@link SentinelRedis.failover}). */
export type FailoverMode = 'command' | 'kill' | 'lagging';

/** How long a `lagging` failover keeps one replica stopped before the failover, ms. */
export const LAGGING_STOP_MS = 1_500;
/** How long after the SENTINEL FAILOVER of a `lagging` failover the stopped replica resumes, ms. */
export const LAGGING_RESUME_MS = 500;

/** One `+switch-master` seen on a sentinel. */
export interface SwitchEvent {
  at_ms: number;
  /** `host:port` of the old and the new master. */
  from: string;
  to: string;
}

/** The sentinel topology of a run. */
export interface SentinelRedis {
  /** What the services and the harness connect to (`REDIS_SENTINELS`, `REDIS_SENTINEL_NAME`). */
  target: RedisTarget;
  /** The data nodes (index 0 started as the master, then the replicas). */
  nodes: DurableRedis[];
  /** Every `+switch-master` so far. */
  switches: SwitchEvent[];
  /** The node the sentinels name as master now (null when no sentinel answers). */
  master(): Promise<DurableRedis | null>;
  /**
   * Starts a killed node again: as a replica of the master the sentinels name when that is another node
   * (waiting, at most `waitMs`, for a failover in progress to finish), else as the master it was.
   */
  restart(node: DurableRedis, waitMs?: number): Promise<void>;
  /**
   * One failover. `command`: SENTINEL FAILOVER (the old master stays up and is demoted by Sentinel);
   * `kill`: kill -9 of the master, Sentinel notices it (down-after), elects and promotes a replica, and
   * the old master restarts as a replica of the new one; `lagging`: one replica is stopped (SIGSTOP) for
   * {@link LAGGING_STOP_MS} while writes go on, then SENTINEL FAILOVER promotes the other one (the stopped one
   * resumes {@link LAGGING_RESUME_MS} later, behind, and resyncs from the new master). Resolves once the switch happened and the old
   * master runs again (at most `timeoutMs`). Waits at most `readyWaitMs` (default 20 s) for a failover to be
   * possible first (master up, none in progress, a replica in sync).
   * @returns a description and, for `kill`, when the master was killed (epoch ms); null when no failover
   *   was possible (no good replica yet, one in progress)
   */
  failover(mode: FailoverMode, timeoutMs?: number, readyWaitMs?: number): Promise<{ detail: string; killed_ms?: number } | null>;
  /** Every node running and replicating, a master named: waits at most `timeoutMs`. Never throws. */
  settle(timeoutMs?: number): Promise<void>;
  /** Kills every node and sentinel. Never throws. */
  kill(): Promise<void>;
  killSync(): void;
}

const addr = (n: DurableRedis) => `127.0.0.1:${n.port}`;

/** The config file of one chaos sentinel (Sentinel rewrites it: it must be writable). */
export function sentinelConf(port: number, dir: string, masterPort: number): string {
  return [
    `port ${port}`,
    'bind 127.0.0.1',
    'daemonize no',
    `dir ${dir}`,
    `logfile ${join(dir, 'sentinel.log')}`,
    `sentinel monitor ${CHAOS_MASTER_NAME} 127.0.0.1 ${masterPort} 2`,
    `sentinel down-after-milliseconds ${CHAOS_MASTER_NAME} ${CHAOS_DOWN_AFTER_MS}`,
    `sentinel failover-timeout ${CHAOS_MASTER_NAME} ${CHAOS_FAILOVER_TIMEOUT_MS}`,
    `sentinel parallel-syncs ${CHAOS_MASTER_NAME} 1`,
    '',
  ].join('\n');
}

/** `redis-sentinel` when on PATH (Debian's redis-sentinel package), else `redis-server --sentinel` (the same program). */
function sentinelCommand(conf: string): [string, string[]] {
  const onPath = (process.env.PATH ?? '').split(delimiter).some((d) => d !== '' && existsSync(join(d, 'redis-sentinel')));
  return onPath ? ['redis-sentinel', [conf]] : ['redis-server', [conf, '--sentinel']];
}

/**
 * Starts the data nodes and three sentinels in `runDir` and waits until the sentinels know the replica.
 * @throws RedisServerMissing when redis-server or redis-sentinel is missing; Error when the topology is not up within `readyMs`
 */
export async function startSentinelRedis(runDir: string, readyMs = 60_000): Promise<SentinelRedis> {
  const procs: ChildProcess[] = [];
  const nodes: DurableRedis[] = [];
  const ports: number[] = [];
  const switches: SwitchEvent[] = [];
  let sub: Redis | null = null;
  const clients: Redis[] = [];
  const killSync = () => {
    sub?.disconnect();
    for (const c of clients) c.disconnect();
    for (const n of nodes) n.killSync();
    for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
  };
  try {
    const a = await startDurableRedis(runDir, 'redis', undefined, CHAOS_NODE_ARGS);
    nodes.push(a);
    for (let i = 1; i <= CHAOS_REPLICAS; i++) nodes.push(await startDurableRedis(runDir, `redis-replica-${i}`, { host: '127.0.0.1', port: a.port }, CHAOS_NODE_ARGS));
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const dir = join(runDir, `sentinel-${i + 1}`);
      mkdirSync(dir, { recursive: true });
      const conf = join(dir, 'sentinel.conf');
      writeFileSync(conf, sentinelConf(port, dir, a.port));
      const [cmd, args] = sentinelCommand(conf);
      const p = spawn(cmd, args, { stdio: 'ignore' });
      const failed = await Promise.race([new Promise<Error>((r) => p.once('error', r)), sleep(200).then(() => null)]);
      if (failed) throw new RedisServerMissing(`cannot start ${cmd} (${failed.message}); install Debian's redis-sentinel package`);
      procs.push(p);
      ports.push(port);
    }
    const target: RedisTarget = { url: 'redis://127.0.0.1:6379', sentinel: { sentinels: ports.map((port) => ({ host: '127.0.0.1', port })), name: CHAOS_MASTER_NAME } };
    const sentinelClient = (i: number): Redis => {
      const c = openRedis(`redis://127.0.0.1:${ports[i]}`, { maxRetriesPerRequest: 1, enableReadyCheck: false, retryStrategy: () => 200 });
      c.on('error', () => undefined);
      clients.push(c);
      return c;
    };
    const asks = ports.map((_, i) => sentinelClient(i));
    sub = openRedis(`redis://127.0.0.1:${ports[0]}`, { enableReadyCheck: false, retryStrategy: () => 200 });
    sub.on('error', () => undefined);
    sub.on('message', (_ch: string, msg: string) => {
      // "<name> <old-ip> <old-port> <new-ip> <new-port>"
      const f = msg.split(' ');
      if (f[0] === CHAOS_MASTER_NAME) switches.push({ at_ms: Date.now(), from: `${f[1]}:${f[2]}`, to: `${f[3]}:${f[4]}` });
    });
    await sub.subscribe('+switch-master');

    const masterAddr = async (): Promise<string | null> => {
      for (const c of asks) {
        try {
          const r = (await c.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', CHAOS_MASTER_NAME)) as [string, string] | null;
          if (r) return `${r[0]}:${r[1]}`;
        } catch {
          // next sentinel
        }
      }
      return null;
    };
    const masterFlags = async (): Promise<string> => {
      for (const c of asks) {
        try {
          const r = (await c.call('SENTINEL', 'MASTER', CHAOS_MASTER_NAME)) as string[];
          const i = r.indexOf('flags');
          return i >= 0 ? String(r[i + 1]) : '';
        } catch {
          // next sentinel
        }
      }
      return '';
    };
    /** Replicas of the master that a sentinel would promote (up, link ok). */
    const goodReplicas = async (): Promise<number> => {
      try {
        const r = (await asks[0]?.call('SENTINEL', 'REPLICAS', CHAOS_MASTER_NAME)) as string[][];
        return r.filter((x) => {
          const o: Record<string, string> = {};
          for (let i = 0; i + 1 < x.length; i += 2) o[x[i] as string] = x[i + 1] as string;
          return !/s_down|o_down|disconnected/.test(o.flags ?? '') && o['master-link-status'] === 'ok';
        }).length;
      } catch {
        return 0;
      }
    };
    const master = async (): Promise<DurableRedis | null> => {
      const m = await masterAddr();
      return nodes.find((n) => addr(n) === m) ?? null;
    };
    const restart = async (node: DurableRedis, waitMs = 30_000): Promise<void> => {
      const deadline = Date.now() + waitMs;
      for (;;) {
        const m = await masterAddr();
        const flags = await masterFlags();
        const busy = /failover_in_progress|o_down/.test(flags);
        if (m && m !== addr(node) && !busy) {
          const [host, port] = m.split(':');
          return node.start({ host: host as string, port: Number(port) });
        }
        if ((m === addr(node) && !busy) || Date.now() > deadline) return node.start();
        await sleep(200);
      }
    };
    const failover = async (mode: FailoverMode, timeoutMs = 40_000, readyWaitMs = 20_000): Promise<{ detail: string; killed_ms?: number } | null> => {
      // a failover needs a master that is up and a replica Sentinel would promote (not resyncing after a restart);
      // `lagging` needs two (one to stop, one to promote)
      const readyBy = Date.now() + readyWaitMs;
      let old: DurableRedis | null = null;
      for (;;) {
        old = await master();
        if (old && old.pid() !== 0 && !/failover_in_progress|o_down|s_down/.test(await masterFlags()) && (await goodReplicas()) > (mode === 'lagging' ? 1 : 0)) break;
        if (Date.now() > readyBy) return null;
        await sleep(250);
      }
      const before = switches.length;
      const t0 = Date.now();
      let stopped: DurableRedis | null = null;
      if (mode === 'lagging') {
        const m = old;
        stopped = nodes.find((n) => n !== m && n.pid() !== 0) ?? null;
        if (!stopped) return null;
        process.kill(stopped.pid(), 'SIGSTOP');
        await sleep(LAGGING_STOP_MS);
      }
      if (mode === 'command' || mode === 'lagging') {
        try {
          await asks[switches.length % asks.length]?.call('SENTINEL', 'FAILOVER', CHAOS_MASTER_NAME);
        } catch {
          if (stopped) process.kill(stopped.pid(), 'SIGCONT');
          return null; // NOGOODSLAVE / INPROG
        }
      }
      // the stopped replica resumes soon after the failover began, still behind (were Sentinel to pick it, the
      // promotion would otherwise wait for it): Sentinel points it at the new master, and it resyncs
      if (stopped) {
        await sleep(LAGGING_RESUME_MS);
        if (stopped.pid() !== 0) process.kill(stopped.pid(), 'SIGCONT');
      }
      let killed_ms: number | undefined;
      if (mode === 'kill') {
        await old.kill();
        killed_ms = Date.now();
      }
      const deadline = t0 + timeoutMs;
      while (switches.length === before && Date.now() < deadline) await sleep(100);
      const sw = switches[before];
      if (mode === 'kill') await restart(old, Math.max(0, deadline - Date.now()));
      const what = mode === 'kill' ? 'kill -9 master' : mode === 'lagging' ? `SENTINEL FAILOVER with replica ${stopped ? addr(stopped) : '?'} stopped ${LAGGING_STOP_MS} ms (behind),` : 'SENTINEL FAILOVER';
      if (!sw) return { detail: `${what} ${addr(old)}: no switch within ${timeoutMs} ms${mode === 'kill' ? ' (restarted as it was)' : ''}`, killed_ms };
      return { detail: `${mode === 'kill' ? `${what} ${addr(old)},` : what} switch ${sw.from} -> ${sw.to} after ${sw.at_ms - t0} ms${mode === 'kill' ? `; ${addr(old)} back as a replica` : ''}`, killed_ms };
    };
    const settle = async (timeoutMs = 60_000): Promise<void> => {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const flags = await masterFlags();
        const m = await master();
        if (m && m.pid() !== 0 && !/failover_in_progress|o_down|s_down/.test(flags) && nodes.every((n) => n.pid() !== 0) && (await goodReplicas()) >= nodes.length - 1) return;
        for (const n of nodes) if (n.pid() === 0 && m && n !== m) await n.start({ host: '127.0.0.1', port: m.port }).catch(() => undefined);
        await sleep(250);
      }
    };
    // ready: the sentinels see the replica and agree on the master
    const deadline = Date.now() + readyMs;
    while ((await goodReplicas()) < nodes.length - 1 || (await masterAddr()) !== addr(a)) {
      if (Date.now() > deadline) throw new Error(`sentinels not ready within ${readyMs} ms (logs in ${runDir}/sentinel-*)`);
      await sleep(200);
    }
    return {
      target,
      nodes,
      switches,
      master,
      restart,
      failover,
      settle,
      kill: async () => {
        sub?.disconnect();
        for (const c of clients) c.disconnect();
        await Promise.all(nodes.map((n) => n.kill()));
        await Promise.all(
          procs.map((p) =>
            p.exitCode !== null || p.signalCode !== null
              ? undefined
              : new Promise<void>((r) => {
                  p.once('exit', () => r());
                  p.kill('SIGKILL');
                }),
          ),
        );
      },
      killSync,
    };
  } catch (err) {
    killSync();
    throw err;
  }
}
