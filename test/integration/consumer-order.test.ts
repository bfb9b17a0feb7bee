/**
 * The plan consumers read entries in batches and handle different symbols concurrently
 * (`PLAN_CONSUMER`: partitioned, ordered). Against a real Redis:
 * - every entry is handled and acknowledged, entries of one symbol finish in stream order, and entries of
 *   different symbols are in hand at the same time;
 * - a failing entry is retried in place (as a redelivery) and the later entries of ITS symbol wait for it,
 *   while other symbols go on; an entry that never succeeds is dead-lettered after `maxAttempts` and its
 *   symbol continues.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { HANDED_OVER_RECHECK_MS, HandedOver, StreamConsumer, type StreamEntry } from '../../src/adapters/redis/consumer.js';
import { dlq } from '../../src/adapters/redis/keys.js';
import { PLAN_CONSUMER } from '../../src/plans/entry.js';
import { planPartition } from '../../src/domain/plan.js';
import { useTestRedis, waitFor } from '../helpers/redis.js';

const h = useTestRedis();
const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const running: StreamConsumer[] = [];
afterEach(async () => {
  for (const c of running.splice(0)) await c.stop();
});

let n = 0;
/** A fresh stream with `perSymbol` entries for each symbol, interleaved; returns the ids by symbol in stream order. */
async function fill(symbols: string[], perSymbol: number): Promise<{ stream: string; order: Map<string, string[]> }> {
  const stream = `test:order:${++n}`;
  await h.redis.xgroup('CREATE', stream, 'g', '0', 'MKSTREAM');
  const order = new Map<string, string[]>(symbols.map((s) => [s, []]));
  const p = h.redis.pipeline();
  for (let i = 0; i < perSymbol; i++) for (const s of symbols) p.xadd(stream, '*', 'plan', JSON.stringify({ symbol: s, i }), 'mac', 'x');
  const res = (await p.exec()) ?? [];
  let k = 0;
  for (let i = 0; i < perSymbol; i++) for (const s of symbols) order.get(s)!.push(res[k++]![1] as string);
  return { stream, order };
}

const jitter = () => new Promise((r) => setTimeout(r, Math.floor(Math.random() * 4)));

describe('plan consumers: batched reads, symbols concurrently, one symbol in order', () => {
  it('handles every entry once, each symbol in stream order, several symbols in hand at once', async () => {
    const symbols = ['AUSDT', 'BUSDT', 'CUSDT', 'DUSDT'];
    const { stream, order } = await fill(symbols, 40);
    const done = new Map<string, string[]>(symbols.map((s) => [s, []]));
    let inFlight = 0;
    let maxInFlight = 0;
    const c = new StreamConsumer({
      redis: h.redis, stream, group: 'g', consumer: 'c1', logger, blockMs: 100,
      ...PLAN_CONSUMER,
      handler: async (e: StreamEntry) => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        await jitter();
        done.get(planPartition(e))!.push(e.id);
        inFlight--;
      },
    });
    running.push(c);
    c.start();
    await waitFor(() => [...done.values()].every((d) => d.length === 40), 30_000, 20, 'every entry handled');
    for (const s of symbols) expect(done.get(s)).toEqual(order.get(s));
    expect(maxInFlight).toBeGreaterThan(1);
    await waitFor(async () => ((await h.redis.xpending(stream, 'g')) as [number])[0] === 0, 10_000, 20, 'every entry acknowledged');
  });

  it('a failing entry is retried in place and the later entries of its symbol wait for it', async () => {
    const { stream, order } = await fill(['AUSDT', 'BUSDT'], 10);
    const failOnce = order.get('AUSDT')![3]!;
    const failAlways = order.get('BUSDT')![5]!;
    const done: Array<{ sym: string; id: string; redelivered: boolean }> = [];
    const attempts = new Map<string, number>();
    const c = new StreamConsumer({
      redis: h.redis, stream, group: 'g', consumer: 'c1', logger, blockMs: 100, maxAttempts: 3,
      ...PLAN_CONSUMER,
      handler: async (e: StreamEntry, redelivered: boolean) => {
        const a = (attempts.get(e.id) ?? 0) + 1;
        attempts.set(e.id, a);
        await jitter();
        if (e.id === failAlways || (e.id === failOnce && a === 1)) throw new Error('transient');
        done.push({ sym: planPartition(e), id: e.id, redelivered });
      },
    });
    running.push(c);
    c.start();
    await waitFor(() => done.length === 19, 30_000, 20, '19 entries handled');
    // each symbol in stream order (B without the entry that never succeeded)
    expect(done.filter((d) => d.sym === 'AUSDT').map((d) => d.id)).toEqual(order.get('AUSDT'));
    expect(done.filter((d) => d.sym === 'BUSDT').map((d) => d.id)).toEqual(order.get('BUSDT')!.filter((id) => id !== failAlways));
    // the retry was a redelivery; the entry that kept failing was dead-lettered after maxAttempts, once
    expect(done.find((d) => d.id === failOnce)?.redelivered).toBe(true);
    expect(attempts.get(failOnce)).toBe(2);
    expect(attempts.get(failAlways)).toBe(3);
    await waitFor(async () => (await h.redis.xlen(dlq(stream))) === 1, 10_000, 20, 'one dead letter');
    const [[, f]] = (await h.redis.xrange(dlq(stream), '-', '+')) as [[string, string[]]];
    expect(f).toContain(failAlways);
    await waitFor(async () => ((await h.redis.xpending(stream, 'g')) as [number])[0] === 0, 10_000, 20, 'every entry acknowledged');
  });
});

describe('an entry handed over to another consumer (HandedOver)', () => {
  for (const mode of ['ordered partitioned', 'sequential'] as const) {
    it(`${mode}: is neither acknowledged nor dead-lettered, its symbol goes on, and it is handled again later as a redelivery`, async () => {
      const { stream, order } = await fill(['AUSDT'], 3);
      const [first, second, third] = order.get('AUSDT')!;
      const calls: Array<[string, boolean]> = [];
      const c = new StreamConsumer({
        redis: h.redis, stream, group: 'g', consumer: 'c1', logger, blockMs: 100, maxAttempts: 1,
        ...(mode === 'ordered partitioned' ? PLAN_CONSUMER : {}),
        handler: async (e: StreamEntry, redelivered: boolean) => {
          calls.push([e.id, redelivered]);
          if (e.id === first && calls.filter(([id]) => id === first).length === 1) throw new HandedOver('taken over');
        },
      });
      running.push(c);
      c.start();
      // the later entries of the symbol are not held back, and the handed-over one stays pending (not acked, no DLQ)
      await waitFor(() => calls.some(([id]) => id === third), 10_000, 20, 'later entries handled');
      const pendingIds = async () => ((await h.redis.xpending(stream, 'g', '-', '+', 10)) as Array<[string]>).map((p) => p[0]);
      await waitFor(async () => (await pendingIds()).length === 1, 5_000, 10, 'the later entries acknowledged (batched XACK)');
      expect(await pendingIds()).toEqual([first]);
      expect(await h.redis.xlen(dlq(stream))).toBe(0);
      // looked at again after HANDED_OVER_RECHECK_MS, as a redelivery, then acknowledged
      await waitFor(async () => ((await h.redis.xpending(stream, 'g', '-', '+', 10)) as unknown[]).length === 0, HANDED_OVER_RECHECK_MS + 10_000, 50, 'handed-over entry handled again');
      expect(calls.filter(([id]) => id === first)).toEqual([[first, false], [first, true]]);
      expect(calls.filter(([id]) => id === second)).toHaveLength(1);
      expect(await h.redis.xlen(dlq(stream))).toBe(0);
    }, 30_000);
  }
});
