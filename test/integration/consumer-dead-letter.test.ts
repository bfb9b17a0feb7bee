/**
 * A dead-lettered entry is acknowledged only once its copy is in `<stream>.dlq`: when the copy cannot be written
 * (here the dead-letter key has the wrong type), the entry stays pending instead of being acknowledged and lost
 * (one MULTI of XADD + XACK acknowledged it anyway: Redis runs every queued command even when one fails).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { PoisonEntry, StreamConsumer } from '../../src/adapters/redis/consumer.js';
import { dlq } from '../../src/adapters/redis/keys.js';
import { useTestRedis, waitFor } from '../helpers/redis.js';

const h = useTestRedis();
const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const running: StreamConsumer[] = [];
afterEach(async () => {
  for (const c of running.splice(0)) await c.stop();
});

describe('dead letters', () => {
  it('an entry whose dead-letter copy cannot be written stays pending, and is dead-lettered once it can', async () => {
    const stream = 'test:dl:1';
    await h.redis.xgroup('CREATE', stream, 'g', '0', 'MKSTREAM');
    await h.redis.set(dlq(stream), 'not a stream'); // XADD to it fails with WRONGTYPE
    const id = (await h.redis.xadd(stream, '*', 'plan', '{', 'mac', 'x')) as string;
    let tries = 0;
    const c = new StreamConsumer({ redis: h.redis, stream, group: 'g', consumer: 'c1', logger, blockMs: 50, handler: async () => {
      tries++;
      throw new PoisonEntry('malformed', 'plan is not JSON');
    } });
    running.push(c);
    c.start();
    await waitFor(() => tries >= 2, 20_000, 20, 'handled twice (the first dead-lettering failed)');
    const pending = (await h.redis.xpending(stream, 'g', '-', '+', 10)) as Array<[string]>;
    expect(pending.map((p) => p[0])).toEqual([id]);
    await h.redis.del(dlq(stream));
    await waitFor(async () => Number((await h.redis.xpending(stream, 'g'))[0]) === 0, 20_000, 50, 'acknowledged once copied');
    const copies = await h.redis.xrange(dlq(stream), '-', '+');
    expect(copies.length).toBeGreaterThanOrEqual(1);
    expect(copies[0]![1]).toContain(id);
  }, 60_000);
});
