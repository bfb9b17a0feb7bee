/**
 * Writes refused after a failover (`NOREPLICAS` while a replica resyncs under `min-replicas-to-write`) are not an
 * entry's fault: against a private redis-server that refuses every write (min-replicas-to-write 1, no replica), a
 * consumer's entries whose handlers fail that way for several seconds (ordered mode: far more attempts than
 * `maxAttempts`; the other modes retry from the own-pending read, an XREADGROUP that Redis refuses too) are
 * neither dead-lettered nor parked, and are handled within about a second once Redis accepts writes again; in
 * every consumer mode (sequential, partitioned, ordered partitioned) and with both `exhausted` settings.
 */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { createRedis } from '../../src/adapters/redis/client.js';
import { StreamConsumer, type ConsumerOptions } from '../../src/adapters/redis/consumer.js';
import { isRedisUnavailable } from '../../src/adapters/redis/consumer-retry.js';
import { dlq } from '../../src/adapters/redis/keys.js';
import { startTestRedis, waitFor, type TestRedis } from '../helpers/redis.js';

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
let srv: TestRedis;
let redis: Redis;

beforeAll(async () => {
  srv = await startTestRedis();
  redis = createRedis(srv.url, { name: 'test:noreplicas' });
});
afterAll(async () => {
  await redis.config('SET', 'min-replicas-to-write', '0').catch(() => undefined);
  redis.disconnect();
  await srv.stop();
});

const MODES: Array<[string, Partial<ConsumerOptions>]> = [
  ['sequential, dead_letter', {}],
  ['partitioned, dead_letter', { partitionOf: (e) => e.fields.sym ?? '' }],
  ['ordered partitioned, dead_letter', { partitionOf: (e) => e.fields.sym ?? '', ordered: true }],
  ['ordered partitioned, park', { partitionOf: (e) => e.fields.sym ?? '', ordered: true, exhausted: 'park', parkedRetryMaxMs: 30_000 }],
];

describe('entries refused with NOREPLICAS', () => {
  for (const [i, [name, mode]] of MODES.entries()) {
    it(`${name}: never dead-lettered or parked, handled as soon as writes are accepted`, async () => {
      const stream = `test:norepl:${i}`;
      await redis.xgroup('CREATE', stream, 'g', '$', 'MKSTREAM');
      const seen: string[] = [];
      const lost: string[] = [];
      let refusals = 0;
      let gate!: () => void;
      const opened = new Promise<void>((r) => (gate = r));
      const c = new StreamConsumer({
        redis,
        stream,
        group: 'g',
        consumer: 'c1',
        logger,
        blockMs: 200,
        maxAttempts: 2,
        stallMs: 0,
        onDeadLetter: (reason, e) => lost.push(`dlq ${reason} ${e.fields.n}`),
        onParked: (e) => lost.push(`parked ${e.fields.n}`),
        ...mode,
        handler: async (e) => {
          await opened;
          try {
            await redis.set(`${stream}:done:${e.fields.n}`, '1');
          } catch (err) {
            refusals++;
            throw err;
          }
          seen.push(e.fields.n ?? '');
        },
      });
      c.start();
      try {
        for (const n of ['1', '2', '3']) await redis.xadd(stream, '*', 'sym', n === '2' ? 'B' : 'A', 'n', n);
        await waitFor(async () => (await redis.xpending(stream, 'g'))[0] === 3, 10_000, 20, 'the entries delivered');
        // from now on every write is refused (as on a master whose only replica resyncs)
        await redis.config('SET', 'min-replicas-to-write', '1');
        gate();
        // park mode: long enough that a parked entry would wait 8 s more (2 s doubling) after writes are accepted
        await new Promise((r) => setTimeout(r, mode.exhausted === 'park' ? 7_000 : 3_000));
        expect(seen).toEqual([]);
        // ordered mode retries in place (more refusals than maxAttempts: without the fix, dead-lettered or parked);
        // the other modes retry from the own-pending read, itself a write that Redis refuses meanwhile
        expect(refusals).toBeGreaterThan(mode.ordered ? 3 * 2 : 0);
        const accepted = Date.now();
        await redis.config('SET', 'min-replicas-to-write', '0');
        await waitFor(() => seen.length === 3, 10_000, 20, 'every entry handled once writes are accepted');
        // generous bound under load: the retry wait is 250 ms (sequential mode: the loop's back-off, at most 2 s)
        expect(Date.now() - accepted).toBeLessThan(mode.exhausted === 'park' ? 4_000 : 5_000);
        expect(lost).toEqual([]);
        expect(await redis.xlen(dlq(stream))).toBe(0);
      } finally {
        await redis.config('SET', 'min-replicas-to-write', '0');
        await c.stop();
      }
    }, 30_000);
  }
});

describe('isRedisUnavailable', () => {
  it('names the replies and connection errors that say Redis cannot take commands now, and nothing else', () => {
    for (const m of ['NOREPLICAS Not enough good replicas to write.', "READONLY You can't write against a read only replica.", 'LOADING Redis is loading the dataset in memory', 'MASTERDOWN Link with MASTER is down', 'Connection is closed.', 'Reached the max retries per request limit (which is 1). Refer to "maxRetriesPerRequest" option for details.', 'connect ECONNREFUSED 127.0.0.1:6379']) expect(isRedisUnavailable(new Error(m))).toBe(true);
    const aborted = (inner: string) => Object.assign(new Error('EXECABORT Transaction discarded because of previous errors.'), { previousErrors: [new Error(inner)] });
    expect(isRedisUnavailable(aborted('NOREPLICAS Not enough good replicas to write.'))).toBe(true);
    expect(isRedisUnavailable(aborted('ERR unknown command'))).toBe(false);
    for (const m of ['WRONGTYPE Operation against a key holding the wrong kind of value', 'ERR syntax error', 'EXECABORT Transaction discarded because of previous errors.', 'bad plan: NOREPLICAS in a field', 'plan_expired']) expect(isRedisUnavailable(new Error(m))).toBe(false);
  });
});

describe('a MULTI refused with NOREPLICAS', () => {
  it('tick-batch rejects with EXECABORT carrying the queued NOREPLICAS: classified as Redis unavailable', async () => {
    const { tickBatch } = await import('../../src/adapters/redis/tick-batch.js');
    await redis.config('SET', 'min-replicas-to-write', '1');
    try {
      const err = await tickBatch(redis)
        .multi([['get', 'test:norepl:x'], ['set', 'test:norepl:x', '1']])
        .then(() => null, (e: Error) => e);
      expect(err?.message).toMatch(/^EXECABORT/);
      expect(isRedisUnavailable(err)).toBe(true);
    } finally {
      await redis.config('SET', 'min-replicas-to-write', '0');
    }
    expect(replyOk(await tickBatch(redis).multi([['set', 'test:norepl:x', '1']]))).toBe(true);
  });
});

function replyOk(r: Array<[Error | null, unknown]>): boolean {
  return r.every(([e]) => e === null);
}
