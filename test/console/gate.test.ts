/**
 * The console's gate holds for every spelling of a path. Requests go over a raw socket so nothing
 * normalises them: percent-encoded letters, absolute-form targets, doubled and trailing slashes, case,
 * dot segments, matrix parameters. Each must be refused (400 `bad_path`) or not found (404) with no
 * handler run: no Redis write, no data; and every refusal is a warn log line naming method, route and
 * reason. On loopback without a token, on loopback with a foreign Host (DNS rebinding), on 0.0.0.0 (reads
 * need the token) and on a console whose actions are disabled.
 */
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STREAMS, keys } from '../../src/adapters/redis/keys.js';
import { consoleConfig, startConsole, type RunningConsole } from '../../src/console/index.js';
import { installGuard } from '../../src/console/guard.js';
import { useTestRedis } from '../helpers/redis.js';
import { captureLogger, rawRequest } from './raw-http.js';

const TOKEN = 'gate-console-token-0123456789';
const t = useTestRedis();
const log = captureLogger();
let loop: RunningConsole;
let disabled: RunningConsole;
let wide: RunningConsole;

beforeAll(async () => {
  const env = { P3_ALLOWLIST: 'BTCUSDT' };
  loop = await startConsole(t.redis, consoleConfig({ port: 0 }, { ...env, P3_CONSOLE_TOKEN: TOKEN, P3_KEY_OPERATOR: 'gate-operator-key-0123456789abcdef' }), log.logger);
  disabled = await startConsole(t.redis, consoleConfig({ port: 0 }, env), log.logger);
  wide = await startConsole(t.redis, consoleConfig({ port: 0, host: '0.0.0.0' }, { ...env, P3_CONSOLE_TOKEN: TOKEN }), log.logger);
  await t.redis.hset(keys.tradingState(), { state: 'HALTED', reason: 'incident', by: 'test', ts_ms: String(Date.now()) });
  await t.redis.hset(keys.snapshot('BTCUSDT'), { position_amt: '0.007', side: 'LONG', ts_ms: String(Date.now() + 1000), source: 'stream' });
  await t.redis.hset(keys.ledger('BTCUSDT'), { ledger_amt: '0.007', ledger_side: 'LONG', ts_epoch: '1', version: '1', source: 'init' });
});
afterAll(async () => {
  await loop?.close();
  await disabled?.close();
  await wide?.close();
});

/** Everything an action could change. */
async function stateOf() {
  const r = t.redis;
  return {
    trading: await r.hgetall(keys.tradingState()),
    hold: await r.get(keys.hold('BTCUSDT')),
    ledger: await r.hgetall(keys.ledger('BTCUSDT')),
    events: await r.xlen(STREAMS.reconcileEvents),
    governorEvents: await r.xlen(STREAMS.governorEvents),
    flattens: await r.xlen(STREAMS.applyFlatten),
  };
}

/** Spellings of `/api/<rest>` that are not the canonical one. `port` fills the absolute-form authority. */
function spellings(rest: string, port: number): string[] {
  const [first, ...more] = rest.split('/');
  const tail = more.length ? `/${more.join('/')}` : '';
  return [
    `/%61pi/${rest}`,
    `/ap%69/${rest}`,
    `/%2561pi/${rest}`,
    `/api/%${first!.charCodeAt(0).toString(16).toUpperCase()}${first!.slice(1)}${tail}`,
    `/api/%${first!.charCodeAt(0).toString(16).toLowerCase()}${first!.slice(1)}${tail}`,
    `http://127.0.0.1:${port}/api/${rest}`,
    `http://evil.example/api/${rest}`,
    `//api/${rest}`,
    `/api//${rest}`,
    `/api/${rest}/`,
    `/API/${rest}`,
    `/Api/${rest.toUpperCase()}`,
    `/api/../api/${rest}`,
    `/static/../api/${rest}`,
    `/api/./${rest}`,
    `/api/%2e%2e/api/${rest}`,
    `/api/%2E/${rest}`,
    `/api%2F${rest}`,
    `/api/${rest};x=1`,
    `/api\\${rest}`,
  ];
}

const ACTIONS = [
  { method: 'POST', rest: 'trading-state', body: { state: 'ACTIVE', reason: 'bypass' } },
  { method: 'POST', rest: 'ledger/BTCUSDT', body: { amount: '-1', reason: 'bypass', force: true, confirm: 'BTCUSDT' } },
  { method: 'POST', rest: 'holds/BTCUSDT', body: { reason: 'bypass' } },
  { method: 'POST', rest: 'flatten', body: { symbols: ['BTCUSDT'], reason: 'bypass', confirm: 'BTCUSDT' } },
];

/** Asserts a refused (400 bad_path) or unmatched (404) answer that carries no data. */
function expectNotServed(r: { status: number; json: Record<string, unknown> | null }, what: string) {
  expect([400, 404], `${what}: ${r.status} ${JSON.stringify(r.json)}`).toContain(r.status);
  expect(r.json?.error, what).toBe(r.status === 400 ? 'bad_path' : 'not_found');
  expect(Object.keys(r.json ?? {}).sort(), what).toEqual(['error', 'message']);
}

describe('actions by any other spelling run no handler', () => {
  for (const a of ACTIONS) {
    it(`${a.method} /api/${a.rest}: loopback without a token, and on a console whose actions are disabled`, async () => {
      const before = await stateOf();
      for (const c of [loop, disabled]) {
        for (const target of spellings(a.rest, c.port)) {
          const body = JSON.stringify(a.body);
          const r = await rawRequest(c.port, [`${a.method} ${target} HTTP/1.1`, `Host: 127.0.0.1:${c.port}`, 'Content-Type: application/json', 'X-P3-Operator: mallory'], body);
          expectNotServed(r, `${a.method} ${target}`);
        }
      }
      expect(await stateOf()).toEqual(before);
    });
  }
  it('the canonical spelling still needs the token, and works with it (raw request)', async () => {
    const body = JSON.stringify({ state: 'HALTED', reason: 'still halted' });
    const head = ['POST /api/trading-state HTTP/1.1', `Host: 127.0.0.1:${loop.port}`, 'Content-Type: application/json', 'X-P3-Operator: alice'];
    expect((await rawRequest(loop.port, head, body)).json).toMatchObject({ error: 'missing_token' });
    const ok = await rawRequest(loop.port, [...head, `Authorization: Bearer ${TOKEN}`], body);
    expect(ok.status).toBe(200);
    expect(await t.redis.hget(keys.tradingState(), 'state')).toBe('HALTED');
  });
});

describe('reads by any other spelling serve no data', () => {
  const READS = ['symbols', 'services', 'events', 'plans/nope', 'stream'];
  it('on 0.0.0.0 without the token', async () => {
    for (const rest of READS) {
      for (const target of spellings(rest, wide.port)) {
        const r = await rawRequest(wide.port, [`GET ${target} HTTP/1.1`, `Host: 10.1.2.3:${wide.port}`]);
        expectNotServed(r, `GET ${target}`);
      }
      const canonical = await rawRequest(wide.port, [`GET /api/${rest} HTTP/1.1`, `Host: 10.1.2.3:${wide.port}`]);
      expect(canonical.json, rest).toMatchObject({ error: 'missing_token' });
    }
  });
  it('on loopback through a foreign Host (DNS rebinding)', async () => {
    for (const rest of READS) {
      for (const target of spellings(rest, loop.port)) {
        const r = await rawRequest(loop.port, [`GET ${target} HTTP/1.1`, `Host: evil.example:${loop.port}`]);
        expectNotServed(r, `GET ${target} via evil.example`);
      }
      const canonical = await rawRequest(loop.port, [`GET /api/${rest} HTTP/1.1`, `Host: evil.example:${loop.port}`]);
      expect(canonical.status, rest).toBe(421);
    }
  });
  it('a percent-encoded character that has no plain spelling in a path is still served (the page encodes plan ids)', async () => {
    const r = await rawRequest(loop.port, ['GET /api/plans/flatten%3ABTCUSDT%3A1 HTTP/1.1', `Host: 127.0.0.1:${loop.port}`]);
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ found: false, planId: 'flatten:BTCUSDT:1' });
    expect((await rawRequest(loop.port, ['GET /api/plans/flatten%3abtcusdt HTTP/1.1', `Host: 127.0.0.1:${loop.port}`])).json).toMatchObject({ error: 'bad_path' });
  });
  it('a broken percent-encoding is a bad_path refusal in the same shape', async () => {
    const r = await rawRequest(loop.port, ['GET /api/%zz HTTP/1.1', `Host: 127.0.0.1:${loop.port}`]);
    expect(r.status).toBe(400);
    expect(r.json).toMatchObject({ error: 'bad_path' });
    expect(r.headers['x-content-type-options']).toBe('nosniff');
  });
});

describe('refusals are logged as refusals', () => {
  it('a warn line with method, route and reason; the matched route for a token refusal', async () => {
    const from = log.lines.length;
    await rawRequest(loop.port, ['POST /%61pi/flatten HTTP/1.1', `Host: 127.0.0.1:${loop.port}`, 'Content-Type: application/json'], '{}');
    await rawRequest(wide.port, ['GET /api/symbols HTTP/1.1', `Host: 10.1.2.3:${wide.port}`]);
    const lines = log.lines.slice(from);
    expect(lines).toEqual([
      expect.objectContaining({ level: 40, method: 'POST', route: '/api/flatten', url: '/%61pi/flatten', refused: 'bad_path', status: 400 }),
      expect.objectContaining({ level: 40, method: 'GET', route: '/api/symbols', refused: 'missing_token', status: 401 }),
    ]);
    expect(lines.every((l) => !/success|-> 200/.test(String(l.msg)))).toBe(true);
  });
});

describe('every route declares who may use it', () => {
  it('registering a route without an access level fails (the console would not start)', async () => {
    const app = Fastify();
    installGuard(app, { loopback: true, token: null }, log.logger);
    expect(() => app.get('/api/forgotten', async () => ({ secret: true }))).toThrow(/GET \/api\/forgotten has no access level/);
    await app.close().catch(() => undefined);
  });
});
