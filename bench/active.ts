/**
 * Measurement 7, a foreign trade during active trading (docs/architecture.md#venue-evidence): a strategy
 * trades one symbol with a fill about every second (OPEN BUY 0.002, then FULL_CLOSE, alternating, through the
 * governor, the brain's permits and the apply layer), and at a random moment a person buys 0.001 on the
 * same symbol (paper exchange admin API). Everything at its defaults with the user data stream on (the venue
 * journal journals every fill; REST verifies); the whole stack runs as child processes.
 * - `active_detect_ms`: foreign trade → `HOLD_SET` on the symbol;
 * - `active_heal_ms`: foreign trade → `HOLD_CLEARED` (the close healed it; the strategy's plans meanwhile are
 *   refused by the hold).
 * Goal (issue, not a test): detect p50 <= 20 ms, p99 <= 100 ms; heal p99 <= 300 ms.
 *
 * Alone: `npx tsx bench/active.ts [--n N] [--out FILE]` merges these keys into FILE (default bench/results.json).
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';
import { createRedis } from '../src/adapters/redis/client.js';
import { STREAMS } from '../src/adapters/redis/keys.js';
import { submitPlan } from '../src/plans/submit.js';
import { sleep } from '../src/lib/sleep.js';
import { fromRoot } from '../src/lib/root.js';
import { userStreamStateKey } from '../src/services/position-state-brain/user-stream.js';
import { startPaperExchange } from '../harness/paper-exchange/index.js';
import { startBenchRedis } from './lib/redis.js';
import { startServices, stopAll, waitGroups, waitReconciled, type ChildService } from './lib/services.js';
import { now, summarize } from './lib/stats.js';
import { StreamWatcher } from './lib/watch.js';
import { machineInfo } from './machine.js';

/** `{n, p50, p99, max}` of the two figures, and what went wrong. */
export interface ActiveResult {
  active_detect_ms: ReturnType<typeof summarize>;
  active_heal_ms: ReturnType<typeof summarize>;
  notes: string[];
}

const SYM = 'BTCUSDT';

/** Runs `n` foreign trades against a trading strategy on the Redis at `url`. */
export async function benchActive(opts: { url: string; redis: Redis; n: number; logDir: string }): Promise<ActiveResult> {
  const { redis } = opts;
  await redis.flushall();
  const watcher = new StreamWatcher(redis.duplicate(), [STREAMS.reconcileEvents, STREAMS.applyResult]);
  await watcher.start();
  const paper = await startPaperExchange({ symbols: [SYM], positions: { [SYM]: '0' } });
  const strategyKey = randomBytes(32).toString('hex');
  const env = {
    REDIS_URL: opts.url,
    P3_ALLOWLIST: SYM,
    EXCHANGE: 'paper',
    EXCHANGE_BASE_URL: paper.url,
    EXCHANGE_API_KEY: paper.apiKey,
    EXCHANGE_API_SECRET: paper.apiSecret,
    P3_KEY_EXIT_BRAIN: strategyKey,
    P3_KEY_P3_4: randomBytes(32).toString('hex'),
    P3_KEY_GOVERNOR: randomBytes(32).toString('hex'),
    P3_KEY_P33: randomBytes(32).toString('hex'),
    APPLY_MODE: 'testnet',
    GOVERNOR_MODE: 'paper',
    GOVERNOR_RATE_PER_MIN: '6000',
    GOVERNOR_SYMBOL_RATE_PER_MIN: '6000',
    P33_USER_STREAM: 'true',
    P34_RECONCILE_CLOSE_ENABLED: 'true',
    P34_PROMETHEUS_PORT: '0',
    P33_PROMETHEUS_PORT: '0',
    GOVERNOR_PROMETHEUS_PORT: '0',
    APPLY_PROMETHEUS_PORT: '0',
  };
  let children: ChildService[] = [];
  const detect: number[] = [];
  const heal: number[] = [];
  const notes: string[] = [];
  let failures = 0;
  let trading = true;
  let strategyPlans = 0;
  let strategyFills = 0;
  let startedMs = 0;
  try {
    children = await startServices(['governor', 'position-state-brain', 'reconcile-engine', 'apply-layer'], env, opts.logDir, redis);
    await waitGroups(redis, STREAMS.reconcileClose, ['apply-close']);
    await waitReconciled(redis, [SYM]);
    const deadline = Date.now() + 30_000;
    while ((await redis.hget(userStreamStateKey('bench-position-state-brain'), 'state')) !== 'healthy') {
      if (Date.now() > deadline) throw new Error('user data stream never became healthy');
      await sleep(50);
    }
    // the strategy: a fill about every second, OPEN then FULL_CLOSE; a plan refused only because the brain's
    // snapshot is not yet newer than the previous fill (p33 snapshot_older_than_fill) is sent again 100 ms later
    const strategy = (async () => {
      let open = true;
      while (trading) {
        const id = await submitPlan(redis, open ? { symbol: SYM, action: 'OPEN', side: 'BUY', qty: '0.002' } : ({ symbol: SYM, action: 'FULL_CLOSE', side: 'SELL' } as Parameters<typeof submitPlan>[1]), strategyKey).catch(() => null);
        if (id === null) continue;
        strategyPlans++;
        const r = await watcher.waitFor(STREAMS.applyResult, (f) => f.plan_id === id, 20_000, `result of ${id}`).catch(() => null);
        if (r?.fields.status === 'EXECUTED') {
          strategyFills++;
          open = !open;
          await sleep(700 + Math.random() * 300);
        } else if (/snapshot_older_than_fill/.test(r?.fields.reason ?? '')) {
          await sleep(100);
        } else {
          open = !open; // refused for its state (held, not flat, nothing to close): the other action next
          await sleep(700 + Math.random() * 300);
        }
      }
    })();
    startedMs = Date.now();
    await sleep(3000);
    for (let i = -1; i < opts.n; i++) {
      await sleep(1500 + Math.random() * 1000); // a random phase against the strategy's fills
      const held = watcher.waitFor(STREAMS.reconcileEvents, (f) => f.event === 'HOLD_SET' && f.symbol === SYM, 20_000, 'HOLD_SET');
      const cleared = watcher.waitFor(STREAMS.reconcileEvents, (f) => f.event === 'HOLD_CLEARED' && f.symbol === SYM, 30_000, 'HOLD_CLEARED');
      held.catch(() => undefined);
      cleared.catch(() => undefined);
      const t0 = now();
      const res = await fetch(`${paper.url}/admin/trade`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ symbol: SYM, side: 'BUY', qty: '0.001' }) });
      if (!res.ok) throw new Error(`admin trade: HTTP ${res.status}`);
      try {
        const h = await held;
        const c = await cleared;
        if (i < 0) continue; // warm-up
        detect.push(h.t - t0);
        heal.push(c.t - t0);
      } catch {
        failures++;
        if (failures > Math.max(3, opts.n / 10)) throw new Error(`active: ${failures} foreign trades not held/healed in time (logs in ${opts.logDir})`);
      }
    }
    trading = false;
    await strategy;
  } finally {
    trading = false;
    await stopAll(children);
    await watcher.stop();
    await paper.close().catch(() => undefined);
  }
  if (failures > 0) notes.push(`${failures} foreign trade(s) not held and healed within 20/30 s; left out`);
  notes.push(`strategy: ${strategyPlans} plans, ${strategyFills} fills in ${Math.round((Date.now() - startedMs) / 1000)} s`);
  return { active_detect_ms: summarize(detect), active_heal_ms: summarize(heal), notes };
}

// `tsx bench/active.ts [--n N] [--out FILE]`
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const arg = (k: string) => {
    const i = process.argv.indexOf(k);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  const n = Number(arg('--n') ?? 50);
  const out = arg('--out') ?? fromRoot('bench/results.json');
  (async () => {
    const server = await startBenchRedis();
    const redis = createRedis(server.url, { name: 'p3:bench' });
    const logDir = mkdtempSync(join(tmpdir(), 'p3-bench-logs-'));
    try {
      const machine = await machineInfo(redis, 'full', `npx tsx bench/active.ts --n ${n}`);
      const r = await benchActive({ url: server.url, redis, n, logDir });
      const loadEnd = (await import('node:os')).loadavg()[0];
      const prev = existsSync(out) ? (JSON.parse(readFileSync(out, 'utf8')) as Record<string, unknown>) : {};
      const { notes, ...figures } = r;
      writeFileSync(out, `${JSON.stringify({ ...prev, ...figures, active_machine: { ...machine, loadavg_1m_end: Math.round((loadEnd ?? 0) * 100) / 100, notes } }, null, 2)}\n`);
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
