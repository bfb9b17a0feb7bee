/**
 * Each generated ACL user can do its job and nothing else. The strategy may add plans and read
 * results, but is refused (NOPERM) when it sets or deletes a hold, writes a permit, the ledger or the
 * close stream, directly or through a Lua script. Service users cannot write what another service owns.
 * The seeds' runbook `redis-cli` commands and the `p3` operator commands work as `p3-operator`.
 */
import { spawn, spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { STREAMS, keys } from '../../src/adapters/redis/keys.js';
import { permitWrite } from '../../src/adapters/redis/scripts/index.js';
import { submitPlan } from '../../src/plans/submit.js';
import { startAclRedis, type AclRedis } from './helpers.js';

const KEY = 'least-privilege-exit-key-0123456789';
let acl: AclRedis;
let strategy: Redis;

beforeAll(async () => {
  acl = await startAclRedis();
  strategy = acl.connect('p3-strategy');
});
afterAll(async () => {
  await acl?.stop();
});

const NOPERM = /NOPERM/;
/** Inside a Lua script Redis 7.0 reports an ACL refusal as `ERR The user executing the script can't run this command`. */
const REFUSED = /NOPERM|user executing the script can't/;

describe('p3-strategy', () => {
  it('submits plans (src/plans/submit.ts) and reads results and the plan dead letters', async () => {
    const planId = await submitPlan(strategy, { symbol: 'BTCUSDT', action: 'FULL_CLOSE' }, KEY);
    const admin = acl.connect('p3-admin');
    const [[, f]] = (await admin.xrevrange(STREAMS.applyPlan, '+', '-', 'COUNT', 1)) as [[string, string[]]];
    expect(f[1]).toContain(planId);
    await admin.xadd(STREAMS.applyResult, '*', 'plan_id', planId, 'status', 'EXECUTED');
    const results = await strategy.xrevrange(STREAMS.applyResult, '+', '-', 'COUNT', 10);
    expect(results.some(([, r]) => r.includes(planId))).toBe(true);
    expect(await strategy.xlen(`${STREAMS.applyPlan}.dlq`)).toBe(0);
  });

  it('is refused (NOPERM) a hold, a permit, the ledger, the close stream, results and everything else', async () => {
    const s = strategy;
    await expect(s.set(keys.hold('BTCUSDT'), '1', 'EX', 900)).rejects.toThrow(NOPERM);
    await expect(s.setex(keys.hold('BTCUSDT'), 300, '1')).rejects.toThrow(NOPERM);
    await expect(s.del(keys.hold('BTCUSDT'))).rejects.toThrow(NOPERM);
    await expect(s.del(keys.holdReason('BTCUSDT'), keys.holdSig('BTCUSDT'))).rejects.toThrow(NOPERM);
    await expect(s.hset(keys.permitGovernor('p1'), 'decision', 'ALLOW')).rejects.toThrow(NOPERM);
    await expect(s.hset(keys.permitP33('p1'), 'decision', 'ALLOW')).rejects.toThrow(NOPERM);
    await expect(s.hset(keys.ledger('BTCUSDT'), 'ledger_amt', '0')).rejects.toThrow(NOPERM);
    await expect(s.hset(keys.legacyLedger004('BTCUSDT'), 'ledger_amount', '0')).rejects.toThrow(NOPERM);
    await expect(s.xadd(STREAMS.reconcileClose, '*', 'plan', '{}', 'mac', 'x')).rejects.toThrow(NOPERM);
    await expect(s.xadd(STREAMS.applyFlatten, '*', 'plan', '{}', 'mac', 'x')).rejects.toThrow(NOPERM);
    await expect(s.xadd(STREAMS.applyResult, '*', 'plan_id', 'p1', 'status', 'EXECUTED')).rejects.toThrow(NOPERM);
    await expect(s.hgetall(keys.snapshot('BTCUSDT'))).rejects.toThrow(NOPERM);
    await expect(s.hset(keys.tradingState(), 'state', 'ACTIVE')).rejects.toThrow(NOPERM);
    await expect(s.xtrim(STREAMS.applyPlan, 'MAXLEN', 0)).rejects.toThrow(NOPERM);
    await expect(s.call('XGROUP', 'CREATE', STREAMS.applyPlan, 'mine', '0')).rejects.toThrow(NOPERM);
    // not through a Lua script either
    await expect(s.eval("return redis.call('SET', KEYS[1], '1')", 1, keys.hold('BTCUSDT'))).rejects.toThrow(NOPERM);
    await expect(permitWrite(s, keys.permitGovernor('p1'), 60, { decision: 'ALLOW' })).rejects.toThrow(NOPERM);
    await expect(s.call('FLUSHALL')).rejects.toThrow(NOPERM);
    await expect(s.call('CONFIG', 'SET', 'appendonly', 'no')).rejects.toThrow(NOPERM);
    await expect(s.call('ACL', 'SETUSER', 'p3-strategy', '+@all')).rejects.toThrow(NOPERM);
  });
});

describe('service users', () => {
  it('only the issuer writes its permits; the engine sends no order, holds only change TTL from the apply layer', async () => {
    const gov = acl.connect('p3-governor');
    const brain = acl.connect('p3-brain');
    const engine = acl.connect('p3-engine');
    const apply = acl.connect('p3-apply');
    expect(await permitWrite(gov, keys.permitGovernor('p2'), 60, { decision: 'DENY' })).toBe('written');
    await expect(permitWrite(gov, keys.permitP33('p2'), 60, { decision: 'ALLOW' })).rejects.toThrow(NOPERM);
    expect(await permitWrite(brain, keys.permitP33('p2'), 60, { decision: 'ALLOW' })).toBe('written');
    await expect(brain.hset(keys.permitGovernor('p2'), 'decision', 'ALLOW')).rejects.toThrow(NOPERM);
    for (const c of [engine, apply]) {
      await expect(c.hset(keys.permitGovernor('p2'), 'decision', 'ALLOW')).rejects.toThrow(NOPERM);
      await expect(c.hset(keys.permitP33('p2'), 'decision', 'ALLOW')).rejects.toThrow(NOPERM);
    }
    // consumers cannot add to the streams they consume
    for (const c of [gov, brain, apply]) await expect(c.xadd(STREAMS.applyPlan, '*', 'plan', '{}', 'mac', 'x')).rejects.toThrow(NOPERM);
    await expect(apply.xadd(STREAMS.reconcileClose, '*', 'plan', '{}', 'mac', 'x')).rejects.toThrow(NOPERM);
    // the engine: no apply-layer keys (dedupe, in-flight, orders)
    await expect(engine.set(keys.applyDedupe('p2'), 'x')).rejects.toThrow(NOPERM);
    await expect(engine.hset(keys.applyOrder('c1'), 'plan_id', 'p2')).rejects.toThrow(NOPERM);
    // holds: the engine sets them; the apply layer reads them and renews the lease, nothing else
    await engine.set(keys.hold('BTCUSDT'), '1', 'EX', 900);
    expect(await apply.get(keys.hold('BTCUSDT'))).toBe('1');
    expect(await apply.expire(keys.hold('BTCUSDT'), 900)).toBe(1);
    await expect(apply.set(keys.hold('BTCUSDT'), '1')).rejects.toThrow(NOPERM);
    await expect(apply.del(keys.hold('BTCUSDT'))).rejects.toThrow(NOPERM);
    await expect(apply.eval("return redis.call('DEL', KEYS[1])", 1, keys.hold('BTCUSDT'))).rejects.toThrow(REFUSED);
    await expect(apply.eval("return redis.call('SET', KEYS[1], '1')", 1, keys.hold('BTCUSDT'))).rejects.toThrow(REFUSED);
    await expect(gov.set(keys.hold('BTCUSDT'), '1')).rejects.toThrow(NOPERM);
    await expect(brain.del(keys.hold('BTCUSDT'))).rejects.toThrow(NOPERM);
    expect(await engine.del(keys.hold('BTCUSDT'))).toBe(1);
  });
});

/** `redis-cli --user p3-operator` (password in REDISCLI_AUTH, as the runbook shows). */
function operatorCli(...args: string[]): { out: string; code: number | null } {
  const r = spawnSync('redis-cli', ['-p', String(acl.srv.port), '--user', 'p3-operator', ...args], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '', REDISCLI_AUTH: acl.passwords['p3-operator'] ?? '' },
  });
  return { out: `${r.stdout}${r.stderr}`, code: r.status };
}

/** `node bin/p3.mjs <args>` as the operator. */
function p3(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['bin/p3.mjs', ...args], { env: { PATH: process.env.PATH ?? '', REDIS_URL: acl.urlFor('p3-operator'), P3_ALLOWLIST: 'BTCUSDT', USER: 'ops-test', P3_KEY_OPERATOR: 'least-privilege-operator-key-0123' } });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    p.on('error', reject);
    p.on('exit', (code) => resolve({ code, out }));
  });
}

describe('p3-operator', () => {
  it("runs the seeds' runbook redis-cli commands", () => {
    const cmds = [
      ['HGETALL', 'quantum:reconcile:state:BTCUSDT'],
      ['SETEX', 'quantum:reconcile:hold:BTCUSDT', '300', '1'],
      ['GET', 'quantum:reconcile:hold:BTCUSDT'],
      ['TTL', 'quantum:reconcile:hold:BTCUSDT'],
      ['GET', 'quantum:reconcile:hold_reason:BTCUSDT'],
      ['KEYS', 'quantum:reconcile:hold:*'],
      ['--scan', '--pattern', 'quantum:reconcile:hold:*'],
      ['DEL', 'quantum:reconcile:hold:BTCUSDT', 'quantum:reconcile:hold_reason:BTCUSDT', 'quantum:reconcile:hold_sig:BTCUSDT'],
      ['HSET', 'quantum:position:ledger:BTCUSDT', 'last_known_amt', '0.007'],
      ['HSET', 'quantum:position:ledger:BTCUSDT', 'last_side', 'LONG'],
      ['HSET', 'quantum:position:BTCUSDT', 'ledger_amount', '0.046'],
      ['HSET', 'quantum:position:ledger:BTCUSDT', 'ledger_amt', '0.062'],
      ['HSET', 'quantum:position:ledger:BTCUSDT', 'ledger_side', 'LONG'],
      ['XLEN', 'quantum:stream:reconcile.events'],
      ['HSET', 'quantum:position:ledger:BTCUSDT', 'ledger_amt', '0.007', 'ledger_side', 'LONG', 'source', 'operator', 'ts_epoch', '1769299637'],
      ['HGETALL', 'quantum:position:ledger:BTCUSDT'],
      ['HGETALL', 'quantum:position:snapshot:BTCUSDT'],
      ['XREVRANGE', 'quantum:stream:reconcile.events', '+', '-', 'COUNT', '5'],
      ['XREVRANGE', 'quantum:stream:apply.result', '+', '-', 'COUNT', '10'],
      ['XLEN', 'quantum:stream:apply.plan.dlq'],
      ['XREVRANGE', 'quantum:stream:apply.plan.dlq', '+', '-', 'COUNT', '10'],
      ['XTRIM', 'quantum:stream:apply.plan.dlq', 'MAXLEN', '0'],
      ['HSET', 'quantum:governor:trading_state', 'state', 'HALTED', 'reason', 'incident 42', 'ts_ms', '1', 'by', 'ops'],
      ['HSET', 'quantum:governor:trading_state:BTCUSDT', 'state', 'REDUCING', 'reason', 'x', 'ts_ms', '1', 'by', 'ops'],
      ['HGETALL', 'quantum:governor:trading_state'],
      ['DEL', 'quantum:governor:trading_state:BTCUSDT'],
      ['DEL', 'quantum:governor:breaker:BTCUSDT'],
      ['GET', 'quantum:exchange:backoff_until'],
      ['GET', 'quantum:exchange:backoff_reason'],
      ['--scan', '--pattern', 'quantum:heartbeat:*'],
      ['--scan', '--pattern', 'quantum:*.dlq'],
      ['PING'],
    ];
    for (const c of cmds) {
      const r = operatorCli(...c);
      expect(r.out, c.join(' ')).not.toMatch(/NOPERM|ERR|WRONGPASS|NOAUTH/);
      expect(r.code, c.join(' ')).toBe(0);
    }
    // and nothing the runbook does not do
    for (const c of [['HSET', 'quantum:permit:governor:p9', 'decision', 'ALLOW'], ['SET', 'quantum:apply:dedupe:p9', 'done'], ['XADD', 'quantum:stream:reconcile.close', '*', 'a', 'b'], ['FLUSHALL'], ['CONFIG', 'GET', 'requirepass']]) {
      expect(operatorCli(...c).out, c.join(' ')).toMatch(/NOPERM/);
    }
  });

  it('runs p3 hold, ledger, trading-state, status, events and plan show', async () => {
    const admin = acl.connect('p3-admin');
    const now = Date.now();
    const planId = await submitPlan(strategy, { symbol: 'BTCUSDT', action: 'PARTIAL_25' }, KEY);
    await admin.hset(keys.snapshot('BTCUSDT'), { position_amt: '0.007', side: 'LONG', ts_ms: String(now), ts_epoch: String(Math.floor(now / 1000)), step_size: '0.001' });
    for (const args of [
      ['hold', 'set', 'BTCUSDT', '--ttl', '600', '--reason', 'acl test'],
      ['hold', 'clear', 'BTCUSDT'],
      ['ledger', 'set', 'BTCUSDT', '0.007', '--reason', 'acl test'],
      ['trading-state', 'set', 'BTCUSDT', 'REDUCING', '--reason', 'acl test'],
      ['trading-state', 'set', 'ACTIVE', '--reason', 'acl test'],
      ['trading-state', 'show'],
      ['status', '--symbol', 'BTCUSDT'],
      ['events', '--count', '5'],
      ['plan', 'show', planId],
      ['flatten', 'BTCUSDT', '--reason', 'acl test', '--wait', '0'],
    ]) {
      const r = await p3(args);
      expect(r.out, args.join(' ')).not.toMatch(/NOPERM/);
      expect(r.code, `${args.join(' ')}: ${r.out}`).toBe(0);
    }
    expect(await admin.hget(keys.ledger('BTCUSDT'), 'ledger_amt')).toBe('0.007');
  }, 120_000);
});

describe('password rotation (ops/redis/README.md)', () => {
  it('>new then <old: both work in between, live connections survive, the old one is refused afterwards', async () => {
    const admin = acl.connect('p3-admin');
    const old = acl.passwords['p3-apply']!;
    const live = acl.connect('p3-apply');
    expect(await live.ping()).toBe('PONG');
    const next = 'rotated-apply-password-0123456789';
    await admin.call('ACL', 'SETUSER', 'p3-apply', `>${next}`);
    /** Redis's answer to `AUTH p3-apply <pw>` on a fresh connection (`+OK` or `-WRONGPASS ...`). */
    const auth = (pw: string) =>
      new Promise<string>((resolve, reject) => {
        const c = connect(acl.srv.port, '127.0.0.1', () => c.write(`AUTH p3-apply ${pw}\r\n`));
        c.once('data', (d) => {
          resolve(d.toString().trim());
          c.destroy();
        });
        c.once('error', reject);
      });
    expect(await auth(next)).toBe('+OK');
    expect(await auth(old)).toBe('+OK');
    await admin.call('ACL', 'SETUSER', 'p3-apply', `<${old}`);
    expect(await auth(old)).toMatch(/^-WRONGPASS/);
    expect(await auth(next)).toBe('+OK');
    expect(await live.ping()).toBe('PONG'); // an authenticated connection is not dropped
    await admin.call('ACL', 'LOAD'); // back to the generated file for the other tests
  });
});
