/** `p3 plan submit` and `p3 trading-state` as a person runs them: the real CLI in a child process. */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { createRedis } from '../../src/adapters/redis/client.js';
import { STREAMS, keys } from '../../src/adapters/redis/keys.js';
import { verifyPlanEntry, envKeyLookup, planDigest } from '../../src/domain/plan.js';
import { startTestRedis, type TestRedis } from '../helpers/redis.js';

let srv: TestRedis;
let redis: Redis;
beforeAll(async () => {
  srv = await startTestRedis();
  redis = createRedis(srv.url, { name: 'test' });
});
afterAll(async () => {
  redis?.disconnect();
  await srv?.stop();
});

function p3(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const clean: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('P3_KEY_')) clean[k] = v;
  return new Promise((resolve) => {
    // the operator's allowlist (commands refuse a symbol outside it, or any symbol without one)
    const child = spawn(process.execPath, ['bin/p3.mjs', ...args], { env: { ...clean, REDIS_URL: srv.url, P3_ALLOWLIST: 'BTCUSDT,ETHUSDT', ...env }, cwd: process.cwd() });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('p3 plan submit', () => {
  it('prints the plan id of a signed exit plan on quantum:stream:apply.plan', async () => {
    const r = await p3(['plan', 'submit', '--symbol', 'BTCUSDT', '--action', 'PARTIAL_75', '--kill-score', '0.539', '--plan-id', '86c8756d'], { P3_KEY_EXIT_BRAIN: 'k1' });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe('86c8756d');
    const rows = (await redis.xrange(STREAMS.applyPlan, '-', '+')) as Array<[string, string[]]>;
    expect(rows).toHaveLength(1);
    const f = rows[0]![1];
    const fields = { [f[0] as string]: f[1] as string, [f[2] as string]: f[3] as string };
    const v = verifyPlanEntry(fields, envKeyLookup({ P3_KEY_EXIT_BRAIN: 'k1' }));
    expect(v.ok && v.plan).toMatchObject({ plan_id: '86c8756d', symbol: 'BTCUSDT', action: 'PARTIAL_75', decision: 'EXECUTE', reduceOnly: true, source: 'exit_brain', kill_score: 0.539 });
  });
  it('generates a plan id and signs with P3_KEY_<SOURCE> of --source', async () => {
    const r = await p3(['plan', 'submit', '--symbol', 'ethusdt', '--action', 'FULL_CLOSE', '--source', 'p3.4'], { P3_KEY_P3_4: 'k2' });
    expect(r.code).toBe(0);
    const id = r.stdout.trim();
    expect(id).toMatch(/^[0-9a-f]{16}$/);
    const rows = (await redis.xrevrange(STREAMS.applyPlan, '+', '-', 'COUNT', 1)) as Array<[string, string[]]>;
    const f = rows[0]![1];
    const v = verifyPlanEntry({ plan: f[1] as string, mac: f[3] as string }, envKeyLookup({ P3_KEY_P3_4: 'k2' }));
    expect(v.ok && v.plan.plan_id).toBe(id);
    expect(v.ok && v.plan.symbol).toBe('ETHUSDT');
  });
  it('a non-finite or absurd size or kill score exits 2 naming the rule, and submits nothing', async () => {
    const before = await redis.xlen(STREAMS.applyPlan);
    for (const [args, why] of [
      [['--action', 'REDUCE', '--qty', '1e9000000000000001'], /qty must be a plain decimal/],
      [['--action', 'REDUCE', '--qty', '1000000001'], /qty must be <= 1000000000/],
      [['--action', 'OPEN', '--side', 'BUY', '--notional', '1e13'], /notional_usd must be a plain decimal/],
      [['--action', 'FULL_CLOSE', '--kill-score', '1e300'], /kill_score must be within/],
    ] as Array<[string[], RegExp]>) {
      const r = await p3(['plan', 'submit', '--symbol', 'BTCUSDT', ...args], { P3_KEY_EXIT_BRAIN: 'k1' });
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(why);
    }
    expect(await redis.xlen(STREAMS.applyPlan)).toBe(before);
  });
  it('a missing key exits 2 naming the variable, and submits nothing', async () => {
    const before = await redis.xlen(STREAMS.applyPlan);
    const r = await p3(['plan', 'submit', '--symbol', 'BTCUSDT', '--action', 'FULL_CLOSE'], {});
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('P3_KEY_EXIT_BRAIN');
    expect(await redis.xlen(STREAMS.applyPlan)).toBe(before);
  });
  it('a bad action exits 2', async () => {
    const r = await p3(['plan', 'submit', '--symbol', 'BTCUSDT', '--action', 'OPEN_LONG'], { P3_KEY_EXIT_BRAIN: 'k1' });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('FULL_CLOSE');
  });
});

describe('p3 trading-state', () => {
  it('sets a symbol and the global state, records events, and shows them', async () => {
    let r = await p3(['trading-state', 'set', 'BTCUSDT', 'REDUCING', '--reason', 'wind down'], {});
    expect(r.code).toBe(0);
    r = await p3(['trading-state', 'set', 'halted', '--reason', 'incident 42'], {});
    expect(r.code).toBe(0);
    expect(await redis.hgetall(keys.tradingState('BTCUSDT'))).toMatchObject({ state: 'REDUCING', reason: 'wind down' });
    expect(await redis.hgetall(keys.tradingState())).toMatchObject({ state: 'HALTED', reason: 'incident 42' });
    expect(await redis.xlen(STREAMS.governorEvents)).toBe(2);
    r = await p3(['trading-state', 'show'], {});
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('global: HALTED reason="incident 42"');
    expect(r.stdout).toContain('BTCUSDT: REDUCING reason="wind down"');
  });
  it('a bad state exits 2', async () => {
    const r = await p3(['trading-state', 'set', 'BTCUSDT', 'PAUSED', '--reason', 'x'], {});
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('ACTIVE, REDUCING, HALTED');
  });
});

describe('p3 plan show', () => {
  it('shows a plan\'s permits, results and dead letters; exits 1 for an unknown plan', async () => {
    const r = await p3(['plan', 'submit', '--symbol', 'ETHUSDT', '--action', 'PARTIAL_50', '--plan-id', 'trace-1'], { P3_KEY_EXIT_BRAIN: 'k1' });
    expect(r.code).toBe(0);
    const [eid, ef] = ((await redis.xrevrange(STREAMS.applyPlan, '+', '-', 'COUNT', 1)) as Array<[string, string[]]>)[0]!;
    const planJson = ef[ef.indexOf('plan') + 1] as string;
    await redis.hset(keys.permitGovernor('trace-1'), { decision: 'ALLOW', reason: 'ok', qty: '0.5', side: 'SELL', context: '{}', entry_id: eid, plan_digest: planDigest(planJson) });
    await redis.hset(keys.permitP33('trace-1'), { decision: 'DENY', reason: 'reconcile_hold_active', context: '{}' });
    await redis.xadd(STREAMS.applyResult, '*', 'plan_id', 'trace-1', 'symbol', 'ETHUSDT', 'status', 'SKIPPED', 'reason', 'reconcile_hold_active');
    const show = await p3(['plan', 'show', 'trace-1'], {});
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(/submitted\s+quantum:stream:apply\.plan \d+-\d+/);
    expect(show.stdout).toMatch(/permit governor ALLOW reason=ok qty=0\.5 side=SELL/);
    expect(show.stdout).toMatch(/permit p33\s+DENY reason=reconcile_hold_active payload=unbound/);
    expect(show.stdout).toMatch(new RegExp(`permit governor ALLOW .* entry=${eid} payload=same`));
    expect(show.stdout).toMatch(/result\s+SKIPPED reason=reconcile_hold_active/);
    const json = JSON.parse((await p3(['plan', 'show', 'trace-1', '--json'], {})).stdout) as { results: unknown[] };
    expect(json.results).toHaveLength(1);
    const none = await p3(['plan', 'show', 'no-such-plan'], {});
    expect(none.code).toBe(1);
    expect(none.stdout).toMatch(/not found/);
  });
});
