/**
 * The main job end to end: `p3 demo --exit --json` against a private Redis. Asserts from Redis and from
 * the paper exchange's order log that every scenario healed, that exactly the expected close orders
 * were sent, and that no plan order reached the exchange while its symbol was held.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fieldsToObject } from '../../src/adapters/redis/consumer.js';
import { STREAMS, keys } from '../../src/adapters/redis/keys.js';
import { freePort, startTestRedis, type TestRedis } from '../helpers/redis.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  lines: Array<Record<string, unknown>>;
}

function runP3(args: string[], env: Record<string, string>, onLine?: (l: Record<string, unknown>, child: ReturnType<typeof spawn>) => void): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['bin/p3.mjs', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const lines: Array<Record<string, unknown>> = [];
    let buf = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        try {
          const o = JSON.parse(line) as Record<string, unknown>;
          lines.push(o);
          onLine?.(o, child);
        } catch {
          /* not JSON */
        }
      }
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr, lines }));
  });
}

let srv: TestRedis;
beforeAll(async () => {
  srv = await startTestRedis();
});
afterAll(async () => {
  await srv.stop();
});

describe('p3 demo --exit --json', () => {
  it('heals every scenario with exactly the expected close orders and no plan executed while held', async () => {
    // while it runs, an operator's shell uses what the demo printed: p3 status, and p3 doctor on its env files
    let beside: Promise<{ doctor: Run; status: Run }> | null = null;
    const run = await runP3(['demo', '--exit', '--json', '--phase-timeout', '45'], { REDIS_URL: srv.url }, (l) => {
      if (l.type !== 'operator' || beside) return;
      const o = l as { env_dir: string; env: Record<string, string> };
      const shell = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' };
      beside = Promise.all([runP3(['doctor', '--json', '--env-dir', o.env_dir], shell), runP3(['status'], { ...shell, ...o.env })]).then(([doctor, status]) => ({ doctor, status }));
    });
    expect(run.code, run.stderr).toBe(0);
    const operator = run.lines.find((l) => l.type === 'operator') as { env_dir: string; env: Record<string, string> };
    expect(operator.env).toMatchObject({ REDIS_URL: expect.stringMatching(/^redis:\/\//), P3_ALLOWLIST: expect.stringContaining('BTCUSDT'), P3_KEY_OPERATOR: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(existsSync(operator.env_dir)).toBe(false); // removed with the demo (it holds keys)
    const { doctor, status } = await (beside as unknown as Promise<{ doctor: Run; status: Run }>);
    expect(status.code, status.stderr).toBe(0);
    const checks = JSON.parse(doctor.stdout) as { checks: Array<{ check: string; status: string; detail: string }> };
    expect(checks.checks.filter((x) => x.check.startsWith('config:'))).toHaveLength(4);
    for (const c of checks.checks.filter((x) => /^(redis|config:.*|keys|endpoints|secrets)$/.test(x.check))) expect(c.status, `${c.check}: ${c.detail}`).not.toBe('FAIL');
    const start = run.lines.find((l) => l.type === 'start') as { redis_url: string };
    const summary = run.lines.find((l) => l.type === 'summary') as { all_healed: boolean; scenarios: Array<{ scenario: string; healed: boolean; closes: string[] }> };
    const orders = (run.lines.find((l) => l.type === 'orders') as { orders: Array<Record<string, unknown>> }).orders;
    expect(summary.all_healed).toBe(true);
    // after the heals the strategy's plans execute again (the demo waits for one)
    expect(run.lines.find((l) => l.type === 'resumed')).toMatchObject({ plan_id: expect.stringMatching(/^demo-/), filled_qty: expect.stringMatching(/^[0-9.]+$/) });
    expect(summary.scenarios.map((s) => s.scenario)).toEqual(['seed000', 'seed004 1/2', 'seed004 2/2', 'lost_ledger_update']);
    // The demo used its own database of our private Redis, marked as the demo's.
    expect(start.redis_url).toMatch(/^redis:\/\/127\.0\.0\.1:\d+\/\d+$/);
    // The operator console was started and its URL printed.
    expect(run.lines.find((l) => l.type === 'console')).toMatchObject({ url: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+\/$/) });
    const redis = new Redis(start.redis_url);
    try {
      for (const sym of ['BTCUSDT', 'ETHUSDT', 'BNBUSDT']) {
        expect(await redis.exists(keys.hold(sym))).toBe(0);
        expect(['OK', 'REPAIRED']).toContain(await redis.hget(keys.reconcileState(sym), 'status'));
      }
      const results = (await redis.xrange(STREAMS.applyResult, '-', '+')).map(([, f]) => fieldsToObject(f));
      const closes = results.filter((r) => r.decision === 'RECONCILE_CLOSE' && r.status === 'EXECUTED');
      expect(closes.map((c) => `${c.symbol} ${c.side} ${c.filled_qty}`).sort()).toEqual(['BTCUSDT SELL 0.007', 'ETHUSDT SELL 0.016', 'ETHUSDT SELL 0.044']);
      // Exactly one exchange order per close, reduce-only and filled; no other close orders.
      const closeIds = new Set(closes.map((c) => c.client_order_id));
      for (const id of closeIds) {
        const o = orders.filter((x) => x.clientOrderId === id);
        expect(o).toHaveLength(1);
        expect(o[0]).toMatchObject({ reduceOnly: true, status: 'FILLED' });
      }
      const closeResultsAll = results.filter((r) => r.decision === 'RECONCILE_CLOSE' && r.client_order_id);
      expect(new Set(closeResultsAll.map((r) => r.client_order_id)).size).toBe(3);
      // No plan order reached the exchange while its symbol was held (hold intervals from the events stream).
      const events = (await redis.xrange(STREAMS.reconcileEvents, '-', '+')).map(([, f]) => fieldsToObject(f));
      const intervals: Record<string, Array<[number, number]>> = {};
      const open: Record<string, number> = {};
      for (const e of events) {
        const sym = e.symbol ?? '';
        if (e.event === 'HOLD_SET' && open[sym] === undefined) open[sym] = Number(e.ts_ms);
        if (e.event === 'HOLD_CLEARED' && open[sym] !== undefined) {
          (intervals[sym] ??= []).push([open[sym] as number, Number(e.ts_ms)]);
          delete open[sym];
        }
      }
      expect(Object.keys(open)).toEqual([]);
      expect((intervals.BTCUSDT ?? []).length).toBeGreaterThanOrEqual(1);
      expect((intervals.ETHUSDT ?? []).length).toBeGreaterThanOrEqual(2);
      const planOrders = orders.filter((o) => !closeIds.has(String(o.clientOrderId)) && String(o.clientOrderId).startsWith('p3-'));
      expect(planOrders.length).toBeGreaterThan(0);
      for (const o of planOrders) {
        for (const [a, b] of intervals[String(o.symbol)] ?? []) {
          const t = Number(o.ts_ms);
          expect(t > a && t < b, `plan order ${String(o.clientOrderId)} at ${t} inside hold [${a}, ${b}] of ${String(o.symbol)}`).toBe(false);
        }
      }
      // The seeds' legacy ledgers were migrated on the first canonical write.
      expect(await redis.hget(keys.ledger('BTCUSDT'), 'last_known_amt')).toBeNull();
      expect(await redis.hget(keys.ledger('BTCUSDT'), 'ledger_amt')).not.toBeNull();
    } finally {
      redis.disconnect();
    }
  }, 180_000);

  it('without a reachable Redis it starts a private redis-server and Ctrl-C removes it and its folder', async () => {
    const deadPort = await freePort();
    let redisDir = '';
    let consoleUrl = '';
    let consoleSymbols: unknown = null;
    const run = await runP3(['demo', '--json', '--phase-timeout', '45', '--console-port', '0'], { REDIS_URL: `redis://127.0.0.1:${deadPort}` }, (l, child) => {
      if (l.type === 'start') redisDir = String((l.redis as string).match(/in (\S+) /)?.[1] ?? '');
      if (l.type === 'console') consoleUrl = String(l.url);
      if (l.type === 'running') {
        // the console answers while the stack keeps running
        void fetch(`${consoleUrl}api/symbols`)
          .then((r) => r.json())
          .then((b: { symbols: Array<{ symbol: string; status: string }> }) => (consoleSymbols = b.symbols.map((x) => x.symbol)))
          .finally(() => child.kill('SIGINT'));
      }
    });
    expect(consoleSymbols).toEqual(['BTCUSDT', 'ETHUSDT', 'BNBUSDT']);
    expect(run.code, run.stderr).toBe(0);
    expect(redisDir).toMatch(/p3-demo-redis-/);
    expect(existsSync(redisDir)).toBe(false);
    const summary = run.lines.find((l) => l.type === 'summary') as { all_healed: boolean };
    expect(summary.all_healed).toBe(true);
    // after the heals the strategy's plans execute again (the demo waits for one)
    expect(run.lines.find((l) => l.type === 'resumed')).toMatchObject({ plan_id: expect.stringMatching(/^demo-/), filled_qty: expect.stringMatching(/^[0-9.]+$/) });
  }, 180_000);

  it('with no Redis and no redis-server on PATH it exits 2 saying how to get one', async () => {
    const deadPort = await freePort();
    const run = await runP3(['demo', '--exit'], { REDIS_URL: `redis://127.0.0.1:${deadPort}`, PATH: '/nonexistent' });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/redis-server is not on PATH.*apt-get install -y redis-server.*REDIS_URL/s);
  }, 60_000);
});
