/**
 * `npm run bench` / `p3 bench [--quick] [--out FILE]`: how fast the system notices and heals, and what it
 * costs per symbol. One run, on this machine, against a private redis-server (never the
 * machine's Redis on 6379) and an in-process paper exchange; the services run as child processes
 * (`p3 run <service>`), as in production. Prints a table and writes results.json:
 *
 * ```
 * {"machine": {...}, "detection_ms": {n, p50, p99, max}, "heal_ms": {n, p50, p99, max, snapshot_interval_ms},
 *  "heal_after_snapshot_ms": {n, p50, p99}, "sweep": [{symbols, engine_ms, raw_ms, ratio}],
 *  "permit_chain_ms": {n, p50, p99}, "raw_stream_roundtrip_ms": {n, p50, p99}, "plans_per_s": number,
 *  "rss_mb": {"<service>": number}, "cli_help_ms": {n, p50},
 *  "stream_detect_ms": {n, p50, p99}, "stream_heal_ms": {n, p50, p99}, "rest_detect_ms": {n, p50, p99}, "rest_heal_ms": {n, p50, p99}}
 * ```
 * The last four are measurement 6 (bench/user-stream.ts): manual trade → HOLD set / healed with the user data
 * stream on and off, every setting at its default.
 * `cli_help_ms` is measurement 7 (bench/cli-help.ts): `p3 --help`, spawn to exit.
 * `active_detect_ms` / `active_heal_ms` are measurement 8 (bench/active.ts, full mode only): a foreign trade
 * while a strategy fills about every second on the same symbol → HOLD set / healed.
 * Milliseconds unless named. `rss_mb` is each service process's peak RSS (`VmHWM`) during measurements 1
 * and 2 (the reconcile engine: the larger of its detection and heal processes).
 *
 * Modes: full (≥ 1,000 drifts, 200 heals, 100/1,000/10,000 symbols; several minutes) and `--quick`
 * (small counts, for the smoke test in `npm test`; its figures mean nothing).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';
import { createRedis } from '../src/adapters/redis/client.js';
import { STREAMS } from '../src/adapters/redis/keys.js';
import { benchDetection } from './detection.js';
import { benchHeal } from './heal.js';
import { benchSweep, type SweepRow } from './sweep.js';
import { benchUserStream, type Figure } from './user-stream.js';
import { benchPermitChain, CHAIN_RATE, STEP_SEC, type PermitChainResult, type RateStep } from './permit-chain.js';
import { benchCliHelp, type CliHelpFigure } from './cli-help.js';
import { benchActive } from './active.js';
import { machineInfo, type MachineInfo } from './machine.js';
import { startBenchRedis } from './lib/redis.js';
import { StreamWatcher } from './lib/watch.js';
import { fromRoot } from '../src/lib/root.js';

/** results.json (see the module comment). */
export interface BenchResults {
  machine: MachineInfo;
  detection_ms: { n: number; p50: number; p99: number; max: number };
  heal_ms: { n: number; p50: number; p99: number; max: number; snapshot_interval_ms: number };
  heal_after_snapshot_ms: { n: number; p50: number; p99: number };
  sweep: SweepRow[];
  permit_chain_ms: { n: number; p50: number; p99: number };
  raw_stream_roundtrip_ms: { n: number; p50: number; p99: number };
  plans_per_s: number;
  rss_mb: Record<string, number>;
  cli_help_ms: CliHelpFigure;
  stream_detect_ms: Figure;
  stream_heal_ms: Figure;
  rest_detect_ms: Figure;
  rest_heal_ms: Figure;
  stream_snapshot_ms: Figure;
  rest_snapshot_ms: Figure;
  /** Measurement 8 (bench/active.ts, full mode only): foreign trade while a strategy fills about every second → HOLD_SET / healed. */
  active_detect_ms?: Figure;
  active_heal_ms?: Figure;
}

/** Options of {@link runBench}. */
export interface BenchOptions {
  quick: boolean;
  /** Where results.json goes (null = not written). */
  out: string | null;
  /** Progress and table output (default: stdout). */
  print?: (line: string) => void;
  /**
   * Run only these measurements (`permit-chain`): prints their part of the table and writes, when `out`
   * is given, `{machine, permit_chain_ms, raw_stream_roundtrip_ms, plans_per_s, rss_mb}` only.
   */
  only?: BenchPhase[];
  /** Permit chain: offered rates of the sustained-rate steps (default: the mode's). */
  rates?: number[];
  /** Permit chain: step length, seconds (default: the mode's). */
  stepSec?: number;
}

/** Measurements that can be run alone (`--only`). */
export const BENCH_PHASES = ['permit-chain'] as const;
/** One of {@link BENCH_PHASES}. */
export type BenchPhase = (typeof BENCH_PHASES)[number];

/** Counts of each mode. */
export const COUNTS = {
  full: { cliHelp: 20, activeTrades: 50, streamHeals: 100, drifts: 1000, heals: 200, healSymbols: 20, sizes: [100, 1000, 10_000], reps: 5, chain: 1000, raw: 1000, rates: [100, 250, 500, 1000, 1500, 2000], stepSec: STEP_SEC, chainRate: CHAIN_RATE },
  quick: { cliHelp: 3, activeTrades: 0, streamHeals: 2, drifts: 20, heals: 4, healSymbols: 4, sizes: [100, 1000], reps: 1, chain: 10, raw: 50, rates: [10, 20], stepSec: 1, chainRate: CHAIN_RATE },
} as const;

/** A fresh watcher over the streams the measurements time. */
async function watcherFor(redis: Redis): Promise<StreamWatcher> {
  const w = new StreamWatcher(redis.duplicate(), [STREAMS.reconcileEvents, STREAMS.positionSnapshot, STREAMS.applyResult]);
  await w.start();
  return w;
}

const pad = (s: string, n: number) => s.padEnd(n);
const ms = (x: number) => (Number.isFinite(x) ? x.toFixed(x < 10 ? 2 : 1) : '-');

/** The table printed at the end. */
export function formatTable(r: BenchResults, extra: { steps: RateStep[]; holdP50: number; rssByPhase: Record<string, Record<string, number | null>>; notes: string[] }): string {
  const L: string[] = [];
  L.push(`quantum-p3 bench (${r.machine.mode}) — ${r.machine.nproc} cores, ${r.machine.cpu_model}, ${r.machine.mem_total_mb} MB, node ${r.machine.node}, redis ${r.machine.redis}, load ${r.machine.loadavg_1m_start} at start`);
  L.push('');
  L.push(`${pad('measurement', 58)}${pad('n', 7)}${pad('p50 ms', 10)}${pad('p99 ms', 10)}max ms`);
  const row = (name: string, s: { n: number; p50: number; p99: number; max?: number }) => L.push(`${pad(name, 58)}${pad(String(s.n), 7)}${pad(ms(s.p50), 10)}${pad(ms(s.p99), 10)}${s.max === undefined ? '' : ms(s.max)}`);
  row('1 detection: snapshot written -> HOLD set', r.detection_ms);
  row(`2 heal: manual trade -> healed (snapshots every ${r.heal_ms.snapshot_interval_ms} ms)`, r.heal_ms);
  row('  heal after the snapshot showing the trade landed', r.heal_after_snapshot_ms);
  L.push(`${pad('  (manual trade -> HOLD set, p50)', 58)}${pad('', 7)}${ms(extra.holdP50)}`);
  row('6 manual trade -> HOLD set, user data stream on (defaults)', r.stream_detect_ms);
  row('  manual trade -> healed, stream on', r.stream_heal_ms);
  row('  manual trade -> HOLD set, stream off (REST every 1000 ms)', r.rest_detect_ms);
  row('  manual trade -> healed, stream off', r.rest_heal_ms);
  row('  manual trade -> snapshot showing it, stream on / off', r.stream_snapshot_ms);
  if (r.active_detect_ms) row('8 foreign trade -> HOLD set, strategy filling ~1/s (stream on)', r.active_detect_ms);
  if (r.active_heal_ms) row('  foreign trade -> healed, strategy filling ~1/s', r.active_heal_ms);
  row('', r.rest_snapshot_ms);
  row(`4 permit chain at ${CHAIN_RATE} plans/s: plan added -> apply decision (dry_run)`, r.permit_chain_ms);
  row('  raw XADD -> XREADGROUP -> XACK round trip', r.raw_stream_roundtrip_ms);
  L.push('');
  L.push(`3 sweep: one full reconcile pass vs raw pipelined read of the same keys`);
  L.push(`  ${pad('symbols', 10)}${pad('engine ms', 12)}${pad('raw ms', 10)}ratio`);
  for (const s of r.sweep) L.push(`  ${pad(String(s.symbols), 10)}${pad(ms(s.engine_ms), 12)}${pad(ms(s.raw_ms), 10)}${s.ratio}`);
  L.push('');
  L.push(`4 sustained plans/s (all services, governor buckets raised): ${r.plans_per_s}`);
  L.push(`  ${pad('rate/s', 9)}${pad('sent', 7)}${pad('decided', 9)}${pad('allowed', 9)}${pad('p50 ms', 9)}${pad('p99 ms', 9)}sustained`);
  for (const s of extra.steps) L.push(`  ${pad(String(s.rate), 9)}${pad(String(s.sent), 7)}${pad(String(s.decided), 9)}${pad(String(s.allowed), 9)}${pad(ms(s.p50), 9)}${pad(ms(s.p99), 9)}${s.sustained ? 'yes' : 'no'}`);
  L.push('');
  L.push(`7 p3 --help, spawn to exit: p50 ${ms(r.cli_help_ms.p50)} ms (n ${r.cli_help_ms.n})`);
  L.push('');
  L.push('5 peak RSS (VmHWM) per service process, MB');
  for (const [phase, m] of Object.entries(extra.rssByPhase)) L.push(`  ${pad(phase, 14)}${Object.entries(m).map(([k, v]) => `${k} ${v ?? '-'}`).join(', ')}`);
  for (const n of extra.notes) L.push(`note: ${n}`);
  return L.join('\n');
}

/**
 * Runs every measurement once. Resolves with the results (also written to `opts.out`).
 * @throws Error when Redis cannot be started or a measurement fails outright (logs kept, path in the message)
 */
export async function runBench(opts: BenchOptions): Promise<BenchResults> {
  const print = opts.print ?? ((l: string) => process.stdout.write(`${l}\n`));
  const c = opts.quick ? COUNTS.quick : COUNTS.full;
  const logDir = mkdtempSync(join(tmpdir(), 'p3-bench-logs-'));
  const server = await startBenchRedis();
  const redis = createRedis(server.url, { name: 'p3:bench' });
  let ok = false;
  try {
    const machine = await machineInfo(redis, opts.quick ? 'quick' : 'full', `npm run bench${opts.quick ? ' -- --quick' : ''}`);
    const notes: string[] = [];
    const phase = async <T>(name: string, fn: (w: StreamWatcher) => Promise<T>): Promise<T> => {
      print(`[bench] ${name} ...`);
      await redis.flushall();
      const w = await watcherFor(redis);
      const t = Date.now();
      try {
        return await fn(w);
      } finally {
        await w.stop();
        print(`[bench] ${name} done in ${((Date.now() - t) / 1000).toFixed(1)} s`);
      }
    };
    if (opts.only) {
      const partial = await runOnly(opts, { redis, url: server.url, machine, phase, print, logDir, c });
      ok = true;
      return partial;
    }
    print(`[bench] 7 p3 --help (${c.cliHelp} runs) ...`);
    const help = await benchCliHelp(c.cliHelp);
    if (help.loader !== 'dist') notes.push('p3 --help ran through tsx: the sources changed since the last build (npm run build)');
    const sweep = await phase(`3 sweep (${c.sizes.join(', ')} symbols)`, () => benchSweep({ url: server.url, redis, sizes: [...c.sizes], reps: c.reps }));
    const det = await phase(`1 detection (${c.drifts} drifts)`, (w) => benchDetection({ url: server.url, redis, watcher: w, n: c.drifts, logDir }));
    if (det.failures) notes.push(`detection: ${det.failures} drift(s) timed out and were left out`);
    const heal = await phase(`2 heal (${c.heals} heals)`, (w) => benchHeal({ url: server.url, redis, watcher: w, n: c.heals, symbolCount: c.healSymbols, logDir }));
    if (heal.failures || heal.mismatches) notes.push(`heal: ${heal.failures} timed out, ${heal.mismatches} ended with exchange != ledger or a hold left; left out`);
    const us = await benchUserStream({ url: server.url, redis, n: c.streamHeals, symbolCount: c.healSymbols, logDir, phase });
    notes.push(...us.notes);
    const active = c.activeTrades > 0 ? await phase(`8 foreign trade during active trading (${c.activeTrades} trades)`, () => benchActive({ url: server.url, redis, n: c.activeTrades, logDir })) : null;
    if (active) notes.push(...active.notes.map((x) => `active: ${x}`));
    const pc = await phase(`4 permit chain (${c.chain} plans, rates ${c.rates.join('/')} per s)`, (w) =>
      benchPermitChain({ url: server.url, redis, watcher: w, n: c.chain, rawN: c.raw, rates: [...(opts.rates ?? c.rates)], stepSec: opts.stepSec ?? c.stepSec, chainRate: c.chainRate, logDir }),
    );
    if (Object.keys(pc.otherDecisions).length) notes.push(`permit chain: decisions other than dry_run left out: ${JSON.stringify(pc.otherDecisions)}`);

    const rss: Record<string, number> = {};
    const put = (k: string, v: number | null | undefined) => {
      if (typeof v === 'number') rss[k] = Math.max(rss[k] ?? 0, v);
    };
    put('reconcile-engine', det.engineRssMb);
    for (const [k, v] of Object.entries(heal.rssMb)) put(k, v);
    const results: BenchResults = {
      machine,
      detection_ms: det.summary,
      heal_ms: heal.heal,
      heal_after_snapshot_ms: heal.afterSnapshot,
      sweep,
      permit_chain_ms: pc.chain,
      raw_stream_roundtrip_ms: pc.raw,
      plans_per_s: pc.plansPerSec,
      rss_mb: rss,
      cli_help_ms: { n: help.n, p50: help.p50 },
      stream_detect_ms: us.stream_detect_ms,
      stream_heal_ms: us.stream_heal_ms,
      rest_detect_ms: us.rest_detect_ms,
      rest_heal_ms: us.rest_heal_ms,
      stream_snapshot_ms: us.stream_snapshot_ms,
      rest_snapshot_ms: us.rest_snapshot_ms,
      ...(active ? { active_detect_ms: active.active_detect_ms, active_heal_ms: active.active_heal_ms } : {}),
    };
    print('');
    print(formatTable(results, { steps: pc.steps, holdP50: heal.holdP50, rssByPhase: { detection: { 'reconcile-engine': det.engineRssMb }, heal: heal.rssMb, 'permit chain': pc.rssMb }, notes }));
    if (opts.out) {
      writeFileSync(opts.out, `${JSON.stringify(results, null, 2)}\n`);
      print(`\nwrote ${opts.out}`);
    }
    ok = true;
    return results;
  } finally {
    redis.disconnect();
    await server.stop();
    if (ok && !process.env.BENCH_KEEP_LOGS) rmSync(logDir, { recursive: true, force: true });
    else print(`[bench] service logs kept in ${logDir}${ok ? ' (BENCH_KEEP_LOGS)' : ''}`);
  }
}

/** The permit-chain part of the table (also printed alone by `--only permit-chain`). */
export function formatPermitChain(pc: PermitChainResult, chainRate: number): string {
  const L: string[] = [];
  L.push(`4 permit chain at ${chainRate} plans/s: n ${pc.chain.n}, p50 ${ms(pc.chain.p50)} ms, p99 ${ms(pc.chain.p99)} ms; raw XADD -> XREADGROUP -> XACK p50 ${ms(pc.raw.p50)} ms, p99 ${ms(pc.raw.p99)} ms (after ${pc.rawSpaced.gapMs} ms idle: p50 ${ms(pc.rawSpaced.p50)} ms, p99 ${ms(pc.rawSpaced.p99)} ms)`);
  L.push(`4 sustained plans/s (all services, governor buckets raised): ${pc.plansPerSec}`);
  L.push(`  ${pad('rate/s', 9)}${pad('sent', 7)}${pad('decided', 9)}${pad('allowed', 9)}${pad('p50 ms', 9)}${pad('p99 ms', 9)}sustained`);
  for (const s of pc.steps) L.push(`  ${pad(String(s.rate), 9)}${pad(String(s.sent), 7)}${pad(String(s.decided), 9)}${pad(String(s.allowed), 9)}${pad(ms(s.p50), 9)}${pad(ms(s.p99), 9)}${s.sustained ? 'yes' : 'no'}`);
  L.push(`  peak RSS MB: ${Object.entries(pc.rssMb).map(([k, v]) => `${k} ${v ?? '-'}`).join(', ')}`);
  L.push(`  CPU ms per plan: ${Object.entries(pc.cpuMsPerPlan).map(([k, v]) => `${k} ${v ?? '-'}`).join(', ')}`);
  if (Object.keys(pc.otherDecisions).length) L.push(`note: decisions other than dry_run left out: ${JSON.stringify(pc.otherDecisions)}`);
  return L.join('\n');
}

/** `--only`: the chosen measurements alone (see {@link BenchOptions.only}). */
async function runOnly(
  opts: BenchOptions,
  x: { redis: Redis; url: string; machine: MachineInfo; phase: <T>(name: string, fn: (w: StreamWatcher) => Promise<T>) => Promise<T>; print: (l: string) => void; logDir: string; c: (typeof COUNTS)['full' | 'quick'] },
): Promise<BenchResults> {
  const { c } = x;
  const rates = opts.rates ?? [...c.rates];
  const stepSec = opts.stepSec ?? c.stepSec;
  const pc = await x.phase(`4 permit chain (${c.chain} plans at ${c.chainRate}/s, rates ${rates.join('/')} per s, ${stepSec} s steps)`, (w) =>
    benchPermitChain({ url: x.url, redis: x.redis, watcher: w, n: c.chain, rawN: c.raw, rates, stepSec, chainRate: c.chainRate, logDir: x.logDir }),
  );
  x.print('');
  x.print(`quantum-p3 bench (${x.machine.mode}, --only permit-chain) — load ${x.machine.loadavg_1m_start} at start, ${loadavg()[0]?.toFixed(2)} at end`);
  x.print(formatPermitChain(pc, c.chainRate));
  const rss: Record<string, number> = {};
  for (const [k, v] of Object.entries(pc.rssMb)) if (typeof v === 'number') rss[k] = v;
  const partial = { machine: x.machine, permit_chain_ms: pc.chain, raw_stream_roundtrip_ms: pc.raw, plans_per_s: pc.plansPerSec, rss_mb: rss, cpu_ms_per_plan: pc.cpuMsPerPlan };
  if (opts.out) {
    writeFileSync(opts.out, `${JSON.stringify(partial, null, 2)}\n`);
    x.print(`\nwrote ${opts.out}`);
  }
  return partial as unknown as BenchResults;
}

/** Default results file of a full run. */
export const DEFAULT_RESULTS = fromRoot('bench/results.json');

/** Parses a `--only` item. @throws Error naming the known phases */
export function parseBenchPhase(p: string): BenchPhase {
  if ((BENCH_PHASES as readonly string[]).includes(p)) return p as BenchPhase;
  throw new Error(`unknown bench phase ${p} (known: ${BENCH_PHASES.join(', ')})`);
}

/** Parses `--rates 500,1000` (positive numbers). @throws Error on anything else */
export function parseRates(s: string): number[] {
  const r = s.split(',').map(Number);
  if (r.length === 0 || r.some((x) => !Number.isFinite(x) || x <= 0)) throw new Error(`--rates: expected positive numbers separated by commas, got ${s}`);
  return r;
}

// `tsx bench/run.ts [--quick] [--out FILE] [--only permit-chain] [--rates 500,1000] [--step-sec 10]`
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const quick = process.argv.includes('--quick');
  const arg = (name: string): string | undefined => {
    const k = process.argv.indexOf(name);
    return k > 0 ? process.argv[k + 1] : undefined;
  };
  const only = arg('--only') ? (arg('--only') as string).split(',').map((p) => parseBenchPhase(p)) : undefined;
  const out = arg('--out') ?? (quick || only ? null : DEFAULT_RESULTS);
  runBench({ quick, out, only, rates: arg('--rates') ? parseRates(arg('--rates') as string) : undefined, stepSec: arg('--step-sec') ? Number(arg('--step-sec')) : undefined }).then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}
