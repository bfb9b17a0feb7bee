/**
 * ioredis ends a connection for good when its connector is disconnected while a reconnect is in progress
 * (what Sentinel's failover detector does when +switch-master arrives during a reconnect; found by
 * `p3 chaos --sentinel --seed 104`, the brain stayed stale for five minutes). The project's connections
 * (createRedis, and their duplicates) connect again by themselves; one closed on purpose stays closed.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { createRedis } from '../../src/adapters/redis/client.js';
import { startTestRedis, waitFor, type TestRedis } from '../helpers/redis.js';

let srv: TestRedis;
beforeAll(async () => {
  srv = await startTestRedis();
});
afterAll(async () => {
  await srv.stop();
});

/** What the failover detector does, at the worst moment: the connector disconnected as a reconnect starts. */
async function endByLibrary(r: Redis): Promise<void> {
  await r.ping();
  const ended = new Promise<void>((resolve) => r.once('end', () => resolve()));
  r.once('connecting', () => (r as unknown as { connector: { disconnect(): void } }).connector.disconnect());
  (r as unknown as { connector: { disconnect(): void } }).connector.disconnect(); // the stream closes: ioredis reconnects
  await ended;
}

it('a connection (and a duplicate) that ioredis ended is connected again; one we quit stays closed', async () => {
  const r = createRedis(srv.url, { name: 'test:revive' });
  r.on('error', () => undefined);
  const d = r.duplicate();
  d.on('error', () => undefined);
  try {
    for (const c of [r, d]) {
      await endByLibrary(c);
      // before the fix: status 'end' for good, every command "Connection is closed."
      await waitFor(async () => (await c.ping().catch(() => null)) === 'PONG', 10_000, 50, 'the ended connection answers again');
    }
    await d.quit();
    r.disconnect();
    await new Promise((res) => setTimeout(res, 500));
    for (const c of [d, r]) {
      expect(c.status).toBe('end');
      await expect(c.ping()).rejects.toThrow(/Connection is closed/);
    }
  } finally {
    r.disconnect();
    d.disconnect();
  }
});

it('a connection whose retryStrategy gives up on purpose (the CLI\'s) stays ended', async () => {
  const r = createRedis(srv.url, { name: 'test:giveup', overrides: { retryStrategy: () => null } });
  r.on('error', () => undefined);
  try {
    await r.ping();
    const ended = new Promise<void>((resolve) => r.once('end', () => resolve()));
    (r as unknown as { connector: { disconnect(): void } }).connector.disconnect(); // the socket closes; no retry
    await ended;
    await new Promise((res) => setTimeout(res, 600));
    expect(r.status).toBe('end');
  } finally {
    r.disconnect();
  }
});
