/** applyRecord-8.lua's owner fence: a consumer whose claim was taken over can never record over the new owner. */
import { describe, expect, it } from 'vitest';
import { STREAMS, keys } from '../../src/adapters/redis/keys.js';
import { dedupeValue } from '../../src/domain/apply.js';
import { Decimal } from '../../src/domain/decimal.js';
import { recordResult } from '../../src/services/apply-layer/store.js';
import { resultFields } from '../../src/services/apply-layer/results.js';
import { useTestRedis } from '../helpers/redis.js';

const t = useTestRedis();

describe('applyRecord-8 owner fence', () => {
  it('refuses the old owner once another consumer took the plan over, accepts the new owner', async () => {
    const planId = 'fence-1';
    const oldOwner = dedupeValue('claimed', '1-0', 'a:1');
    const newOwner = dedupeValue('sending', '1-0', 'b:2');
    await t.redis.set(keys.applyDedupe(planId), newOwner, 'EX', 600);
    const f = resultFields({ plan_id: planId, symbol: 'BTCUSDT', decision: 'RECONCILE_CLOSE', status: 'FAILED', reason: 'exchange_unavailable' });
    const stale = await recordResult(t.redis, f, { cid: '', doneValue: dedupeValue('done', '1-0', 'FAILED'), expected: oldOwner });
    expect(stale.kind).toBe('fenced');
    expect(await t.redis.xlen(STREAMS.applyResult)).toBe(0);
    expect(await t.redis.get(keys.applyDedupe(planId))).toBe(newOwner);
    const ok = await recordResult(t.redis, { ...f, status: 'EXECUTED' }, { cid: 'p3-x', doneValue: dedupeValue('done', '1-0', 'EXECUTED'), expected: newOwner });
    expect(ok.kind).toBe('recorded');
    expect(await t.redis.xlen(STREAMS.applyResult)).toBe(1);
  });

  it('fills recorded out of order: last_fill_ms and the ledger ts_epoch only move forward', async () => {
    await t.redis.hset(keys.ledger('ETHUSDT'), { ledger_amt: '1', ledger_side: 'LONG', ts_epoch: '100.000', version: '1', source: 'init' });
    const rec = async (planId: string, tsMs: number) => {
      await t.redis.set(keys.applyDedupe(planId), dedupeValue('sending', `${tsMs}-0`, 't:1'), 'EX', 600);
      const f = resultFields({ plan_id: planId, symbol: 'ETHUSDT', decision: 'EXECUTE', status: 'EXECUTED', executed: 'true', side: 'SELL', filled_qty: '0.1', ts_ms: String(tsMs) });
      return recordResult(t.redis, f, { cid: `p3-${planId}`, doneValue: dedupeValue('done', `${tsMs}-0`, 'EXECUTED'), fill: new Decimal('-0.1'), expected: dedupeValue('sending', `${tsMs}-0`, 't:1') });
    };
    expect((await rec('late-b', 105_000)).kind).toBe('recorded');
    expect((await rec('early-a', 100_500)).kind).toBe('recorded'); // answered earlier, recorded later
    expect(await t.redis.get(keys.lastFill('ETHUSDT'))).toBe('105000');
    expect(await t.redis.hgetall(keys.ledger('ETHUSDT'))).toMatchObject({ ledger_amt: '0.8', ts_epoch: '105.000', version: '3' });
  });
});
