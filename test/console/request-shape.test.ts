/**
 * Header and method tricks against the console, over a raw socket: duplicate Host / Authorization /
 * Origin, methods without a route (HEAD, OPTIONS, PUT, PATCH, method-override headers), an action's body
 * that is not declared JSON or is too large, prototype keys in bodies and queries, cross-site stream
 * requests. Each is refused with `{error, message}` and nothing changes in Redis.
 */
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STREAMS, keys } from '../../src/adapters/redis/keys.js';
import { consoleConfig, startConsole, type RunningConsole } from '../../src/console/index.js';
import { duplicateHeaderRefusal, mediaTypeRefusal, pathRefusal } from '../../src/console/request-shape.js';
import { useTestRedis, waitFor } from '../helpers/redis.js';
import { captureLogger, rawRequest } from './raw-http.js';

const TOKEN = 'shape-console-token-0123456789';
const t = useTestRedis();
const log = captureLogger();
let c: RunningConsole;

beforeAll(async () => {
  c = await startConsole(t.redis, consoleConfig({ port: 0 }, { P3_ALLOWLIST: 'BTCUSDT', P3_CONSOLE_TOKEN: TOKEN }), log.logger);
  await t.redis.hset(keys.tradingState(), { state: 'HALTED', reason: 'incident', by: 'test', ts_ms: String(Date.now()) });
});
afterAll(async () => {
  await c?.close();
});

async function stateOf() {
  return {
    trading: await t.redis.hgetall(keys.tradingState()),
    hold: await t.redis.get(keys.hold('BTCUSDT')),
    events: await t.redis.xlen(STREAMS.reconcileEvents),
    governorEvents: await t.redis.xlen(STREAMS.governorEvents),
  };
}

const host = () => `Host: 127.0.0.1:${c.port}`;
const auth = `Authorization: Bearer ${TOKEN}`;
const ACTIVATE = JSON.stringify({ state: 'ACTIVE', reason: 'trick' });

describe('duplicate headers', () => {
  const cases: Array<[string, () => string[], string?]> = [
    ['two Hosts, loopback first (a read)', () => ['GET /api/symbols HTTP/1.1', host(), 'Host: evil.example']],
    ['two Hosts, foreign first (a read)', () => ['GET /api/symbols HTTP/1.1', 'Host: evil.example', host()]],
    ['two Authorizations, the right token first', () => ['POST /api/trading-state HTTP/1.1', host(), auth, 'Authorization: Bearer wrong-token-wrong', 'Content-Type: application/json', 'X-P3-Operator: alice'], ACTIVATE],
    ['two Origins', () => ['POST /api/trading-state HTTP/1.1', host(), auth, `Origin: http://127.0.0.1:${c.port}`, 'Origin: https://evil.example', 'Content-Type: application/json', 'X-P3-Operator: alice'], ACTIVATE],
    ['two operators', () => ['POST /api/trading-state HTTP/1.1', host(), auth, 'Content-Type: application/json', 'X-P3-Operator: alice', 'X-P3-Operator: bob'], ACTIVATE],
    ['two Content-Types', () => ['POST /api/trading-state HTTP/1.1', host(), auth, 'Content-Type: application/json', 'Content-Type: text/plain', 'X-P3-Operator: alice'], ACTIVATE],
  ];
  for (const [why, head, body] of cases) {
    it(`${why}: 400 duplicate_header, nothing changes`, async () => {
      const before = await stateOf();
      const r = await rawRequest(c.port, head(), body);
      expect(r.status, r.body).toBe(400);
      expect(r.json).toMatchObject({ error: 'duplicate_header' });
      expect(await stateOf()).toEqual(before);
    });
  }
});

describe('methods without a route', () => {
  it('HEAD, OPTIONS, PUT, PATCH and method-override headers reach no handler', async () => {
    const before = await stateOf();
    const tries: Array<[string, string, string[]]> = [
      ['HEAD', '/api/trading-state', []],
      ['OPTIONS', '/api/trading-state', []],
      ['PUT', '/api/trading-state', []],
      ['PATCH', '/api/trading-state', []],
      ['GET', '/api/trading-state', ['X-HTTP-Method-Override: POST']],
      ['GET', '/api/trading-state', ['X-HTTP-Method: POST', 'X-Method-Override: POST']],
      ['HEAD', '/api/stream', []],
      ['HEAD', '/api/symbols', []],
      ['OPTIONS', '/api/flatten', ['Access-Control-Request-Method: POST', 'Origin: https://evil.example']],
      ['TRACE', '/api/symbols', []],
    ];
    for (const [method, path, extra] of tries) {
      const r = await rawRequest(c.port, [`${method} ${path} HTTP/1.1`, host(), auth, 'Content-Type: application/json', 'X-P3-Operator: alice', ...extra], ACTIVATE);
      expect(r.status, `${method} ${path} ${extra.join(' ')}`).toBe(404);
      expect(r.headers['access-control-allow-origin'], method).toBeUndefined();
    }
    expect(await stateOf()).toEqual(before);
  });
});

describe("an action's body", () => {
  const head = (contentType?: string) => ['POST /api/trading-state HTTP/1.1', host(), auth, 'X-P3-Operator: alice', ...(contentType === undefined ? [] : [`Content-Type: ${contentType}`])];
  it('must be declared as JSON: 415 unsupported_media_type otherwise, nothing changes', async () => {
    const before = await stateOf();
    for (const ct of [undefined, 'text/plain', 'text/plain; charset=utf-8', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json-patch+json', 'application/jsonx', 'application/json; charset=latin1', 'application/json, text/plain']) {
      const r = await rawRequest(c.port, head(ct), ACTIVATE);
      expect(r.status, String(ct)).toBe(415);
      expect(r.json, String(ct)).toMatchObject({ error: 'unsupported_media_type' });
    }
    expect(await stateOf()).toEqual(before);
    expect((await rawRequest(c.port, head('Application/JSON; charset=UTF-8'), JSON.stringify({ state: 'HALTED', reason: 'case-insensitive media type' }))).status).toBe(200);
  });
  it('larger than 16 KiB is 413 body_too_large; without the token it is refused before being read', async () => {
    const before = await stateOf();
    const big = JSON.stringify({ state: 'ACTIVE', reason: 'x'.repeat(20_000) });
    const r = await rawRequest(c.port, head('application/json'), big);
    expect(r.status).toBe(413);
    expect(r.json).toMatchObject({ error: 'body_too_large' });
    const anon = await rawRequest(c.port, ['POST /api/trading-state HTTP/1.1', host(), 'Content-Type: application/json', 'X-P3-Operator: alice'], big);
    expect(anon.json).toMatchObject({ error: 'missing_token' });
    expect(await stateOf()).toEqual(before);
  });
  it('with a __proto__ or constructor.prototype key is a 400, nothing changes', async () => {
    const before = await stateOf();
    for (const body of ['{"state":"ACTIVE","reason":"x","__proto__":{"force":true}}', '{"state":"ACTIVE","reason":"x","constructor":{"prototype":{"force":true}}}']) {
      const r = await rawRequest(c.port, head('application/json'), body);
      expect(r.status, body).toBe(400);
      expect(r.json, body).toMatchObject({ error: 'bad_request' });
    }
    expect(await stateOf()).toEqual(before);
  });
});

describe('queries and the stream', () => {
  it('prototype keys in a query are a 400', async () => {
    for (const q of ['__proto__=1', 'constructor=1', '__proto__[limit]=1', 'limit=5&limit=6']) {
      const r = await rawRequest(c.port, [`GET /api/events?${q} HTTP/1.1`, host()]);
      expect(r.status, q).toBe(400);
      expect(r.json, q).toMatchObject({ error: 'bad_request' });
    }
  });
  it('a cross-site stream request (an EventSource on another site) is refused', async () => {
    for (const h of ['Origin: https://evil.example', 'Sec-Fetch-Site: cross-site', 'Sec-Fetch-Site: same-site', 'Origin: null']) {
      const r = await rawRequest(c.port, ['GET /api/stream HTTP/1.1', host(), h]);
      expect(r.status, h).toBe(403);
      expect(r.json, h).toMatchObject({ error: 'cross_site' });
    }
  });
  it('Host spellings that are not loopback names are 421', async () => {
    for (const h of ['127.0.0.1.evil.example', 'localhost@evil.example', '127.0.0.1:80@evil.example', 'evil.example#127.0.0.1', '0x7f000001', '127.1']) {
      const r = await rawRequest(c.port, ['GET /api/symbols HTTP/1.1', `Host: ${h}`]);
      expect([400, 421], h).toContain(r.status);
      expect(r.json?.symbols, h).toBeUndefined();
    }
    const r10 = await rawRequest(c.port, ['GET /api/symbols HTTP/1.0']);
    expect(r10.status).toBe(421);
  });
  it('the page itself is served only under a loopback name (a rebinding site cannot show it on its origin)', async () => {
    for (const path of ['/', '/static/app.js']) {
      expect((await rawRequest(c.port, [`GET ${path} HTTP/1.1`, 'Host: evil.example'])).json, path).toMatchObject({ error: 'bad_host' });
      expect((await rawRequest(c.port, [`GET ${path} HTTP/1.1`, host()])).status, path).toBe(200);
    }
  });
});

/** Opens a live stream and resolves once its status line arrived (with the socket, still open). */
function openStream(port: number): Promise<{ status: number; sock: Socket }> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1', () => sock.write(`GET /api/stream HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`));
    sock.once('data', (d: Buffer) => resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(d.toString())?.[1] ?? 0), sock }));
    sock.on('error', reject);
  });
}

describe('live streams', () => {
  it('at most maxStreams are open at once: one more is 503 too_many_streams, a closed one frees its place', async () => {
    const small = await startConsole(t.redis, consoleConfig({ port: 0 }, { P3_ALLOWLIST: 'BTCUSDT' }), log.logger, { maxStreams: 2 });
    const socks: Socket[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const s = await openStream(small.port);
        socks.push(s.sock);
        expect(s.status).toBe(200);
      }
      const over = await openStream(small.port);
      socks.push(over.sock);
      expect(over.status).toBe(503);
      socks[0]!.destroy();
      await waitFor(async () => {
        const again = await openStream(small.port);
        socks.push(again.sock);
        return again.status === 200;
      }, 20_000, 50, 'a place freed by the closed stream');
    } finally {
      for (const s of socks) s.destroy();
      await small.close();
    }
  });
});

describe('the pure checks', () => {
  it('pathRefusal accepts canonical paths only', () => {
    for (const ok of ['/', '/api/symbols', '/api/plans/flatten%3ABTCUSDT%3A1', '/api/events?symbol=BTCUSDT&since=1', '/static/app.js', '/api/plans/a~b_c.d-e@f']) expect(pathRefusal(ok), ok).toBeNull();
    for (const bad of ['', '*', 'api/symbols', 'http://h/api/symbols', '//api', '/api/', '/api//x', '/./api', '/api/..', '/%61pi', '/api/%3a', '/api/%2F', '/api/%5C', '/api/%zz', '/api/%4', '/api/a b', '/api/a;b', '/api/a\\b', '/api/ü', `/${'a'.repeat(3000)}`]) {
      expect(pathRefusal(bad), bad).toMatchObject({ status: 400, error: 'bad_path' });
    }
  });
  it('duplicateHeaderRefusal and mediaTypeRefusal', () => {
    expect(duplicateHeaderRefusal(['Host', 'a', 'Accept', 'x', 'accept', 'y'])).toBeNull();
    expect(duplicateHeaderRefusal(['Host', 'a', 'HOST', 'b'])).toMatchObject({ error: 'duplicate_header' });
    expect(mediaTypeRefusal('application/json')).toBeNull();
    expect(mediaTypeRefusal('application/json;charset="utf-8"')).toBeNull();
    expect(mediaTypeRefusal('application/json;charset=utf-16')).toMatchObject({ status: 415 });
  });
});
