/**
 * The position brain finds the newest fill of a symbol in the result stream incrementally
 * (`NewestFills`), never older than what its former read of the newest 50 results gave: the newest 50 at
 * start, then every result added since, each read once; only EXECUTED results with a fill count.
 */
import { describe, expect, it } from 'vitest';
import { STREAMS } from '../../src/adapters/redis/keys.js';
import { NewestFills } from '../../src/services/position-state-brain/newest-fills.js';
import { fillsForSymbol, newestFillTs } from '../../src/domain/reconcile-evidence.js';
import { fieldsToObject } from '../../src/adapters/redis/consumer.js';
import { useTestRedis } from '../helpers/redis.js';

const t = useTestRedis();

async function result(sym: string, status: string, tsMs: number, filled = '0.001'): Promise<void> {
  await t.redis.xadd(STREAMS.applyResult, '*', 'plan_id', `p-${tsMs}`, 'symbol', sym, 'status', status, 'executed', status === 'EXECUTED' ? 'true' : 'false', 'filled_qty', status === 'EXECUTED' ? filled : '0', 'ts_ms', String(tsMs), 'side', 'SELL', 'decision', 'EXECUTE');
}

/** What the former read gave: the newest fill among the newest 50 results. */
async function former(sym: string): Promise<number | null> {
  const recent = (await t.redis.xrevrange(STREAMS.applyResult, '+', '-', 'COUNT', 50)).map(([id, raw]) => ({ id, fields: fieldsToObject(raw) }));
  return newestFillTs(fillsForSymbol(recent, sym));
}

describe('newest fill per symbol, read incrementally', () => {
  it('equals the former window at start, follows new results, and keeps a fill pushed out of the newest 50', async () => {
    await t.redis.del(STREAMS.applyResult);
    await result('BTCUSDT', 'EXECUTED', 1000);
    await result('BTCUSDT', 'SKIPPED', 1500);
    await result('ETHUSDT', 'EXECUTED', 1200);
    const f = new NewestFills(t.redis);
    expect(await f.newestFor('BTCUSDT')).toBe(await former('BTCUSDT'));
    expect(await f.newestFor('BTCUSDT')).toBe(1000);
    expect(await f.newestFor('SOLUSDT')).toBeNull();
    await result('BTCUSDT', 'EXECUTED', 3000);
    await result('BTCUSDT', 'FAILED', 4000);
    await result('BTCUSDT', 'EXECUTED', 5000, '0'); // no fill
    expect(await f.newestFor('BTCUSDT')).toBe(3000);
    expect(await f.newestFor('BTCUSDT')).toBe(await former('BTCUSDT'));
    // 60 newer results of another symbol: the former window no longer sees BTCUSDT's fill; this still does
    const p = t.redis.pipeline();
    for (let i = 0; i < 60; i++) p.xadd(STREAMS.applyResult, '*', 'symbol', 'ETHUSDT', 'status', 'SKIPPED');
    await p.exec();
    expect(await former('BTCUSDT')).toBeNull();
    expect(await f.newestFor('BTCUSDT')).toBe(3000);
    expect(await Promise.all([f.newestFor('ETHUSDT'), f.newestFor('ETHUSDT')])).toEqual([1200, 1200]);
  });

  it('at start only the newest 50 results count, as before', async () => {
    await t.redis.del(STREAMS.applyResult);
    await result('ADAUSDT', 'EXECUTED', 1000);
    const p = t.redis.pipeline();
    for (let i = 0; i < 50; i++) p.xadd(STREAMS.applyResult, '*', 'symbol', 'ETHUSDT', 'status', 'SKIPPED');
    await p.exec();
    expect(await new NewestFills(t.redis).newestFor('ADAUSDT')).toBeNull();
  });
});
