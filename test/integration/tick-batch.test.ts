/**
 * `TickBatch` (src/adapters/redis/tick-batch.ts) sends the operations a connection issues in one
 * event-loop turn as one pipeline. Against a real Redis: each `multi` op is its own MULTI/EXEC (its
 * replies, its errors, an aborted transaction fails only that op), `pipeline` ops run in order (project
 * scripts included), operations issued in one turn share one socket write, and `later` ops ride along
 * with the next pipeline or go alone after their delay.
 */
import { describe, expect, it } from 'vitest';
import { tickBatch, replyValues } from '../../src/adapters/redis/tick-batch.js';
import { keys } from '../../src/adapters/redis/keys.js';
import { useTestRedis, waitFor } from '../helpers/redis.js';

const h = useTestRedis();

describe('TickBatch', () => {
  it('runs each multi in its own transaction and returns each op its own replies, in one socket write', async () => {
    await h.redis.hset('tb:h', 'a', '1');
    await h.redis.set('tb:s', 'x');
    const c = h.redis.duplicate();
    try {
      await c.ping();
      const stream = (c as unknown as { stream: { write: (...a: unknown[]) => boolean } }).stream;
      const orig = stream.write.bind(stream);
      let writes = 0;
      stream.write = (...a: unknown[]) => {
        writes++;
        return orig(...a);
      };
      const b = tickBatch(c);
      const [r1, r2, r3] = await Promise.all([
        b.multi([['hgetall', 'tb:h'], ['get', 'tb:s']]),
        b.pipeline([['set', 'tb:p', '1'], ['incr', 'tb:p']]),
        b.multi([['hgetall', 'tb:s'], ['exists', 'tb:s']]),
      ]);
      expect(writes).toBe(1);
      expect(replyValues(r1)).toEqual([{ a: '1' }, 'x']);
      expect(replyValues(r2)).toEqual(['OK', 2]);
      // a command error stays in its slot; the rest of the transaction ran
      expect(r3[0]?.[0]?.message).toMatch(/WRONGTYPE/);
      expect(r3[1]).toEqual([null, 1]);
      expect(() => replyValues(r3)).toThrow(/WRONGTYPE/);
    } finally {
      c.disconnect();
    }
  });

  it('an aborted transaction fails only its own op', async () => {
    const b = tickBatch(h.redis);
    const bad = b.multi([['get', 'tb:s'], ['call', 'NOSUCHCOMMAND']]);
    const good = b.multi([['get', 'tb:s']]);
    await expect(bad).rejects.toThrow(/EXECABORT|unknown command/i);
    expect(replyValues(await good)).toEqual(['x']);
  });

  it('an unknown method rejects its op without leaving a transaction open for the others', async () => {
    const b = tickBatch(h.redis);
    const bad = b.multi([['noSuchMethod', 'k']]);
    const good = b.multi([['get', 'tb:s']]);
    await expect(bad).rejects.toThrow(/no command noSuchMethod/);
    expect(replyValues(await good)).toEqual(['x']);
  });

  it('a non-atomic op with an unknown method is rejected whole: later ops get their own replies', async () => {
    const b = tickBatch(h.redis);
    const bad = b.pipeline([['get', 'tb:s'], ['noSuchMethod', 'k']]);
    const good = b.pipeline([['set', 'tb:n', 'y'], ['get', 'tb:n']]);
    await expect(bad).rejects.toThrow(/no command noSuchMethod/);
    expect(replyValues(await good)).toEqual(['OK', 'y']);
  });

  it('runs project scripts in a pipeline, atomic each, in the order issued', async () => {
    const b = tickBatch(h.redis);
    const key = keys.permitP33('tb-1');
    const [first, second] = await Promise.all([b.pipeline([['permitWrite', key, 60, 'decision', 'ALLOW']]), b.pipeline([['permitWrite', key, 60, 'decision', 'DENY']])]);
    expect(replyValues(first)).toEqual([1]);
    expect(replyValues(second)).toEqual([0]);
    expect(await h.redis.hget(key, 'decision')).toBe('ALLOW');
  });

  it('a later op rides along with the next pipeline, or goes alone after its delay', async () => {
    const b = tickBatch(h.redis);
    await h.redis.del('tb:l');
    let built = 0;
    const later = b.later(() => {
      built++;
      return [['incr', 'tb:l']];
    }, 60_000);
    // not sent on its own (the delay is a minute)...
    await new Promise((r) => setTimeout(r, 50));
    expect(built).toBe(0);
    // ...but with the next pipeline of the connection
    await b.pipeline([['get', 'tb:s']]);
    expect(replyValues(await later)).toEqual([1]);
    const alone = b.later([['incr', 'tb:l']], 30);
    expect(replyValues(await alone)).toEqual([2]);
    await waitFor(async () => (await h.redis.get('tb:l')) === '2');
  });
});
