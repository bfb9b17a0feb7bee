/**
 * `p3 chaos`: runs the stack (stack.ts), the strategy (driver.ts) and the fault injector (faults.ts) for
 * `seconds`, checking the order log continuously; then undoes every fault, stops the strategy, measures
 * convergence, checks every invariant (invariants.ts) and reports (report.ts).
 *
 * Exit code: 0 when no invariant was violated, 1 otherwise (the seed and the evidence are printed).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { createRedis } from '../../src/adapters/redis/client.js';
import { dlq, keys, STREAMS } from '../../src/adapters/redis/keys.js';
import { fieldsToObject } from '../../src/adapters/redis/consumer.js';
import { readLedger } from '../../src/domain/position.js';
import { Decimal, parseDecimal } from '../../src/domain/decimal.js';
import { sleep } from '../../src/lib/sleep.js';
import type { ChaosOptions } from './options.js';
import { SeededRng } from './rng.js';
import { startChaosStack, type ChaosStack } from './stack.js';
import { ChaosDriver, PRODUCER_KEEP_MS, RESULT_WAIT_MS } from './driver.js';

/** How long after the convergence bound the run still waits for the last plans' final results, ms. */
const RESULTS_EXTRA_MS = 60_000;
import { FaultInjector } from './faults.js';
import { RSS_BASELINE_MS, RSS_MAX_GROWTH, RSS_SAMPLE_MS, RssSampler } from './rss.js';
import { Observer, entryMs } from './observer.js';
import { apiOrders, checkResultMatchesFill, checkDeadLetters, checkOneOrderPerPlan, checkPermitted, checkReduceOnly, checkResults, type FinalResult, type OrderOwner, type Violation } from './invariants.js';
import { countViolations, evidenceText, logLinesFor, summaryLine, type ChaosReport, type SymbolConvergence } from './report.js';

/** Where a run prints (stdout by default). */
export interface ChaosOutput {
  line(text: string): void;
}

/** Every entry of a stream, oldest first (XRANGE pages). */
async function readStream(redis: Redis, stream: string): Promise<Array<[string, Record<string, string>]>> {
  const out: Array<[string, Record<string, string>]> = [];
  let start = '-';
  for (;;) {
    const page = await redis.xrange(stream, start, '+', 'COUNT', 1000);
    for (const [id, f] of page) out.push([id, fieldsToObject(f)]);
    if (page.length < 1000) return out;
    start = `(${page[page.length - 1]?.[0]}`;
  }
}

/** Per symbol: exchange position, ledger, hold — and whether they agree (within one lot step) with no hold. */
async function symbolState(stack: ChaosStack, redis: Redis, symbols: string[]): Promise<Array<Omit<SymbolConvergence, 'converged' | 'time_ms'> & { ok: boolean }>> {
  const positions = (await (await fetch(`${stack.paper.url}/admin/positions`)).json()) as Record<string, { positionAmt: string }>;
  const out = [];
  for (const s of symbols) {
    const [led, legacy, hold, status] = await Promise.all([redis.hgetall(keys.ledger(s)), redis.hgetall(keys.legacyLedger004(s)), redis.exists(keys.hold(s)), redis.hget(keys.reconcileState(s), 'status')]);
    const ex = parseDecimal(positions[s]?.positionAmt ?? '') ?? new Decimal(NaN);
    const l = readLedger(led, legacy);
    const step = parseDecimal(stack.paper.book.rules.get(s)?.stepSize ?? '0.001') ?? new Decimal('0.001');
    const ok = l.kind === 'ok' && ex.minus(l.ledger.amount).abs().lte(step) && hold === 0;
    out.push({ symbol: s, ok, exchange_amt: ex.toFixed(), ledger_amt: l.kind === 'ok' ? l.ledger.amount.toFixed() : l.kind, hold: hold === 1, status: status ?? '' });
  }
  return out;
}

/**
 * Runs one chaos run.
 * @returns the exit code (0 pass, 1 violation) and the report
 * @throws RedisServerMissing; Error when the stack cannot start
 */
export async function runChaos(opts: ChaosOptions, out: ChaosOutput): Promise<{ code: number; report: ChaosReport }> {
  const startedAt = new Date();
  const runDir = mkdtempSync(join(tmpdir(), 'p3-chaos-'));
  const say = (t: string) => {
    if (!opts.json) out.line(t);
  };
  say(`p3 chaos: seed ${opts.seed}, ${opts.seconds} s of faults (${opts.faults.join(', ')}); run folder ${runDir}`);
  const stack = await startChaosStack(runDir, opts.symbols, undefined, { sentinel: opts.sentinel, env: opts.claimDurability ? { P3_CLAIM_DURABILITY: opts.claimDurability } : {} });
  // Ctrl-C / SIGTERM: kill every process of the run (the 'exit' event alone does not run on a signal)
  const onExit = () => stack.killSync();
  const onSignal = () => {
    stack.killSync();
    process.exit(130);
  };
  process.once('exit', onExit);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const conn = createRedis(stack.target, { name: 'p3:chaos:observer' });
  conn.on('error', () => undefined);
  const root = new SeededRng(opts.seed);
  const driverRng = root.fork();
  const faultRng = root.fork();
  const observer = new Observer(conn, stack.paper.url, stack.keys.engine, stack.keys.operator);
  const driver = new ChaosDriver({
    redis: stack.conn,
    symbols: opts.symbols,
    key: stack.keys.strategy,
    rng: driverRng,
    gapMs: opts.planGapMs,
    hasFinal: (id) => observer.hasFinal(id),
    finalResult: (id) => observer.finalResult(id),
    onLost: (id) => observer.markLost(id),
    onPlan: (id) => observer.watchPlan(id),
  });
  const rss = new RssSampler(
    () => stack.processes.map((p) => ({ instance: p.instance, pid: p.pid })),
    (at, row) => say(`  rss +${Math.round(at / 1000)}s: ${row.map((r) => `${r.instance}=${r.rss_mb ?? '-'}MB`).join(' ')}`),
  );
  const injector = new FaultInjector(stack, driver, faultRng, opts.faults, opts.faultGapMs, (e) => say(`  +${((e.at_ms - startedAt.getTime()) / 1000).toFixed(1)}s ${e.kind}: ${e.detail}`));

  const owner = (cid: string): OrderOwner | undefined => {
    const pub = observer.publishedByCid.get(cid);
    if (pub) return { kind: 'published', plan: pub };
    for (const p of driver.plans.values()) if (p.client_order_id === cid) return { kind: 'plan', plan: p };
    const b = driver.bad.find((x) => x.client_order_id === cid);
    return b ? { kind: 'bad', entry: b } : undefined;
  };
  const firstSeen = new Map<string, Violation>();
  const noteViolations = (vs: Violation[]) => {
    for (const x of vs) if (!firstSeen.has(`${x.invariant}|${x.client_order_ids.join(',')}|${x.message}`)) firstSeen.set(`${x.invariant}|${x.client_order_ids.join(',')}|${x.message}`, { ...x, detected_ms: Date.now() });
  };
  const orderChecks = () => {
    const orders = observer.orders;
    // `permitted` is only judged at the end (a permit read lags its write by up to one poll)
    noteViolations([...checkOneOrderPerPlan(orders, owner), ...checkReduceOnly(orders, owner)]);
  };

  const obsAbort = new AbortController();
  const observing = observer.run(obsAbort.signal);
  const faultAbort = new AbortController();
  const driverAbort = new AbortController();
  // the producer's re-submissions go on after the trading loop stops, until the final checks
  const producerAbort = new AbortController();
  let report: ChaosReport | null = null;
  try {
    const checking = (async () => {
      while (!obsAbort.signal.aborted) {
        orderChecks();
        await sleep(2000, obsAbort.signal);
      }
    })();
    const driving = driver.run(driverAbort.signal);
    const producing = driver.produce(producerAbort.signal);
    const faulting = injector.run(faultAbort.signal);
    rss.start();
    say(`stack ready in ${Date.now() - startedAt.getTime()} ms: ${stack.sentinel ? `Redis master + ${stack.sentinel.nodes.length - 1} replica(s) + 3 sentinels (${stack.sentinel.target.sentinel?.sentinels.map((s) => s.port).join(', ')}), ` : ''}2 apply layers, 2 reconcile engines, 1 governor, 1 position brain (pids ${stack.processes.map((p) => `${p.instance}=${p.pid}`).join(' ')}); trading ${opts.symbols.join(', ')}`);
    await sleep(opts.seconds * 1000);
    faultAbort.abort();
    await faulting;
    driverAbort.abort();
    await driving;
    await injector.quiesce();
    const faultsEnd = Date.now();
    say(`faults stopped after ${opts.seconds} s (${injector.events.length} injected); strategy stopped; waiting for convergence (bound ${opts.convergeSeconds} s)`);

    // convergence: exchange = ledger (one lot step) and no hold, on every symbol at once, with no plan of
    // the strategy still waiting for its result, and staying so for STABLE_MS (a match seen while an order
    // is still in flight is not convergence)
    const bound = opts.convergeSeconds * 1000;
    const STABLE_MS = 3000;
    const firstOk = new Map<string, number>();
    let okSince: number | null = null;
    let all: number | null = null;
    let last: Awaited<ReturnType<typeof symbolState>> = [];
    // plans still waiting for a result at the end of the faults (the strategy waits at most RESULT_WAIT_MS per
    // plan, so older ones without a result are ones Redis lost: one_final_result / lost_results report them)
    const waitingFor = () => [...driver.plans.values()].filter((p) => p.acked && !observer.hasFinal(p.plan_id) && p.submitted_ms > faultsEnd - RESULT_WAIT_MS - 5000);
    while (Date.now() - faultsEnd <= bound + STABLE_MS) {
      try {
        last = await symbolState(stack, conn, opts.symbols);
        for (const s of last) if (s.ok && !firstOk.has(s.symbol)) firstOk.set(s.symbol, Date.now() - faultsEnd);
        for (const s of last) if (!s.ok) firstOk.delete(s.symbol);
        const now = Date.now();
        if (last.every((s) => s.ok) && waitingFor().length === 0) {
          okSince ??= now;
          if (now - okSince >= STABLE_MS) {
            all = okSince - faultsEnd;
            break;
          }
        } else okSince = null;
      } catch {
        okSince = null; // Redis reconnecting
      }
      if (okSince !== null && okSince - faultsEnd > bound) break;
      await sleep(250);
    }
    // results of the last plans (permit waits, lookups) before the final checks
    // then every plan the producer still keeps (re-submitted after a Redis restart or a lost result: a backlog
    // of them drains after the faults stop), at most RESULTS_EXTRA_MS beyond the convergence bound
    const pendingResults = () => [...driver.plans.values()].filter((p) => p.acked && !observer.hasFinal(p.plan_id) && Date.now() - p.submitted_ms < PRODUCER_KEEP_MS);
    const resultsDeadline = faultsEnd + bound + RESULTS_EXTRA_MS;
    while ((waitingFor().length > 0 || pendingResults().length > 0) && Date.now() < resultsDeadline) await sleep(250);
    const resultsDoneMs = pendingResults().length === 0 ? Date.now() - faultsEnd : null;
    await sleep(1500); // the observer's last permit and stream reads
    producerAbort.abort();
    await producing;
    const orders = await observer.refreshOrders();
    orderChecks();

    // final checks over Redis as it is now
    const finals = new Map<string, FinalResult[]>();
    const resultCounts: Record<string, number> = {};
    for (const [id, f] of await readStream(conn, STREAMS.applyResult)) {
      if (!f.plan_id) continue;
      finals.set(f.plan_id, [...(finals.get(f.plan_id) ?? []), { entry_id: id, status: f.status ?? '', reason: f.reason ?? '', filled_qty: f.filled_qty }]);
      if (driver.plans.has(f.plan_id)) resultCounts[f.status ?? ''] = (resultCounts[f.status ?? ''] ?? 0) + 1;
    }
    const results = checkResults([...driver.plans.values()], finals, (id) => observer.wasLost(id));
    const dlqIds = new Map<string, Set<string>>();
    for (const s of [STREAMS.applyPlan, STREAMS.reconcileClose]) {
      const ids = new Set<string>();
      for (const [, f] of await readStream(conn, dlq(s))) if (f.dlq_source_id && (s !== STREAMS.applyPlan || f.dlq_group === 'apply')) ids.add(f.dlq_source_id);
      dlqIds.set(s, ids);
    }
    const present = new Set<string>();
    for (const b of driver.bad) if ((await conn.xrange(b.stream, b.entry_id, b.entry_id)).length > 0) present.add(b.entry_id);
    const dead = checkDeadLetters(driver.bad, (s) => dlqIds.get(s) ?? new Set(), (b) => present.has(b.entry_id));
    const permitted = checkPermitted(orders, owner, (id) => observer.permits.get(id));
    const fills = checkResultMatchesFill(orders, owner, finals);

    const convergence: SymbolConvergence[] = (last.length ? last : opts.symbols.map((symbol) => ({ symbol, ok: false, exchange_amt: '?', ledger_amt: '?', hold: false, status: '' }))).map((s) => ({
      symbol: s.symbol,
      converged: all !== null,
      time_ms: all !== null ? (firstOk.get(s.symbol) ?? all) : null,
      exchange_amt: s.exchange_amt,
      ledger_amt: s.ledger_amt,
      hold: s.hold,
      status: s.status,
    }));
    const notConverged = (s: (typeof last)[number]): Violation => ({
      invariant: 'converged',
      message: `${s.symbol}: not converged ${bound} ms after the faults stopped (exchange ${s.exchange_amt}, ledger ${s.ledger_amt}, hold ${s.hold}, status ${s.status}${s.ok ? `; agreeing at the end but not for ${STABLE_MS} ms with no plan waiting (${waitingFor().map((p) => p.plan_id).join(', ') || 'none'})` : ''})`,
      plan_ids: s.ok ? waitingFor().map((p) => p.plan_id) : [],
      client_order_ids: [],
      order_ids: [],
    });
    const stuck = last.filter((s) => !s.ok);
    const convViolations: Violation[] = all === null ? (stuck.length > 0 ? stuck : last.slice(0, 1)).map(notConverged) : [];
    if (all === null && last.length === 0) convViolations.push({ invariant: 'converged', message: 'no symbol state could be read after the faults stopped', plan_ids: [], client_order_ids: [], order_ids: [] });

    const rssSeries = rss.finish();
    const rssViolations: Violation[] = rssSeries
      .filter((s) => s.growth !== null && s.growth > RSS_MAX_GROWTH)
      .map((s) => ({ invariant: 'rss_growth' as const, message: `${s.instance}: RSS grew ${Math.round((s.growth as number) * 100)} % (${s.baseline?.rss_mb} MB at +${Math.round((s.baseline?.at_ms ?? 0) / 1000)} s -> ${s.end?.rss_mb} MB at +${Math.round((s.end?.at_ms ?? 0) / 1000)} s, pid ${s.end?.pid}), more than ${RSS_MAX_GROWTH * 100} %`, plan_ids: [], client_order_ids: [], order_ids: [] }));
    // the observer first (its connections are closed, so no command waits for a Redis that is about to go)
    obsAbort.abort();
    conn.disconnect();
    await Promise.race([Promise.all([observing, checking]), sleep(5000)]);
    await stack.stop();
    process.off('exit', onExit);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);

    const deathViolations: Violation[] = stack.deaths.map((d) => ({ invariant: 'no_unexpected_death' as const, message: `${d.instance} (pid ${d.pid}) exited by itself (code ${d.code}, signal ${d.signal}) at ${new Date(d.at_ms).toISOString()}`, plan_ids: [], client_order_ids: [], order_ids: [] }));
    const all_v = [...firstSeen.values(), ...permitted, ...results.violations, ...fills, ...dead.violations, ...convViolations, ...deathViolations, ...rssViolations];
    const logDir = join(runDir, 'logs');
    const api = apiOrders(orders);
    const byDecision: Record<string, number> = {};
    for (const o of api) {
      const own = owner(o.clientOrderId);
      const k = own?.kind === 'plan' ? 'EXECUTE' : own?.kind === 'published' ? own.plan.decision : 'unknown';
      byDecision[k] = (byDecision[k] ?? 0) + 1;
    }
    const plans = [...driver.plans.values()];
    report = {
      schema: 1,
      ok: all_v.length === 0,
      seed: opts.seed,
      seconds: opts.seconds,
      started_at: startedAt.toISOString(),
      finished_at: new Date().toISOString(),
      run_dir: runDir,
      faults_enabled: opts.faults,
      faults: injector.counts(),
      fault_log: injector.events,
      plans: {
        submitted: plans.length,
        acked: plans.filter((p) => p.acked).length,
        duplicates: plans.reduce((n, p) => n + p.duplicates, 0),
        resubmitted: plans.reduce((n, p) => n + p.resubmits, 0),
        forged: driver.bad.filter((b) => b.kind !== 'malformed').length,
        malformed: driver.bad.filter((b) => b.kind === 'malformed').length,
        results: resultCounts,
      },
      orders: {
        api: api.length,
        manual: orders.filter((o) => o.source === 'admin').length,
        filled: api.filter((o) => o.status === 'FILLED').length,
        rejected: api.filter((o) => o.status === 'REJECTED').length,
        partial: api.filter((o) => o.status === 'EXPIRED').length,
        by_decision: byDecision,
      },
      redis: {
        kills: injector.redisKills.length,
        crash_losses: injector.lossyCrashes.length,
        sentinel: opts.sentinel,
        failovers: stack.sentinel?.switches.length ?? 0,
        switches: stack.sentinel?.switches ?? [],
        failover_ms: msStats(injector.failoverTimes),
      },
      services: {
        restarts: Object.fromEntries(stack.processes.map((p) => [p.instance, p.starts - 1])),
        unexpected_deaths: stack.deaths,
        final_exit_codes: Object.fromEntries(stack.processes.map((p) => [p.instance, p.finalExitCode])),
      },
      convergence: { bound_ms: bound, max_ms: all, symbols: convergence },
      close_latency_ms: closeLatency(observer),
      lost_results: results.lost,
      recovered_results: results.recovered,
      results_done_ms: resultsDoneMs,
      lost_entries: dead.lost,
      rss: { sample_ms: RSS_SAMPLE_MS, baseline_ms: RSS_BASELINE_MS, max_growth: RSS_MAX_GROWTH, series: rssSeries },
      claim_durability: opts.claimDurability ?? null,
      consumer_stalls: logLinesFor(logDir, ['stream consumer STALLED'], 50),
      violations: countViolations(all_v),
      evidence: all_v.map((x) => ({ ...x, log_lines: logLinesFor(logDir, [...x.plan_ids, ...x.client_order_ids]) })),
    };
    const file = opts.out ?? join(runDir, 'report.json');
    writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
    if (opts.json) out.line(JSON.stringify(report));
    else {
      out.line(summaryLine(report));
      if (!report.ok || report.lost_results.length > 0) out.line(evidenceText(report));
      out.line(`report: ${file}`);
    }
    // a passing run keeps only its report (logs and AOF are large); a failing one keeps everything
    if (report.ok && !opts.keep) for (const d of ['logs', 'redis', 'redis-replica-1', 'redis-replica-2', 'sentinel-1', 'sentinel-2', 'sentinel-3']) rmSync(join(runDir, d), { recursive: true, force: true });
    return { code: report.ok ? 0 : 1, report };
  } finally {
    faultAbort.abort();
    driverAbort.abort();
    producerAbort.abort();
    obsAbort.abort();
    if (!report) {
      conn.disconnect();
      await stack.stop();
      process.off('exit', onExit);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  }
}

/** Count, p50 and max of durations (ms). */
function msStats(xs: number[]): { n: number; p50: number | null; max: number | null } {
  const s = [...xs].sort((a, b) => a - b);
  return { n: s.length, p50: s.length ? s[Math.floor((s.length - 1) / 2)]! : null, max: s.length ? s[s.length - 1]! : null };
}

/** RECONCILE_CLOSE published → first result, from the stream entry times the observer saw (ms). */
function closeLatency(observer: Observer): ChaosReport['close_latency_ms'] {
  const lat: number[] = [];
  for (const p of observer.published.values()) {
    if (p.decision !== 'RECONCILE_CLOSE') continue;
    const first = (observer.results.get(p.plan_id) ?? []).map((r) => entryMs(r.entry_id)).sort((a, b) => a - b)[0];
    if (first !== undefined && Number.isFinite(first)) lat.push(Math.max(0, first - p.entry_ms));
  }
  lat.sort((a, b) => a - b);
  return { n: lat.length, p50: lat.length ? lat[Math.floor((lat.length - 1) / 2)]! : null, max: lat.length ? lat[lat.length - 1]! : null };
}
