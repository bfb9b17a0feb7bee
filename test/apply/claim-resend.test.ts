/**
 * REVIEW (hostile): the claim's SET NX executed by Redis but its reply lost with the connection.
 * ioredis (autoResendUnfulfilledCommands, maxRetriesPerRequest 1: the first reconnect keeps the queue)
 * sends the SET NX again on the new connection; it answers nil (our own claim is there), and claimPlan
 * reports "not claimed" with OUR OWN value: claimOrResume then publishes DROPPED_DUPLICATE and the plan is
 * never executed nor finally recorded (the claim blocks every re-submission for 24 h).
 */
import { createServer, connect, type Socket } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createRedis } from '../../src/adapters/redis/client.js';
import { claimPlan } from '../../src/services/apply-layer/store.js';
import { startTestRedis, type TestRedis } from '../helpers/redis.js';

let srv: TestRedis;
let proxyPort = 0;
let killOnNextReply = false;
const server = createServer((client: Socket) => {
  const up = connect(srv.port, '127.0.0.1');
  let dropping = false;
  client.on('data', (d) => {
    if (d.toString().includes('quantum:apply:dedupe:') && killOnNextReply) {
      killOnNextReply = false;
      dropping = true;
    }
    up.write(d);
  });
  up.on('data', (d) => {
    if (dropping) {
      client.destroy(); // Redis executed the SET NX; its reply never reaches the client
      up.destroy();
      return;
    }
    client.write(d);
  });
  client.on('error', () => undefined);
  up.on('error', () => undefined);
  client.on('close', () => up.destroy());
});

beforeAll(async () => {
  srv = await startTestRedis();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  proxyPort = (server.address() as { port: number }).port;
});
afterAll(async () => {
  server.close();
  await srv.stop();
});

it('a claim whose reply was lost is reported as somebody else\'s claim (our own value comes back as "existing")', async () => {
  const redis = createRedis(`redis://127.0.0.1:${proxyPort}`, { name: 'review' });
  await redis.ping();
  killOnNextReply = true;
  let out: Awaited<ReturnType<typeof claimPlan>> | Error;
  try {
    out = await claimPlan(redis, 'plan-review-1', '1-0', 'inst:tok');
  } catch (err) {
    out = err as Error; // acceptable: the handler throws and the entry is retried as redelivered
  }
  redis.disconnect();
  // the plan was claimed (by us) in Redis
  const direct = createRedis(`redis://127.0.0.1:${srv.port}`, { name: 'review-direct' });
  expect(await direct.get('quantum:apply:dedupe:plan-review-1')).toBe('claimed|1-0|inst:tok');
  direct.disconnect();
  // the fail-closed outcomes are: claimed, or an error. "not claimed, existing = our own value" is the bug
  if (!(out instanceof Error)) expect(out).toEqual({ claimed: true, value: 'claimed|1-0|inst:tok' });
});
