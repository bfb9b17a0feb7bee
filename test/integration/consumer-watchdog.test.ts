/**
 * The consumer liveness watchdog (src/adapters/redis/consumer-watchdog.ts) against a private redis-server:
 * - a handler whose promise never settles (a reply lost for good) fills the consumer's slots: without the
 *   watchdog nothing more is consumed (control); with it the stall is reported and the consumer recovers
 *   by itself (new loop, its own pending entries re-read) and handles every entry, old and new;
 * - the service connection black-holed (a TCP proxy forwards nothing: no error, no close): the recovery
 *   reconnects it and the consumer goes on;
 * - no false alarm: a quiet stream, and a stream whose entries were all consumed, never count as a stall;
 * - `groupBacklog` counts unread entries (also when Redis cannot give the lag) and stale pending entries.
 */
import { createServer, connect, type Socket } from 'node:net';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { createRedis } from '../../src/adapters/redis/client.js';
import { StreamConsumer, type StreamEntry } from '../../src/adapters/redis/consumer.js';
import { groupBacklog, type StallReport } from '../../src/adapters/redis/consumer-watchdog.js';
import { startTestRedis, waitFor, type TestRedis } from '../helpers/redis.js';

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
let srv: TestRedis;
let redis: Redis;
const open: Array<{ stop(): Promise<void> }> = [];

beforeAll(async () => {
  srv = await startTestRedis();
  redis = createRedis(srv.url, { name: 'test:watchdog' });
});
afterAll(async () => {
  for (const c of open) await c.stop().catch(() => undefined);
  redis.disconnect();
  await srv.stop();
});

/** A consumer in the plan consumers' mode (ordered partitions) whose handler hangs forever on the entries `hang` names, the first time only. */
function hangingConsumer(stream: string, stallMs: number, hang: Set<string>, seen: string[], stalls: StallReport[], conn: Redis = redis): StreamConsumer {
  const hungOnce = new Set<string>();
  const c = new StreamConsumer({
    redis: conn,
    stream,
    group: 'g',
    consumer: 'c1',
    logger,
    blockMs: 200,
    count: 8,
    concurrency: 4,
    ordered: true,
    partitionOf: (e: StreamEntry) => e.fields.sym ?? '',
    stallMs,
    pendingStallMs: Math.max(stallMs * 2, 1),
    onStall: (r) => stalls.push(r),
    handler: async (e) => {
      const n = e.fields.n ?? '';
      if (hang.has(n) && !hungOnce.has(n)) {
        hungOnce.add(n);
        await new Promise<void>(() => undefined); // never settles
      }
      await conn.set(`${stream}:done:${n}`, '1');
      seen.push(n);
    },
  });
  open.push(c);
  return c;
}

describe('a handler that never settles', () => {
  it('control: without the watchdog the consumer stops consuming for good', async () => {
    const stream = 'test:wd:control';
    await redis.xgroup('CREATE', stream, 'g', '$', 'MKSTREAM');
    const seen: string[] = [];
    const stalls: StallReport[] = [];
    const c = hangingConsumer(stream, 0, new Set(['a1', 'b1', 'c1', 'd1']), seen, stalls);
    c.start();
    // one hung entry per partition, then more of each: 4 hung + later ones queued behind them fill the 4 slots
    for (const n of ['a1', 'b1', 'c1', 'd1', 'a2', 'b2', 'c2', 'd2', 'e1']) await redis.xadd(stream, '*', 'sym', n[0] as string, 'n', n);
    await new Promise((r) => setTimeout(r, 4_000));
    expect(seen).toEqual([]);
    // (its loop waits for a slot forever: stop() would too; it closes its connection and ends its timers at once)
    open.splice(open.indexOf(c), 1);
    void c.stop();
  }, 30_000);

  it('with the watchdog: the stall is reported, the consumer recovers and handles every entry, old and new', async () => {
    const stream = 'test:wd:hang';
    await redis.xgroup('CREATE', stream, 'g', '$', 'MKSTREAM');
    const seen: string[] = [];
    const stalls: StallReport[] = [];
    const c = hangingConsumer(stream, 1_000, new Set(['a1', 'b1', 'c1', 'd1']), seen, stalls);
    c.start();
    const names = ['a1', 'b1', 'c1', 'd1', 'a2', 'b2', 'c2', 'd2', 'e1'];
    for (const n of names) await redis.xadd(stream, '*', 'sym', n[0] as string, 'n', n);
    await waitFor(() => names.every((n) => seen.includes(n)), 20_000, 50, 'every entry handled after the recovery');
    expect(stalls.length).toBeGreaterThanOrEqual(1);
    expect(stalls[0]).toMatchObject({ stream, group: 'g', consumer: 'c1' });
    expect(stalls[0]!.backlog.undelivered + stalls[0]!.backlog.stalePending).toBeGreaterThan(0);
    // ordered partitions: a2 after a1 (a1 handled again by the new loop first)
    expect(seen.indexOf('a2')).toBeGreaterThan(seen.indexOf('a1'));
    await redis.xadd(stream, '*', 'sym', 'a', 'n', 'a3');
    await waitFor(() => seen.includes('a3'), 10_000, 50, 'a new entry handled after the recovery');
    await waitFor(async () => (await redis.xpending(stream, 'g'))[0] === 0, 10_000, 50, 'nothing left pending');
    expect(c.stalled).toBe(false);
    await c.stop();
  }, 40_000);
});

describe('the service connection black-holed', () => {
  let srvPort = 0;
  const links: Array<{ client: Socket; dead: boolean }> = [];
  const proxy = createServer((client: Socket) => {
    const up = connect(srvPort, '127.0.0.1');
    const link = { client, dead: false };
    links.push(link);
    client.on('data', (d) => void (link.dead || up.write(d)));
    up.on('data', (d) => void (link.dead || client.write(d)));
    client.on('error', () => undefined);
    up.on('error', () => undefined);
    client.on('close', () => up.destroy());
    up.on('close', () => client.destroy());
  });
  afterAll(() => {
    proxy.close();
    for (const l of links) l.client.destroy();
  });

  it('the recovery reconnects a connection that does not answer, and consuming goes on', async () => {
    srvPort = srv.port;
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const port = (proxy.address() as { port: number }).port;
    const conn = createRedis(`redis://127.0.0.1:${port}`, { name: 'test:wd:proxied' });
    await waitFor(() => conn.ping(), 5_000, 20, 'proxied connection up');
    const main = links[0]!;
    const stream = 'test:wd:blackhole';
    await conn.xgroup('CREATE', stream, 'g', '$', 'MKSTREAM');
    const seen: string[] = [];
    const stalls: StallReport[] = [];
    const c = hangingConsumer(stream, 1_000, new Set(), seen, stalls, conn);
    c.start();
    await redis.xadd(stream, '*', 'sym', 'a', 'n', 'x1');
    await waitFor(() => seen.includes('x1'), 10_000, 20, 'x1 handled');
    main.dead = true; // nothing goes through any more on the service connection, and nothing says so
    for (const n of ['x2', 'x3']) await redis.xadd(stream, '*', 'sym', 'a', 'n', n);
    await waitFor(() => seen.includes('x2') && seen.includes('x3'), 30_000, 50, 'entries handled after the connection was reconnected');
    expect(stalls.length).toBeGreaterThanOrEqual(1);
    await c.stop();
    conn.disconnect();
  }, 45_000);
});

describe('no false alarm', () => {
  it('a quiet stream and a fully consumed one are no stall', async () => {
    const stream = 'test:wd:quiet';
    await redis.xgroup('CREATE', stream, 'g', '$', 'MKSTREAM');
    const seen: string[] = [];
    const stalls: StallReport[] = [];
    const c = hangingConsumer(stream, 500, new Set(), seen, stalls);
    c.start();
    await new Promise((r) => setTimeout(r, 1_800)); // quiet: nothing to read
    await redis.xadd(stream, '*', 'sym', 'a', 'n', 'q1');
    await waitFor(() => seen.includes('q1'), 5_000, 20, 'q1 handled');
    await new Promise((r) => setTimeout(r, 1_800)); // all consumed, quiet again
    expect(stalls).toEqual([]);
    expect(c.stalled).toBe(false);
    await c.stop();
  }, 20_000);
});

describe('groupBacklog', () => {
  it('counts unread entries (with and without a lag from Redis) and stale pending ones', async () => {
    const stream = 'test:wd:backlog';
    await redis.xgroup('CREATE', stream, 'g', '$', 'MKSTREAM');
    expect(await groupBacklog(redis, stream, 'g', 'c1', 0)).toEqual({ undelivered: 0, oldestUndeliveredId: null, stalePending: 0 });
    const id1 = await redis.xadd(stream, '*', 'n', '1');
    await redis.xadd(stream, '*', 'n', '2');
    expect(await groupBacklog(redis, stream, 'g', 'c1', 0)).toEqual({ undelivered: 2, oldestUndeliveredId: id1, stalePending: 0 });
    await redis.call('XREADGROUP', 'GROUP', 'g', 'c1', 'COUNT', 1, 'STREAMS', stream, '>');
    const b = await groupBacklog(redis, stream, 'g', 'c1', 0);
    expect(b?.undelivered).toBe(1);
    expect(b?.stalePending).toBe(1);
    expect((await groupBacklog(redis, stream, 'g', 'other', 0))?.stalePending).toBe(0);
    expect((await groupBacklog(redis, stream, 'g', 'c1', 60_000))?.stalePending).toBe(0);
    // a deleted entry makes Redis' lag unknown (null): one unread entry still counts
    await redis.xdel(stream, id1 as string);
    const after = await groupBacklog(redis, stream, 'g', 'c1', 0);
    expect(after?.undelivered).toBeGreaterThanOrEqual(1);
    expect(await groupBacklog(redis, 'test:wd:none', 'g', 'c1')).toBeNull();
    expect(await groupBacklog(redis, stream, 'nogroup', 'c1')).toBeNull();
  });
});

describe('Redis refusing writes is no stall', () => {
  it('entries wait unread while every XREADGROUP is refused (NOREPLICAS): no stall reported; consumed once writes are accepted', async () => {
    const stream = 'test:wd:norepl';
    await redis.xgroup('CREATE', stream, 'g', '$', 'MKSTREAM');
    const seen: string[] = [];
    const stalls: StallReport[] = [];
    await redis.config('SET', 'min-replicas-to-write', '1');
    try {
      const c = hangingConsumer(stream, 500, new Set(), seen, stalls);
      await redis.config('SET', 'min-replicas-to-write', '0');
      await redis.xadd(stream, '*', 'sym', 'a', 'n', 'r1');
      await redis.config('SET', 'min-replicas-to-write', '1');
      c.start();
      await new Promise((r) => setTimeout(r, 2_500)); // 5 stall times, r1 unread all along
      expect(seen).toEqual([]);
      expect(stalls).toEqual([]);
      await redis.config('SET', 'min-replicas-to-write', '0');
      await waitFor(() => seen.includes('r1'), 10_000, 20, 'r1 handled once writes are accepted');
      await c.stop();
    } finally {
      await redis.config('SET', 'min-replicas-to-write', '0');
    }
  }, 30_000);
});
