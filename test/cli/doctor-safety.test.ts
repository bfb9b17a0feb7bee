/**
 * `p3 doctor` and `p3 run` (real processes) against unsafe settings: the shipped env templates as they are
 * (placeholder keys shared by every issuer, placeholder Redis passwords and exchange credentials),
 * issuers sharing a key across services, APPLY_MODE=testnet aimed at Binance production, and an engine
 * whose closes default on while the apply layer trades production.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestRedis } from '../helpers/redis.js';

const BIN = fileURLToPath(new URL('../../bin/p3.mjs', import.meta.url));
const TEMPLATES = fileURLToPath(new URL('../../ops/env', import.meta.url));
const run = promisify(execFile);
const t = useTestRedis();
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'p3-doctor-safety-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Check {
  check: string;
  status: string;
  detail: string;
}

async function p3(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env }, timeout: 60_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

async function doctor(envDir: string): Promise<{ code: number; checks: Check[] }> {
  const r = await p3(['doctor', '--json', '--env-dir', envDir], { REDIS_URL: t.srv.url });
  return { code: r.code, checks: (JSON.parse(r.stdout) as { checks: Check[] }).checks };
}
const find = (checks: Check[], name: string): Check => checks.find((c) => c.check === name) ?? { check: name, status: 'MISSING', detail: '' };

/** Env files for every service from one base plus per-service extras. */
function writeEnvs(base: Record<string, string>, extra: Partial<Record<string, Record<string, string>>> = {}): void {
  for (const s of ['governor', 'position-state-brain', 'reconcile-engine', 'apply-layer']) {
    const env = { ...base, ...(extra[s] ?? {}) };
    writeFileSync(join(dir, `${s}.env`), `${Object.entries(env).map(([k, v]) => `${k}=${v}`).join('\n')}\n`);
  }
}

describe('unsafe settings', () => {
  it('p3 run refuses the placeholder key and a key shared by two issuers (exit 2 naming the variable)', async () => {
    const base = { REDIS_URL: t.srv.url, P3_ALLOWLIST: 'BTCUSDT', GOVERNOR_PROMETHEUS_PORT: '0', GOVERNOR_LOG_LEVEL: 'error' };
    const placeholder = await p3(['run', 'governor'], { ...base, P3_KEY_GOVERNOR: 'change-me-32-bytes-of-random-hex' });
    expect(placeholder.code).toBe(2);
    expect(placeholder.stderr).toMatch(/P3_KEY_GOVERNOR: is a placeholder/);
    const shared = await p3(['run', 'governor'], { ...base, P3_KEY_GOVERNOR: 'x1'.repeat(20), P3_KEY_EXIT_BRAIN: 'x1'.repeat(20) });
    expect(shared.code).toBe(2);
    expect(shared.stderr).toMatch(/P3_KEY_GOVERNOR: has the same value as P3_KEY_EXIT_BRAIN/);
  });

  it('doctor fails the shipped templates on keys, secrets and each service config', async () => {
    const d = await doctor(TEMPLATES);
    expect(d.code).toBe(1);
    expect(find(d.checks, 'keys')).toMatchObject({ status: 'FAIL', detail: expect.stringMatching(/have the same value.*is a placeholder/s) });
    expect(find(d.checks, 'secrets')).toMatchObject({ status: 'FAIL', detail: expect.stringMatching(/REDIS_URL password is a placeholder.*EXCHANGE_API_KEY is a placeholder/s) });
    for (const s of ['governor', 'position-state-brain', 'reconcile-engine', 'apply-layer']) expect(find(d.checks, `config:${s}`).status, s).toBe('FAIL');
  });

  it('doctor fails issuers sharing a key across services, testnet mode on production, and default-on closes against a production apply layer', async () => {
    const base = { REDIS_URL: t.srv.url, P3_ALLOWLIST: 'BTCUSDT', EXCHANGE_API_KEY: 'api-key-0123456789abcdef', EXCHANGE_API_SECRET: 'api-secret-0123456789abcdef' };
    const shared = 's'.repeat(40);
    writeEnvs(base, {
      governor: { P3_KEY_GOVERNOR: shared },
      'position-state-brain': { P3_KEY_P33: shared, P33_SNAPSHOTS_ENABLED: 'false' },
      'reconcile-engine': { P3_KEY_P3_4: 'e'.repeat(40), EXCHANGE: 'paper', EXCHANGE_BASE_URL: 'http://127.0.0.1:8900' },
      'apply-layer': { P3_KEY_GOVERNOR: shared, P3_KEY_P33: 'p'.repeat(40), P3_KEY_P3_4: 'e'.repeat(40), P3_KEY_OPERATOR: 'o'.repeat(40), APPLY_MODE: 'testnet', EXCHANGE: 'binanceusdm', EXCHANGE_DEMO: 'false' },
    });
    const d = await doctor(dir);
    expect(d.code).toBe(1);
    expect(find(d.checks, 'keys')).toMatchObject({ status: 'FAIL', detail: expect.stringMatching(/P3_KEY_GOVERNOR and P3_KEY_P33 have the same value|P3_KEY_P33 differs/) });
    expect(find(d.checks, 'config:apply-layer')).toMatchObject({ status: 'FAIL', detail: expect.stringMatching(/APPLY_ALLOW_LIVE/) });
    expect(find(d.checks, 'endpoints')).toMatchObject({ status: 'FAIL', detail: expect.stringMatching(/APPLY_MODE=testnet sends orders to a production.*RECONCILE_CLOSE on by default/s) });
  });

  it('doctor passes the same checks once keys differ, the apply layer is on the paper exchange and the engine knows it', async () => {
    const base = { REDIS_URL: t.srv.url, P3_ALLOWLIST: 'BTCUSDT', EXCHANGE: 'paper', EXCHANGE_BASE_URL: 'http://127.0.0.1:8900', EXCHANGE_API_KEY: 'api-key-0123456789abcdef', EXCHANGE_API_SECRET: 'api-secret-0123456789abcdef' };
    const keys = { P3_KEY_GOVERNOR: 'g'.repeat(40), P3_KEY_P33: 'p'.repeat(40), P3_KEY_P3_4: 'e'.repeat(40), P3_KEY_OPERATOR: 'o'.repeat(40), P3_KEY_EXIT_BRAIN: 'b'.repeat(40) };
    writeEnvs({ ...base, ...keys }, { 'position-state-brain': { P33_SNAPSHOTS_ENABLED: 'false' }, 'apply-layer': { APPLY_MODE: 'testnet' } });
    const d = await doctor(dir);
    for (const c of ['keys', 'secrets', 'endpoints', 'config:apply-layer', 'config:reconcile-engine']) expect(find(d.checks, c).status, `${c}: ${find(d.checks, c).detail}`).toBe('OK');
    expect(find(d.checks, 'endpoints').detail).toMatch(/apply-layer testnet to local.*closes on/);
  });
});
