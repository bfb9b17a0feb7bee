/**
 * Measurement 4, permit chain: a signed plan added to `quantum:stream:apply.plan` → the apply layer's
 * decision (its `apply.result` entry: `SKIPPED reason=dry_run would_execute=true` when both permits
 * allowed), with all four services running as child processes (`APPLY_MODE=dry_run`, paper exchange
 * for the snapshots, `GOVERNOR_MODE=paper`).
 *
 * - Latency: plans at a steady {@link CHAIN_RATE} per second (open loop, after 10 warm-up plans one at
 *   a time), p50/p99 of plan added → decision.
 * - Sustained rate: fixed-rate steps of {@link STEP_SEC} s (plans spread evenly over the symbols); a
 *   step is sustained when every plan got an ALLOW-ALLOW decision (`dry_run`) and the step's p99 latency
 *   stays <= {@link SUSTAINED_P99_MS} ms (no backlog building up). Steps double until one fails, then
 *   one step at the midpoint. The governor's token buckets are raised so they never limit the bench
 *   (`GOVERNOR_RATE_PER_MIN`/`GOVERNOR_SYMBOL_RATE_PER_MIN` 10,000,000, bursts 1,000,000).
 * - Raw: XADD → XREADGROUP (BLOCK, its own connection) → XACK on a bench-only stream of the same Redis,
 *   same payload size, one at a time: the floor any consumer-group chain pays per hop.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { PLAN_STREAM_MAXLEN, STREAMS } from '../src/adapters/redis/keys.js';
import { signPlan } from '../src/domain/plan.js';
import { buildStrategyPlan } from '../src/plans/index.js';
import { startPaperExchange } from '../harness/paper-exchange/index.js';
import { sleep } from '../src/lib/sleep.js';
import { startServices, stopAll, waitGroups, waitReconciled, type ChildService } from './lib/services.js';
import { now, summarize, percentile } from './lib/stats.js';
import type { StreamWatcher } from './lib/watch.js';

/** Duration of one fixed-rate step, seconds (full run: a 10 s step). */
export const STEP_SEC = 10;
/** p99 latency above which a rate is not sustained, ms. */
export const SUSTAINED_P99_MS = 100;
/** Steady rate of the latency run, plans/s (the permit chain at a steady 100 plans/s). */
export const CHAIN_RATE = 100;
/** Bench-only stream of the raw round trip (in the bench's private Redis; not a system key). */
const RAW_STREAM = 'bench:raw:roundtrip';

/** One fixed-rate step. */
export interface RateStep {
  rate: number;
  sent: number;
  decided: number;
  allowed: number;
  p50: number;
  p99: number;
  sustained: boolean;
}

/** Result of the permit-chain run. */
export interface PermitChainResult {
  chain: { n: number; p50: number; p99: number };
  raw: { n: number; p50: number; p99: number };
  /** The same raw round trip, each after an idle gap of one plan interval at the chain's rate (printed only). */
  rawSpaced: { n: number; p50: number; p99: number; gapMs: number };
  plansPerSec: number;
  steps: RateStep[];
  /** Decisions of the latency run other than dry_run (denials), by `status/reason`. */
  otherDecisions: Record<string, number>;
  rssMb: Record<string, number | null>;
  /**
   * CPU time of each service per plan decided, ms (user + system from /proc over the latency run and the
   * rate steps, idle time between them included): what a plan costs each process, independent of how
   * long the process waited for a CPU on a shared machine.
   */
  cpuMsPerPlan: Record<string, number | null>;
}

/**
 * Raw XADD → XREADGROUP → XACK round trips, back to back (`gapMs` 0) or each after `gapMs` of idle time
 * (the spacing of plans at the chain's rate: on this VM a hop after an idle gap costs several times a
 * back-to-back one, see docs/performance.md "Permit chain at 100 plans/s").
 */
async function rawRoundTrip(redis: Redis, n: number, payload: string, gapMs = 0): Promise<number[]> {
  const blocking = redis.duplicate();
  try {
    await redis.del(RAW_STREAM);
    await redis.xgroup('CREATE', RAW_STREAM, 'g', '$', 'MKSTREAM');
    const out: number[] = [];
    for (let i = 0; i < n + 10; i++) {
      const read = blocking.call('XREADGROUP', 'GROUP', 'g', 'c', 'COUNT', 1, 'BLOCK', 0, 'STREAMS', RAW_STREAM, '>') as Promise<Array<[string, Array<[string, string[]]>]>>;
      if (gapMs > 0) await sleep(gapMs);
      const t0 = now();
      await redis.xadd(RAW_STREAM, '*', 'plan', payload, 'mac', 'x'.repeat(64));
      const res = await read;
      await redis.xack(RAW_STREAM, 'g', res[0]![1][0]![0]);
      if (i >= 10) out.push(now() - t0);
    }
    await redis.del(RAW_STREAM);
    return out;
  } finally {
    blocking.disconnect();
  }
}

/** Runs the permit-chain measurements on the Redis at `url`. */
export async function benchPermitChain(opts: { url: string; redis: Redis; watcher: StreamWatcher; n: number; rawN: number; rates: number[]; stepSec: number; chainRate: number; logDir: string }): Promise<PermitChainResult> {
  const { redis, watcher } = opts;
  const symbols = Array.from({ length: 10 }, (_, i) => `PC${i}USDT`);
  const paper = await startPaperExchange({ symbols, positions: Object.fromEntries(symbols.map((s) => [s, '1'])) });
  const key = randomBytes(32).toString('hex');
  const env = {
    REDIS_URL: opts.url,
    P3_ALLOWLIST: symbols.join(','),
    EXCHANGE: 'paper',
    EXCHANGE_BASE_URL: paper.url,
    EXCHANGE_API_KEY: paper.apiKey,
    EXCHANGE_API_SECRET: paper.apiSecret,
    P3_KEY_EXIT_BRAIN: key,
    P3_KEY_P3_4: randomBytes(32).toString('hex'),
    P3_KEY_GOVERNOR: randomBytes(32).toString('hex'),
    P3_KEY_P33: randomBytes(32).toString('hex'),
    APPLY_MODE: 'dry_run',
    GOVERNOR_MODE: 'paper',
    GOVERNOR_RATE_PER_MIN: '10000000',
    GOVERNOR_RATE_BURST: '1000000',
    GOVERNOR_SYMBOL_RATE_PER_MIN: '10000000',
    GOVERNOR_SYMBOL_RATE_BURST: '1000000',
    P33_SNAPSHOT_INTERVAL_MS: '200',
    P34_PROMETHEUS_PORT: '0',
    P33_PROMETHEUS_PORT: '0',
    GOVERNOR_PROMETHEUS_PORT: '0',
    APPLY_PROMETHEUS_PORT: '0',
  };
  // plan_id → submit time; decisions recorded by the listener
  const pending = new Map<string, number>();
  const decided = new Map<string, { ms: number; what: string }>();
  watcher.onEntry((e) => {
    if (e.stream !== STREAMS.applyResult) return;
    const t0 = pending.get(e.fields.plan_id ?? '');
    if (t0 === undefined) return;
    pending.delete(e.fields.plan_id as string);
    decided.set(e.fields.plan_id as string, { ms: e.t - t0, what: `${e.fields.status}/${e.fields.reason}` });
  });
  const submit = async (i: number): Promise<string> => {
    const plan = buildStrategyPlan({ symbol: symbols[i % symbols.length] as string, action: 'PARTIAL_25' });
    // signed first (the strategy's work): the chain is timed from the XADD, as the raw round trip is
    const signed = signPlan(plan, key);
    pending.set(plan.plan_id, now());
    await redis.xadd(STREAMS.applyPlan, 'MAXLEN', '~', PLAN_STREAM_MAXLEN, '*', 'plan', signed.plan, 'mac', signed.mac);
    return plan.plan_id;
  };
  let children: ChildService[] = [];
  try {
    children = await startServices(['governor', 'position-state-brain', 'reconcile-engine', 'apply-layer'], env, opts.logDir, redis);
    await waitGroups(redis, STREAMS.applyPlan, ['governor', 'p33', 'apply']);
    await waitReconciled(redis, symbols);

    const payload = signPlan(buildStrategyPlan({ symbol: 'PC0USDT', action: 'PARTIAL_25' }), key).plan;
    const raw = await rawRoundTrip(redis, opts.rawN, payload);
    const gapMs = Math.max(1, Math.round(1000 / opts.chainRate));
    const rawSpaced = await rawRoundTrip(redis, Math.min(opts.rawN, 200), payload, gapMs);

    // Offers `total` plans at a steady `rate` (open loop: the next plan is due at its time whatever the
    // decisions do), then waits up to 5 s for the decisions. Returns every plan's decision (or undefined).
    const offer = async (rate: number, total: number, first: number): Promise<Array<{ ms: number; what: string } | undefined>> => {
      decided.clear();
      const ids: string[] = [];
      const start = now();
      while (ids.length < total) {
        const due = Math.min(total, Math.floor(((now() - start) * rate) / 1000) + 1);
        const batch: Array<Promise<string>> = [];
        for (let i = ids.length; i < due; i++) batch.push(submit(first + i));
        ids.push(...(await Promise.all(batch)));
        // until the next plan is due (at least 1 ms): no 1 ms timer spinning between plans at low rates,
        // which took a CPU from the services on this 2-core machine
        await sleep(Math.max(1, Math.ceil(start + (ids.length * 1000) / rate - now())));
      }
      const deadline = Date.now() + 5000;
      while (ids.some((id) => !decided.has(id)) && Date.now() < deadline) await sleep(10);
      for (const id of ids) pending.delete(id);
      return ids.map((id) => decided.get(id));
    };

    // latency at a steady opts.chainRate plans/s (10 warm-up plans one at a time, not counted)
    for (let i = 0; i < 10; i++) {
      const id = await submit(i);
      const deadline = Date.now() + 15_000;
      while (!decided.has(id) && Date.now() < deadline) await sleep(1);
      pending.delete(id);
      if (!decided.has(id)) throw new Error(`permit chain: no decision for warm-up plan ${id} within 15 s (logs in ${opts.logDir})`);
    }
    const lat: number[] = [];
    const other: Record<string, number> = {};
    const cpu0 = new Map(children.map((c) => [c.name, c.cpuMs()]));
    let plansDecided = 0;
    const got = await offer(opts.chainRate, opts.n, 10);
    const missing = got.filter((d) => d === undefined).length;
    if (missing > 0) throw new Error(`permit chain: ${missing} of ${opts.n} plans at ${opts.chainRate}/s got no decision within 5 s (logs in ${opts.logDir})`);
    for (const d of got) {
      if (!d) continue;
      plansDecided++;
      if (d.what === 'SKIPPED/dry_run') lat.push(d.ms);
      else other[d.what] = (other[d.what] ?? 0) + 1;
    }

    // sustained rate
    const runStep = async (rate: number): Promise<RateStep> => {
      const total = Math.max(1, Math.round(rate * opts.stepSec));
      const ds = (await offer(rate, total, 0)).filter((d) => d !== undefined);
      plansDecided += ds.length;
      const ms = ds.map((d) => d.ms);
      const allowed = ds.filter((d) => d.what === 'SKIPPED/dry_run').length;
      const p99 = percentile(ms, 99);
      return { rate, sent: total, decided: ds.length, allowed, p50: Math.round(percentile(ms, 50) * 10) / 10, p99: Math.round(p99 * 10) / 10, sustained: allowed === total && p99 <= SUSTAINED_P99_MS };
    };
    const settle = async () => {
      // let the consumers drain anything left before the next step
      const until = Date.now() + 10_000;
      while (pending.size > 0 && Date.now() < until) await sleep(50);
      pending.clear();
      await sleep(500);
    };
    const steps: RateStep[] = [];
    let best = 0;
    let failed: number | null = null;
    for (const rate of opts.rates) {
      const s = await runStep(rate);
      steps.push(s);
      await settle();
      if (!s.sustained) {
        failed = rate;
        break;
      }
      best = rate;
    }
    if (failed !== null && best > 0) {
      const mid = Math.round((best + failed) / 2);
      const s = await runStep(mid);
      steps.push(s);
      await settle();
      if (s.sustained) best = mid;
    }
    const rssMb: Record<string, number | null> = {};
    const cpuMsPerPlan: Record<string, number | null> = {};
    for (const c of children) {
      rssMb[c.name] = c.peakRssMb();
      const a = cpu0.get(c.name);
      const b = c.cpuMs();
      cpuMsPerPlan[c.name] = a == null || b === null || plansDecided === 0 ? null : Math.round(((b - a) / plansDecided) * 1000) / 1000;
    }
    const c = summarize(lat);
    const r = summarize(raw);
    const rs = summarize(rawSpaced);
    return { chain: { n: c.n, p50: c.p50, p99: c.p99 }, raw: { n: r.n, p50: r.p50, p99: r.p99 }, rawSpaced: { n: rs.n, p50: rs.p50, p99: rs.p99, gapMs }, plansPerSec: best, steps, otherDecisions: other, rssMb, cpuMsPerPlan };
  } finally {
    await stopAll(children);
    await paper.close().catch(() => undefined);
  }
}
