import { describe, expect, it } from 'vitest';
import { fetchLedger, writeLedger } from '../../src/adapters/redis/ledger.js';
import { STREAMS, keys } from '../../src/adapters/redis/keys.js';
import { Decimal, fmt } from '../../src/domain/decimal.js';
import { useTestRedis } from '../helpers/redis.js';

const t = useTestRedis();

describe('ledgerWrite-4.lua', () => {
  it('migrates a seed 000 legacy ledger and bumps the version', async () => {
    await t.redis.hset(keys.ledger('BTCUSDT'), { last_known_amt: '0.002', last_side: 'SELL', last_executed_qty: '0.0', updated_at: '1769299637' });
    const r = await fetchLedger(t.redis, 'BTCUSDT');
    expect(r.read.kind === 'ok' && fmt(r.read.ledger.amount)).toBe('-0.002');
    const v = await writeLedger(t.redis, { symbol: 'BTCUSDT', expectedFingerprint: r.fingerprint, amount: new Decimal('0.007'), source: 'operator', event: { event: 'LEDGER_SET', symbol: 'BTCUSDT' } });
    expect(v).toBe(1);
    const h = await t.redis.hgetall(keys.ledger('BTCUSDT'));
    expect(h).toMatchObject({ ledger_amt: '0.007', ledger_side: 'LONG', source: 'operator', version: '1' });
    expect(h.last_known_amt).toBeUndefined();
    const ev = await t.redis.xrange(STREAMS.reconcileEvents, '-', '+');
    expect(ev.map(([, f]) => f[1])).toEqual(['LEDGER_MIGRATED', 'LEDGER_SET']);
  });
  it('refuses a write based on a stale read (concurrent writer wins)', async () => {
    const r = await fetchLedger(t.redis, 'BTCUSDT');
    await t.redis.hset(keys.ledger('BTCUSDT'), 'ledger_amt', '0.009');
    const v = await writeLedger(t.redis, { symbol: 'BTCUSDT', expectedFingerprint: r.fingerprint, amount: new Decimal('0'), source: 'p34_auto' });
    expect(v).toBeNull();
    expect(await t.redis.hget(keys.ledger('BTCUSDT'), 'ledger_amt')).toBe('0.009');
  });
  it('writes the result entry in the same step', async () => {
    const r = await fetchLedger(t.redis, 'ETHUSDT');
    expect(r.read.kind).toBe('missing');
    const v = await writeLedger(t.redis, { symbol: 'ETHUSDT', expectedFingerprint: r.fingerprint, amount: new Decimal('-0.5'), source: 'apply', result: { plan_id: 'p1', status: 'EXECUTED' } });
    expect(v).toBe(1);
    const res = await t.redis.xrange(STREAMS.applyResult, '-', '+');
    expect(res).toHaveLength(1);
    expect(await t.redis.hget(keys.ledger('ETHUSDT'), 'ledger_side')).toBe('SHORT');
  });
});
