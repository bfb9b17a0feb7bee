/**
 * More of the same defects, found by review: a governor without its notional cap beside a production apply
 * layer passed `p3 doctor`; `p3 plan submit --source governor` signed a plan with the governor's permit
 * key; a placeholder console token was accepted; the console with no allowlist acted on any symbol (a typo).
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { keys, STREAMS } from '../../src/adapters/redis/keys.js';
import { checkEndpoints, checkSecrets } from '../../src/cli/doctor/safety-checks.js';
import { createLogger } from '../../src/adapters/logging/logger.js';
import { tradingStateSet } from '../../src/console/actions.js';
import { consoleConfig, startConsole } from '../../src/console/index.js';
import { useTestRedis } from '../helpers/redis.js';

const BIN = fileURLToPath(new URL('../../bin/p3.mjs', import.meta.url));
const run = promisify(execFile);
const t = useTestRedis();

describe('hostile pass', () => {
  it('doctor fails a governor in paper/testnet mode (no notional cap) beside an apply layer trading production', () => {
    const apply = { APPLY_MODE: 'live', APPLY_ALLOW_LIVE: 'yes', EXCHANGE: 'binanceusdm' };
    const r = checkEndpoints({ governor: { GOVERNOR_MODE: 'paper' }, 'apply-layer': apply }, ['governor', 'apply-layer']);
    expect(r).toMatchObject({ status: 'FAIL', detail: expect.stringMatching(/GOVERNOR_MODE=paper skips the notional cap/) });
    expect(checkEndpoints({ governor: {}, 'apply-layer': apply }, ['governor', 'apply-layer']).status).toBe('OK');
    expect(checkEndpoints({ governor: { GOVERNOR_MODE: 'paper' }, 'apply-layer': { APPLY_MODE: 'testnet', EXCHANGE: 'paper', EXCHANGE_BASE_URL: 'http://127.0.0.1:8900' } }, ['governor', 'apply-layer']).status).toBe('OK');
  });

  it('p3 plan submit never signs with a permit key (exit 2 naming --source, nothing written)', async () => {
    const err = await run(process.execPath, [BIN, 'plan', 'submit', '--symbol', 'BTCUSDT', '--action', 'FULL_CLOSE', '--source', 'governor'], {
      env: { PATH: process.env.PATH ?? '', REDIS_URL: t.srv.url, P3_ALLOWLIST: 'BTCUSDT', P3_KEY_GOVERNOR: 'g'.repeat(40) },
    }).then(
      () => null,
      (e: { code?: number; stderr?: string }) => e,
    );
    expect(err?.code).toBe(2);
    expect(err?.stderr).toMatch(/--source: governor is a permit issuer/);
    expect(await t.redis.xlen(STREAMS.applyPlan)).toBe(0);
  });

  it('doctor warns about a Redis password sent in clear to another host', () => {
    const env = (url: string) => ({ governor: { REDIS_URL: url } });
    expect(checkSecrets('redis://127.0.0.1:6379', env('redis://p3-governor:Zq8v1nD4kT0pW7x2@10.0.0.5:6379'))).toMatchObject({ status: 'WARN', detail: expect.stringMatching(/governor sends its password unencrypted/) });
    expect(checkSecrets('redis://127.0.0.1:6379', env('rediss://p3-governor:Zq8v1nD4kT0pW7x2@10.0.0.5:6379')).status).toBe('OK');
    expect(checkSecrets('redis://127.0.0.1:6379', env('redis://p3-governor:Zq8v1nD4kT0pW7x2@127.0.0.1:6379')).status).toBe('OK');
  });

  it('p3 hold clear records a --reason (and refuses one with control characters)', async () => {
    const env = { PATH: process.env.PATH ?? '', REDIS_URL: t.srv.url, P3_ALLOWLIST: 'BTCUSDT' };
    await run(process.execPath, [BIN, 'hold', 'set', 'BTCUSDT', '--reason', 'checking'], { env });
    await run(process.execPath, [BIN, 'hold', 'clear', 'BTCUSDT', '--reason', 'venue checked'], { env });
    const ev = (await t.redis.xrange(STREAMS.reconcileEvents, '-', '+')).map(([, f]) => f.join(' ')).filter((f) => f.includes('HOLD_CLEARED'));
    expect(ev.at(-1)).toContain('venue checked');
    const bad = await run(process.execPath, [BIN, 'hold', 'clear', 'BTCUSDT', '--reason', 'a\u001b[2Jb'], { env }).then(() => 0, (e: { code?: number }) => e.code);
    expect(bad).toBe(2);
  });

  it('the console refuses a placeholder token', () => {
    expect(() => consoleConfig({}, { P3_CONSOLE_TOKEN: 'change-me-change-me-change-me' })).toThrow(/P3_CONSOLE_TOKEN: is a placeholder/);
  });

  it('the console with no allowlist refuses a symbol Redis knows nothing of, and acts on a known one', async () => {
    const cfg = consoleConfig({}, {});
    expect(cfg.symbols).toEqual([]);
    const typo = await tradingStateSet(t.redis, cfg, 'console:alice', { state: 'HALTED', symbol: 'BTCUSTD', reason: 'incident' });
    expect(typo).toMatchObject({ status: 400, body: { message: expect.stringMatching(/BTCUSTD is unknown here/) } });
    expect(await t.redis.exists(keys.tradingState('BTCUSTD'))).toBe(0);
    await t.redis.hset(keys.snapshot('BTCUSDT'), { position_amt: '0', side: 'FLAT', ts_ms: String(Date.now()) });
    expect((await tradingStateSet(t.redis, cfg, 'console:alice', { state: 'HALTED', symbol: 'BTCUSDT', reason: 'incident' })).status).toBe(200);
    expect(await t.redis.hget(keys.tradingState('BTCUSDT'), 'state')).toBe('HALTED');
    const token = 'hostile-pass-console-token-0123';
    const c = await startConsole(t.redis, consoleConfig({ port: 0 }, { P3_CONSOLE_TOKEN: token }), createLogger('console', 'silent'));
    try {
      const post = (sym: string) =>
        fetch(`${c.url.replace(/\/$/, '')}/api/holds/${sym}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'x-p3-operator': 'alice', 'content-type': 'application/json' }, body: JSON.stringify({ reason: 'investigating' }) });
      const typoHold = await post('BTCUSTD');
      expect(typoHold.status).toBe(400);
      expect(await t.redis.exists(keys.hold('BTCUSTD'))).toBe(0);
      expect((await post('BTCUSDT')).status).toBe(200);
      expect(await t.redis.get(keys.hold('BTCUSDT'))).toBe('1');
    } finally {
      await c.close();
    }
  });
});
