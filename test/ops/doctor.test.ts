/**
 * `p3 doctor` as an operator runs it (`node bin/p3.mjs doctor`), against a private Redis and the paper
 * exchange: a healthy deployment passes with exit 0; each kind of breakage (hold without TTL, hold TTL
 * above the lease, unreadable ledger, wrongly typed snapshot, permit without TTL, dead letters, missing
 * heartbeat, missing snapshot, bad configuration, Redis down, clock skew) is a FAIL line naming it, with exit 1.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/redis.js';
import { startAclRedis, type AclRedis } from '../acl/helpers.js';
import { startPaperExchange, type PaperExchange } from '../helpers/paper.js';
import { startHeartbeat, type Heartbeat } from '../../src/host/heartbeat.js';
import { SERVICE_NAMES } from '../../src/host/service-names.js';
import { parseEnvFile, type CheckResult } from '../../src/cli/commands/doctor.js';

const root = join(import.meta.dirname, '../..');
/** A Redis with the generated ACL users (`p3 redis-acl`); the doctor and the test connect as p3-admin. */
let srv: AclRedis;
let redis: Redis;
let pe: PaperExchange;
let beats: Heartbeat[] = [];
let baseEnv: Record<string, string>;

interface Report {
  code: number | null;
  ok: boolean;
  checks: CheckResult[];
  stderr: string;
}

function doctor(env: Record<string, string>, args: string[] = []): Promise<Report> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['bin/p3.mjs', 'doctor', '--json', ...args], { cwd: root, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env } });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', reject);
    p.on('exit', (code) => {
      try {
        const j = JSON.parse(out) as { ok: boolean; checks: CheckResult[] };
        resolve({ code, ok: j.ok, checks: j.checks, stderr: err });
      } catch {
        reject(new Error(`doctor printed no JSON (exit ${code}): ${out}\n${err}`));
      }
    });
  });
}

const byCheck = (r: Report, check: string): CheckResult => {
  const c = r.checks.find((x) => x.check === check);
  if (!c) throw new Error(`no check ${check} in ${JSON.stringify(r.checks)}`);
  return c;
};
const failed = (r: Report) => r.checks.filter((c) => c.status === 'FAIL').map((c) => c.check);

beforeAll(async () => {
  srv = await startAclRedis();
  redis = srv.connect('p3-admin');
  pe = await startPaperExchange({ symbols: ['BTCUSDT'], positions: { BTCUSDT: '0.007' } });
  baseEnv = {
    REDIS_URL: srv.urlFor('p3-admin'),
    P3_ALLOWLIST: 'BTCUSDT',
    EXCHANGE: 'paper',
    EXCHANGE_BASE_URL: pe.url,
    EXCHANGE_API_KEY: pe.apiKey,
    EXCHANGE_API_SECRET: pe.apiSecret,
    P3_KEY_P3_4: 'k'.repeat(32),
    P3_KEY_EXIT_BRAIN: 'e'.repeat(32),
    P3_KEY_GOVERNOR: 'g'.repeat(32),
    P3_KEY_P33: 'p'.repeat(32),
  };
});

afterAll(async () => {
  for (const b of beats) await b.stop();
  await pe.close();
  await srv.stop();
});

async function healthyState(): Promise<void> {
  await redis.flushall();
  beats = [];
  for (const name of SERVICE_NAMES) beats.push(await startHeartbeat(redis, { name, instance: `${name}-1`, intervalMs: 60_000, ttlMs: 120_000 }));
  const now = Date.now();
  await redis.hset('quantum:position:snapshot:BTCUSDT', { position_amt: '0.007', side: 'LONG', ts_ms: String(now), ts_epoch: String(Math.floor(now / 1000)) });
  await redis.hset('quantum:position:ledger:BTCUSDT', { ledger_amt: '0.007', ledger_side: 'LONG', ts_epoch: String(now / 1000), source: 'init', version: '1' });
  await redis.hset('quantum:reconcile:state:BTCUSDT', { status: 'OK', reason: '' });
  await redis.hset('quantum:permit:p33:plan-1', { decision: 'ALLOW', reason: 'ok' });
  await redis.expire('quantum:permit:p33:plan-1', 60);
  await redis.xadd('quantum:stream:reconcile.events', '*', 'event', 'LEDGER_INIT', 'symbol', 'BTCUSDT');
}

describe('p3 doctor', () => {
  it('passes on a healthy deployment (exit 0, no FAIL line)', async () => {
    await healthyState();
    const r = await doctor(baseEnv);
    expect(failed(r)).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.code).toBe(0);
    expect(byCheck(r, 'redis').detail).toMatch(/version \d+\.\d+/);
    expect(byCheck(r, 'exchange').detail).toMatch(/answered in \d+ ms; local clock (ahead|behind) by \d+ ms/);
    expect(byCheck(r, 'heartbeats').detail).toContain('reconcile-engine x1');
    for (const s of SERVICE_NAMES) expect(byCheck(r, `config:${s}`).status).toBe('OK');
    expect(byCheck(r, 'holds').status).toBe('OK');
    expect(byCheck(r, 'snapshots').detail).toMatch(/^fresh: BTCUSDT \d+\.\ds$/);
  }, 60_000);

  it('names every breakage and exits 1', async () => {
    await healthyState();
    await redis.set('quantum:reconcile:hold:BTCUSDT', '1'); // no TTL: a hold that never clears
    // an engine hold (with its signature) above the 900 s lease; an operator's long hold is only a warning
    await redis.multi().setex('quantum:reconcile:hold:XRPUSDT', 5000, '1').setex('quantum:reconcile:hold_sig:XRPUSDT', 5000, 'abc').exec();
    await redis.setex('quantum:reconcile:hold:ADAUSDT', 5000, '1');
    await redis.hset('quantum:position:ledger:ETHUSDT', { ledger_amt: '-0.5', ledger_side: 'LONG' });
    await redis.set('quantum:position:snapshot:SOLUSDT', 'oops');
    await redis.hset('quantum:permit:governor:plan-2', { decision: 'ALLOW' }); // a permit without TTL
    await redis.xadd('quantum:stream:apply.plan.dlq', '*', 'reason', 'bad_mac');
    await beats.pop()?.stop(); // apply-layer stops beating
    // P34_HOLD_TTL_SEC is read by the reconcile engine (lease) and the apply layer (lease renewal).
    // ETHUSDT is allowlisted but the brain never published its snapshot (e.g. bad credentials).
    const r = await doctor({ ...baseEnv, P3_ALLOWLIST: 'BTCUSDT,ETHUSDT', P34_HOLD_TTL_SEC: 'abc' });
    expect(r.code).toBe(1);
    expect(r.ok).toBe(false);
    expect(byCheck(r, 'holds').detail).toContain('BTCUSDT: hold has no TTL (never clears)');
    expect(byCheck(r, 'holds').detail).toMatch(/XRPUSDT: engine hold TTL \d+s above the lease 900s/);
    expect(byCheck(r, 'holds').detail).not.toContain('ADAUSDT');
    expect(byCheck(r, 'schema:ledgers').detail).toContain('quantum:position:ledger:ETHUSDT: negative_amount_with_side_LONG');
    expect(byCheck(r, 'schema:snapshots').detail).toContain('quantum:position:snapshot:SOLUSDT is a string, expected hash');
    expect(byCheck(r, 'schema:permits').detail).toContain('quantum:permit:governor:plan-2 has no TTL');
    expect(byCheck(r, 'dlq').detail).toContain('quantum:stream:apply.plan.dlq: 1');
    expect(byCheck(r, 'heartbeats').detail).toMatch(/^missing: apply-layer/);
    expect(byCheck(r, 'config:reconcile-engine').detail).toContain('P34_HOLD_TTL_SEC');
    expect(byCheck(r, 'snapshots').detail).toMatch(/^ETHUSDT: no snapshot/);
    expect(failed(r).sort()).toEqual(['config:apply-layer', 'config:reconcile-engine', 'dlq', 'heartbeats', 'holds', 'schema:ledgers', 'schema:permits', 'schema:snapshots', 'snapshots'].sort());
  }, 60_000);

  it('an active hold with its lease is a WARN, not a failure', async () => {
    await healthyState();
    await redis.setex('quantum:reconcile:hold:BTCUSDT', 900, '1');
    await redis.setex('quantum:reconcile:hold_reason:BTCUSDT', 900, 'side_mismatch');
    await redis.setex('quantum:reconcile:hold_sig:BTCUSDT', 900, 'abc123');
    const r = await doctor(baseEnv);
    expect(byCheck(r, 'holds')).toMatchObject({ status: 'WARN' });
    expect(byCheck(r, 'holds').detail).toMatch(/trading blocked on BTCUSDT \(side_mismatch, \d+s left\)/);
    expect(r.code).toBe(0);
  }, 60_000);

  it('fails when Redis is unreachable and when the exchange clock is skewed', async () => {
    // A Binance-compatible /fapi/v1/time whose clock is 3 s behind ours.
    const skewed: Server = createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ serverTime: Date.now() - 3000 }));
    });
    const port = await freePort();
    await new Promise<void>((r) => skewed.listen(port, '127.0.0.1', () => r()));
    try {
      const r = await doctor({ ...baseEnv, REDIS_URL: `redis://127.0.0.1:${await freePort()}`, EXCHANGE_BASE_URL: `http://127.0.0.1:${port}`, EXCHANGE_SYNC_TIME: 'false' });
      expect(r.code).toBe(1);
      expect(byCheck(r, 'redis')).toMatchObject({ status: 'FAIL' });
      expect(byCheck(r, 'redis').detail).toContain('unreachable');
      expect(byCheck(r, 'exchange')).toMatchObject({ status: 'FAIL' });
      // the skew is estimated from the midpoint of the request: exact to within half the round trip (which
      // a loaded machine stretches), so the 3 s skew must be found within that bound
      const detail = byCheck(r, 'exchange').detail;
      expect(detail).toMatch(/answered in \d+ ms; local clock ahead by \d+ ms: signed requests will be rejected/);
      const [, rtt, ahead] = /answered in (\d+) ms; local clock ahead by (\d+) ms/.exec(detail)!.map(Number) as [number, number, number];
      expect(Math.abs(ahead - 3000)).toBeLessThanOrEqual(rtt / 2 + 150);
    } finally {
      await new Promise<void>((r) => skewed.close(() => r()));
    }
  }, 60_000);

  it('--env-dir checks each service against its systemd EnvironmentFile', async () => {
    await healthyState();
    const dir = mkdtempSync(join(tmpdir(), 'p3-envdir-'));
    try {
      const lines = Object.entries(baseEnv).map(([k, v]) => `${k}=${v}`);
      for (const s of SERVICE_NAMES) writeFileSync(join(dir, `${s}.env`), `# ${s}\n${lines.join('\n')}\n`);
      writeFileSync(join(dir, 'apply-layer.env'), `${lines.join('\n')}\nAPPLY_MODE=testnet\nEXCHANGE_RECV_WINDOW_MS="999999"\n`);
      const r = await doctor({ PATH: process.env.PATH ?? '' }, ['--env-dir', dir]);
      expect(byCheck(r, 'redis').status).toBe('OK'); // REDIS_URL came from the files
      expect(byCheck(r, 'config:apply-layer')).toMatchObject({ status: 'FAIL' });
      expect(byCheck(r, 'config:apply-layer').detail).toContain('EXCHANGE_RECV_WINDOW_MS');
      expect(byCheck(r, 'config:governor').status).toBe('OK');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('--env-dir: plan keys must be real and the same in every service (else every close is dead-lettered)', async () => {
    await healthyState();
    const dir = mkdtempSync(join(tmpdir(), 'p3-envkeys-'));
    try {
      const lines = Object.entries(baseEnv).map(([k, v]) => `${k}=${v}`);
      for (const s of SERVICE_NAMES) writeFileSync(join(dir, `${s}.env`), `${lines.join('\n')}\n`);
      // no operator key on the apply layer: `p3 flatten` would be refused, a warning
      const noOperator = await doctor({ PATH: process.env.PATH ?? '' }, ['--env-dir', dir]);
      expect(byCheck(noOperator, 'keys')).toMatchObject({ status: 'WARN', detail: expect.stringMatching(/P3_KEY_OPERATOR/) });
      writeFileSync(join(dir, 'apply-layer.env'), `${lines.join('\n')}\nP3_KEY_OPERATOR=${'o'.repeat(40)}\n`);
      const ok = await doctor({ PATH: process.env.PATH ?? '' }, ['--env-dir', dir]);
      expect(byCheck(ok, 'keys').status).toBe('OK');
      writeFileSync(join(dir, 'apply-layer.env'), `${lines.join('\n')}\nP3_KEY_P3_4=${'z'.repeat(40)}\n`);
      writeFileSync(join(dir, 'governor.env'), `${lines.join('\n')}\nP3_KEY_EXIT_BRAIN=change-me-32-bytes-of-random-hex\n`);
      const bad = await doctor({ PATH: process.env.PATH ?? '' }, ['--env-dir', dir]);
      expect(bad.code).toBe(1);
      expect(byCheck(bad, 'keys').status).toBe('FAIL');
      expect(byCheck(bad, 'keys').detail).toMatch(/P3_KEY_P3_4 differs between/);
      expect(byCheck(bad, 'keys').detail).toMatch(/P3_KEY_EXIT_BRAIN is a placeholder \(governor\)/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('parseEnvFile reads systemd EnvironmentFile syntax', () => {
    expect(parseEnvFile('# c\n\nA=1\nB="two words"\nexport C=\'x\'\n; d\nbad line\n')).toEqual({ A: '1', B: 'two words', C: 'x' });
  });
});

describe('p3 doctor: ACL users', () => {
  it('fails when a user has more rights than generated, or the default user is on with full rights', async () => {
    await healthyState();
    const ok = await doctor(baseEnv);
    expect(byCheck(ok, 'acl:default')).toMatchObject({ status: 'OK', detail: 'default user off' });
    expect(byCheck(ok, 'acl:users')).toMatchObject({ status: 'OK' });
    await redis.call('ACL', 'SETUSER', 'p3-strategy', '~quantum:reconcile:*', '+del');
    await redis.call('ACL', 'SETUSER', 'p3-apply', '(~* +@all)');
    await redis.call('ACL', 'SETUSER', 'default', 'on', 'nopass', '~*', '+@all');
    try {
      const bad = await doctor(baseEnv);
      expect(bad.code).toBe(1);
      expect(byCheck(bad, 'acl:default')).toMatchObject({ status: 'FAIL' });
      expect(byCheck(bad, 'acl:default').detail).toMatch(/default user is on without a password and has every right/);
      expect(byCheck(bad, 'acl:users').status).toBe('FAIL');
      expect(byCheck(bad, 'acl:users').detail).toMatch(/p3-strategy has more rights than p3 redis-acl gives it: root: commands del; root: keys ~quantum:reconcile:\*/);
      expect(byCheck(bad, 'acl:users').detail).toMatch(/p3-apply has more rights .*selector \d+: not generated \(\+@all ~\*/);
    } finally {
      await redis.call('ACL', 'LOAD');
    }
    // a service env file naming another component's user
    const dir = mkdtempSync(join(tmpdir(), 'p3-envacl-'));
    try {
      for (const s of SERVICE_NAMES) writeFileSync(join(dir, `${s}.env`), `REDIS_URL=${srv.urlFor('p3-admin')}\nP3_ALLOWLIST=BTCUSDT\n`);
      const r = await doctor({ PATH: process.env.PATH ?? '' }, ['--env-dir', dir]);
      expect(byCheck(r, 'acl:service-urls')).toMatchObject({ status: 'FAIL' });
      expect(byCheck(r, 'acl:service-urls').detail).toContain('apply-layer connects as p3-admin, expected p3-apply');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 90_000);
});
