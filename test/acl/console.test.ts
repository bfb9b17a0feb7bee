/**
 * docs/architecture.md#operator-console and docs/architecture.md#least-privilege-and-signed-permits: the operator console connected as `p3-console` (generated ACL user) serves every
 * read and every action (hold set/clear, ledger set, trading state, flatten), and Redis refuses none of
 * its commands (ACL LOG); the console user cannot write permits or add plans.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { createLogger } from '../../src/adapters/logging/logger.js';
import { STREAMS, keys } from '../../src/adapters/redis/keys.js';
import { consoleConfig, startConsole, type RunningConsole } from '../../src/console/index.js';
import { startAclRedis, type AclRedis } from './helpers.js';

const TOKEN = 'acl-console-token-0123456789';
let acl: AclRedis;
let consoleRedis: Redis;
let admin: Redis;
let c: RunningConsole;

beforeAll(async () => {
  acl = await startAclRedis();
  admin = acl.connect('p3-admin');
  consoleRedis = acl.connect('p3-console');
  await admin.hset(keys.snapshot('BTCUSDT'), { position_amt: '0.007', side: 'LONG', ts_ms: String(Date.now() + 1000), ts_epoch: String(Math.floor(Date.now() / 1000)) });
  await admin.hset(keys.ledger('BTCUSDT'), { ledger_amt: '0.007', ledger_side: 'LONG', ts_epoch: '1', version: '1', source: 'init' });
  c = await startConsole(consoleRedis, consoleConfig({ port: 0 }, { P3_ALLOWLIST: 'BTCUSDT', P3_CONSOLE_TOKEN: TOKEN, P3_KEY_OPERATOR: 'acl-console-operator-key-0123456789' }), createLogger('console', 'silent'));
});
afterAll(async () => {
  await c?.close();
  await acl?.stop();
});

const headers = { authorization: `Bearer ${TOKEN}`, 'x-p3-operator': 'alice', 'content-type': 'application/json' };
async function call(method: string, path: string, body?: unknown) {
  const res = await fetch(`${c.url.replace(/\/$/, '')}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('p3 console as p3-console', () => {
  it('reads and acts with no command refused', async () => {
    for (const p of ['/api/symbols', '/api/services', '/api/events', '/api/plans/nope']) expect((await call('GET', p)).status, p).toBe(200);
    expect((await call('POST', '/api/holds/BTCUSDT', { reason: 'acl', ttl_sec: 60 })).status).toBe(200);
    expect(await admin.get(keys.hold('BTCUSDT'))).toBe('1');
    expect((await call('DELETE', '/api/holds/BTCUSDT', { reason: 'acl done' })).status).toBe(200);
    expect((await call('POST', '/api/ledger/BTCUSDT', { amount: '0.007', reason: 'verified' })).status).toBe(200);
    expect((await call('POST', '/api/trading-state', { state: 'REDUCING', reason: 'acl' })).status).toBe(200);
    expect((await call('POST', '/api/trading-state', { state: 'ACTIVE', reason: 'acl' })).status).toBe(200);
    expect((await call('POST', '/api/flatten', { symbols: ['BTCUSDT'], reason: 'acl', confirm: 'BTCUSDT' })).status).toBe(200);
    expect(await admin.xlen(STREAMS.applyFlatten)).toBe(1);
    const refused = (await acl.aclLog()).filter((e) => e.username === 'p3-console');
    expect(refused.map((e) => `${e.reason} ${e.context} ${e.object}`)).toEqual([]);
  });

  it('cannot write permits, add plans or closes, or touch apply-layer keys', async () => {
    await expect(consoleRedis.hset(keys.permitGovernor('p1'), 'decision', 'ALLOW')).rejects.toThrow(/NOPERM/);
    await expect(consoleRedis.xadd(STREAMS.applyPlan, '*', 'plan', '{}', 'mac', 'x')).rejects.toThrow(/NOPERM/);
    await expect(consoleRedis.xadd(STREAMS.reconcileClose, '*', 'plan', '{}', 'mac', 'x')).rejects.toThrow(/NOPERM/);
    await expect(consoleRedis.set(keys.applyDedupe('p1'), 'done')).rejects.toThrow(/NOPERM/);
    await expect(consoleRedis.xtrim(dlqOf(STREAMS.applyPlan), 'MAXLEN', 0)).rejects.toThrow(/NOPERM/);
  });
});

const dlqOf = (s: string) => `${s}.dlq`;
