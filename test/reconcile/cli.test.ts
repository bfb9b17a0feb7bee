/**
 * The operator commands through the real `p3` binary: hold set/clear, ledger set, status, events,
 * and exit code 2 for bad values.
 */
import { execFile, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { createRedis } from '../../src/adapters/redis/client.js';
import { keys } from '../../src/adapters/redis/keys.js';
import { createReconcileEngineService } from '../../src/services/reconcile-engine/index.js';
import { parseReconcileEngineConfig } from '../../src/services/reconcile-engine/config.js';
import { ConfigError } from '../../src/config/env.js';
import { startTestRedis, waitFor, type TestRedis } from '../helpers/redis.js';
import { SYM, engineEnv, events, writeSnapshot } from './helpers.js';

const BIN = fileURLToPath(new URL('../../bin/p3.mjs', import.meta.url));
const run = promisify(execFile);

let srv: TestRedis;
let redis: Redis;
beforeAll(async () => {
  srv = await startTestRedis();
  redis = createRedis(srv.url, { name: 'test' });
});
afterAll(async () => {
  redis.disconnect();
  await srv.stop();
});

async function p3(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', REDIS_URL: srv.url, P3_ALLOWLIST: `${SYM},ETHUSDT,XRPUSDT,SOLUSDT`, ...env }, timeout: 30_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

describe('p3 reconcile commands', () => {
  it('hold set makes an operator hold the engine respects; status shows it; hold clear removes it', async () => {
    await redis.hset(keys.ledger(SYM), { ledger_amt: '0.007', ledger_side: 'LONG', version: '1', ts_epoch: '1' });
    await writeSnapshot(redis, SYM, '0.007', 'LONG');
    const set = await p3(['hold', 'set', 'btcusdt', '--ttl', '120', '--reason', 'investigating']);
    expect(set.code).toBe(0);
    expect(await redis.get(keys.hold(SYM))).toBe('1');
    expect(await redis.get(keys.holdReason(SYM))).toBe('investigating');
    expect(await redis.get(keys.holdSig(SYM))).toBeNull();
    expect(await redis.ttl(keys.hold(SYM))).toBeLessThanOrEqual(120);
    expect((await events(redis, 'HOLD_SET'))[0]).toMatchObject({ symbol: SYM, hold_owner: 'operator', reason: 'investigating' });

    const svc = await createReconcileEngineService(engineEnv(srv.url));
    try {
      await svc.engine.pass([SYM]);
      await svc.engine.pass([SYM]);
    } finally {
      await svc.stop();
    }
    expect(await redis.get(keys.hold(SYM))).toBe('1');
    expect(await events(redis, 'HOLD_SET')).toHaveLength(1); // the engine does not report p3's own hold again

    const st = await p3(['status', '--json'], { P34_ALLOWLIST: SYM });
    expect(st.code).toBe(0);
    const all = JSON.parse(st.stdout) as { symbols: Array<Record<string, unknown>>; services: { missing: string[] }; trading: { global: { state: string } } };
    const rows = all.symbols;
    expect(all.services.missing).toContain('reconcile-engine'); // no service runs in this test
    expect(all.trading.global.state).toBe('ACTIVE');
    expect(rows[0]).toMatchObject({ symbol: SYM, status: 'HOLD', reason: 'operator_hold', exchange_amt: '0.007', ledger_amt: '0.007', hold: { active: true, owner: 'operator', reason: 'investigating' } });
    const human = await p3(['status'], { P34_ALLOWLIST: SYM });
    expect(human.stdout).toMatch(/BTCUSDT\s+HOLD\s+operator_hold/);
    expect(human.stdout).toContain('p3 hold clear BTCUSDT');
    expect(human.stdout).toMatch(/Services \(heartbeats\):[\s\S]*reconcile-engine\s+MISSING/);
    expect(human.stdout).toMatch(/Trading state: global ACTIVE/);
    // never "allowed" while a hold stands or the services are not running
    expect(human.stdout).toMatch(/VERDICT: trading NOT fully allowed: .*service\(s\) not running: .*on hold: BTCUSDT/);

    const clear = await p3(['hold', 'clear', SYM]);
    expect(clear.code).toBe(0);
    expect(await redis.get(keys.hold(SYM))).toBeNull();
    expect(await redis.get(keys.holdReason(SYM))).toBeNull();
    expect(await events(redis, 'HOLD_CLEARED')).toHaveLength(1);
  });

  it('ledger set writes source operator, bumps the version, migrates a legacy ledger and emits LEDGER_SET', async () => {
    await redis.del(keys.ledger('ETHUSDT'));
    await redis.hset(keys.ledger('ETHUSDT'), { last_known_amt: '0.002', last_side: 'SELL', last_executed_qty: '0.0' });
    const r = await p3(['ledger', 'set', 'ETHUSDT', '-0.5', '--reason', 'exchange UI shows SHORT 0.5']);
    expect(r.code).toBe(0);
    expect(await redis.hgetall(keys.ledger('ETHUSDT'))).toMatchObject({ ledger_amt: '-0.5', ledger_side: 'SHORT', source: 'operator', version: '1' });
    expect(await redis.hget(keys.ledger('ETHUSDT'), 'last_known_amt')).toBeNull();
    expect((await events(redis, 'LEDGER_SET', 'ETHUSDT'))[0]).toMatchObject({ old_ledger_amt: '-0.002', new_ledger_amt: '-0.5', reason: 'exchange UI shows SHORT 0.5' });
    expect(await events(redis, 'LEDGER_MIGRATED', 'ETHUSDT')).toHaveLength(1);
    const ev = await p3(['events', '--symbol', 'ETHUSDT', '--count', '5']);
    expect(ev.stdout).toMatch(/LEDGER_SET\s+ETHUSDT/);
    expect(ev.stdout).not.toContain('BTCUSDT');
  });

  it('ledger set refuses an amount that disagrees with the fresh snapshot (a forgotten sign would sell the position) unless --force', async () => {
    await writeSnapshot(redis, 'XRPUSDT', '0.005', 'LONG');
    await redis.hset(keys.ledger('XRPUSDT'), { ledger_amt: '0.005', ledger_side: 'LONG', version: '4', ts_epoch: '1' });
    const typo = await p3(['ledger', 'set', 'XRPUSDT', '-0.005', '--reason', 'typo']);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(/refused: the exchange snapshot of XRPUSDT says 0.005 .* would HOLD XRPUSDT .*--force/);
    expect(await redis.hget(keys.ledger('XRPUSDT'), 'ledger_amt')).toBe('0.005');
    const ok = await p3(['ledger', 'set', 'XRPUSDT', '0.005', '--reason', 'same as exchange']);
    expect(ok.code).toBe(0);
    const forced = await p3(['ledger', 'set', 'XRPUSDT', '-0.005', '--reason', 'really', '--force']);
    expect(forced.code).toBe(0);
    expect(await redis.hget(keys.ledger('XRPUSDT'), 'ledger_amt')).toBe('-0.005');
  });

  it('events --follow prints new events as they come and exits 0 on SIGINT', async () => {
    const child = spawn(process.execPath, [BIN, 'events', '--follow', '--count', '0', '--symbol', 'SOLUSDT'], { env: { PATH: process.env.PATH ?? '', REDIS_URL: srv.url } });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      await waitFor(async () => {
        await p3(['hold', 'set', 'SOLUSDT', '--ttl', '30', '--reason', 'follow-test']);
        return out.includes('HOLD_SET');
      }, 30_000, 500, 'followed event');
      expect(out).toMatch(/HOLD_SET\s+SOLUSDT .*reason=follow-test/);
    } finally {
      child.kill('SIGINT');
    }
    expect(await exited).toBe(0);
  });

  it('bad values exit 2 naming the variable or argument', async () => {
    expect((await p3(['ledger', 'set', SYM, '0.1'])).code).toBe(2); // --reason is required
    const amt = await p3(['ledger', 'set', SYM, 'abc', '--reason', 'x']);
    expect(amt.code).toBe(2);
    expect(amt.stderr).toContain('AMOUNT');
    const ttl = await p3(['hold', 'set', SYM], { P34_HOLD_TTL_SEC: 'soon' });
    expect(ttl.code).toBe(2);
    expect(ttl.stderr).toContain('P34_HOLD_TTL_SEC');
    const run2 = await p3(['run', 'reconcile-engine'], { P34_LOOP_CADENCE_SEC: '-1' });
    expect(run2.code).toBe(2);
    expect(run2.stderr).toContain('P34_LOOP_CADENCE_SEC');
    const policy = await p3(['run', 'reconcile-engine'], { P34_HEAL_POLICY: 'step_down' });
    expect(policy.code).toBe(2);
    expect(policy.stderr).toContain('P34_HEAL_POLICY');
    const venue = await p3(['run', 'reconcile-engine'], { P34_VENUE_CLOSE_POLICY: 'flatten' });
    expect(venue.code).toBe(2);
    expect(venue.stderr).toContain('P34_VENUE_CLOSE_POLICY');
  });

  it('p3 flatten: usage errors exit 2; no operator key exits 2 naming P3_KEY_OPERATOR; a flatten is a signed FLATTEN plan with its request event', async () => {
    expect((await p3(['flatten', SYM])).code).toBe(2); // --reason is required
    expect((await p3(['flatten', '--reason', 'x'])).code).toBe(2); // no symbol, no --all
    expect((await p3(['flatten', SYM, '--all', '--reason', 'x'])).code).toBe(2);
    const nokey = await p3(['flatten', SYM, '--reason', 'x']);
    expect(nokey.code).toBe(2);
    expect(nokey.stderr).toContain('P3_KEY_OPERATOR');
    const r = await p3(['flatten', SYM, '--reason', 'cli test', '--wait', '0'], { P3_KEY_OPERATOR: 'op-key', USER: 'alice' });
    expect(r.code).toBe(0);
    const planId = /plan_id=(\S+)/.exec(r.stdout)?.[1];
    expect(planId).toMatch(/^flatten:BTCUSDT:/);
    const entries = await redis.xrange('quantum:stream:apply.flatten', '-', '+');
    const last = entries.at(-1)![1];
    const plan = JSON.parse(last[last.indexOf('plan') + 1]!) as Record<string, unknown>;
    expect(plan).toMatchObject({ plan_id: planId, decision: 'FLATTEN', action: 'FLATTEN', source: 'operator', reduceOnly: true, type: 'MARKET', symbol: SYM });
    expect(String(plan.reason)).toMatch(/^cli:.*: cli test$/);
    expect(await events(redis, 'FLATTEN_REQUESTED')).toHaveLength(1);
  });

  it('engine config: defaults, allowlist fallback, close enablement rule', () => {
    const c = parseReconcileEngineConfig({ P3_ALLOWLIST: 'btcusdt, ethusdt' });
    expect(c).toMatchObject({ allowlist: ['BTCUSDT', 'ETHUSDT'], cadenceSec: 1, holdTtlSec: 900, metricsPort: 8046, closeCooldownSec: 120 });
    expect(c.decision).toMatchObject({ freshnessSec: 10, driftTolerancePct: '1.0', evidenceWindowSec: 300, graceMs: 3000, closeEnabled: false });
    expect(parseReconcileEngineConfig({ P34_ALLOWLIST: 'SOLUSDT', P3_ALLOWLIST: 'BTCUSDT' }).allowlist).toEqual(['SOLUSDT']);
    expect(parseReconcileEngineConfig({ P34_LOG_LEVEL: 'INFO' }).logLevel).toBe('info');
    // no exchange variables: where the closes would go is unknown, so they default off
    expect(parseReconcileEngineConfig({ P3_KEY_P3_4: 'k' }).decision.closeEnabled).toBe(false);
    expect(parseReconcileEngineConfig({ P3_KEY_P3_4: 'k', EXCHANGE: 'paper', EXCHANGE_BASE_URL: 'http://127.0.0.1:8900' }).decision.closeEnabled).toBe(true);
    expect(parseReconcileEngineConfig({ P3_KEY_P3_4: 'k', EXCHANGE: 'binanceusdm', EXCHANGE_BASE_URL: 'https://fapi.binance.com' }).decision.closeEnabled).toBe(false);
    expect(parseReconcileEngineConfig({ P3_KEY_P3_4: 'k', EXCHANGE: 'binanceusdm', EXCHANGE_BASE_URL: 'https://testnet.binancefuture.com' }).decision.closeEnabled).toBe(true);
    expect(parseReconcileEngineConfig({ P3_KEY_P3_4: 'k', EXCHANGE: 'binanceusdm', EXCHANGE_DEMO: 'true' }).decision.closeEnabled).toBe(true);
    expect(parseReconcileEngineConfig({ P3_KEY_P3_4: 'k', EXCHANGE: 'binanceusdm', EXCHANGE_DEMO: 'false' }).decision.closeEnabled).toBe(false);
    expect(parseReconcileEngineConfig({ P3_KEY_P3_4: 'k', EXCHANGE: 'binanceusdm', P34_RECONCILE_CLOSE_ENABLED: 'true' }).decision.closeEnabled).toBe(true);
    expect(() => parseReconcileEngineConfig({ P34_RECONCILE_CLOSE_ENABLED: 'true' })).toThrow(ConfigError);
    expect(() => parseReconcileEngineConfig({ P34_RECONCILE_CLOSE_ENABLED: 'maybe', P3_KEY_P3_4: 'k' })).toThrow(/P34_RECONCILE_CLOSE_ENABLED/);
    expect(() => parseReconcileEngineConfig({ P34_QTY_DRIFT_TOLERANCE_PCT: '-1' })).toThrow(/P34_QTY_DRIFT_TOLERANCE_PCT/);
    expect(() => parseReconcileEngineConfig({ P3_QTY_TOLERANCE_ABS_BTCUSDT: 'x' })).toThrow(/P3_QTY_TOLERANCE_ABS_BTCUSDT/);
    expect(() => parseReconcileEngineConfig({ P34_ALLOWLIST: 'BTC-USDT' })).toThrow(/P34_ALLOWLIST/);
    expect(c.decision.healPolicy).toBe('flatten');
    expect(parseReconcileEngineConfig({ P34_HEAL_POLICY: ' Adopt ' }).decision.healPolicy).toBe('adopt');
    expect(parseReconcileEngineConfig({}).decision.venue).toMatchObject({ closePolicy: 'adopt', gapMaxMs: 15000, settleMs: 1000 });
    expect(parseReconcileEngineConfig({ P34_VENUE_CLOSE_POLICY: ' HOLD ' }).decision.venue?.closePolicy).toBe('hold');
    expect(parseReconcileEngineConfig({ P34_VENUE_EVIDENCE: 'false' }).decision.venue).toBeUndefined();
    expect(parseReconcileEngineConfig({ P34_HEAL_POLICY: 'hold' }).decision.healPolicy).toBe('hold');
    expect(() => parseReconcileEngineConfig({ P34_HEAL_POLICY: 'min' })).toThrow(/P34_HEAL_POLICY/);
  });
});

describe('events --follow across a Redis outage', () => {
  it('keeps following after Redis was down for 2 s (the CLI connection gave up meanwhile) and still exits 0 on SIGINT', async () => {
    const own = await startTestRedis();
    const child = spawn(process.execPath, [BIN, 'events', '--follow', '--count', '0', '--symbol', 'SOLUSDT'], { env: { PATH: process.env.PATH ?? '', REDIS_URL: own.url } });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      await new Promise((r) => setTimeout(r, 1500)); // following
      await own.restart(2000); // longer than the CLI's few reconnect attempts: its connection ends
      // before the fix the loop spun on "Connection is closed." (never yielding: no event, no SIGINT)
      await waitFor(async () => {
        await run(process.execPath, [BIN, 'hold', 'set', 'SOLUSDT', '--ttl', '30', '--reason', 'after-outage'], { env: { PATH: process.env.PATH ?? '', REDIS_URL: own.url, P3_ALLOWLIST: 'SOLUSDT' } }).catch(() => undefined);
        return out.includes('after-outage');
      }, 30_000, 1000, 'event followed after the outage');
    } finally {
      child.kill('SIGINT');
    }
    const killer = setTimeout(() => child.kill('SIGKILL'), 10_000); // never leave a spinning process behind
    expect(await exited).toBe(0);
    clearTimeout(killer);
    await own.stop();
  }, 60_000);
});
