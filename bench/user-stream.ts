/**
 * Measurement 6: the user data stream against REST polling, same run, same machine, every
 * setting at its default (no poll override): manual trade → HOLD_SET (`*_detect_ms`) and manual trade →
 * HOLD_CLEARED with exchange == ledger (`*_heal_ms`), first with the stream on (`P33_USER_STREAM=true`,
 * REST verifying every `P33_REST_VERIFY_INTERVAL_MS` = 5000 ms), then off (REST every
 * `P33_SNAPSHOT_INTERVAL_MS` = 1000 ms). The heal chain is bench/heal.ts's (governor, brain, engine with
 * RECONCILE_CLOSE, apply layer as child processes; every heal a new drift). Keys in results.json:
 * `stream_detect_ms`, `stream_heal_ms`, `rest_detect_ms`, `rest_heal_ms`, each `{n, p50, p99}` (plus
 * `stream_snapshot_ms` / `rest_snapshot_ms`: trade → first snapshot showing it). Each trade waits a random
 * 0-1000 ms first, so trades fall at a random phase of the REST poll (without it every trade would land
 * just after a poll, REST's worst case).
 *
 * Alone: `npx tsx bench/user-stream.ts [--n N] [--out FILE]` merges these keys (and the machine's load)
 * into FILE (default bench/results.json) without running the other measurements.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';
import { createRedis } from '../src/adapters/redis/client.js';
import { STREAMS } from '../src/adapters/redis/keys.js';
import { sleep } from '../src/lib/sleep.js';
import { fromRoot } from '../src/lib/root.js';
import { userStreamStateKey } from '../src/services/position-state-brain/user-stream.js';
import { benchHeal } from './heal.js';
import { startBenchRedis } from './lib/redis.js';
import { StreamWatcher } from './lib/watch.js';
import { machineInfo } from './machine.js';

/** `{n, p50, p99}` of one figure. */
export interface Figure {
  n: number;
  p50: number;
  p99: number;
}

/** The four figures of measurement 6. */
export interface StreamBenchResult {
  stream_detect_ms: Figure;
  stream_heal_ms: Figure;
  rest_detect_ms: Figure;
  rest_heal_ms: Figure;
  /** manual trade → first snapshot showing it, stream on / off (the brain's share of detection). */
  stream_snapshot_ms: Figure;
  rest_snapshot_ms: Figure;
  notes: string[];
}

const fig = (s: { n: number; p50: number; p99: number }): Figure => ({ n: s.n, p50: s.p50, p99: s.p99 });

/** Waits until the brain child process reports a healthy stream (bench instance id `bench-position-state-brain`). */
async function streamHealthy(redis: Redis): Promise<void> {
  const deadline = Date.now() + 30_000;
  while ((await redis.hget(userStreamStateKey('bench-position-state-brain'), 'state')) !== 'healthy') {
    if (Date.now() > deadline) throw new Error('user data stream never became healthy');
    await sleep(50);
  }
}

/** Runs the stream-on and stream-off heal series (`n` heals each) on the Redis at `url`. */
export async function benchUserStream(opts: { url: string; redis: Redis; n: number; symbolCount: number; logDir: string; phase?: <T>(name: string, fn: (w: StreamWatcher) => Promise<T>) => Promise<T> }): Promise<StreamBenchResult> {
  const phase =
    opts.phase ??
    (async <T>(_name: string, fn: (w: StreamWatcher) => Promise<T>): Promise<T> => {
      await opts.redis.flushall();
      const w = new StreamWatcher(opts.redis.duplicate(), [STREAMS.reconcileEvents, STREAMS.positionSnapshot, STREAMS.applyResult]);
      await w.start();
      try {
        return await fn(w);
      } finally {
        await w.stop();
      }
    });
  const on = await phase(`6a stream on (${opts.n} heals, defaults)`, (w) =>
    benchHeal({ url: opts.url, redis: opts.redis, watcher: w, n: opts.n, symbolCount: opts.symbolCount, logDir: opts.logDir, brainEnv: { P33_USER_STREAM: 'true' }, intervalMs: 5000, ready: () => streamHealthy(opts.redis), jitterMs: 1000 }),
  );
  const off = await phase(`6b stream off (${opts.n} heals, REST every 1000 ms)`, (w) =>
    benchHeal({ url: opts.url, redis: opts.redis, watcher: w, n: opts.n, symbolCount: opts.symbolCount, logDir: opts.logDir, brainEnv: { P33_USER_STREAM: 'false' }, intervalMs: 1000, jitterMs: 1000 }),
  );
  const notes: string[] = [];
  for (const [name, r] of [['stream on', on], ['stream off', off]] as const) if (r.failures || r.mismatches) notes.push(`${name}: ${r.failures} heal(s) timed out, ${r.mismatches} ended with exchange != ledger or a hold left; left out`);
  return { stream_detect_ms: fig(on.hold), stream_heal_ms: fig(on.heal), rest_detect_ms: fig(off.hold), rest_heal_ms: fig(off.heal), stream_snapshot_ms: fig(on.landed), rest_snapshot_ms: fig(off.landed), notes };
}

// `tsx bench/user-stream.ts [--n N] [--out FILE]`
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const arg = (k: string) => {
    const i = process.argv.indexOf(k);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  const n = Number(arg('--n') ?? 100);
  const out = arg('--out') ?? fromRoot('bench/results.json');
  (async () => {
    const server = await startBenchRedis();
    const redis = createRedis(server.url, { name: 'p3:bench' });
    const logDir = mkdtempSync(join(tmpdir(), 'p3-bench-logs-'));
    try {
      const machine = await machineInfo(redis, 'full', `npx tsx bench/user-stream.ts --n ${n}`);
      const r = await benchUserStream({ url: server.url, redis, n, symbolCount: 20, logDir });
      const loadEnd = (await import('node:os')).loadavg()[0];
      const prev = existsSync(out) ? (JSON.parse(readFileSync(out, 'utf8')) as Record<string, unknown>) : {};
      const { notes, ...figures } = r;
      const merged = { ...prev, ...figures, user_stream_machine: { ...machine, loadavg_1m_end: Math.round((loadEnd ?? 0) * 100) / 100, notes } };
      writeFileSync(out, `${JSON.stringify(merged, null, 2)}\n`);
      process.stdout.write(`${JSON.stringify({ ...figures, notes, load_start: machine.loadavg_1m_start, load_end: loadEnd, logs: logDir }, null, 2)}\n`);
    } finally {
      redis.disconnect();
      await server.stop();
    }
  })().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}
