/**
 * The governor reads the breaker window incrementally (`FailureWindow`), one round trip per
 * check whatever the window holds, and counts what the full scan counts: FAILED results of the symbol
 * from the given time, including those added between checks and those buried under thousands of other
 * results; a stream recreated with older ids is read again from the window's start.
 */
import { describe, expect, it } from 'vitest';
import { STREAMS, keys } from '../../src/adapters/redis/keys.js';
import { checkBreaker } from '../../src/services/governor/breaker.js';
import { FailureWindow, compareStreamIds } from '../../src/services/governor/failure-window.js';
import { useTestRedis } from '../helpers/redis.js';

const t = useTestRedis();
const S = { windowSec: 300, maxErrors: 3, cooldownSec: 60 };

async function add(sym: string, status: string, n = 1): Promise<void> {
  const p = t.redis.pipeline();
  for (let i = 0; i < n; i++) p.xadd(STREAMS.applyResult, '*', 'plan_id', `${sym}-${status}-${i}`, 'symbol', sym, 'status', status);
  await p.exec();
}

/** What the full scan counts (checkBreaker without a window; breaker keys absent for the symbol). */
async function fullScan(sym: string, nowMs: number): Promise<number> {
  return (await checkBreaker(t.redis, sym, { ...S, maxErrors: 1_000_000 }, nowMs)).errors;
}

describe('incremental breaker window', () => {
  it('counts what the full scan counts, across refreshes and under 2,500 other results', async () => {
    await t.redis.del(STREAMS.applyResult);
    const w = new FailureWindow(t.redis, S.windowSec * 1000);
    const from = () => Date.now() - S.windowSec * 1000;
    await add('AAAUSDT', 'FAILED', 2);
    expect(await w.count('AAAUSDT', from())).toBe(2);
    await add('BBBUSDT', 'SKIPPED', 2500);
    await add('AAAUSDT', 'FAILED');
    await add('BBBUSDT', 'FAILED');
    await add('AAAUSDT', 'EXECUTED', 3);
    expect(await w.count('AAAUSDT', from())).toBe(3);
    expect(await w.count('BBBUSDT', from())).toBe(1);
    expect(await w.count('CCCUSDT', from())).toBe(0);
    for (const s of ['AAAUSDT', 'BBBUSDT', 'CCCUSDT']) expect(await w.count(s, from())).toBe(await fullScan(s, Date.now()));
    // concurrent checks share refreshes and all see a result added before they were asked
    await add('CCCUSDT', 'FAILED');
    expect(await Promise.all([w.count('CCCUSDT', from()), w.count('CCCUSDT', from()), w.count('AAAUSDT', from())])).toEqual([1, 1, 3]);
    // a later `from` (the last trip) leaves the older failures out
    const cut = Date.now() + 1;
    await new Promise((r) => setTimeout(r, 5));
    await add('AAAUSDT', 'FAILED');
    expect(await w.count('AAAUSDT', cut)).toBe(1);
  });

  it('trips the breaker exactly as the full scan does', async () => {
    await t.redis.del(STREAMS.applyResult, keys.governorBreaker('TRPUSDT'), keys.governorBreakerLastTrip('TRPUSDT'));
    const w = new FailureWindow(t.redis, S.windowSec * 1000);
    await add('TRPUSDT', 'FAILED', 2);
    expect(await checkBreaker(t.redis, 'TRPUSDT', S, Date.now(), w)).toMatchObject({ open: false, errors: 2 });
    await add('OTHUSDT', 'SKIPPED', 1200);
    await add('TRPUSDT', 'FAILED');
    expect(await checkBreaker(t.redis, 'TRPUSDT', S, Date.now(), w)).toMatchObject({ open: true, tripped: true, errors: 3 });
    expect(await t.redis.ttl(keys.governorBreaker('TRPUSDT'))).toBeGreaterThan(0);
  });

  it('a stream recreated with older ids (Redis restarted empty) is read again from the window start', async () => {
    await t.redis.del(STREAMS.applyResult);
    const w = new FailureWindow(t.redis, S.windowSec * 1000);
    const now = Date.now();
    await t.redis.xadd(STREAMS.applyResult, `${now + 60_000}-0`, 'symbol', 'RSTUSDT', 'status', 'SKIPPED');
    expect(await w.count('RSTUSDT', now - 1000, now)).toBe(0);
    await t.redis.del(STREAMS.applyResult);
    await t.redis.xadd(STREAMS.applyResult, `${now}-1`, 'symbol', 'RSTUSDT', 'status', 'FAILED');
    expect(await w.count('RSTUSDT', now - 1000, now)).toBe(1);
    expect(compareStreamIds('5-1', '5-0')).toBeGreaterThan(0);
    expect(compareStreamIds('4-9', '5-0')).toBeLessThan(0);
  });
});
