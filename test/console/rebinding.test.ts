/**
 * DNS rebinding in a real browser: chromium resolves `evil.example` to 127.0.0.1 (as a rebinding page's
 * name would after its TTL). The console's page is not served under that name (421); from a document on
 * that origin the test tries the API with every spelling the browser can send. The browser keeps `%61` as written, so only a gate keyed by the matched route holds:
 * `/api/...` is 421 (foreign Host), any other spelling 400 `bad_path`, and Redis is unchanged.
 */
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/adapters/logging/logger.js';
import { STREAMS, keys } from '../../src/adapters/redis/keys.js';
import { consoleConfig, startConsole, type RunningConsole } from '../../src/console/index.js';
import { useTestRedis } from '../helpers/redis.js';
import { CHROMIUM, launchChromium, type TestBrowser } from './browser.js';

const TOKEN = 'rebinding-console-token-0123456789';
const t = useTestRedis();
let c: RunningConsole;
let browser: TestBrowser;

beforeAll(async () => {
  c = await startConsole(t.redis, consoleConfig({ port: 0 }, { P3_ALLOWLIST: 'BTCUSDT', P3_CONSOLE_TOKEN: TOKEN }), createLogger('console', 'silent'));
  await t.redis.hset(keys.tradingState(), { state: 'HALTED', reason: 'incident', by: 'test', ts_ms: String(Date.now()) });
  if (existsSync(CHROMIUM)) browser = await launchChromium(['--host-resolver-rules=MAP evil.example 127.0.0.1']);
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await c?.close();
});

describe.runIf(existsSync(CHROMIUM))('a DNS-rebinding page in chromium', () => {
  it('reaches no read and no action by any spelling', async () => {
    const page = await browser.ctx.newPage();
    // the console's own page is not shown under the rebinding name (an operator could type the token into it)
    for (const path of ['/', '/static/app.js']) {
      const nav = await page.goto(`http://evil.example:${c.port}${path}`);
      expect(nav?.status(), path).toBe(421);
    }
    // a document on the rebinding origin, as the attacker's own page would be
    await page.goto(`http://evil.example:${c.port}/nothing-here`);
    const before = { trading: await t.redis.hgetall(keys.tradingState()), events: await t.redis.xlen(STREAMS.governorEvents) };
    const answers = await page.evaluate(async () => {
      const out: Record<string, { status: number; error: string | null; sent: string }> = {};
      const tries: Array<[string, string]> = [
        ['GET', '/api/symbols'],
        ['GET', '/%61pi/symbols'],
        ['GET', '/ap%69/services'],
        ['GET', '/api/%73ymbols'],
        ['GET', '/%61pi/stream'],
        ['POST', '/api/trading-state'],
        ['POST', '/%61pi/trading-state'],
        ['POST', '/ap%69/trading-state'],
      ];
      for (const [method, path] of tries) {
        const res = await fetch(path, {
          method,
          headers: method === 'POST' ? { 'content-type': 'application/json', 'x-p3-operator': 'mallory' } : {},
          body: method === 'POST' ? JSON.stringify({ state: 'ACTIVE', reason: 'rebinding' }) : undefined,
        });
        let error: string | null = null;
        if ((res.headers.get('content-type') ?? '').startsWith('application/json')) error = ((await res.json()) as { error?: string }).error ?? null;
        else await res.body?.cancel(); // an open event stream: only its status matters
        out[`${method} ${path}`] = { status: res.status, error, sent: new URL(res.url).pathname };
      }
      return out;
    });
    await page.close();
    for (const [k, a] of Object.entries(answers)) {
      const path = k.split(' ')[1]!;
      expect(a.sent, `${k}: chromium sent the path as written`).toBe(path);
      if (path.startsWith('/api/') && !path.includes('%')) expect(a, k).toMatchObject({ status: 421, error: 'bad_host' });
      else expect(a, k).toMatchObject({ status: 400, error: 'bad_path' });
    }
    expect({ trading: await t.redis.hgetall(keys.tradingState()), events: await t.redis.xlen(STREAMS.governorEvents) }).toEqual(before);
  }, 60_000);
});
