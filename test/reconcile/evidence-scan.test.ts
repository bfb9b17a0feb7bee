/**
 * Evidence is not hidden by results that are not fills (found by `p3 chaos`, seed 41): a RECONCILE_CLOSE that
 * flattened the position, then a burst of DROPPED_DUPLICATE results of re-submitted plans (80 within 3 s). The
 * engine used to read only the last 50 result entries, lost the close's fill, and left the symbol
 * MANUAL_REQUIRED ("nothing closable") instead of healing the ledger to flat. Against a real Redis.
 */
import { describe, expect, it } from 'vitest';
import { STREAMS } from '../../src/adapters/redis/keys.js';
import { EVIDENCE_LOOKBACK } from '../../src/domain/reconcile-evidence.js';
import { EVIDENCE_SCAN_MAX, readPass } from '../../src/services/reconcile-engine/store.js';
import { useTestRedis } from '../helpers/redis.js';

const t = useTestRedis();

async function result(f: Record<string, string>): Promise<void> {
  await t.redis.xadd(STREAMS.applyResult, '*', ...Object.entries(f).flat());
}

describe('evidence read of a reconcile pass', () => {
  it('reads back past non-fill results until it holds the fills (bounded)', async () => {
    await t.redis.del(STREAMS.applyResult);
    await result({ plan_id: 'close-1', symbol: 'BTCUSDT', decision: 'RECONCILE_CLOSE', status: 'EXECUTED', executed: 'true', side: 'SELL', filled_qty: '0.004', basis_amt: '0.004', ts_ms: String(Date.now()) });
    for (let i = 0; i < 120; i++) await result({ plan_id: `dup-${i}`, symbol: 'ETHUSDT', decision: 'EXECUTE', status: 'DROPPED_DUPLICATE', executed: 'false', ts_ms: String(Date.now()) });
    const reads = await readPass(t.redis, ['BTCUSDT']);
    expect(reads.results.length).toBeGreaterThan(EVIDENCE_LOOKBACK);
    expect(reads.results.map((e) => e.fields.plan_id)).toContain('close-1');
    expect(reads.results[0]?.fields.plan_id).toBe('dup-119'); // newest first
  });

  it('stops at the evidence window and at EVIDENCE_SCAN_MAX entries', async () => {
    await t.redis.del(STREAMS.applyResult);
    // an old fill, outside a 1 s window
    await t.redis.xadd(STREAMS.applyResult, `${Date.now() - 60_000}-0`, 'plan_id', 'old', 'status', 'EXECUTED', 'executed', 'true', 'side', 'BUY', 'filled_qty', '1', 'symbol', 'BTCUSDT', 'ts_ms', '1');
    for (let i = 0; i < 60; i++) await result({ plan_id: `s-${i}`, symbol: 'ETHUSDT', status: 'SKIPPED' });
    expect((await readPass(t.redis, ['BTCUSDT'], 300)).results.map((e) => e.fields.plan_id)).toContain('old');
    expect((await readPass(t.redis, ['BTCUSDT'], 1)).results.length).toBeLessThan(61 + 1);
    const m = t.redis.multi();
    for (let i = 0; i < EVIDENCE_SCAN_MAX + 300; i++) m.xadd(STREAMS.applyResult, '*', 'plan_id', `x-${i}`, 'status', 'SKIPPED');
    await m.exec();
    expect((await readPass(t.redis, ['BTCUSDT'])).results.length).toBeLessThanOrEqual(EVIDENCE_SCAN_MAX + 200);
  });
});
