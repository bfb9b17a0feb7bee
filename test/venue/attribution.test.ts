/**
 * The reconcile decision with the venue journal (src/domain/reconcile.ts, src/domain/attribution.ts), pure:
 * rollback repairs in both directions, a fill never counted twice, foreign fills held at once (also within
 * the tolerance and with our orders in flight), venue closes by policy, journal gaps.
 */
import { describe, expect, it } from 'vitest';
import { clientOrderIdFor } from '../../src/domain/apply.js';
import { Decimal } from '../../src/domain/decimal.js';
import { readLedger, readSnapshot } from '../../src/domain/position.js';
import { decideReconcile, type ReconcileConfig } from '../../src/domain/reconcile.js';
import type { Fill } from '../../src/domain/result.js';
import type { VenueFill } from '../../src/domain/venue-fill.js';
import { venueOriginOf } from '../../src/domain/venue-origin.js';

const NOW = 1_800_000_000_000;
const config = (closePolicy: 'adopt' | 'hold' = 'adopt'): ReconcileConfig => ({
  freshnessSec: 10,
  driftTolerancePct: '1.0',
  evidenceWindowSec: 300,
  graceMs: 3000,
  tolerance: { defaultAbs: null, perSymbol: {} },
  closeEnabled: true,
  healPolicy: 'flatten',
  venue: { closePolicy, gapMaxMs: 15_000, settleMs: 1000 },
});
let tid = 0;
const fill = (side: 'BUY' | 'SELL', qty: string, ageMs: number, clientOrderId: string, decision = ''): VenueFill => {
  const t = NOW - ageMs;
  return { symbol: 'BTCUSDT', orderId: `4${++tid}`, clientOrderId, tradeId: String(tid), side, lastQty: new Decimal(qty), cumQty: null, price: null, realizedPnl: null, commission: null, commissionAsset: '', reduceOnly: false, orderType: 'MARKET', eventTimeMs: t, tradeTimeMs: t, localTsMs: t, origin: venueOriginOf(clientOrderId), source: 'stream', planDecision: decision };
};
const decide = (o: { ex: string; led: string; ledAgeMs?: number; fills: VenueFill[]; results?: Fill[]; inflight?: Record<string, string>; gapSinceMs?: number | null; policy?: 'adopt' | 'hold' }) =>
  decideReconcile({
    symbol: 'BTCUSDT',
    snapshot: readSnapshot({ position_amt: o.ex, ts_ms: String(NOW - 10), step_size: '0.001' }),
    ledger: readLedger({ ledger_amt: o.led, ts_epoch: String((NOW - (o.ledAgeMs ?? 60_000)) / 1000), version: '3' }, {}),
    fills: o.results ?? [],
    inflight: o.inflight ?? {},
    lastFillTsMs: null,
    hold: { exists: false, reason: null, sig: null },
    config: config(o.policy),
    nowMs: NOW,
    venue: { fills: o.fills, gapSinceMs: o.gapSinceMs ?? null, gapReason: o.gapSinceMs ? 'restart' : '' },
  });
const ours = (planId: string) => clientOrderIdFor(planId);

describe('decision with the venue journal', () => {
  it('Redis lost our OPEN (ledger 0, exchange 0.002): AUTO_REPAIR from the exchange, no close', () => {
    const f = fill('BUY', '0.002', 2000, ours('p1'), 'EXECUTE');
    const o = decide({ ex: '0.002', led: '0', fills: [f] });
    expect(o).toMatchObject({ status: 'REPAIRED', reason: 'auto_fixed', close: null });
    expect(o.ledger).toMatchObject({ kind: 'repair', source: 'p34_auto' });
    expect(o.ledger!.amount.toString()).toBe('0.002');
    expect(o.ledger!.venueFills!.map((x) => x.tradeId)).toEqual([f.tradeId]);
  });

  it('Redis lost our FULL_CLOSE (ledger 0.05, exchange flat): AUTO_REPAIR to 0, not MANUAL_REQUIRED', () => {
    const o = decide({ ex: '0', led: '0.05', fills: [fill('SELL', '0.05', 2000, ours('p2'))] });
    expect(o).toMatchObject({ status: 'REPAIRED', reason: 'auto_fixed', manualRequired: false, close: null });
    expect(o.ledger!.amount.toString()).toBe('0');
  });

  it('a fill whose result is recorded is never counted again; a fresh one of ours waits for its record', () => {
    const f = fill('BUY', '0.002', 2000, ours('p3'), 'EXECUTE');
    const recorded: Fill = { planId: 'p3', orderId: f.orderId, decision: 'EXECUTE', signedQty: new Decimal('0.002'), tsMs: NOW - 1990, entryId: '1-0' };
    // the ledger already has it (0.002) and the exchange moved by someone else: not explained by our fill
    const o = decide({ ex: '0.004', led: '0.002', ledAgeMs: 1000, fills: [f], results: [recorded] });
    expect(o.reason).not.toBe('auto_fixed');
    const fresh = fill('BUY', '0.002', 200, ours('p4'), 'EXECUTE');
    expect(decide({ ex: '0.002', led: '0', fills: [fresh], inflight: { [fresh.clientOrderId]: String(NOW - 300) } })).toMatchObject({ status: 'DRIFT', reason: 'awaiting_record', ledger: null });
  });

  it('a foreign fill is held at once: with our order in flight, and within the tolerance (one lot step)', () => {
    const mine = fill('BUY', '0.002', 100, ours('p5'), 'EXECUTE');
    const foreign = fill('BUY', '0.001', 50, 'web_1');
    const o = decide({ ex: '0.013', led: '0.010', fills: [mine, foreign], inflight: { [mine.clientOrderId]: String(NOW - 150) } });
    expect(o.status).toBe('HOLD');
    expect(o.hold.kind).toBe('set');
    expect(o.detail).toMatch(/foreign fill: BUY 0\.001/);
    expect(o.close).toBeNull(); // the close waits until nothing of ours is in flight
    const tiny = decide({ ex: '0.011', led: '0.010', fills: [fill('BUY', '0.001', 50, 'web_2')] });
    expect(tiny).toMatchObject({ status: 'HOLD', reason: 'qty_mismatch_no_evidence' });
    expect(tiny.close?.qty.toString()).toBe('0.001');
  });

  it('a foreign fill answered by our heal close is no longer a drift', () => {
    const f = fill('BUY', '0.001', 3000, 'web_3');
    const heal = fill('SELL', '0.001', 2000, ours('close-1'), 'RECONCILE_CLOSE');
    expect(decide({ ex: '0.010', led: '0.010', fills: [f, heal] })).toMatchObject({ status: 'OK' });
  });

  it('our FULL_CLOSE sized on a position that included a foreign fill flattened it: ledger := flat, no MANUAL_REQUIRED', () => {
    const foreign = fill('BUY', '0.002', 3000, 'web_4');
    const exit = { ...fill('SELL', '0.004', 2000, ours('p6'), 'EXECUTE'), reduceOnly: true };
    const recorded: Fill = { planId: 'p6', orderId: exit.orderId, decision: 'EXECUTE', signedQty: new Decimal('-0.004'), tsMs: NOW - 1990, entryId: '1-0' };
    const o = decide({ ex: '0', led: '-0.002', ledAgeMs: 1900, fills: [foreign, exit], results: [recorded] });
    expect(o).toMatchObject({ status: 'REPAIRED', reason: 'healed_after_close', close: null, manualRequired: false });
    expect(o.ledger!.amount.toString()).toBe('0');
  });

  it('a partial liquidation: adopt → LIQUIDATION repair; hold → MANUAL_REQUIRED venue_close; never a close', () => {
    const liq = fill('SELL', '0.004', 500 + 1000, 'autoclose-1796693126692000003');
    const a = decide({ ex: '0.006', led: '0.010', fills: [liq] });
    expect(a).toMatchObject({ status: 'REPAIRED', reason: 'venue_close_adopted', close: null });
    expect(a.ledger).toMatchObject({ kind: 'venue' });
    expect(a.ledger!.amount.toString()).toBe('0.006');
    const h = decide({ ex: '0.006', led: '0.010', fills: [liq], policy: 'hold' });
    expect(h).toMatchObject({ status: 'MANUAL_REQUIRED', reason: 'venue_close', close: null, manualRequired: true });
  });

  it('an unexplained change waits while the journal has a gap; a gap older than P34_VENUE_GAP_MAX_MS holds', () => {
    expect(decide({ ex: '0.012', led: '0.010', fills: [], gapSinceMs: NOW - 1000 })).toMatchObject({ status: 'DRIFT', reason: 'venue_unverified' });
    expect(decide({ ex: '0.010', led: '0.010', fills: [], gapSinceMs: NOW - 20_000 })).toMatchObject({ status: 'HOLD', reason: 'venue_journal_gap', close: null });
  });
});

describe('VenueRollbackWatch (the engine notices the journal going back)', () => {
  it('a cursor below the highest seen opens a gap from the moment it was noticed, until the cursor is back', async () => {
    const { VenueRollbackWatch } = await import('../../src/services/reconcile-engine/venue.js');
    const w = new VenueRollbackWatch();
    const view = (last: string | null) => ({ fills: [], gapSinceMs: null, gapReason: '', lastTradeId: last });
    expect(w.apply('BTCUSDT', view('10'), 1000).gapSinceMs).toBeNull();
    expect(w.apply('BTCUSDT', view('7'), 2000)).toMatchObject({ gapSinceMs: 2000, gapReason: 'redis_rollback' });
    expect(w.apply('BTCUSDT', view(null), 3000)).toMatchObject({ gapSinceMs: 2000 });
    expect(w.apply('BTCUSDT', view('10'), 4000).gapSinceMs).toBeNull();
    expect(w.apply('BTCUSDT', view('12'), 5000).gapSinceMs).toBeNull();
  });
});
