/**
 * Measurement 3, sweep cost: one full reconcile pass (`ReconcileEngine.pass(allowlist)`, what the sweep
 * loop runs every `P34_LOOP_CADENCE_SEC`) over 100, 1,000 and 10,000 symbols in steady state (every
 * symbol reconciled OK: the pass reads everything, decides, and applies each decision with its
 * compare-and-set script), beside a raw pipelined read (ioredis pipeline, no MULTI) of the same keys:
 * the 8 per-symbol reads the engine makes plus the last 50 results. Each figure is the median of a few
 * passes after one warm-up pass; engine and raw passes alternate. The engine runs in this process, not
 * started (no loops): only the measured passes touch Redis.
 */
import type { Redis } from 'ioredis';
import { STREAMS, keys } from '../src/adapters/redis/keys.js';
import { EVIDENCE_LOOKBACK } from '../src/domain/reconcile-evidence.js';
import { createReconcileEngineService } from '../src/services/reconcile-engine/index.js';
import { now, median, r3 } from './lib/stats.js';
import { writeSnapshot } from './detection.js';
import { Decimal } from '../src/domain/decimal.js';

/** One row of `sweep` in results.json. */
export interface SweepRow {
  symbols: number;
  engine_ms: number;
  raw_ms: number;
  ratio: number;
}

/** The raw read: the engine's keys, pipelined. */
async function rawRead(redis: Redis, symbols: string[]): Promise<void> {
  const p = redis.pipeline();
  for (const s of symbols) {
    p.hgetall(keys.snapshot(s))
      .hgetall(keys.ledger(s))
      .hgetall(keys.legacyLedger004(s))
      .get(keys.hold(s))
      .get(keys.holdReason(s))
      .get(keys.holdSig(s))
      .hgetall(keys.applyInflight(s))
      .hget(keys.reconcileState(s), 'last_fix_ts_ms');
  }
  p.xrevrange(STREAMS.applyResult, '+', '-', 'COUNT', EVIDENCE_LOOKBACK);
  await p.exec();
}

/** Measures one size. `redis` is the bench's connection (snapshots, raw reads). */
async function sweepOne(url: string, redis: Redis, count: number, reps: number): Promise<SweepRow> {
  const symbols = Array.from({ length: count }, (_, i) => `SW${i}USDT`);
  await redis.flushdb();
  const amt = new Decimal('0.1');
  for (let i = 0; i < symbols.length; i += 500) await Promise.all(symbols.slice(i, i + 500).map((s) => writeSnapshot(redis, s, amt)));
  const svc = await createReconcileEngineService({
    REDIS_URL: url,
    P34_ALLOWLIST: symbols.join(','),
    P34_EXCHANGE_FRESHNESS_SEC: '3600',
    P34_RECONCILE_CLOSE_ENABLED: 'false',
    P34_PROMETHEUS_PORT: '0',
    P34_LOG_LEVEL: 'silent',
  });
  try {
    // first pass: LEDGER_INIT for every symbol; second: OK everywhere (steady state from here on)
    await svc.engine.pass(symbols);
    const check = await svc.engine.pass(symbols);
    const bad = check.filter((r) => r.result !== 'applied' || r.outcome?.status !== 'OK');
    if (bad.length > 0) throw new Error(`sweep ${count}: ${bad.length} symbols not OK in steady state (${bad[0]?.symbol}: ${bad[0]?.outcome?.status} ${bad[0]?.error ?? ''})`);
    await rawRead(redis, symbols);
    const eng: number[] = [];
    const raw: number[] = [];
    for (let i = 0; i < reps; i++) {
      let t = now();
      await svc.engine.pass(symbols);
      eng.push(now() - t);
      t = now();
      await rawRead(redis, symbols);
      raw.push(now() - t);
    }
    const e = median(eng);
    const r = median(raw);
    return { symbols: count, engine_ms: r3(e), raw_ms: r3(r), ratio: Math.round((e / r) * 10) / 10 };
  } finally {
    await svc.stop();
  }
}

/** Runs every size in `sizes` (the database of `url` is flushed before each). */
export async function benchSweep(opts: { url: string; redis: Redis; sizes: number[]; reps: number }): Promise<SweepRow[]> {
  const out: SweepRow[] = [];
  for (const n of opts.sizes) out.push(await sweepOne(opts.url, opts.redis, n, n >= 10_000 ? Math.max(3, Math.ceil(opts.reps / 2)) : opts.reps));
  return out;
}
