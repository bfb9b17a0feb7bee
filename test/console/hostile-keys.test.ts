/**
 * Names that come from outside (URL parameters, Redis keys) and happen to be the names of Object's own
 * properties (`constructor`, `__proto__`, `toString`, `hasOwnProperty`) are plain names: the console's
 * static files, the services view and `p3 status` answer normally, and no error shows a path, a library
 * message or a refused token.
 */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedis } from '../../src/adapters/redis/client.js';
import { STREAMS, keys } from '../../src/adapters/redis/keys.js';
import { consoleConfig, startConsole, type RunningConsole } from '../../src/console/index.js';
import { livenessReport, type HeartbeatInfo } from '../../src/read-model/heartbeats.js';
import { useTestRedis } from '../helpers/redis.js';
import { captureLogger, rawRequest } from './raw-http.js';

const t = useTestRedis();
const log = captureLogger();
let c: RunningConsole;
const PROTO_NAMES = ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf'];

beforeAll(async () => {
  c = await startConsole(t.redis, consoleConfig({ port: 0 }, { P3_ALLOWLIST: 'BTCUSDT' }), log.logger);
  const now = String(Date.now() + 60_000);
  for (const name of PROTO_NAMES) {
    // no `name` field: the name is read from the key, as for a hash written by another tool
    await t.redis.hset(`quantum:heartbeat:${name}:i1`, { instance: 'i1', last_beat_ms: now });
    await t.redis.pexpire(`quantum:heartbeat:${name}:i1`, 600_000);
  }
  await t.redis.hset(keys.tradingState('__proto__'), { state: 'HALTED', reason: 'odd key', by: 'test', ts_ms: String(Date.now()) });
});
afterAll(async () => {
  await c?.close();
});

const get = (path: string) => rawRequest(c.port, [`GET ${path} HTTP/1.1`, `Host: 127.0.0.1:${c.port}`]);

/** Nothing of the machine's layout or of a library's wording in an answer. */
function expectNoInternals(body: string) {
  expect(body).not.toMatch(/\/work\/|\/src\/|\/home\/|node_modules|file:\/\/|ENOENT|EISDIR|at [A-Za-z.]+ \(/);
}

describe('static files', () => {
  it('/static/<name of an Object property> is a 404 naming no path', async () => {
    for (const name of PROTO_NAMES) {
      const r = await get(`/static/${name}`);
      expect(r.status, name).toBe(404);
      expect(r.json, name).toEqual({ error: 'not_found', message: 'no such file' });
      expectNoInternals(r.body);
    }
    expect((await get('/static/app.js')).status).toBe(200);
  });
});

describe('heartbeats and trading states named like Object properties', () => {
  it('livenessReport keeps each as a plain service name', () => {
    const hb = (name: string): HeartbeatInfo => ({ key: `quantum:heartbeat:${name}:i1`, name, instance: 'i1', version: '1', pid: 1, host: 'h', startedMs: 1, lastBeatMs: 1000, ttlMs: 1 });
    const rep = livenessReport(PROTO_NAMES.map(hb), ['governor', 'constructor'], 1000);
    expect(Object.keys(rep.alive).sort()).toEqual([...PROTO_NAMES].sort());
    expect(rep.missing).toEqual(['governor']);
    expect(JSON.parse(JSON.stringify(rep.alive)).constructor).toHaveLength(1);
  });
  it('GET /api/services answers 200 with them listed, and the __proto__ trading state counts', async () => {
    const r = await get('/api/services');
    expect(r.status, r.body).toBe(200);
    const alive = (r.json!.services as { alive: Record<string, unknown[]> }).alive;
    for (const name of PROTO_NAMES) expect(Object.hasOwn(alive, name) && alive[name]!.length, name).toBe(1);
    const symbols = (r.json!.trading as { symbols: Record<string, { state: string }> }).symbols;
    expect(Object.hasOwn(symbols, '__proto__')).toBe(true);
    expect(symbols.__proto__).toMatchObject({ state: 'HALTED' });
    expect(r.json!.verdict).toMatch(/__proto__ HALTED/);
  });
  it('p3 status and p3 status --json exit 0 and show them', async () => {
    const run = (args: string[]) =>
      new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, ['bin/p3.mjs', 'status', ...args], { env: { ...process.env, REDIS_URL: t.srv.url, P3_ALLOWLIST: 'BTCUSDT' }, stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        child.on('exit', (code) => resolve({ code, stdout, stderr }));
      });
    const text = await run([]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/__proto__\s+HALTED/);
    const json = await run(['--json']);
    expect(json.code, json.stderr).toBe(0);
    const parsed = JSON.parse(json.stdout) as { services: { alive: Record<string, unknown[]> } };
    expect(Object.hasOwn(parsed.services.alive, 'constructor')).toBe(true);
  }, 60_000);
});

describe('stream entries with fields named like Object properties', () => {
  it('GET /api/events keeps a __proto__ and a constructor field as plain fields', async () => {
    await t.redis.xadd(STREAMS.reconcileEvents, '*', 'event', 'NOTE', 'symbol', 'BTCUSDT', '__proto__', 'kept', 'constructor', 'also kept', 'ts_ms', String(Date.now()));
    const r = await get('/api/events?symbol=BTCUSDT');
    expect(r.status, r.body).toBe(200);
    const ev = (r.json!.events as Array<{ kind: string; fields: Record<string, string> }>).find((e) => e.kind === 'NOTE')!;
    expect(Object.hasOwn(ev.fields, '__proto__') && ev.fields.__proto__).toBe('kept');
    expect(ev.fields.constructor).toBe('also kept');
  });
});

describe('errors never show internals or secrets', () => {
  it('a failing read is a 500 with a generic message; the details go to the log only', async () => {
    const broken = createRedis(t.srv.url, { name: 'test-broken' });
    await broken.ping();
    broken.disconnect();
    const b = await startConsole(broken, consoleConfig({ port: 0 }, { P3_ALLOWLIST: 'BTCUSDT' }), log.logger);
    try {
      const from = log.lines.length;
      const r = await rawRequest(b.port, ['GET /api/symbols HTTP/1.1', `Host: 127.0.0.1:${b.port}`]);
      expect(r.status).toBe(500);
      expect(r.json).toMatchObject({ error: 'internal' });
      expect(String(r.json!.message)).not.toMatch(/connection|closed|redis/i);
      expectNoInternals(r.body);
      expect(log.lines.slice(from)).toEqual([expect.objectContaining({ level: 50, route: '/api/symbols', err: expect.stringMatching(/closed/i) })]);
    } finally {
      await b.close();
    }
  });
  it('a refused P3_CONSOLE_TOKEN is never echoed (nor any other secret variable)', () => {
    const token = 'secret token with spaces 0123456789';
    expect(() => consoleConfig({}, { P3_CONSOLE_TOKEN: token })).toThrow(/P3_CONSOLE_TOKEN/);
    try {
      consoleConfig({}, { P3_CONSOLE_TOKEN: token });
    } catch (err) {
      expect((err as Error).message).not.toContain('secret');
      expect((err as Error).message).toMatch(/35 characters, not shown/);
    }
    try {
      consoleConfig({}, { P3_CONSOLE_TOKEN: 'shortsecret' });
    } catch (err) {
      expect((err as Error).message).not.toContain('shortsecret');
    }
    // a variable that is not a secret still shows what was refused
    expect(() => consoleConfig({ port: 'http' }, {})).toThrow(/"http"/);
  });
});
