/**
 * The report of a chaos run: one JSON document (written to `--out` or `<run folder>/report.json`), one
 * summary line (faults per kind, plans, orders, violations per invariant), and on failure the seed and the
 * evidence of each violation with the service log lines that mention its plan or client order id.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { INVARIANTS, type InvariantName, type Violation } from './invariants.js';
import type { FaultEvent } from './faults.js';
import type { UnexpectedDeath } from './processes.js';
import type { SwitchEvent } from './sentinel.js';
import type { RssSeries } from './rss.js';

/** Convergence of one symbol after the faults stopped. */
export interface SymbolConvergence {
  symbol: string;
  converged: boolean;
  /** ms from the end of the faults until exchange = ledger and no hold, null when not within the bound. */
  time_ms: number | null;
  exchange_amt: string;
  ledger_amt: string;
  hold: boolean;
  status: string;
}

/** The JSON report (`schema` 1). */
export interface ChaosReport {
  schema: 1;
  ok: boolean;
  seed: number;
  seconds: number;
  started_at: string;
  finished_at: string;
  run_dir: string;
  faults_enabled: string[];
  faults: Record<string, number>;
  fault_log: FaultEvent[];
  /** `resubmitted`: the producer's re-submissions of the same signed plan (no final result in time, or it was lost). */
  plans: { submitted: number; acked: number; duplicates: number; resubmitted: number; forged: number; malformed: number; results: Record<string, number> };
  orders: { api: number; manual: number; filled: number; rejected: number; partial: number; by_decision: Record<string, number> };
  /**
   * Redis kills (every kind); `crash_losses`: host crashes whose AOF lost writes (`redis_crash_loss` that
   * dropped bytes); with `--sentinel`: `failovers` = `+switch-master` events (any cause: a
   * `sentinel_failover`, or a `redis_kill` outage Sentinel judged long enough), and `failover_ms` = from a
   * `sentinel_failover` fault to its switch.
   */
  redis: { kills: number; crash_losses: number; sentinel: boolean; failovers: number; switches: SwitchEvent[]; failover_ms: { n: number; p50: number | null; max: number | null } };
  services: { restarts: Record<string, number>; unexpected_deaths: UnexpectedDeath[]; final_exit_codes: Record<string, number | null> };
  convergence: { bound_ms: number; max_ms: number | null; symbols: SymbolConvergence[] };
  /** RECONCILE_CLOSE published → its first result (stream entry times), ms, over every close with a result. */
  close_latency_ms: { n: number; p50: number | null; max: number | null };
  /** Plans without a final result in the final state (each a `one_final_result` violation). */
  lost_results: Array<{ plan_id: string; why: string }>;
  /** Plans whose final result a Redis crash lost and that have exactly one again (re-submitted; recovered from the exchange). */
  recovered_results: string[];
  /** ms from the end of the faults until every plan of the strategy had a final result (null: not within the bound + 60 s). */
  results_done_ms: number | null;
  lost_entries: Array<{ entry_id: string; why: string }>;
  /**
   * Each service's RSS at the start of the faults, every `sample_ms` and at the end, and its growth from minute 5
   * of a process to its end (rss.ts); growth beyond `max_growth` is an `rss_growth` violation.
   */
  rss: { sample_ms: number; baseline_ms: number; max_growth: number; series: RssSeries[] };
  /** The apply layers' claim durability (`--claim-durability`; absent: the services' default). */
  claim_durability: string | null;
  /** Log lines of the consumer liveness watchdog: stalls found (and recovered) during the run (consumer-watchdog.ts). */
  consumer_stalls: string[];
  violations: Record<InvariantName, number>;
  evidence: Array<Violation & { log_lines: string[] }>;
}

/** Log lines (at most `max`) of every service log in `logDir` that mention one of `needles`. */
export function logLinesFor(logDir: string, needles: string[], max = 12): string[] {
  const want = needles.filter((n) => n.length >= 6);
  if (want.length === 0) return [];
  const out: string[] = [];
  let files: string[] = [];
  try {
    files = readdirSync(logDir).filter((f) => f.endsWith('.log'));
  } catch {
    return [];
  }
  for (const f of files) {
    let text = '';
    try {
      text = readFileSync(join(logDir, f), 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n')) {
      if (want.some((n) => line.includes(n))) out.push(`${f}: ${line.length > 400 ? `${line.slice(0, 400)}…` : line}`);
      if (out.length >= max) return out;
    }
  }
  return out;
}

/** Counts violations per invariant (every invariant present). */
export function countViolations(vs: Violation[]): Record<InvariantName, number> {
  const c = Object.fromEntries(INVARIANTS.map((i) => [i, 0])) as Record<InvariantName, number>;
  for (const x of vs) c[x.invariant]++;
  return c;
}

/** The one summary line. */
export function summaryLine(r: ChaosReport): string {
  const faults = Object.entries(r.faults).map(([k, n]) => `${k}=${n}`).join(' ');
  const viol = Object.entries(r.violations).map(([k, n]) => `${k}=${n}`).join(' ');
  const conv = r.convergence.max_ms === null ? `not converged within ${r.convergence.bound_ms} ms` : `converged in ${r.convergence.max_ms} ms (bound ${r.convergence.bound_ms})`;
  const cl = r.close_latency_ms.n ? `closes=${r.close_latency_ms.n} published->result p50 ${r.close_latency_ms.p50} ms max ${r.close_latency_ms.max} ms` : 'closes=0';
  const redis = r.redis.sentinel ? ` | sentinel: failovers=${r.redis.failovers} redis_kills=${r.redis.kills}` : '';
  const judged = r.rss.series.filter((s) => s.growth !== null);
  const rss = ` | rss: ${r.rss.series.map((s) => `${s.instance}=${s.samples[s.samples.length - 1]?.rss_mb ?? '?'}MB`).join(' ')}${judged.length ? ` max growth ${Math.round(Math.max(...judged.map((s) => s.growth as number)) * 100)} %` : ''} | consumer stalls=${r.consumer_stalls.length}`;
  return `chaos ${r.ok ? 'PASS' : 'FAIL'} seed=${r.seed} seconds=${r.seconds} | faults: ${faults}${redis} | plans=${r.plans.submitted} orders=${r.orders.api} (manual ${r.orders.manual}) | ${conv} | ${cl} | resubmitted=${r.plans.resubmitted} lost_then_recovered=${r.recovered_results.length} lost_results=${r.lost_results.length} results_done_after=${r.results_done_ms ?? 'n/a'} ms | violations: ${viol}${rss}`;
}

/** The evidence block printed on failure. */
export function evidenceText(r: ChaosReport): string {
  const lines = [`seed ${r.seed} (rerun: p3 chaos --seconds ${r.seconds} --seed ${r.seed}); logs and AOF in ${r.run_dir}`];
  for (const e of r.evidence) {
    lines.push(`VIOLATION ${e.invariant}: ${e.message}`);
    if (e.plan_ids.length) lines.push(`  plan ids: ${e.plan_ids.join(', ')}`);
    if (e.client_order_ids.length) lines.push(`  client order ids: ${e.client_order_ids.join(', ')}`);
    if (e.order_ids.length) lines.push(`  exchange order ids: ${e.order_ids.join(', ')}`);
    for (const l of e.log_lines) lines.push(`  | ${l}`);
  }
  for (const l of r.lost_results) lines.push(`LOST RESULT plan ${l.plan_id}: ${l.why}`);
  return lines.join('\n');
}
