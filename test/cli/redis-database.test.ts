/**
 * A REDIS_URL naming a database the server does not have (`/99` on a server with 16) must never fall back
 * to database 0: ioredis only emits an error event for the refused SELECT and goes on in database 0.
 * Connections, the CLI, `p3 run` and `p3 doctor` refuse it; nothing lands in database 0.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { createRedis } from '../../src/adapters/redis/client.js';
import { RedisDatabaseError } from '../../src/adapters/redis/database-guard.js';
import { useTestRedis, waitFor } from '../helpers/redis.js';

const BIN = fileURLToPath(new URL('../../bin/p3.mjs', import.meta.url));
const run = promisify(execFile);
const t = useTestRedis();

async function p3(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env }, timeout: 30_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

describe('a database the server lacks', () => {
  it('a connection refuses every command instead of using database 0; an existing database still works', async () => {
    const bad = createRedis(`${t.srv.url}/99`, { name: 'test-db99' });
    bad.on('error', () => undefined);
    try {
      await expect(bad.set('quantum:reconcile:hold:BTCUSDT', '1')).rejects.toBeInstanceOf(RedisDatabaseError);
      await expect(bad.get('anything')).rejects.toThrow(/database 99/);
    } finally {
      bad.disconnect();
    }
    expect(await t.redis.dbsize()).toBe(0);
    const three = createRedis(`${t.srv.url}/3`, { name: 'test-db3' });
    try {
      await three.set('k', 'v');
      expect(await three.get('k')).toBe('v');
      expect(await t.redis.dbsize()).toBe(0);
    } finally {
      await three.flushdb();
      three.disconnect();
    }
  });

  it('a transient error of the SELECT (the server refusing the password for a moment) does not kill the connection', async () => {
    const c = createRedis(`${t.srv.url}/3`, { name: 'test-db3-noauth' });
    c.on('error', () => undefined);
    try {
      expect(await c.ping()).toBe('PONG');
      // the server now wants a password the client does not send: its reconnect's SELECT answers NOAUTH
      await t.redis.config('SET', 'requirepass', 'rotating-secret-xyz');
      await t.redis.auth('rotating-secret-xyz');
      await t.redis.client('KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
      await new Promise((r) => setTimeout(r, 500));
      await t.redis.config('SET', 'requirepass', '');
      // once the server accepts the client again, the connection works in database 3
      await waitFor(async () => (await c.ping().catch(() => null)) === 'PONG', 20_000, 100, 'connection back');
      await c.set('k3', 'v');
      expect(await c.get('k3')).toBe('v');
      expect(await t.redis.dbsize()).toBe(0);
      await c.del('k3');
    } finally {
      await t.redis.config('SET', 'requirepass', '').catch(() => undefined);
      c.disconnect();
    }
  }, 60_000);

  it('operator commands exit 2 naming REDIS_URL and write nothing to database 0', async () => {
    const env = { REDIS_URL: `${t.srv.url}/99`, P3_ALLOWLIST: 'BTCUSDT' };
    for (const args of [
      ['hold', 'set', 'BTCUSDT', '--reason', 'x'],
      ['trading-state', 'set', 'BTCUSDT', 'HALTED', '--reason', 'x'],
      ['ledger', 'set', 'BTCUSDT', '0', '--reason', 'x', '--force'],
      ['status'],
    ]) {
      const r = await p3(args, env);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/REDIS_URL: .*database 99/);
    }
    expect(await t.redis.dbsize()).toBe(0);
  });

  it('p3 run and p3 console refuse to start (exit 2) and p3 doctor fails on the redis check', async () => {
    const env = { REDIS_URL: `${t.srv.url}/99`, P3_ALLOWLIST: 'BTCUSDT', P3_KEY_GOVERNOR: 'g'.repeat(40), GOVERNOR_PROMETHEUS_PORT: '0', GOVERNOR_LOG_LEVEL: 'error' };
    const runR = await p3(['run', 'governor'], env);
    expect(runR.code).toBe(2);
    expect(runR.stderr).toMatch(/REDIS_URL: .*database 99/);
    const consoleRun = await p3(['console', '--port', '0'], env);
    expect(consoleRun.code).toBe(2);
    expect(consoleRun.stderr).toMatch(/REDIS_URL: .*database 99/);
    const doc = await p3(['doctor', '--services', 'governor', '--json'], env);
    expect(doc.code).toBe(1);
    const checks = (JSON.parse(doc.stdout) as { checks: Array<{ check: string; status: string; detail: string }> }).checks;
    expect(checks.find((c) => c.check === 'redis')).toMatchObject({ status: 'FAIL', detail: expect.stringMatching(/database 99/) });
    expect(await t.redis.dbsize()).toBe(0);
  });
});
