/**
 * A private redis-server is only used once the process answering on its port is the one we started: a port
 * found free and then taken by another test file's Redis (tests run in parallel) must never be mistaken for
 * ours (the test would silently share another file's data).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { RedisPortTaken, redisProcessId, spawnRedisUntilReady, startRedisServer, type RedisServer } from '../../harness/redis-server.js';

let other: RedisServer;
beforeAll(async () => {
  other = await startRedisServer('p3-test-port-');
});
afterAll(async () => {
  await other.stop();
});

it('the probe tells our redis-server from another one on the same port', async () => {
  expect(await redisProcessId(other.url)).toBe(other.pid());
  let child: { pid?: number; exitCode: number | null } | null = null;
  // a second redis-server told to use the taken port cannot bind it; the one answering there is not ours
  const err = await spawnRedisUntilReady(['--port', String(other.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], other.url, 10_000, (p) => (child = p)).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(RedisPortTaken);
  expect(String((err as Error).message)).toContain(`pid ${other.pid()}`);
  expect(child).not.toBeNull();
  // the other server is untouched
  expect(await redisProcessId(other.url)).toBe(other.pid());
});

it('nothing listening: null', async () => {
  const s = await startRedisServer('p3-test-port-');
  const url = s.url;
  await s.stop();
  expect(await redisProcessId(url, 500)).toBeNull();
});
