/**
 * Recovery figure (docs/performance.md, "Recovery after kill -9"): time from a RECONCILE_CLOSE published to its result while apply layers
 * are killed with `kill -9`. Run: `npx tsx bench/recovery.ts [--rounds N] [--json]`.
 *
 * Two apply layers run as child processes (`p3 run apply-layer`, testnet mode against an in-process
 * paper exchange, a private redis-server). Each round publishes one signed close for a held drift (three
 * symbols in turn; every third round with 1-3 s of exchange latency on orders, so kills land mid-send),
 * then after a random 0-400 ms kills with SIGKILL the apply layer holding the entry (or a random one) and
 * starts a replacement under a NEW instance name (pid-based names, as the env examples leave
 * `P3_INSTANCE_ID` unset). Measured: published → result entry, per round. Checked: at most one exchange
 * order per plan; at the end, how many consumers the close group still lists (dead ones are deleted).
 * Prints `{n, p50, p99, max}` in ms. Timing lives here, never in tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { openSync } from 'node:fs';
import { createRedis } from '../src/adapters/redis/client.js';
import { STREAMS, keys } from '../src/adapters/redis/keys.js';
import { fieldsToObject } from '../src/adapters/redis/consumer.js';
import { groupConsumers } from '../src/adapters/redis/consumer-liveness.js';
import { clientOrderIdFor } from '../src/domain/apply.js';
import { signPlan, type PlanInput } from '../src/domain/plan.js';
import { startPaperExchange } from '../harness/paper-exchange/index.js';
import { sleep } from '../src/lib/sleep.js';
import { fromRoot } from '../src/lib/root.js';
import { startBenchRedis } from './lib/redis.js';
import { summarize } from './lib/stats.js';

/** Set BENCH_LOG_DIR to keep each apply layer's log (info level) there. */
const LOG_DIR = process.env.BENCH_LOG_DIR;
const BIN = fromRoot('bin/p3.mjs');
const P34_KEY = randomBytes(32).toString('hex');
const SYMBOLS = ['BTCUSDT', 'ETHUSDT', 'SOLUSDT'];
const GROUP = 'apply-close';

const args = process.argv.slice(2);
const rounds = Number(args[args.indexOf('--rounds') + 1] ?? 20) || 20;
const json = args.includes('--json');

async function main(): Promise<void> {
  const rs = await startBenchRedis();
  const paper = await startPaperExchange({ symbols: SYMBOLS, positions: {} });
  const redis = createRedis(rs.url, { name: 'bench-recovery' });
  await redis.xgroup('CREATE', STREAMS.reconcileClose, GROUP, '$', 'MKSTREAM');
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '/tmp',
    REDIS_URL: rs.url,
    P3_ALLOWLIST: SYMBOLS.join(','),
    APPLY_MODE: 'testnet',
    APPLY_LOG_LEVEL: process.env.BENCH_LOG_DIR ? 'info' : 'warn',
    APPLY_PROMETHEUS_PORT: '0',
    EXCHANGE: 'paper',
    EXCHANGE_BASE_URL: paper.url,
    EXCHANGE_API_KEY: paper.apiKey,
    EXCHANGE_API_SECRET: paper.apiSecret,
    P3_KEY_P3_4: P34_KEY,
    // the apply layer refuses to start without both permit keys (it verifies every permit with them)
    P3_KEY_GOVERNOR: randomBytes(32).toString('hex'),
    P3_KEY_P33: randomBytes(32).toString('hex'),
  };
  let gen = 0;
  const spawnApply = (): { name: string; proc: ChildProcess } => {
    const name = `bench-apply-${++gen}`;
    return { name, proc: spawn(process.execPath, [BIN, 'run', 'apply-layer'], { env: { ...env, P3_INSTANCE_ID: name }, stdio: LOG_DIR ? ['ignore', openSync(`${LOG_DIR}/${name}.log`, 'a'), openSync(`${LOG_DIR}/${name}.log`, 'a')] : 'ignore' }) };
  };
  const running = [spawnApply(), spawnApply()];
  const leased = (name: string) => redis.exists(keys.consumerLease(STREAMS.reconcileClose, GROUP, name));
  for (const a of running) while ((await leased(a.name)) !== 1) await sleep(50);

  const samples: number[] = [];
  const violations: string[] = [];
  for (let i = 0; i < rounds; i++) {
    // one kill at a time: both apply layers run before each round (systemd restarts a killed one)
    for (const a of running) while ((await leased(a.name)) !== 1) await sleep(50);
    const sym = SYMBOLS[i % SYMBOLS.length]!;
    const amt = (0.007 + 0.001 * i).toFixed(3);
    await fetch(`${paper.url}/admin/positions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ symbol: sym, amount: amt }) });
    const sig = `bench-sig-${i}`;
    await redis.multi().set(keys.hold(sym), '1', 'EX', 300).set(keys.holdReason(sym), 'qty_mismatch_no_evidence', 'EX', 300).set(keys.holdSig(sym), sig, 'EX', 300).exec();
    if (i % 3 === 2) {
      await fetch(`${paper.url}/admin/faults`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ kind: 'latency', latency_ms: 1000 + Math.floor(Math.random() * 2000), endpoints: ['order'], count: 1 }) });
    }
    const planId = `bench-recovery-${process.pid}-${i}`;
    const plan = { plan_id: planId, symbol: sym, decision: 'RECONCILE_CLOSE', action: 'RECONCILE_CLOSE', side: 'SELL', qty: amt, type: 'MARKET', reduceOnly: true, reason: 'reconcile_drift', source: 'p3.4', ts_ms: Date.now(), drift_sig: sig } as PlanInput;
    const f = signPlan(plan, P34_KEY);
    const t0 = Date.now();
    const entryId = (await redis.xadd(STREAMS.reconcileClose, '*', 'plan', f.plan, 'mac', f.mac)) as string;
    await sleep(Math.floor(Math.random() * 400));
    // kill the apply layer holding the entry (if any holds it yet), else a random one
    const pend = (await redis.call('XPENDING', STREAMS.reconcileClose, GROUP, '-', '+', 10)) as Array<[string, string]>;
    const owner = pend.find(([id]) => id === entryId)?.[1];
    const idx = Math.max(0, owner ? running.findIndex((a) => a.name === owner) : Math.floor(Math.random() * 2));
    running[idx]!.proc.kill('SIGKILL');
    running[idx] = spawnApply();
    let result: Record<string, string> | null = null;
    while (!result && Date.now() - t0 < 120_000) {
      const rows = await redis.xrevrange(STREAMS.applyResult, '+', '-', 'COUNT', 50);
      result = rows.map(([, fl]) => fieldsToObject(fl)).find((r) => r.plan_id === planId) ?? null;
      if (!result) await sleep(20);
    }
    const took = Date.now() - t0;
    samples.push(took);
    const orders = ((await (await fetch(`${paper.url}/admin/orders`)).json()) as Array<{ clientOrderId: string }>).filter((o) => o.clientOrderId === clientOrderIdFor(planId));
    if (orders.length > 1) violations.push(`${planId}: ${orders.length} orders`);
    if (!json) console.log(`round ${i + 1}/${rounds} ${sym}: ${result ? `${result.status}${result.reason ? ` ${result.reason}` : ''}` : 'NO RESULT'} in ${took} ms (killed ${owner ? 'the owner' : 'a random one'})`);
    await fetch(`${paper.url}/admin/faults`, { method: 'DELETE' });
    await redis.del(keys.hold(sym), keys.holdSig(sym), keys.holdReason(sym));
  }
  await sleep(8000); // let the replacements reap the dead consumers
  const consumers = (await groupConsumers(redis, STREAMS.reconcileClose, GROUP)).map((c) => c.name);
  const out = { close_published_to_result_ms: summarize(samples), kills: rounds, consumers_left: consumers, violations };
  console.log(json ? JSON.stringify(out) : JSON.stringify(out, null, 2));
  for (const a of running) a.proc.kill('SIGKILL');
  redis.disconnect();
  await paper.close();
  await rs.stop();
  process.exit(violations.length ? 1 : 0);
}

await main();
