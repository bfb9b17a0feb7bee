/**
 * `p3 paper-exchange` as an operator runs it (a real child process): key pair from the options, from
 * EXCHANGE_API_KEY/SECRET, or generated and printed; initial positions; clean exit 0 on SIGTERM; exit 2
 * naming a bad option. Plus the fault table's time budget (`duration_ms`) and listing.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { createExchangeGateway, parseExchangeConfig } from '../../src/adapters/exchange/factory.js';
import { Unavailable } from '../../src/adapters/exchange/errors.js';
import { fmt } from '../../src/domain/decimal.js';
import { freePort, waitFor } from '../helpers/redis.js';
import { adminFaults, adminPositions, startPaperExchange } from '../helpers/paper.js';

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
});

function run(args: string[], env: Record<string, string> = {}) {
  const base = { ...process.env };
  delete base.EXCHANGE_API_KEY;
  delete base.EXCHANGE_API_SECRET;
  const child = spawn(process.execPath, ['bin/p3.mjs', 'paper-exchange', ...args], { env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, out: () => out, err: () => err, exited };
}

describe('p3 paper-exchange', () => {
  it('prints a generated key pair, serves the positions given, and exits 0 on SIGTERM', async () => {
    const port = await freePort();
    const p = run(['--port', String(port), '--symbols', 'BTCUSDT,ETHUSDT,SOLUSDT', '--positions', 'BTCUSDT=0.007,ETHUSDT=-0.5']);
    const line = await waitFor(() => p.out().split('\n').find((l) => l.includes('paper exchange listening')), 30_000, 50, 'the start line');
    const info = JSON.parse(line) as { url: string; api_key: string; api_secret: string; symbols: string[] };
    expect(info.url).toBe(`http://127.0.0.1:${port}`);
    expect(info.symbols).toEqual(['BTCUSDT', 'ETHUSDT', 'SOLUSDT']);
    expect(info.api_key).toMatch(/^[0-9a-f]{48}$/);
    await waitFor(() => p.out().includes(`EXCHANGE_API_SECRET=${info.api_secret}`), 10_000, 50, 'the env line');
    const pos = await adminPositions(info.url);
    expect(pos.BTCUSDT?.positionAmt).toBe('0.007');
    expect(pos.ETHUSDT?.positionAmt).toBe('-0.5');
    expect(pos.SOLUSDT?.positionAmt).toBe('0');
    // the printed pair signs requests
    const gw = createExchangeGateway(parseExchangeConfig({ EXCHANGE_BASE_URL: info.url, EXCHANGE_API_KEY: info.api_key, EXCHANGE_API_SECRET: info.api_secret }));
    expect(fmt((await gw.fetchPositions()).positions.get('ETHUSDT')!.amount)).toBe('-0.5');
    await gw.close();
    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
  });

  it('accepts the key pair from EXCHANGE_API_KEY / EXCHANGE_API_SECRET and does not print the secret', async () => {
    const port = await freePort();
    const p = run(['--port', String(port)], { EXCHANGE_API_KEY: 'envkey12345678', EXCHANGE_API_SECRET: 'envsecret' });
    await waitFor(() => p.out().includes('paper exchange listening'), 30_000, 50, 'the start line');
    expect(p.out()).toContain('"api_key":"envkey12345678"');
    expect(p.out()).not.toContain('envsecret');
    const gw = createExchangeGateway(parseExchangeConfig({ EXCHANGE_BASE_URL: `http://127.0.0.1:${port}`, EXCHANGE_API_KEY: 'envkey12345678', EXCHANGE_API_SECRET: 'envsecret' }));
    expect((await gw.fetchPositions()).positions.size).toBe(0);
    await gw.close();
    p.child.kill('SIGINT');
    expect(await p.exited).toBe(0);
  });

  it('exits 2 naming a bad option', async () => {
    const p = run(['--positions', 'BTCUSDT=abc']);
    expect(await p.exited).toBe(2);
    expect(p.err()).toContain('--positions');
    const q = run(['--api-key', 'onlythekey123']);
    expect(await q.exited).toBe(2);
    const f = run(['--taker-fee-rate', '-0.001']);
    expect(await f.exited).toBe(2);
    expect(f.err()).toContain('--taker-fee-rate');
    const w = run(['--ws-max-connection-ms', '0']);
    expect(await w.exited).toBe(2);
    expect(w.err()).toContain('--ws-max-connection-ms');
  });
});

describe('fault table', () => {
  it('duration_ms bounds a fault in time; GET /admin/faults lists the faults in force', async () => {
    const px = await startPaperExchange();
    const gw = createExchangeGateway(parseExchangeConfig({ EXCHANGE_BASE_URL: px.url, EXCHANGE_API_KEY: px.apiKey, EXCHANGE_API_SECRET: px.apiSecret }));
    try {
      await adminFaults(px.url, { kind: 'http_503_unknown', duration_ms: 800, endpoints: ['time'] });
      const listed = (await (await fetch(`${px.url}/admin/faults`)).json()) as Array<{ kind: string; expiresAtMs: number }>;
      expect(listed.map((f) => f.kind)).toEqual(['http_503_unknown']);
      await expect(gw.serverTime()).rejects.toBeInstanceOf(Unavailable);
      await waitFor(async () => (await gw.serverTime().then(() => true, () => false)), 20_000, 100, 'the fault to expire');
      expect(await (await fetch(`${px.url}/admin/faults`)).json()).toEqual([]);
      const bad = await fetch(`${px.url}/admin/faults`, { method: 'POST', body: JSON.stringify({ kind: 'http_999' }) });
      expect(bad.status).toBe(400);
    } finally {
      await gw.close();
      await px.close();
    }
  });
});
