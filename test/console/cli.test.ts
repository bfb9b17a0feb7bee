/**
 * `p3 console` as a process: prints its URL, serves the API, stops cleanly on SIGTERM; refuses a
 * non-loopback address without P3_CONSOLE_TOKEN and a bad port (exit 2 naming the variable).
 */
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { useTestRedis } from '../helpers/redis.js';

const t = useTestRedis();

function p3(args: string[], env: Record<string, string>, onOut?: (text: string, kill: () => void) => void): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['bin/p3.mjs', ...args], { env: { ...process.env, P3_CONSOLE_TOKEN: '', P3_ALLOWLIST: '', P34_ALLOWLIST: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      onOut?.(stdout, () => child.kill('SIGTERM'));
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('p3 console', () => {
  it('prints its URL, answers the API, says whether actions are enabled, exits 0 on SIGTERM', async () => {
    let answered: unknown = null;
    let asked = false;
    const run = await p3(['console', '--port', '0'], { REDIS_URL: t.srv.url, P3_ALLOWLIST: 'BTCUSDT' }, (out, kill) => {
      const url = /p3 console: (http:\S+)/.exec(out)?.[1];
      if (!url || asked || !/actions/.test(out)) return;
      asked = true;
      void fetch(`${url}api/symbols`)
        .then((r) => r.json())
        .then((b) => (answered = b))
        .finally(kill);
    });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/p3 console: http:\/\/127\.0\.0\.1:\d+\//);
    expect(run.stdout).toMatch(/actions DISABLED: P3_CONSOLE_TOKEN is not set/);
    expect(answered).toMatchObject({ symbols: [{ symbol: 'BTCUSDT' }], console: { actions_enabled: false, loopback: true } });
  }, 30_000);

  it('refuses a non-loopback address without a token, a short token and a bad port (exit 2)', async () => {
    const noToken = await p3(['console', '--host', '0.0.0.0', '--port', '0'], { REDIS_URL: t.srv.url });
    expect(noToken.code).toBe(2);
    expect(noToken.stderr).toMatch(/P3_CONSOLE_TOKEN: required when the console listens on 0\.0\.0\.0/);
    const short = await p3(['console', '--port', '0'], { REDIS_URL: t.srv.url, P3_CONSOLE_TOKEN: 'abc' });
    expect(short.code).toBe(2);
    expect(short.stderr).toMatch(/P3_CONSOLE_TOKEN: must be at least 16 characters/);
    const port = await p3(['console', '--port', 'http'], { REDIS_URL: t.srv.url });
    expect(port.code).toBe(2);
    expect(port.stderr).toMatch(/--port/);
  }, 30_000);
});
