/**
 * The permit waker's subscriber survives Redis restarting again and again. ioredis' automatic re-subscription
 * after a reconnect has no rejection handler; a connection lost again before its reply flushes it with
 * MaxRetriesPerRequestError, an unhandled rejection that kills the process (found by `p3 chaos`, seed 41, in
 * the harness's own keyspace subscriber). The waker now turns ioredis' re-subscription off and re-subscribes
 * itself (with a handler): this test shows it does so after every restart, and that a notification wakes a
 * waiter afterwards. (The exact interleaving that produced the unhandled rejection is timing-dependent and is
 * not reproduced deterministically here; vitest would fail the file on one.)
 */
import { afterAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { createRedis } from '../../src/adapters/redis/client.js';
import { CHANNELS, keys } from '../../src/adapters/redis/keys.js';
import { PermitWaker } from '../../src/services/apply-layer/permit-waker.js';
import { startTestRedis, waitFor, type TestRedis } from '../helpers/redis.js';

let srv: TestRedis | null = null;
afterAll(async () => {
  await srv?.stop();
});

describe('permit waker under Redis restarts', () => {
  it('re-subscribes after every restart, never an unhandled rejection', async () => {
    srv = await startTestRedis();
    const redis = createRedis(srv.url, { name: 'test-waker' });
    redis.on('error', () => undefined);
    const waker = new PermitWaker(redis, pino({ level: 'silent' }));
    await waker.start();
    await waitFor(() => waker.healthy, 10_000, 20, 'subscribed');
    for (let i = 0; i < 6; i++) {
      await srv.kill();
      await new Promise((r) => setTimeout(r, 30 + 40 * (i % 3)));
      await srv.start(); // back, and killed again right away on the next turn: mid re-subscription
    }
    await waitFor(() => waker.healthy, 20_000, 50, 'subscribed again');
    const pub = createRedis(srv.url, { name: 'test-pub' });
    const woken = await waitFor(async () => {
      const w = waker.arm('plan-x');
      try {
        await pub.publish(CHANNELS.permitWritten, keys.permitGovernor('plan-x'));
        return await w.wait(500);
      } finally {
        w.disarm();
      }
    }, 10_000, 50, 'woken by a notification');
    expect(woken).toBe(true);
    waker.stop();
    pub.disconnect();
    redis.disconnect();
  });
});
