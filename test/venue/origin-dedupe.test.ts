/**
 * Venue origins (src/domain/venue-origin.ts) and the journal's exactly-once script (venueFillRecord-4.lua,
 * real Redis): any delivery order, any number of repeats of a trade → one entry per trade id.
 */
import fc from 'fast-check';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedis } from '../../src/adapters/redis/client.js';
import { STREAMS, keys } from '../../src/adapters/redis/keys.js';
import { clientOrderIdFor } from '../../src/domain/apply.js';
import { Decimal } from '../../src/domain/decimal.js';
import { venueOriginOf } from '../../src/domain/venue-origin.js';
import { VenueJournal } from '../../src/services/position-state-brain/venue-journal/journal.js';
import { Registry } from 'prom-client';
import pino from 'pino';
import { startTestRedis, type TestRedis } from '../helpers/redis.js';

describe('venue origin', () => {
  it('classifies by client order id prefix and order type', () => {
    expect(venueOriginOf(clientOrderIdFor('plan-1'), 'MARKET')).toBe('ours');
    expect(venueOriginOf('autoclose-1596107620040000020', 'LIQUIDATION')).toBe('liquidation');
    expect(venueOriginOf('adl_autoclose', 'LIQUIDATION')).toBe('adl');
    expect(venueOriginOf('settlement_autoclose-1596107620040000020', 'MARKET')).toBe('settlement');
    expect(venueOriginOf('web_123', 'MARKET')).toBe('foreign');
    expect(venueOriginOf('', 'LIQUIDATION')).toBe('liquidation');
    expect(venueOriginOf('', 'ADL')).toBe('adl');
    expect(venueOriginOf('p3-NOTHEX0000000000000000000000000000', 'MARKET')).toBe('foreign');
    expect(venueOriginOf(`${clientOrderIdFor('x')}0`, 'MARKET')).toBe('foreign');
  });

  it('property: every plan id gives ours; anything not of our shape or the exchange prefixes is foreign', () => {
    fc.assert(fc.property(fc.string(), (planId) => venueOriginOf(clientOrderIdFor(planId)) === 'ours'));
    fc.assert(
      fc.property(fc.string({ maxLength: 36 }), (c) => {
        fc.pre(!/^p3-[0-9a-f]{32}$/.test(c) && !c.startsWith('autoclose-') && !c.startsWith('adl_autoclose') && !c.startsWith('settlement_autoclose-'));
        return venueOriginOf(c, 'MARKET') === 'foreign';
      }),
    );
  });
});

describe('venueFillRecord-4.lua', () => {
  let srv: TestRedis;
  let redis: Redis;
  beforeAll(async () => {
    srv = await startTestRedis();
    redis = createRedis(srv.url, { name: 'test-venue-dedupe' });
  });
  afterAll(async () => {
    redis.disconnect();
    await srv.stop();
  });

  it('property: any order and any repeats of deliveries record each trade id exactly once; the cursor is the newest id', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 60 }), async (ids) => {
        await redis.flushall();
        const j = new VenueJournal(redis, pino({ level: 'silent' }), new Registry());
        for (const [i, id] of ids.entries()) {
          await j.record({ symbol: 'BTCUSDT', orderId: String(1000 + id), clientOrderId: 'web_1', tradeId: String(id), side: id % 2 ? 'BUY' : 'SELL', lastQty: new Decimal('0.001'), cumQty: null, price: null, realizedPnl: null, commission: null, commissionAsset: '', reduceOnly: false, orderType: 'MARKET', eventTimeMs: 1000 + i, tradeTimeMs: 1000 + i, localTsMs: 1000 + i, source: i % 2 ? 'rest' : 'stream' });
        }
        const rows = await redis.xrange(STREAMS.exchangeFills, '-', '+');
        const recorded = rows.map(([, f]) => f[f.indexOf('trade_id') + 1]);
        expect(new Set(recorded).size).toBe(recorded.length);
        expect(new Set(recorded)).toEqual(new Set(ids.map(String)));
        expect(await redis.hget(keys.venueCursor('BTCUSDT'), 'last_trade_id')).toBe(String(Math.max(...ids)));
      }),
      { numRuns: 40 },
    );
  });
});
