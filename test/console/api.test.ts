/**
 * Operator console JSON API against a private Redis: reads, and every action's refusal paths (no token
 * configured, no token, wrong token, cross-site Origin / Sec-Fetch-Site, foreign Host, bad body), each
 * checked to leave Redis unchanged; then the accepted actions and the events they record (who and why).
 */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fieldsToObject } from '../../src/adapters/redis/consumer.js';
import { STREAMS, keys } from '../../src/adapters/redis/keys.js';
import { createLogger } from '../../src/adapters/logging/logger.js';
import { ConfigError } from '../../src/config/env.js';
import { consoleConfig, startConsole, type RunningConsole } from '../../src/console/index.js';
import { useTestRedis } from '../helpers/redis.js';

const TOKEN = 'test-console-token-0123456789';
const OPERATOR_KEY = 'operator-key-for-flatten-0123456789abcdef';
const t = useTestRedis();
let withToken: RunningConsole;
let noToken: RunningConsole;
const logger = createLogger('console', 'silent');

beforeAll(async () => {
  const env = { P3_ALLOWLIST: 'BTCUSDT,ETHUSDT' };
  withToken = await startConsole(t.redis, consoleConfig({ port: 0 }, { ...env, P3_CONSOLE_TOKEN: TOKEN, P3_KEY_OPERATOR: OPERATOR_KEY }), logger);
  noToken = await startConsole(t.redis, consoleConfig({ port: 0 }, env), logger);
  await t.redis.hset(keys.snapshot('BTCUSDT'), { position_amt: '0.007', side: 'LONG', ts_ms: String(Date.now() + 1000), source: 'stream' });
  await t.redis.hset(keys.ledger('BTCUSDT'), { ledger_amt: '0.007', ledger_side: 'LONG', ts_epoch: '1', version: '1', source: 'init' });
});
afterAll(async () => {
  await withToken?.close();
  await noToken?.close();
});

const good = { authorization: `Bearer ${TOKEN}`, 'x-p3-operator': 'alice', 'content-type': 'application/json' };

async function call(c: RunningConsole, method: string, path: string, body?: unknown, headers: Record<string, string> = good) {
  const res = await fetch(`${c.url.replace(/\/$/, '')}${path}`, { method, headers, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** Everything an action could change, to compare before/after a refusal. */
async function stateOf() {
  const r = t.redis;
  return {
    hold: await r.get(keys.hold('BTCUSDT')),
    holdReason: await r.get(keys.holdReason('BTCUSDT')),
    ledger: await r.hgetall(keys.ledger('BTCUSDT')),
    trading: await r.hgetall(keys.tradingState()),
    tradingSym: await r.hgetall(keys.tradingState('BTCUSDT')),
    events: await r.xlen(STREAMS.reconcileEvents),
    governorEvents: await r.xlen(STREAMS.governorEvents),
    flattens: await r.xlen(STREAMS.applyFlatten),
  };
}

const ACTIONS: Array<{ name: string; method: string; path: string; body: Record<string, unknown> }> = [
  { name: 'hold set', method: 'POST', path: '/api/holds/BTCUSDT', body: { reason: 'investigating', ttl_sec: 60 } },
  { name: 'hold clear', method: 'DELETE', path: '/api/holds/BTCUSDT', body: { reason: 'done' } },
  { name: 'ledger set', method: 'POST', path: '/api/ledger/BTCUSDT', body: { amount: '0.007', reason: 'verified' } },
  { name: 'trading state', method: 'POST', path: '/api/trading-state', body: { state: 'HALTED', reason: 'incident' } },
  { name: 'flatten', method: 'POST', path: '/api/flatten', body: { symbols: ['BTCUSDT'], reason: 'kill it', confirm: 'BTCUSDT' } },
];

describe('reads', () => {
  it('GET /api/symbols: the p3 status row (amounts, hold, snapshot age and source) and the console info', async () => {
    const r = await call(withToken, 'GET', '/api/symbols', undefined, {});
    expect(r.status).toBe(200);
    const rows = r.body.symbols as Array<Record<string, unknown>>;
    expect(rows.map((x) => x.symbol)).toEqual(['BTCUSDT', 'ETHUSDT']);
    expect(rows[0]).toMatchObject({ exchange_amt: '0.007', ledger_amt: '0.007', snapshot_source: 'stream', hold: { active: false } });
    expect(r.body.console).toMatchObject({ actions_enabled: true, loopback: true });
    expect((await call(noToken, 'GET', '/api/symbols', undefined, {})).body.console).toMatchObject({ actions_enabled: false });
  });
  it('GET /api/services, /api/plans/:id, /api/events validate and answer', async () => {
    const s = await call(withToken, 'GET', '/api/services', undefined, {});
    expect(s.body).toMatchObject({ services: { missing: expect.arrayContaining(['governor']) }, trading: { global: { state: 'ACTIVE' } } });
    expect(s.body.dead_letters).toHaveProperty(['quantum:stream:apply.plan.dlq'], 0);
    expect((await call(withToken, 'GET', '/api/plans/nope', undefined, {})).body).toMatchObject({ found: false, planId: 'nope' });
    expect((await call(withToken, 'GET', '/api/plans/bad%20id', undefined, {})).status).toBe(400);
    const bad = await call(withToken, 'GET', '/api/events?since=yesterday', undefined, {});
    expect(bad.status).toBe(400);
    expect(bad.body.message).toMatch(/since must be epoch milliseconds/);
    expect((await call(withToken, 'GET', '/api/events?limit=0', undefined, {})).status).toBe(400);
  });
  it('GET /api/stream: hello, the symbols table, then each new reconcile event as it is written', async () => {
    const ac = new AbortController();
    const res = await fetch(`${withToken.url}api/stream`, { signal: ac.signal });
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    const seen: Array<{ event: string; data: Record<string, unknown> }> = [];
    let buf = '';
    const until = async (pred: () => boolean) => {
      while (!pred()) {
        const { value, done } = await reader.read();
        if (done) throw new Error('stream ended');
        buf += value;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const chunk = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const ev = /^event: (.+)$/m.exec(chunk)?.[1];
          const data = /^data: (.+)$/m.exec(chunk)?.[1];
          if (ev && data) seen.push({ event: ev, data: JSON.parse(data) as Record<string, unknown> });
        }
      }
    };
    try {
      await until(() => seen.some((m) => m.event === 'symbols'));
      expect(seen[0]).toMatchObject({ event: 'hello', data: { console: { actions_enabled: true } } });
      // write an event the way the engine does. The follower forwards only entries newer than each stream's
      // newest one when it starts (hub.ts), and the test cannot see when that is: it writes a uniquely
      // tagged event every 500 ms until the stream shows one (no fixed sleep)
      const probes: string[] = [];
      let writing = true;
      const writer = (async () => {
        while (writing) {
          const probe = `probe-${process.pid}-${probes.length + 1}`;
          probes.push(probe);
          await t.redis.xadd(STREAMS.reconcileEvents, '*', 'event', 'HOLD_SET', 'symbol', 'ETHUSDT', 'reason', 'qty_mismatch_no_evidence', 'probe', probe, 'ts_ms', String(Date.now()));
          if (writing) await new Promise((r) => setTimeout(r, 500));
        }
      })();
      try {
        await until(() => seen.some((m) => m.event === 'event' && m.data.symbol === 'ETHUSDT'));
      } finally {
        writing = false;
        await writer;
      }
      const ev = seen.find((m) => m.event === 'event')!.data;
      expect(ev).toMatchObject({ stream: 'reconcile', kind: 'HOLD_SET', symbol: 'ETHUSDT', fields: { reason: 'qty_mismatch_no_evidence' } });
      expect(probes).toContain((ev.fields as Record<string, string>).probe);
    } finally {
      ac.abort();
    }
  });
  it('same-origin requests pass (the page sends Origin on POST)', async () => {
    const origin = withToken.url.replace(/\/$/, '');
    const r = await call(withToken, 'POST', '/api/trading-state', { state: 'ACTIVE', reason: 'same origin' }, { ...good, origin, 'sec-fetch-site': 'same-origin' });
    expect(r.status).toBe(200);
  });
  it('reads from another site or through a foreign Host (DNS rebinding) are refused', async () => {
    expect((await call(withToken, 'GET', '/api/symbols', undefined, { origin: 'https://evil.example' })).status).toBe(403);
    expect((await call(withToken, 'GET', '/api/symbols', undefined, { 'sec-fetch-site': 'cross-site' })).status).toBe(403);
    // fetch cannot set Host: a raw request, as a browser sends it after a DNS rebinding
    const h = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: withToken.port, path: '/api/symbols', headers: { host: `evil.example:${withToken.port}` } }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end();
    });
    expect(h.status).toBe(421);
    expect(JSON.parse(h.body)).toMatchObject({ error: 'bad_host' });
  });
});

describe('every action is refused, and nothing changes, when', () => {
  const cases: Array<{ why: string; console: () => RunningConsole; headers: Record<string, string>; status: number; error: string; body?: unknown }> = [
    { why: 'no token is configured (actions disabled)', console: () => noToken, headers: good, status: 403, error: 'actions_disabled' },
    { why: 'the Authorization header is missing', console: () => withToken, headers: { 'x-p3-operator': 'alice', 'content-type': 'application/json' }, status: 401, error: 'missing_token' },
    { why: 'the token is wrong', console: () => withToken, headers: { ...good, authorization: 'Bearer wrong-token-wrong-token' }, status: 401, error: 'bad_token' },
    { why: 'the scheme is not Bearer', console: () => withToken, headers: { ...good, authorization: `Basic ${TOKEN}` }, status: 401, error: 'bad_token' },
    { why: 'the Origin is another site', console: () => withToken, headers: { ...good, origin: 'https://evil.example' }, status: 403, error: 'cross_site' },
    { why: 'Sec-Fetch-Site says cross-site', console: () => withToken, headers: { ...good, 'sec-fetch-site': 'cross-site' }, status: 403, error: 'cross_site' },
    { why: 'the Origin is the same host on another port', console: () => withToken, headers: { ...good, origin: 'http://127.0.0.1:1' }, status: 403, error: 'cross_site' },
    { why: 'the Origin is null (sandboxed frame)', console: () => withToken, headers: { ...good, origin: 'null' }, status: 403, error: 'cross_site' },
    { why: 'the operator is not named', console: () => withToken, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, status: 400, error: 'bad_request' },
  ];
  for (const a of ACTIONS) {
    for (const c of cases) {
      it(`${a.name}: ${c.why}`, async () => {
        const before = await stateOf();
        const r = await call(c.console(), a.method, a.path, a.body, c.headers);
        expect(r.status).toBe(c.status);
        expect(r.body.error).toBe(c.error);
        expect(String(r.body.message).length).toBeGreaterThan(10);
        expect(await stateOf()).toEqual(before);
      });
    }
  }
});

describe('bad bodies are a 400 naming the problem, and nothing changes', () => {
  const bad: Array<[string, string, unknown, RegExp]> = [
    ['POST', '/api/holds/BTCUSDT', {}, /reason/],
    ['POST', '/api/holds/BTCUSDT', { reason: 'x', ttl_sec: 'soon' }, /ttl_sec/],
    ['POST', '/api/holds/BTCUSDT', { reason: 'x', extra: 1 }, /extra|unrecognized/i],
    ['POST', '/api/holds/btc-usdt', { reason: 'x' }, /bad symbol/],
    ['POST', '/api/holds/DOGEUSDT', { reason: 'x' }, /not in the allowlist/],
    ['POST', '/api/holds/BTCUSDT', 'not json', /JSON|body/],
    ['DELETE', '/api/holds/BTCUSDT', { reason: '' }, /reason/],
    ['POST', '/api/ledger/BTCUSDT', { amount: 'lots', reason: 'x' }, /amount must be a signed decimal/],
    ['POST', '/api/ledger/BTCUSDT', { amount: '0.007' }, /reason/],
    ['POST', '/api/ledger/BTCUSDT', { amount: '-0.007', reason: 'x', force: true }, /force needs confirm/],
    ['POST', '/api/ledger/BTCUSDT', { amount: '-0.007', reason: 'x', force: true, confirm: 'ETHUSDT' }, /force needs confirm/],
    ['POST', '/api/trading-state', { state: 'PAUSED', reason: 'x' }, /state must be one of ACTIVE, REDUCING, HALTED/],
    ['POST', '/api/trading-state', { state: 'HALTED', reason: 'x', symbol: 'DOGEUSDT' }, /not in the allowlist/],
    ['POST', '/api/flatten', { symbols: ['BTCUSDT'], reason: 'x', confirm: 'ETHUSDT' }, /confirm must be "BTCUSDT"/],
    ['POST', '/api/flatten', { symbols: ['BTCUSDT', 'ETHUSDT'], reason: 'x', confirm: 'BTCUSDT' }, /confirm must be "BTCUSDT,ETHUSDT"/],
    ['POST', '/api/flatten', { all: true, reason: 'x', confirm: 'BTCUSDT' }, /confirm must be "ALL"/],
    ['POST', '/api/flatten', { symbols: ['BTCUSDT'], all: true, reason: 'x', confirm: 'ALL' }, /either symbols/],
    ['POST', '/api/flatten', { symbols: ['DOGEUSDT'], reason: 'x', confirm: 'DOGEUSDT' }, /not in the allowlist/],
    ['POST', '/api/flatten', { symbols: ['BTCUSDT'], reason: 'x' }, /confirm/],
  ];
  for (const [method, path, body, msg] of bad) {
    it(`${method} ${path} ${JSON.stringify(body)}`, async () => {
      const before = await stateOf();
      const r = await call(withToken, method, path, body);
      expect(r.status).toBe(400);
      expect(r.body.error).toBe('bad_request');
      expect(String(r.body.message)).toMatch(msg);
      expect(await stateOf()).toEqual(before);
    });
  }
});

describe('accepted actions are recorded with who and why', () => {
  const lastEvent = async (stream: string) => fieldsToObject((await t.redis.xrevrange(stream, '+', '-', 'COUNT', 1))[0]![1]);

  it('hold set / clear: an operator hold (no hold_sig), events with by=console:alice and the reason', async () => {
    const r = await call(withToken, 'POST', '/api/holds/BTCUSDT', { reason: 'investigating', ttl_sec: 120 });
    expect(r.status).toBe(200);
    expect(await t.redis.get(keys.hold('BTCUSDT'))).toBe('1');
    expect(await t.redis.get(keys.holdReason('BTCUSDT'))).toBe('investigating');
    expect(await t.redis.exists(keys.holdSig('BTCUSDT'))).toBe(0);
    expect(await t.redis.ttl(keys.hold('BTCUSDT'))).toBeGreaterThan(100);
    expect(await lastEvent(STREAMS.reconcileEvents)).toMatchObject({ event: 'HOLD_SET', symbol: 'BTCUSDT', reason: 'investigating', by: 'console:alice', via: 'console', hold_owner: 'operator' });
    const rows = (await call(withToken, 'GET', '/api/symbols', undefined, {})).body.symbols as Array<{ hold: Record<string, unknown> }>;
    expect(rows[0]!.hold).toMatchObject({ active: true, owner: 'operator', reason: 'investigating' });
    const c = await call(withToken, 'DELETE', '/api/holds/BTCUSDT', { reason: 'checked, all fine' }, { ...good, 'x-p3-operator': 'bob' });
    expect(c).toMatchObject({ status: 200, body: { existed: true } });
    expect(await t.redis.exists(keys.hold('BTCUSDT'))).toBe(0);
    expect(await lastEvent(STREAMS.reconcileEvents)).toMatchObject({ event: 'HOLD_CLEARED', reason: 'checked, all fine', by: 'console:bob', previous_reason: 'investigating' });
  });

  it('ledger set: refused (409) when it disagrees with the snapshot; written with force + typed confirmation', async () => {
    const before = await stateOf();
    const r = await call(withToken, 'POST', '/api/ledger/BTCUSDT', { amount: '-0.007', reason: 'typo' });
    expect(r).toMatchObject({ status: 409, body: { error: 'ledger_disagrees', needs_confirm: 'BTCUSDT' } });
    expect(String(r.body.message)).toMatch(/snapshot of BTCUSDT says 0.007/);
    expect(await stateOf()).toEqual(before);
    const ok = await call(withToken, 'POST', '/api/ledger/BTCUSDT', { amount: '0.007', reason: 'verified on the exchange', operator: 'carol' }, { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' });
    expect(ok).toMatchObject({ status: 200, body: { old: '0.007', amount: '0.007', version: 2 } });
    expect(await lastEvent(STREAMS.reconcileEvents)).toMatchObject({ event: 'LEDGER_SET', by: 'console:carol', reason: 'verified on the exchange', source: 'operator' });
    const forced = await call(withToken, 'POST', '/api/ledger/BTCUSDT', { amount: '0.005', reason: 'exchange UI shows 0.005', force: true, confirm: 'BTCUSDT' });
    expect(forced.status).toBe(200);
    expect(forced.body.warning).toMatch(/differs/);
    expect(await t.redis.hget(keys.ledger('BTCUSDT'), 'ledger_amt')).toBe('0.005');
    expect(await lastEvent(STREAMS.reconcileEvents)).toMatchObject({ event: 'LEDGER_SET', forced: '1', new_ledger_amt: '0.005', by: 'console:alice' });
  });

  it('trading state: global and per symbol, event TRADING_STATE_SET with by and reason', async () => {
    expect((await call(withToken, 'POST', '/api/trading-state', { state: 'REDUCING', reason: 'incident 42' })).status).toBe(200);
    expect(await t.redis.hgetall(keys.tradingState())).toMatchObject({ state: 'REDUCING', reason: 'incident 42', by: 'console:alice' });
    expect((await call(withToken, 'POST', '/api/trading-state', { state: 'HALTED', reason: 'bad fills', symbol: 'ethusdt' })).status).toBe(200);
    expect(await t.redis.hgetall(keys.tradingState('ETHUSDT'))).toMatchObject({ state: 'HALTED', by: 'console:alice' });
    expect(await lastEvent(STREAMS.governorEvents)).toMatchObject({ event: 'TRADING_STATE_SET', scope: 'ETHUSDT', state: 'HALTED', reason: 'bad fills', by: 'console:alice' });
    await call(withToken, 'POST', '/api/trading-state', { state: 'ACTIVE', reason: 'resolved' });
  });
});

describe('flatten', () => {
  it('submits one signed FLATTEN plan per symbol with a FLATTEN_REQUESTED event (who, why)', async () => {
    const r = await call(withToken, 'POST', '/api/flatten', { symbols: ['btcusdt'], reason: 'kill switch on, close it', confirm: 'btcusdt' });
    expect(r.status).toBe(200);
    const plans = r.body.plans as Array<{ symbol: string; plan_id: string }>;
    expect(plans).toEqual([{ symbol: 'BTCUSDT', plan_id: expect.stringMatching(/^flatten:BTCUSDT:/) }]);
    const newest = (await t.redis.xrevrange(STREAMS.applyFlatten, '+', '-', 'COUNT', 1)) as Array<[string, string[]]>;
    const entry = fieldsToObject(newest[0]![1]);
    expect(JSON.parse(entry.plan!)).toMatchObject({ plan_id: plans[0]!.plan_id, symbol: 'BTCUSDT', source: 'operator', action: 'FLATTEN' });
    expect(entry.mac).toMatch(/^[0-9a-f]{64}$/);
    const ev = fieldsToObject((await t.redis.xrevrange(STREAMS.reconcileEvents, '+', '-', 'COUNT', 1))[0]![1]);
    expect(ev).toMatchObject({ event: 'FLATTEN_REQUESTED', symbol: 'BTCUSDT', plan_id: plans[0]!.plan_id, by: 'console:alice', reason: 'kill switch on, close it' });
    const all = await call(withToken, 'POST', '/api/flatten', { all: true, reason: 'everything', confirm: 'all' });
    expect((all.body.plans as Array<{ symbol: string }>).map((p) => p.symbol)).toEqual(['BTCUSDT', 'ETHUSDT']);
  });
  it('is unavailable (403, nothing written) without P3_KEY_OPERATOR, and the page is told', async () => {
    const c = await startConsole(t.redis, consoleConfig({ port: 0 }, { P3_ALLOWLIST: 'BTCUSDT', P3_CONSOLE_TOKEN: TOKEN }), logger);
    try {
      const before = await stateOf();
      const r = await call(c, 'POST', '/api/flatten', { symbols: ['BTCUSDT'], reason: 'x', confirm: 'BTCUSDT' });
      expect(r).toMatchObject({ status: 403, body: { error: 'flatten_unavailable' } });
      expect(String(r.body.message)).toMatch(/P3_KEY_OPERATOR/);
      expect(await stateOf()).toEqual(before);
      expect((await call(c, 'GET', '/api/symbols', undefined, {})).body.console).toMatchObject({ flatten_available: false });
      expect((await call(withToken, 'GET', '/api/symbols', undefined, {})).body.console).toMatchObject({ flatten_available: true });
    } finally {
      await c.close();
    }
  });
});

describe('address and token rules', () => {
  it('refuses to start on a non-loopback address without a token (exit 2 naming P3_CONSOLE_TOKEN)', () => {
    expect(() => consoleConfig({ host: '0.0.0.0' }, {})).toThrow(ConfigError);
    expect(() => consoleConfig({ host: '0.0.0.0' }, {})).toThrow(/P3_CONSOLE_TOKEN/);
    expect(() => consoleConfig({}, { P3_CONSOLE_TOKEN: 'short' })).toThrow(/at least 16/);
    expect(() => consoleConfig({ port: '99999' }, {})).toThrow(/--port/);
    expect(consoleConfig({ host: '::1' }, {}).loopback).toBe(true);
  });
  it('on a non-loopback address reads need the token too', async () => {
    const c = await startConsole(t.redis, consoleConfig({ port: 0, host: '0.0.0.0' }, { P3_CONSOLE_TOKEN: TOKEN }), logger);
    try {
      const url = `http://127.0.0.1:${c.port}`;
      const anon = await fetch(`${url}/api/symbols`);
      expect(anon.status).toBe(401);
      const stream = await fetch(`${url}/api/stream`);
      expect(stream.status).toBe(401);
      const authed = await fetch(`${url}/api/symbols`, { headers: { authorization: `Bearer ${TOKEN}` } });
      expect(authed.status).toBe(200);
      expect((await fetch(`${url}/`)).status).toBe(200); // the page itself holds no data
    } finally {
      await c.close();
    }
  });
});
