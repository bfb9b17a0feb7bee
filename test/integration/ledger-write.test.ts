import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { createRedis } from '../../src/adapters/redis/client.js';
import { fetchLedger, writeLedger } from '../../src/adapters/redis/ledger.js';
import { STREAMS, keys } from '../../src/adapters/redis/keys.js';
import { Decimal, fmt } from '../../src/domain/decimal.js';
import { startTestRedis, type TestRedis } from '../helpers/redis.js';

let srv: TestRedis;
let redis: Redis;
beforeAll(async () => {
  srv = await startTestRedis();
  redis = createRedis(srv.url, { name: 'test' });
});
afterAll(async () => {
  redis.disconnect();
  await srv.stop();
});

describe('ledgerWrite-4.lua', () => {
  it('migrates a seed 000 legacy ledger and bumps the version', async () => {
    await redis.hset(keys.ledger('BTCUSDT'), { last_known_amt: '0.002', last_side: 'SELL', last_executed_qty: '0.0', updated_at: '1769299637' });
    const r = await fetchLedger(redis, 'BTCUSDT');
    expect(r.read.kind === 'ok' && fmt(r.read.ledger.amount)).toBe('-0.002');
    const v = await writeLedger(redis, { symbol: 'BTCUSDT', expectedFingerprint: r.fingerprint, amount: new Decimal('0.007'), source: 'operator', event: { event: 'LEDGER_SET', symbol: 'BTCUSDT' } });
    expect(v).toBe(1);
    const h = await redis.hgetall(keys.ledger('BTCUSDT'));
    expect(h).toMatchObject({ ledger_amt: '0.007', ledger_side: 'LONG', source: 'operator', version: '1' });
    expect(h.last_known_amt).toBeUndefined();
    const ev = await redis.xrange(STREAMS.reconcileEvents, '-', '+');
    expect(ev.map(([, f]) => f[1])).toEqual(['LEDGER_MIGRATED', 'LEDGER_SET']);
  });
  it('refuses a write based on a stale read (concurrent writer wins)', async () => {
    const r = await fetchLedger(redis, 'BTCUSDT');
    await redis.hset(keys.ledger('BTCUSDT'), 'ledger_amt', '0.009');
    const v = await writeLedger(redis, { symbol: 'BTCUSDT', expectedFingerprint: r.fingerprint, amount: new Decimal('0'), source: 'p34_auto' });
    expect(v).toBeNull();
    expect(await redis.hget(keys.ledger('BTCUSDT'), 'ledger_amt')).toBe('0.009');
  });
  it('writes the result entry in the same step', async () => {
    const r = await fetchLedger(redis, 'ETHUSDT');
    expect(r.read.kind).toBe('missing');
    const v = await writeLedger(redis, { symbol: 'ETHUSDT', expectedFingerprint: r.fingerprint, amount: new Decimal('-0.5'), source: 'apply', result: { plan_id: 'p1', status: 'EXECUTED' } });
    expect(v).toBe(1);
    const res = await redis.xrange(STREAMS.applyResult, '-', '+');
    expect(res).toHaveLength(1);
    expect(await redis.hget(keys.ledger('ETHUSDT'), 'ledger_side')).toBe('SHORT');
  });
});
