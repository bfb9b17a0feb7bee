/**
 * `p3 demo`: the main job (docs/architecture.md#the-demo). One process runs the paper exchange and all four services
 * (in-process, each with its own Redis connections and metrics port), a strategy driver, and the seeds'
 * incidents side by side on their own symbols, and prints a timeline and a summary.
 *
 * Everything it starts is stopped on exit or Ctrl-C: services drained, paper exchange closed, a private
 * redis-server killed and its folder removed.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { createLogger } from '../../src/adapters/logging/logger.js';
import { createRedis } from '../../src/adapters/redis/client.js';
import { consoleConfig, CONSOLE_DEFAULT_PORT, startConsole, type RunningConsole } from '../../src/console/index.js';
import { keys } from '../../src/adapters/redis/keys.js';
import { startPaperExchange, type PaperExchange } from '../paper-exchange/index.js';
import { buildServices } from '../../src/services/index.js';
import { SERVICE_NAMES } from '../../src/host/service-names.js';
import { startServices, stopServices, waitForSignal, type RunningService } from '../../src/host/lifecycle.js';
import { sleep } from '../../src/lib/sleep.js';
import { acquireDemoRedis, type DemoRedis } from './redis.js';
import { operatorLines, writeDemoEnvDir, type DemoEnvDir } from './env-dir.js';
import { runStrategyDriver } from './driver.js';
import { lastResultId, waitTradingResumed, type TradingResumed } from './resumed.js';
import { SCENARIOS, type InjectContext, type ScenarioDef } from './scenarios.js';
import { TimelinePrinter } from './timeline.js';
import { stackServiceEnv } from '../stack-env.js';
import { DemoWatcher, type PhaseObservations } from './watch.js';

/** Options of {@link runDemo}. */
export interface DemoOptions {
  json: boolean;
  /** Stop after the scenarios (exit code 0 only if every scenario healed). */
  exit: boolean;
  /** Time allowed per scenario phase to heal, seconds. */
  phaseTimeoutSec: number;
  /** Strategy driver interval, milliseconds. */
  planIntervalMs: number;
  /** `REDIS_URL` (default redis://127.0.0.1:6379). */
  redisUrl?: string;
  /** Port of the operator console (default 8040; taken → a free port; 0 = a free port). */
  consolePort?: number;
  /** Token of the console's actions (`P3_CONSOLE_TOKEN`); default a random one, printed. */
  consoleToken?: string;
}

/** One row of the summary: a scenario phase. */
export interface PhaseRow {
  scenario: string;
  symbol: string;
  healed: boolean;
  /** Which snapshot source showed the incident: `stream` (user data stream) or `rest` (poll). */
  noticed_by: string | null;
  time_to_hold_ms: number | null;
  time_to_heal_ms: number | null;
  closes: string[];
}

async function isHealed(redis: Redis, def: ScenarioDef, healsBy: 'close' | 'evidence', obs: PhaseObservations): Promise<number | null> {
  const [hold, status] = await Promise.all([redis.exists(keys.hold(def.symbol)), redis.hget(keys.reconcileState(def.symbol), 'status')]);
  if (hold === 1 || (status !== 'OK' && status !== 'REPAIRED')) return null;
  if (healsBy === 'close') return obs.holdClearedAt !== null && obs.closes.length > 0 ? obs.holdClearedAt : null;
  return obs.repairAt;
}

async function runScenario(def: ScenarioDef, ctx: InjectContext, watcher: DemoWatcher, timeoutMs: number, signal: AbortSignal): Promise<PhaseRow[]> {
  const rows: PhaseRow[] = [];
  for (const [i, phase] of def.phases.entries()) {
    const name = def.phases.length > 1 ? `${def.name} ${i + 1}/${def.phases.length}` : def.name;
    const t0 = Date.now();
    const obs = await watcher.beginPhase(name, def.symbol, t0);
    watcher.entry(def.symbol, 'INJECTED', phase.label, t0);
    await phase.inject(ctx, def.symbol);
    let healedAt: number | null = null;
    const deadline = t0 + timeoutMs;
    while (!signal.aborted && Date.now() < deadline) {
      healedAt = await isHealed(ctx.redis, def, phase.healsBy, obs).catch(() => null);
      if (healedAt !== null) break;
      await sleep(25, signal);
    }
    const row: PhaseRow = {
      scenario: name,
      symbol: def.symbol,
      healed: healedAt !== null,
      noticed_by: obs.noticedBy,
      time_to_hold_ms: obs.holdSetAt === null ? null : obs.holdSetAt - t0,
      time_to_heal_ms: healedAt === null ? null : healedAt - t0,
      closes: obs.closes.map((c) => `${c.side} ${c.qty}`),
    };
    rows.push(row);
    if (healedAt === null) {
      watcher.entry(def.symbol, 'TIMEOUT', `not healed within ${timeoutMs} ms`);
      break;
    }
    watcher.entry(def.symbol, 'HEALED', `healed: hold clear, exchange and ledger agree, trading allowed`, healedAt);
    await sleep(1500, signal);
  }
  return rows;
}

/** Starts the operator console for the demo (flatten enabled with the services' operator key) on `port`, or on a free port when that one is taken. */
async function startDemoConsole(redis: Redis, symbols: string[], port: number, token: string, operatorKey: string): Promise<RunningConsole> {
  const logger = createLogger('console', 'error');
  const env = { P3_ALLOWLIST: symbols.join(','), P3_CONSOLE_TOKEN: token, P3_KEY_OPERATOR: operatorKey };
  try {
    return await startConsole(redis, consoleConfig({ port }, env), logger);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    return startConsole(redis, consoleConfig({ port: 0 }, env), logger);
  }
}

/**
 * Runs the demo. Resolves with the process exit code (0 ok; 1 a scenario did not heal, or no strategy plan
 * executed within the phase timeout after the heals).
 * @throws NoRedisError (exit 2) when no Redis can be found or started
 */
export async function runDemo(opts: DemoOptions): Promise<number> {
  const printer = new TimelinePrinter(opts.json);
  const abort = new AbortController();
  const onSignal = () => abort.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let demoRedis: DemoRedis | null = null;
  let paper: PaperExchange | null = null;
  let running: RunningService[] = [];
  let consoleServer: RunningConsole | null = null;
  let envDir: DemoEnvDir | null = null;
  const conns: Redis[] = [];
  const killOnExit = () => {
    demoRedis?.killSync();
    envDir?.remove();
  };
  process.once('exit', killOnExit);
  try {
    demoRedis = await acquireDemoRedis(opts.redisUrl);
    printer.line({ type: 'start', redis_url: demoRedis.url, redis: demoRedis.description }, `Redis: ${demoRedis.description}\n       REDIS_URL=${demoRedis.url}`);
    const symbols = SCENARIOS.map((s) => s.symbol);
    paper = await startPaperExchange({ symbols, positions: Object.fromEntries(SCENARIOS.map((s) => [s.symbol, s.initialPosition])) });
    printer.line({ type: 'paper_exchange', url: paper.url }, `Paper exchange: ${paper.url} (admin API under ${paper.url}/admin)`);
    const exitBrainKey = randomBytes(32).toString('hex');
    const key = () => randomBytes(32).toString('hex');
    const operatorKey = key();
    // the services run in this process: quiet logs (the timeline is the demo's output), snapshots every 200 ms
    const env = stackServiceEnv({ redis: demoRedis.url, paper, symbols, keys: { strategy: exitBrainKey, engine: key(), operator: operatorKey, governor: key(), p33: key() }, snapshotIntervalMs: 200, logLevel: 'error' });
    running = await startServices(await buildServices([...SERVICE_NAMES], env));
    const metrics = running.map((r) => ({ service: r.service.name, url: `http://127.0.0.1:${r.ops.port}/metrics` }));
    printer.line({ type: 'services', services: metrics }, `Services (in this process): ${metrics.map((m) => `${m.service} ${m.url}`).join('\n                             ')}`);
    envDir = writeDemoEnvDir(env);
    printer.line({ type: 'operator', env_dir: envDir.dir, env: envDir.operatorEnv }, operatorLines(envDir).join('\n'));

    const redis = createRedis(demoRedis.url, { name: 'p3:demo' });
    const blocking = redis.duplicate();
    conns.push(redis, blocking);
    const consoleToken = opts.consoleToken ?? randomBytes(16).toString('hex');
    consoleServer = await startDemoConsole(redis, symbols, opts.consolePort ?? CONSOLE_DEFAULT_PORT, consoleToken, operatorKey);
    printer.line(
      { type: 'console', url: consoleServer.url, token: consoleToken },
      `Operator console: ${consoleServer.url}  (actions: operator name + token ${consoleToken})`,
    );
    // The engine initialises each ledger from the exchange (LEDGER_INIT) before the incidents are injected.
    const ready = Date.now() + 30_000;
    for (;;) {
      const states = await Promise.all(symbols.map((s) => redis.hget(keys.reconcileState(s), 'status')));
      if (states.every((s) => s === 'OK')) break;
      if (Date.now() > ready || abort.signal.aborted) throw new Error(`services did not reach a reconciled start (states: ${states.join(', ')})`);
      await sleep(50, abort.signal);
    }
    printer.line({ type: 'ready' }, 'All symbols reconciled. Injecting the seeds\' incidents now.\n');

    const watcher = new DemoWatcher(redis, (e) => printer.event(e));
    const follow = watcher.follow(blocking, abort.signal);
    const poll = watcher.pollStatus(abort.signal);
    const driver = runStrategyDriver({
      redis,
      symbols,
      key: exitBrainKey,
      intervalMs: opts.planIntervalMs,
      signal: abort.signal,
      // the incident symbols' scripted manual trades assume a long or flat position
      longOnly: SCENARIOS.filter((sc) => sc.phases.length > 1).map((sc) => sc.symbol),
      onPermits: (p) => {
        const show = (v: { decision: string; reason: string } | null) => (v ? `${v.decision}${v.decision === 'DENY' ? `(${v.reason})` : ''}` : 'none');
        watcher.permits(p.symbol, p.planId, `${p.action ?? 'plan'} governor=${show(p.governor)} p33=${show(p.p33)}`);
      },
    });
    const paperUrl = paper.url;
    const ctx: InjectContext = {
      redis,
      manualTrade: async (symbol, side, qty) => {
        const res = await fetch(`${paperUrl}/admin/trade`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ symbol, side, qty }) });
        if (!res.ok) throw new Error(`manual trade failed: HTTP ${res.status} ${await res.text()}`);
        const body = (await res.json()) as { order?: { orderId?: string | number } };
        return String(body.order?.orderId ?? '');
      },
    };
    const rows = (await Promise.all(SCENARIOS.map((s) => runScenario(s, ctx, watcher, opts.phaseTimeoutSec * 1000, abort.signal)))).flat();
    printer.summary(rows);
    const allHealed = rows.length === SCENARIOS.reduce((n, s) => n + s.phases.length, 0) && rows.every((r) => r.healed);
    // after the heals, the strategy's plans must execute again (a hold or gate that never clears fails the run)
    let resumed: TradingResumed | null = null;
    if (allHealed && !abort.signal.aborted) {
      const waiter = redis.duplicate();
      conns.push(waiter);
      resumed = await waitTradingResumed(waiter, await lastResultId(redis), 'demo-', opts.phaseTimeoutSec * 1000, abort.signal);
      printer.line(
        { type: 'resumed', ...(resumed ?? { plan_id: null }) },
        resumed
          ? `Trading resumed: strategy plan ${resumed.plan_id} executed (${resumed.symbol} ${resumed.side} ${resumed.filled_qty}) ${resumed.after_ms} ms after the heals.`
          : `No strategy plan executed within ${opts.phaseTimeoutSec} s after the heals: see REDIS_URL=${demoRedis.url} npx p3 status`,
      );
    }
    if (opts.json) {
      const orders = await fetch(`${paperUrl}/admin/orders`).then((r) => r.json());
      printer.line({ type: 'orders', orders }, '');
    }
    if (!opts.exit && !abort.signal.aborted) {
      const lines = [
        'The stack keeps running (Ctrl-C stops everything). Try, in another terminal:',
        `  open ${consoleServer.url} in a browser (the operator console; token ${consoleToken})`,
        `  REDIS_URL=${demoRedis.url} npx p3 status`,
        `  REDIS_URL=${demoRedis.url} npx p3 events --follow`,
        ...(envDir ? operatorLines(envDir).slice(1) : []),
        `  curl -s -XPOST ${paperUrl}/admin/trade -H 'content-type: application/json' -d '{"symbol":"BTCUSDT","side":"BUY","qty":"0.005"}'   # a manual trade: watch it hold and heal`,
        ...metrics.map((m) => `  curl -s ${m.url} | grep -v '^#' | head   # ${m.service}`),
      ];
      printer.line({ type: 'running', commands: lines.slice(1) }, lines.join('\n'));
      await Promise.race([waitForSignal(), new Promise((r) => abort.signal.addEventListener('abort', r, { once: true }))]);
    }
    abort.abort();
    await Promise.all([follow, poll, driver]);
    return allHealed && resumed !== null ? 0 : 1;
  } finally {
    abort.abort();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await consoleServer?.close().catch(() => undefined);
    await stopServices(running);
    for (const c of conns) c.disconnect();
    await paper?.close().catch(() => undefined);
    await demoRedis?.close();
    envDir?.remove();
    process.off('exit', killOnExit);
  }
}
