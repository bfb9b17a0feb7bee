/** The circuit breaker counts every FAILED result of the window, however many other results follow them. */
import { describe, expect, it } from 'vitest';
import { STREAMS, keys } from '../../src/adapters/redis/keys.js';
import { checkBreaker } from '../../src/services/governor/breaker.js';
import { useTestRedis } from '../helpers/redis.js';

const t = useTestRedis();

const S = { windowSec: 300, maxErrors: 3, cooldownSec: 60 };

describe('circuit breaker window scan', () => {
  it('failures buried under 2,500 later results of other symbols still trip it (no truncated view)', async () => {
    for (let i = 0; i < 3; i++) await t.redis.xadd(STREAMS.applyResult, '*', 'plan_id', `f${i}`, 'symbol', 'XRPUSDT', 'status', 'FAILED', 'error', 'boom');
    const p = t.redis.pipeline();
    for (let i = 0; i < 2500; i++) p.xadd(STREAMS.applyResult, '*', 'plan_id', `s${i}`, 'symbol', 'ETHUSDT', 'status', 'SKIPPED');
    await p.exec();
    const st = await checkBreaker(t.redis, 'XRPUSDT', S);
    expect(st).toMatchObject({ open: true, tripped: true, errors: 3 });
    expect(await t.redis.ttl(keys.governorBreaker('XRPUSDT'))).toBeGreaterThan(0);
  });
  it('a last-trip time in the future (a fast clock) does not hide new failures', async () => {
    const now = Date.now();
    await t.redis.set(keys.governorBreakerLastTrip('ADAUSDT'), String(now + 60_000));
    for (let i = 0; i < 3; i++) await t.redis.xadd(STREAMS.applyResult, '*', 'plan_id', `a${i}`, 'symbol', 'ADAUSDT', 'status', 'FAILED');
    expect((await checkBreaker(t.redis, 'ADAUSDT', S, now + 10)).open).toBe(true);
  });
});
