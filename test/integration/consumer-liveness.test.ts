/**
 * Recovery of stream consumers after a kill, against a real Redis. A killed consumer is
 * simulated as exactly what `kill -9` leaves: entries read by its name (XREADGROUP) and never
 * acknowledged, and no liveness lease being renewed.
 * - its pending entries are taken over by a live consumer within seconds (not after `claimIdleMs`);
 * - a consumer whose lease is alive keeps its entries until `claimIdleMs`;
 * - a dead consumer is deleted from the group once it owns nothing (never while it owns an entry);
 * - a clean stop deletes the consumer at once;
 * - partitioned mode: a slow entry of one partition does not delay another; one partition in order.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { StreamConsumer, type StreamEntry } from '../../src/adapters/redis/consumer.js';
import { groupConsumers, reapConsumer } from '../../src/adapters/redis/consumer-liveness.js';
import { keys } from '../../src/adapters/redis/keys.js';
import { useTestRedis, waitFor } from '../helpers/redis.js';

const h = useTestRedis();
const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const running: StreamConsumer[] = [];
afterEach(async () => {
  for (const c of running.splice(0)) await c.stop();
});

let n = 0;
/** A fresh stream and group for one test. */
async function fresh(): Promise<{ stream: string; group: string }> {
  const stream = `test:liveness:${++n}`;
  await h.redis.xgroup('CREATE', stream, 'g', '0', 'MKSTREAM');
  return { stream, group: 'g' };
}

/** What kill -9 leaves: `count` entries delivered to `name`, never acknowledged, no lease. */
async function killedConsumerRead(stream: string, group: string, name: string, count: number): Promise<string[]> {
  const res = (await h.redis.call('XREADGROUP', 'GROUP', group, name, 'COUNT', count, 'STREAMS', stream, '>')) as Array<[string, Array<[string, string[]]>]>;
  return res[0]![1].map(([id]) => id);
}

function start(stream: string, group: string, name: string, handler: (e: StreamEntry, redelivered: boolean) => Promise<void>, extra: Partial<ConstructorParameters<typeof StreamConsumer>[0]> = {}): StreamConsumer {
  const c = new StreamConsumer({ redis: h.redis, stream, group, consumer: name, logger, handler, claimIdleMs: 60_000, leaseMs: 1000, blockMs: 200, ...extra });
  c.start();
  running.push(c);
  return c;
}

describe('takeover after a kill', () => {
  it("a killed consumer's pending entries are handled by a live one within seconds, then the dead consumer is deleted", async () => {
    const { stream, group } = await fresh();
    for (let i = 0; i < 3; i++) await h.redis.xadd(stream, '*', 'i', String(i));
    const ids = await killedConsumerRead(stream, group, 'dead-1', 3);
    const handled: Array<{ id: string; redelivered: boolean }> = [];
    start(stream, group, 'live-1', async (e, redelivered) => void handled.push({ id: e.id, redelivered }));
    // claimIdleMs is 60 s: only the liveness takeover can pick them up this soon
    await waitFor(() => handled.length === 3, 10_000, 25, 'takeover of the dead consumer\'s entries');
    expect(handled.map((x) => x.id).sort()).toEqual([...ids].sort());
    expect(handled.every((x) => x.redelivered)).toBe(true);
    await waitFor(async () => !(await groupConsumers(h.redis, stream, group)).some((c) => c.name === 'dead-1'), 10_000, 50, 'dead consumer deleted');
    expect(await h.redis.xpending(stream, group)).toEqual([0, null, null, null]);
  });

  it('a consumer whose lease is alive keeps its entries (no takeover before claimIdleMs)', async () => {
    const { stream, group } = await fresh();
    await h.redis.xadd(stream, '*', 'i', '0');
    await killedConsumerRead(stream, group, 'busy-1', 1);
    await h.redis.set(keys.consumerLease(stream, group, 'busy-1'), '1', 'PX', 30_000); // alive, in a long handler
    const handled: string[] = [];
    start(stream, group, 'live-2', async (e) => void handled.push(e.id));
    await new Promise((r) => setTimeout(r, 3000));
    expect(handled).toEqual([]);
    expect((await groupConsumers(h.redis, stream, group)).find((c) => c.name === 'busy-1')?.pending).toBe(1);
    // the lease lapses (the process died): taken over
    await h.redis.del(keys.consumerLease(stream, group, 'busy-1'));
    await waitFor(() => handled.length === 1, 10_000, 25, 'takeover after the lease lapsed');
  });

  it('a dead consumer is never deleted while it owns a pending entry (DELCONSUMER would drop it)', async () => {
    const { stream, group } = await fresh();
    await h.redis.xadd(stream, '*', 'i', '0');
    await killedConsumerRead(stream, group, 'dead-2', 1);
    await new Promise((r) => setTimeout(r, 50));
    expect(await reapConsumer(h.redis, stream, group, 'dead-2', 0)).toBe(false);
    expect((await groupConsumers(h.redis, stream, group)).map((c) => c.name)).toContain('dead-2');
    await h.redis.set(keys.consumerLease(stream, group, 'dead-3'), '1', 'PX', 30_000);
    await h.redis.call('XGROUP', 'CREATECONSUMER', stream, group, 'dead-3');
    expect(await reapConsumer(h.redis, stream, group, 'dead-3', 0)).toBe(false); // lease alive
    await h.redis.del(keys.consumerLease(stream, group, 'dead-3'));
    expect(await reapConsumer(h.redis, stream, group, 'dead-3', 0)).toBe(true);
  });

  it('a clean stop removes the consumer from the group', async () => {
    const { stream, group } = await fresh();
    const c = start(stream, group, 'clean-1', async () => undefined);
    await h.redis.xadd(stream, '*', 'i', '0');
    await waitFor(async () => (await groupConsumers(h.redis, stream, group)).some((x) => x.name === 'clean-1'), 5000, 25, 'consumer seen');
    await c.stop();
    running.splice(running.indexOf(c), 1);
    expect((await groupConsumers(h.redis, stream, group)).map((x) => x.name)).not.toContain('clean-1');
    expect(await h.redis.exists(keys.consumerLease(stream, group, 'clean-1'))).toBe(0);
  });
});

describe('partitioned mode', () => {
  it('a slow entry of one partition does not delay the others; one partition stays in stream order', async () => {
    const { stream, group } = await fresh();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const done: string[] = [];
    start(
      stream,
      group,
      'part-1',
      async (e) => {
        if (e.fields.tag === 'A1') await gate; // an exchange timeout, say
        done.push(e.fields.tag!);
      },
      { partitionOf: (e) => e.fields.sym!, concurrency: 4 },
    );
    for (const [sym, tag] of [['A', 'A1'], ['A', 'A2'], ['B', 'B1'], ['C', 'C1'], ['B', 'B2']]) await h.redis.xadd(stream, '*', 'sym', sym!, 'tag', tag!);
    await waitFor(() => ['B1', 'B2', 'C1'].every((t) => done.includes(t)), 10_000, 25, 'other partitions done while A1 is stuck');
    expect(done).not.toContain('A1');
    expect(done).not.toContain('A2'); // behind A1 in its partition
    expect(done.indexOf('B1')).toBeLessThan(done.indexOf('B2'));
    release();
    await waitFor(() => done.includes('A2'), 10_000, 25, 'A done');
    expect(done.indexOf('A1')).toBeLessThan(done.indexOf('A2'));
    await waitFor(async () => (await h.redis.xpending(stream, group))[0] === 0, 5000, 25, 'all acknowledged');
  });

  it('a failing entry is retried after a back-off without blocking other partitions', async () => {
    const { stream, group } = await fresh();
    let failures = 0;
    const done: string[] = [];
    start(
      stream,
      group,
      'part-2',
      async (e) => {
        if (e.fields.tag === 'X' && failures < 2) {
          failures++;
          throw new Error('exchange unreachable');
        }
        done.push(e.fields.tag!);
      },
      { partitionOf: (e) => e.fields.sym!, concurrency: 4 },
    );
    await h.redis.xadd(stream, '*', 'sym', 'A', 'tag', 'X');
    await h.redis.xadd(stream, '*', 'sym', 'B', 'tag', 'Y');
    await waitFor(() => done.includes('X') && done.includes('Y'), 10_000, 25, 'both handled');
    expect(failures).toBe(2);
    await waitFor(async () => (await h.redis.xpending(stream, group))[0] === 0, 5000, 25, 'all acknowledged');
  });
});
