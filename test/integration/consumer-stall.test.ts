/**
 * A blocking read that never answers (its connection left half-way, as after a burst of Sentinel failovers:
 * docs/reliability.md, seed 104) must not stop a consumer for good: after BLOCK + BLOCKING_READ_STALL_MS the
 * blocking connection is replaced and new entries are handled again. A TCP proxy in front of a real Redis
 * black-holes exactly the connections parked in XREADGROUP BLOCK (no error, no close: nothing arrives).
 */
import { createServer, connect, type Socket } from 'node:net';
import { pino } from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createRedis } from '../../src/adapters/redis/client.js';
import { BLOCKING_READ_STALL_MS, StreamConsumer } from '../../src/adapters/redis/consumer.js';
import { startTestRedis, waitFor, type TestRedis } from '../helpers/redis.js';

let srv: TestRedis;
let port = 0;
const links: Array<{ client: Socket; lastCmd: string; dead: boolean }> = [];
const proxy = createServer((client: Socket) => {
  const up = connect(srv.port, '127.0.0.1');
  const link = { client, lastCmd: '', dead: false };
  links.push(link);
  client.on('data', (d) => {
    link.lastCmd = d.toString();
    if (!link.dead) up.write(d);
  });
  up.on('data', (d) => {
    if (!link.dead) client.write(d);
  });
  client.on('error', () => undefined);
  up.on('error', () => undefined);
  client.on('close', () => up.destroy());
  up.on('close', () => client.destroy());
});

beforeAll(async () => {
  srv = await startTestRedis();
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  port = (proxy.address() as { port: number }).port;
});
afterAll(async () => {
  proxy.close();
  for (const l of links) l.client.destroy();
  await srv.stop();
});

it('a blocking read that never answers is abandoned and its connection replaced; new entries are handled again', async () => {
  const redis = createRedis(`redis://127.0.0.1:${port}`, { name: 'test:stall' });
  await redis.xgroup('CREATE', 'test:stall', 'g', '$', 'MKSTREAM');
  const seen: string[] = [];
  const c = new StreamConsumer({ redis, stream: 'test:stall', group: 'g', consumer: 'c1', logger: pino({ level: 'silent' }), blockMs: 200, handler: async (e) => void seen.push(e.fields.n ?? '') });
  c.start();
  try {
    await redis.xadd('test:stall', '*', 'n', '1');
    await waitFor(() => seen.includes('1'), 10_000, 20, 'first entry handled');
    // black-hole the connection parked in XREADGROUP ... BLOCK: its reply never comes, and no error either
    await waitFor(() => links.some((l) => /XREADGROUP/i.test(l.lastCmd) && /BLOCK/i.test(l.lastCmd)), 5_000, 5, 'a blocking read in flight');
    const parked = links.filter((l) => /BLOCK/i.test(l.lastCmd));
    for (const l of parked) l.dead = true;
    await redis.xadd('test:stall', '*', 'n', '2');
    // before the fix the consumer waited for that reply forever; now it replaces the connection after the stall time
    await waitFor(() => seen.includes('2'), BLOCKING_READ_STALL_MS + 15_000, 50, 'entry handled after the stalled read was abandoned');
    expect(seen).toEqual(['1', '2']);
  } finally {
    await c.stop();
    redis.disconnect();
  }
}, 60_000);
