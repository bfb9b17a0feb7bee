/**
 * Measurement 1, detection: a drifting snapshot written (hash + notification in one atomic step, the
 * position brain's own `snapshotWrite-2.lua`) → the engine's hold on the symbol (`HOLD_SET`, written by
 * `reconcileApply-8.lua` in the same step as the hold key, seen by an `XREAD BLOCK` watcher).
 *
 * The engine runs as a child process (`p3 run reconcile-engine`) with its defaults except: closes off,
 * freshness 3600 s (no publisher runs here: the bench writes every snapshot), allowlist of
 * {@link DETECTION_SYMBOLS} symbols. Drifts go round-robin over the symbols; after each hold the bench
 * writes a matching snapshot and waits for `HOLD_CLEARED` (the reset), so every drift is a new episode.
 */
import type { Redis } from 'ioredis';
import { STREAMS, EVENTS_MAXLEN } from '../src/adapters/redis/keys.js';
import { snapshotWrite } from '../src/adapters/redis/scripts/index.js';
import { Decimal } from '../src/domain/decimal.js';
import { snapshotFields } from '../src/services/position-state-brain/snapshot.js';
import { startServices, stopAll, waitReconciled } from './lib/services.js';
import { now, summarize } from './lib/stats.js';
import type { StreamWatcher } from './lib/watch.js';

/** Symbols of the detection engine's allowlist. */
export const DETECTION_SYMBOLS = 10;
const BASE = new Decimal('0.1');
const STEP = new Decimal('0.001');

/** Writes a snapshot of `symbol` exactly as the snapshot publisher does (one `snapshotWrite` call). */
export async function writeSnapshot(redis: Redis, symbol: string, amount: Decimal): Promise<void> {
  const t = Date.now();
  const fields = snapshotFields({ amount, entryPrice: new Decimal(100), markPrice: new Decimal(100), stepSize: STEP, sentMs: t, receivedMs: t });
  await snapshotWrite(redis, { symbol, tsMs: t, maxlen: EVENTS_MAXLEN, nowMs: t, futureToleranceMs: 60_000, fields });
}

/** Result of the detection run. */
export interface DetectionResult {
  summary: ReturnType<typeof summarize>;
  /** Peak RSS of the engine process, MB. */
  engineRssMb: number | null;
  failures: number;
}

/** Runs `n` drifts against a child engine on `url`. */
export async function benchDetection(opts: { url: string; redis: Redis; watcher: StreamWatcher; n: number; logDir: string }): Promise<DetectionResult> {
  const { redis, watcher } = opts;
  const symbols = Array.from({ length: DETECTION_SYMBOLS }, (_, i) => `DET${i}USDT`);
  for (const s of symbols) await writeSnapshot(redis, s, BASE);
  const env = {
    REDIS_URL: opts.url,
    P34_ALLOWLIST: symbols.join(','),
    P34_EXCHANGE_FRESHNESS_SEC: '3600',
    P34_RECONCILE_CLOSE_ENABLED: 'false',
    P34_PROMETHEUS_PORT: '0',
  };
  const [engine] = await startServices(['reconcile-engine'], env, opts.logDir, redis);
  const samples: number[] = [];
  let failures = 0;
  try {
    await waitReconciled(redis, symbols);
    for (let i = 0; i < opts.n; i++) {
      const sym = symbols[i % symbols.length] as string;
      const drift = BASE.plus(STEP.mul(2 + (i % 5)));
      try {
        const held = watcher.waitFor(STREAMS.reconcileEvents, (f) => f.event === 'HOLD_SET' && f.symbol === sym, 10_000, `HOLD_SET ${sym}`);
        const t0 = now();
        await writeSnapshot(redis, sym, drift);
        const e = await held;
        samples.push(e.t - t0);
        const cleared = watcher.waitFor(STREAMS.reconcileEvents, (f) => f.event === 'HOLD_CLEARED' && f.symbol === sym, 10_000, `HOLD_CLEARED ${sym}`);
        await writeSnapshot(redis, sym, BASE);
        await cleared;
      } catch {
        failures++;
        if (failures > Math.max(5, opts.n / 20)) throw new Error(`detection: ${failures} drifts without a hold (engine log: ${engine?.log})`);
      }
    }
    return { summary: summarize(samples), engineRssMb: engine?.peakRssMb() ?? null, failures };
  } finally {
    if (engine) await stopAll([engine]);
  }
}
