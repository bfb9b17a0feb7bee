/** `p3 run`: a taken metrics port stops the start before the service takes any work; usage errors exit 2. */
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { freePort, startTestRedis, type TestRedis } from '../helpers/redis.js';

let srv: TestRedis;
beforeAll(async () => {
  srv = await startTestRedis();
});
afterAll(async () => {
  await srv.stop();
});

function p3(args: string[], env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, ['bin/p3.mjs', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const t = setTimeout(() => c.kill('SIGKILL'), 30_000);
    c.on('exit', (code) => {
      clearTimeout(t);
      resolve({ code, stderr });
    });
  });
}

describe('p3 run', () => {
  it('exits 1 when the metrics port is taken, without joining the consumer group', async () => {
    const port = await freePort();
    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(port, '0.0.0.0', () => r()));
    try {
      const r = await p3(['run', 'governor'], { REDIS_URL: srv.url, P3_ALLOWLIST: 'BTCUSDT', GOVERNOR_PROMETHEUS_PORT: String(port), GOVERNOR_LOG_LEVEL: 'error', P3_KEY_GOVERNOR: 'k'.repeat(32) });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/governor: metrics port \d+ is in use/);
      const redis = new Redis(srv.url);
      try {
        const groups = (await redis.exists('quantum:stream:apply.plan')) ? ((await redis.xinfo('GROUPS', 'quantum:stream:apply.plan')) as unknown[]) : [];
        expect(groups).toEqual([]);
      } finally {
        redis.disconnect();
      }
    } finally {
      blocker.close();
    }
  });
  it('a service whose permit key is missing refuses to start (exit 2 naming the variable)', async () => {
    const gov = await p3(['run', 'governor'], { REDIS_URL: srv.url, P3_ALLOWLIST: 'BTCUSDT', GOVERNOR_PROMETHEUS_PORT: '0' });
    expect(gov.code).toBe(2);
    expect(gov.stderr).toMatch(/P3_KEY_GOVERNOR: must be set/);
    const apply = await p3(['run', 'apply-layer'], { REDIS_URL: srv.url, P3_ALLOWLIST: 'BTCUSDT', APPLY_PROMETHEUS_PORT: '0', P3_KEY_GOVERNOR: 'k'.repeat(32) });
    expect(apply.code).toBe(2);
    expect(apply.stderr).toMatch(/P3_KEY_P33: must be set/);
    const brain = await p3(['run', 'position-state-brain'], { REDIS_URL: srv.url, P3_ALLOWLIST: 'BTCUSDT', P33_PROMETHEUS_PORT: '0', P33_SNAPSHOTS_ENABLED: 'false' });
    expect(brain.code).toBe(2);
    expect(brain.stderr).toMatch(/P3_KEY_P33: must be set/);
  });
  it('a bad Sentinel variable stops a service at start (exit 2 naming the variable)', async () => {
    const base = { REDIS_URL: srv.url, P3_ALLOWLIST: 'BTCUSDT', GOVERNOR_PROMETHEUS_PORT: '0', P3_KEY_GOVERNOR: 'k'.repeat(32) };
    const bad = await p3(['run', 'governor'], { ...base, REDIS_SENTINELS: '127.0.0.1', REDIS_SENTINEL_NAME: 'p3' });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/REDIS_SENTINELS: bad sentinel address/);
    const noName = await p3(['run', 'governor'], { ...base, REDIS_SENTINELS: '127.0.0.1:26379' });
    expect(noName.code).toBe(2);
    expect(noName.stderr).toMatch(/REDIS_SENTINEL_NAME: must be set/);
  });
  it('an unknown service name is a usage error (exit 2)', async () => {
    const r = await p3(['run', 'apply-layr'], { REDIS_URL: srv.url });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown service apply-layr/);
  });
});
