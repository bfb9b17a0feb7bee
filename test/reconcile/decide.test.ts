/**
 * Table-driven tests of the pure reconcile decision (docs/architecture.md#quantities, docs/architecture.md#redis-schema, docs/architecture.md#reconcile-policy; seeds 000, 001, 004).
 */
import { describe, expect, it } from 'vitest';
import { Decimal, fmt } from '../../src/domain/decimal.js';
import { readLedger, readSnapshot, type RawHash } from '../../src/domain/position.js';
import { decideReconcile, type ReconcileConfig, type ReconcileInput } from '../../src/domain/reconcile.js';
import { closeProposal } from '../../src/domain/heal-policy.js';
import { driftSignature, fillsForSymbol, selectEvidence } from '../../src/domain/reconcile-evidence.js';
import { buildClosePlan, cooldownBucket } from '../../src/domain/reconcile-close.js';
import { PlanSchema } from '../../src/domain/plan.js';
import type { Fill } from '../../src/domain/result.js';

const NOW = 1_769_300_000_000;
const SYM = 'BTCUSDT';
const CFG: ReconcileConfig = {
  freshnessSec: 10,
  driftTolerancePct: '1.0',
  evidenceWindowSec: 300,
  graceMs: 3000,
  tolerance: { defaultAbs: null, perSymbol: {} },
  closeEnabled: true,
  healPolicy: 'flatten',
};

function snap(amt: string, side?: string, ageMs = 500, extra: RawHash = {}): RawHash {
  const h: RawHash = { position_amt: amt, ts_ms: String(NOW - ageMs), step_size: '0.001', ...extra };
  if (side !== undefined) h.side = side;
  return h;
}
const ledgerTs = (ageSec: number) => String((NOW - ageSec * 1000) / 1000);
function led(amt: string, side?: string, ageSec = 600): RawHash {
  const h: RawHash = { ledger_amt: amt, ts_epoch: ledgerTs(ageSec), version: '3', source: 'apply' };
  if (side !== undefined) h.ledger_side = side;
  return h;
}
function fill(signed: string, agoMs: number, decision = 'EXECUTE', id = 'p1'): Fill {
  return { planId: id, orderId: `o-${id}`, decision, signedQty: new Decimal(signed), tsMs: NOW - agoMs, entryId: `${NOW - agoMs}-0` };
}

interface Case {
  name: string;
  snapshot: RawHash | null;
  ledger: RawHash | null;
  legacy004?: RawHash;
  fills?: Fill[];
  inflight?: Record<string, string>;
  lastFillTsMs?: number | null;
  hold?: { exists: boolean; reason: string | null; sig: string | null };
  halted?: boolean;
  cfg?: Partial<ReconcileConfig>;
  expect: { status: string; reason: string; hold: 'set' | 'clear' | 'keep'; ledger?: string | null; close?: string | null; manual?: boolean };
}

function input(c: Case): ReconcileInput {
  return {
    symbol: SYM,
    snapshot: readSnapshot(c.snapshot),
    ledger: readLedger(c.ledger, c.legacy004 ?? {}),
    fills: c.fills ?? [],
    inflight: c.inflight ?? {},
    lastFillTsMs: c.lastFillTsMs ?? null,
    hold: c.hold ?? { exists: false, reason: null, sig: null },
    tradingHalted: c.halted ?? false,
    config: { ...CFG, ...c.cfg },
    nowMs: NOW,
  };
}

const OP_HOLD = { exists: true, reason: 'operator', sig: null };

const CASES: Case[] = [
  // missing, stale or invalid snapshot (docs/architecture.md#missing-stale-or-invalid-snapshot)
  { name: 'no snapshot → HOLD missing_exchange', snapshot: null, ledger: led('0.007'), expect: { status: 'HOLD', reason: 'missing_exchange', hold: 'set', close: null } },
  { name: 'stale snapshot → HOLD stale_exchange', snapshot: snap('0.007', 'LONG', 10_001), ledger: led('0.007'), expect: { status: 'HOLD', reason: 'stale_exchange', hold: 'set' } },
  { name: 'snapshot exactly at freshness limit is fresh', snapshot: snap('0.007', 'LONG', 10_000), ledger: led('0.007'), expect: { status: 'OK', reason: 'in_sync', hold: 'clear' } },
  { name: 'reading rule: unparseable snapshot → HOLD invalid_exchange', snapshot: snap('abc'), ledger: led('0.007'), expect: { status: 'HOLD', reason: 'invalid_exchange', hold: 'set' } },
  { name: 'reading rule: negative amount with side LONG → invalid_exchange', snapshot: snap('-0.007', 'LONG'), ledger: led('0.007'), expect: { status: 'HOLD', reason: 'invalid_exchange', hold: 'set' } },
  { name: 'reading rule: non-zero amount with side FLAT → invalid_exchange', snapshot: snap('0.007', 'FLAT'), ledger: led('0'), expect: { status: 'HOLD', reason: 'invalid_exchange', hold: 'set' } },
  { name: 'reading rule: snapshot dated in the future (beyond the skew) → invalid_exchange', snapshot: snap('0.007', 'LONG', -3_000), ledger: led('0.007'), expect: { status: 'HOLD', reason: 'invalid_exchange', hold: 'set', close: null } },
  { name: 'reading rule: snapshot a little ahead (clock skew within 2 s) is fine', snapshot: snap('0.007', 'LONG', -1_000), ledger: led('0.007'), expect: { status: 'OK', reason: 'in_sync', hold: 'clear' } },
  { name: 'reading rule: snapshot without timestamp → invalid_exchange', snapshot: { position_amt: '0.007', side: 'LONG' }, ledger: led('0.007'), expect: { status: 'HOLD', reason: 'invalid_exchange', hold: 'set' } },
  { name: 'reading rule: unparseable ledger → HOLD invalid_ledger', snapshot: snap('0.007', 'LONG'), ledger: led('1,5'), expect: { status: 'HOLD', reason: 'invalid_ledger', hold: 'set', close: null } },
  { name: 'reading rule: ledger_side alone (no amount) → invalid_ledger', snapshot: snap('0.007', 'LONG'), ledger: { ledger_side: 'LONG', version: '1' }, expect: { status: 'HOLD', reason: 'invalid_ledger', hold: 'set' } },
  // docs/architecture.md#ledger-initialisation
  { name: 'no ledger → LEDGER_INIT from the exchange', snapshot: snap('-0.5', 'SHORT'), ledger: null, expect: { status: 'OK', reason: 'ledger_init', hold: 'clear', ledger: '-0.5' } },
  { name: 'no ledger while an order is in flight → DRIFT, no init', snapshot: snap('0.5'), ledger: null, inflight: { c1: String(NOW - 100) }, expect: { status: 'DRIFT', reason: 'in_flight', hold: 'keep', ledger: null } },
  // docs/architecture.md#match
  { name: 'equal → OK', snapshot: snap('0.007', 'LONG'), ledger: led('0.007', 'LONG'), expect: { status: 'OK', reason: 'in_sync', hold: 'clear' } },
  { name: 'both flat → OK', snapshot: snap('0', 'FLAT'), ledger: led('0', 'FLAT'), expect: { status: 'OK', reason: 'in_sync', hold: 'clear' } },
  { name: 'both flat, side fields absent → OK', snapshot: snap('0.000'), ledger: led('0'), expect: { status: 'OK', reason: 'in_sync', hold: 'clear' } },
  { name: 'diff exactly one lot step (tolerance) → OK', snapshot: snap('0.008'), ledger: led('0.007'), expect: { status: 'OK', reason: 'in_sync', hold: 'clear' } },
  { name: 'side from amount sign (ledger_amt edited alone) → OK', snapshot: snap('-0.062', 'SHORT'), ledger: led('-0.062'), expect: { status: 'OK', reason: 'in_sync', hold: 'clear' } },
  { name: 'match under an operator hold → HOLD operator_hold, hold kept', snapshot: snap('0.007'), ledger: led('0.007'), hold: OP_HOLD, expect: { status: 'HOLD', reason: 'operator_hold', hold: 'keep' } },
  { name: 'match with an engine hold → cleared', snapshot: snap('0.007'), ledger: led('0.007'), hold: { exists: true, reason: 'side_mismatch', sig: 'abc' }, expect: { status: 'OK', reason: 'in_sync', hold: 'clear' } },
  // docs/architecture.md#side-mismatch
  { name: 'seed 000: LONG 0.007 vs legacy SELL 0.002 → HOLD side_mismatch, close SELL 0.007', snapshot: snap('0.007', 'LONG'), ledger: { last_known_amt: '0.002', last_side: 'SELL', last_executed_qty: '0.0', updated_at: '1769299637' }, expect: { status: 'HOLD', reason: 'side_mismatch', hold: 'set', close: 'SELL 0.007' } },
  { name: 'long vs short is never repaired even with fills', snapshot: snap('0.005'), ledger: led('-0.005'), fills: [fill('0.010', 60_000)], expect: { status: 'HOLD', reason: 'side_mismatch', hold: 'set', ledger: null, close: 'SELL 0.005' } },
  { name: 'exchange non-flat vs flat ledger without evidence → side_mismatch', snapshot: snap('0.007'), ledger: led('0'), expect: { status: 'HOLD', reason: 'side_mismatch', hold: 'set', close: 'SELL 0.007' } },
  { name: 'flat exchange vs non-flat ledger without evidence → side_mismatch, nothing to close, manual', snapshot: snap('0'), ledger: led('0.005'), expect: { status: 'MANUAL_REQUIRED', reason: 'side_mismatch', hold: 'set', close: null, manual: true } },
  { name: 'flat vs non-flat explained by a fill → AUTO_REPAIR', snapshot: snap('0.007'), ledger: led('0'), fills: [fill('0.007', 60_000)], expect: { status: 'REPAIRED', reason: 'auto_fixed', hold: 'clear', ledger: '0.007' } },
  { name: 'side mismatch with closes disabled → manual required', snapshot: snap('0.007'), ledger: led('-0.002'), cfg: { closeEnabled: false }, expect: { status: 'MANUAL_REQUIRED', reason: 'side_mismatch', hold: 'set', close: null, manual: true } },
  { name: 'side mismatch under an operator hold → hold kept, no close', snapshot: snap('0.007'), ledger: led('-0.002'), hold: OP_HOLD, expect: { status: 'MANUAL_REQUIRED', reason: 'side_mismatch', hold: 'keep', close: null, manual: true } },
  { name: 'kill switch: side mismatch while trading is HALTED → MANUAL_REQUIRED, hold set, no close', snapshot: snap('0.007'), ledger: led('-0.002'), halted: true, expect: { status: 'MANUAL_REQUIRED', reason: 'side_mismatch', hold: 'set', close: null, manual: true } },
  { name: 'kill switch: in sync while HALTED → OK (the kill switch is not a drift)', snapshot: snap('0.007'), ledger: led('0.007'), halted: true, expect: { status: 'OK', reason: 'in_sync', hold: 'clear', manual: false } },
  // same sign drift (docs/architecture.md#evidence-repair)
  { name: 'seed 004: 0.046 vs 0.002 without evidence → qty_mismatch_no_evidence, close SELL 0.044', snapshot: snap('0.046'), ledger: led('0.002'), expect: { status: 'HOLD', reason: 'qty_mismatch_no_evidence', hold: 'set', close: 'SELL 0.044' } },
  { name: 'short drift closes with BUY of the difference', snapshot: snap('-0.046', 'SHORT'), ledger: led('-0.002', 'SHORT'), expect: { status: 'HOLD', reason: 'qty_mismatch_no_evidence', hold: 'set', close: 'BUY 0.044' } },
  { name: 'shortfall (0.098 vs 0.1) under flatten → ONE close of |ex|', snapshot: snap('0.098'), ledger: led('0.1'), expect: { status: 'HOLD', reason: 'qty_mismatch_no_evidence', hold: 'set', close: 'SELL 0.098' } },
  { name: 'excess 1.2 vs 1.0 → close the excess 0.2', snapshot: snap('1.2'), ledger: led('1.0'), expect: { status: 'HOLD', reason: 'qty_mismatch_no_evidence', hold: 'set', close: 'SELL 0.2' } },
  { name: 'shortfall under hold → no close, MANUAL_REQUIRED', snapshot: snap('0.098'), ledger: led('0.1'), cfg: { healPolicy: 'hold' }, expect: { status: 'MANUAL_REQUIRED', reason: 'qty_mismatch_no_evidence', hold: 'set', close: null, manual: true } },
  { name: 'excess under hold → still closes the excess (reachable)', snapshot: snap('1.2'), ledger: led('1.0'), cfg: { healPolicy: 'hold' }, expect: { status: 'HOLD', reason: 'qty_mismatch_no_evidence', hold: 'set', close: 'SELL 0.2' } },
  { name: 'shortfall under adopt → ledger := exchange, LEDGER_ADOPTED, hold cleared', snapshot: snap('0.098'), ledger: led('0.1'), cfg: { healPolicy: 'adopt' }, expect: { status: 'REPAIRED', reason: 'ledger_adopted', hold: 'clear', ledger: '0.098', close: null } },
  { name: 'long vs short under adopt → never adopted, flatten', snapshot: snap('-0.05', 'SHORT'), ledger: led('0.1'), cfg: { healPolicy: 'adopt' }, expect: { status: 'HOLD', reason: 'side_mismatch', hold: 'set', ledger: null, close: 'BUY 0.05' } },
  { name: 'shortfall under adopt with an operator hold → not adopted, MANUAL_REQUIRED', snapshot: snap('0.098'), ledger: led('0.1'), hold: OP_HOLD, cfg: { healPolicy: 'adopt' }, expect: { status: 'MANUAL_REQUIRED', reason: 'qty_mismatch_no_evidence', hold: 'keep', ledger: null, close: null } },
  { name: 'shortfall under adopt within the grace of a fill → DRIFT, not adopted yet', snapshot: snap('0.09', undefined, 100), ledger: led('0.1', undefined, 1), fills: [fill('0.5', 1_000)], cfg: { healPolicy: 'adopt' }, expect: { status: 'DRIFT', reason: 'recent_fill', hold: 'keep', ledger: null } },
  { name: 'fill explains the drift exactly → AUTO_REPAIR', snapshot: snap('0.012'), ledger: led('0.007'), fills: [fill('0.005', 30_000)], expect: { status: 'REPAIRED', reason: 'auto_fixed', hold: 'clear', ledger: '0.012' } },
  { name: 'exact decimals: 0.007 − 0.002 fill explains 0.005', snapshot: snap('0.005'), ledger: led('0.007'), fills: [fill('-0.002', 30_000)], expect: { status: 'REPAIRED', reason: 'auto_fixed', hold: 'clear', ledger: '0.005' } },
  { name: 'several fills summed', snapshot: snap('1.5'), ledger: led('1'), fills: [fill('0.3', 30_000, 'EXECUTE', 'a'), fill('0.2', 20_000, 'EXECUTE', 'b')], expect: { status: 'REPAIRED', reason: 'auto_fixed', hold: 'clear', ledger: '1.5' } },
  { name: 'residual within 1 % → AUTO_REPAIR', snapshot: snap('1.000'), ledger: led('0.5'), fills: [fill('0.495', 30_000)], cfg: { tolerance: { defaultAbs: '0.001', perSymbol: {} } }, expect: { status: 'REPAIRED', reason: 'auto_fixed', hold: 'clear', ledger: '1' } },
  { name: 'residual above 1 % → HOLD', snapshot: snap('1.000'), ledger: led('0.5'), fills: [fill('0.48', 30_000)], cfg: { tolerance: { defaultAbs: '0.001', perSymbol: {} } }, expect: { status: 'HOLD', reason: 'qty_mismatch_no_evidence', hold: 'set', ledger: null } },
  { name: 'fill older than the ledger is not evidence', snapshot: snap('0.012'), ledger: led('0.007', undefined, 10), fills: [fill('0.005', 60_000)], expect: { status: 'HOLD', reason: 'qty_mismatch_no_evidence', hold: 'set', ledger: null } },
  { name: 'fill outside the evidence window is not evidence', snapshot: snap('0.012'), ledger: led('0.007', undefined, 900), fills: [fill('0.005', 301_000)], expect: { status: 'HOLD', reason: 'qty_mismatch_no_evidence', hold: 'set', ledger: null } },
  { name: 'only SKIP results (seed 000) → no evidence', snapshot: snap('0.046'), ledger: led('0.002'), fills: [], expect: { status: 'HOLD', reason: 'qty_mismatch_no_evidence', hold: 'set' } },
  { name: 'RECONCILE_CLOSE fill is not quantity evidence', snapshot: snap('0.012'), ledger: led('0.007'), fills: [fill('0.005', 30_000, 'RECONCILE_CLOSE')], expect: { status: 'HOLD', reason: 'qty_mismatch_no_evidence', hold: 'set', ledger: null } },
  // docs/architecture.md#grace
  { name: 'order in flight → DRIFT, hold kept', snapshot: snap('0.012'), ledger: led('0.007'), inflight: { 'p3-abc': String(NOW - 200) }, expect: { status: 'DRIFT', reason: 'in_flight', hold: 'keep' } },
  { name: 'stale in-flight record (older than the window) grants no grace', snapshot: snap('0.012'), ledger: led('0.007'), inflight: { 'p3-abc': String(NOW - 301_000) }, expect: { status: 'HOLD', reason: 'qty_mismatch_no_evidence', hold: 'set' } },
  { name: 'unparseable in-flight record grants no grace', snapshot: snap('0.012'), ledger: led('0.007'), inflight: { 'p3-abc': 'soon' }, expect: { status: 'HOLD', reason: 'qty_mismatch_no_evidence', hold: 'set' } },
  { name: 'unexplained drift within grace of a fill → DRIFT', snapshot: snap('0.020', undefined, 100), ledger: led('0.007', undefined, 1), fills: [fill('0.005', 1_000)], expect: { status: 'DRIFT', reason: 'recent_fill', hold: 'keep' } },
  { name: 'snapshot older than the newest fill → DRIFT, never act', snapshot: snap('0.007', undefined, 2_000), ledger: led('0.002'), fills: [fill('0.005', 1_000)], expect: { status: 'DRIFT', reason: 'snapshot_older_than_fill', hold: 'keep', ledger: null, close: null } },
  { name: 'a fill beyond the last 50 results (last_fill_ms) still holds the snapshot back', snapshot: snap('0.01', undefined, 6_000), ledger: led('0.005'), lastFillTsMs: NOW - 5_000, expect: { status: 'DRIFT', reason: 'snapshot_older_than_fill', hold: 'keep', ledger: null, close: null } },
  { name: 'drift on a snapshot older than the ledger\'s last write → DRIFT, never act', snapshot: snap('0.01', undefined, 6_000), ledger: led('0.005', undefined, 5), expect: { status: 'DRIFT', reason: 'snapshot_older_than_fill', hold: 'keep', ledger: null, close: null } },
  { name: 'snapshot as old as the fill → DRIFT', snapshot: snap('0.007', undefined, 1_000), ledger: led('0.002'), fills: [fill('0.005', 1_000)], expect: { status: 'DRIFT', reason: 'snapshot_older_than_fill', hold: 'keep' } },
  // heal (docs/architecture.md#heal-target)
  { name: 'our close filled, exchange flat, snapshot newer → ledger := 0, hold cleared', snapshot: snap('0', 'FLAT', 100), ledger: led('-0.002', 'SHORT'), fills: [fill('-0.007', 1_500, 'RECONCILE_CLOSE', 'reconclose:BTCUSDT:x:1')], hold: { exists: true, reason: 'side_mismatch', sig: 'x' }, expect: { status: 'REPAIRED', reason: 'healed_after_close', hold: 'clear', ledger: '0' } },
  { name: 'close filled but snapshot older → wait', snapshot: snap('0', 'FLAT', 2_000), ledger: led('-0.002', 'SHORT'), fills: [fill('-0.007', 1_500, 'RECONCILE_CLOSE')], expect: { status: 'DRIFT', reason: 'snapshot_older_than_fill', hold: 'keep', ledger: null } },
  { name: 'close filled but exchange not flat → no heal', snapshot: snap('0.003', undefined, 100), ledger: led('-0.002', 'SHORT'), fills: [fill('-0.004', 5_000, 'RECONCILE_CLOSE')], expect: { status: 'HOLD', reason: 'side_mismatch', hold: 'set', ledger: null } },
  { name: 'close fill older than the ledger → no heal', snapshot: snap('0', undefined, 100), ledger: led('0.005', undefined, 5), fills: [fill('-0.007', 60_000, 'RECONCILE_CLOSE')], expect: { status: 'MANUAL_REQUIRED', reason: 'side_mismatch', hold: 'set', ledger: null } },
  { name: 'qty below one lot step → nothing to close, manual', snapshot: snap('0.0105', undefined, 500, { step_size: '0.01' }), ledger: led('0.004'), cfg: { tolerance: { defaultAbs: '0.001', perSymbol: {} } }, expect: { status: 'MANUAL_REQUIRED', reason: 'qty_mismatch_no_evidence', hold: 'set', close: null, manual: true } },
  { name: 'unknown lot step → no close', snapshot: { position_amt: '0.046', ts_ms: String(NOW - 100) }, ledger: led('0.002'), expect: { status: 'MANUAL_REQUIRED', reason: 'qty_mismatch_no_evidence', hold: 'set', close: null, manual: true } },
];

describe('decideReconcile (docs/architecture.md#reconcile-policy)', () => {
  for (const c of CASES) {
    it(c.name, () => {
      const o = decideReconcile(input(c));
      expect({ status: o.status, reason: o.reason, hold: o.hold.kind }).toEqual({ status: c.expect.status, reason: c.expect.reason, hold: c.expect.hold });
      if (c.expect.ledger !== undefined) expect(o.ledger ? fmt(o.ledger.amount) : null).toBe(c.expect.ledger);
      if (c.expect.close !== undefined) expect(o.close ? `${o.close.side} ${fmt(o.close.qty)}` : null).toBe(c.expect.close);
      if (c.expect.manual !== undefined) expect(o.manualRequired).toBe(c.expect.manual);
      if (o.hold.kind === 'set') expect(o.hold.shape).toMatch(/^[0-9a-f]{12}$/);
      expect(o.status === 'MANUAL_REQUIRED').toBe(o.manualRequired);
    });
  }

  it('seed 000: exchange 0.007, ledger −0.002, diff exactly 0.009 (exact decimals)', () => {
    const o = decideReconcile(input(CASES.find((c) => c.name.startsWith('seed 000: LONG 0.007'))!));
    expect(fmt(o.exchangeAmt!)).toBe('0.007');
    expect(fmt(o.ledgerAmt!)).toBe('-0.002');
    expect(fmt(o.diff!)).toBe('0.009');
  });

  it('the drift signature is stable for the same drift and changes when the drift changes (seed 004 +0.016)', () => {
    const a = decideReconcile(input({ name: '', snapshot: snap('0.046'), ledger: led('0.002'), expect: {} as never }));
    const b = decideReconcile(input({ name: '', snapshot: snap('0.046', undefined, 200), ledger: led('0.002'), expect: {} as never }));
    const c = decideReconcile(input({ name: '', snapshot: snap('0.018'), ledger: led('0.002'), expect: {} as never }));
    expect(a.driftSig).toBe(b.driftSig);
    expect(c.driftSig).not.toBe(a.driftSig);
    expect(fmt(c.close!.qty)).toBe('0.016');
    expect(a.driftSig).toBe(driftSignature(SYM, 'qty_mismatch_no_evidence', '0.046', '0.002'));
  });

  it('a legacy seed 004 ledger (quantum:position:<SYM> ledger_amount) is read', () => {
    const o = decideReconcile(input({ name: '', snapshot: snap('0.046'), ledger: {}, legacy004: { ledger_amount: '0.002' }, expect: {} as never }));
    expect(o.reason).toBe('qty_mismatch_no_evidence');
    expect(fmt(o.ledgerAmt!)).toBe('0.002');
  });

  it('seed 000 Option B runbook edit (last_known_amt 0.007, last_side LONG) matches', () => {
    const o = decideReconcile(input({ name: '', snapshot: snap('0.007', 'LONG'), ledger: { last_known_amt: '0.007', last_side: 'LONG', last_executed_qty: '0.0' }, expect: {} as never }));
    expect(o.status).toBe('OK');
  });

  it('a per-symbol absolute tolerance widens the match', () => {
    const o = decideReconcile(input({ name: '', snapshot: snap('0.010'), ledger: led('0.007'), cfg: { tolerance: { defaultAbs: null, perSymbol: { BTCUSDT: '0.003' } } }, expect: {} as never }));
    expect(o.status).toBe('OK');
  });
});

describe('evidence and close helpers', () => {
  it('fillsForSymbol keeps EXECUTED fills of the symbol only, newest first', () => {
    const entries: Array<{ id: string; fields: Record<string, string> }> = [
      { id: '1-0', fields: { symbol: 'BTCUSDT', status: 'SKIPPED', executed: 'false', ts_ms: '1' } },
      { id: '2-0', fields: { symbol: 'ETHUSDT', status: 'EXECUTED', executed: 'true', side: 'BUY', filled_qty: '1', ts_ms: '2' } },
      { id: '3-0', fields: { symbol: 'BTCUSDT', status: 'EXECUTED', executed: 'true', side: 'SELL', filled_qty: '0.002', ts_ms: '3', plan_id: 'a' } },
      { id: '4-0', fields: { symbol: 'BTCUSDT', status: 'EXECUTED', executed: 'true', side: 'BUY', filled_qty: '0.001', ts_ms: '4', plan_id: 'b' } },
    ];
    const f = fillsForSymbol(entries, 'BTCUSDT');
    expect(f.map((x) => [x.planId, fmt(x.signedQty)])).toEqual([
      ['b', '0.001'],
      ['a', '-0.002'],
    ]);
    expect(fmt(selectEvidence(f, null, 10, 300).tradeSum)).toBe('-0.001');
  });

  it('closeProposal rounds down to the lot step and never proposes 0', () => {
    expect(fmt(closeProposal(new Decimal('0.0469'), new Decimal('0.002'), new Decimal('0.001'), 'flatten')!.qty)).toBe('0.044');
    expect(closeProposal(new Decimal('0'), new Decimal('0.002'), new Decimal('0.001'), 'flatten')).toBeNull();
    expect(closeProposal(new Decimal('0.0025'), new Decimal('0.002'), new Decimal('0.001'), 'flatten')).toBeNull();
  });

  it('the close plan passes the plan schema with the guardrail fields', () => {
    const { plan, bucket } = buildClosePlan(SYM, { side: 'SELL', qty: new Decimal('0.007'), target: 'flat' }, '416d86940859', NOW, 120);
    expect(bucket).toBe(cooldownBucket(NOW, 120));
    expect(bucket % 120).toBe(0);
    const p = PlanSchema.parse(plan);
    expect(p).toMatchObject({ decision: 'RECONCILE_CLOSE', source: 'p3.4', reason: 'reconcile_drift', type: 'MARKET', reduceOnly: true, qty: '0.007', side: 'SELL', drift_sig: '416d86940859' });
    expect(p.plan_id).toBe(`reconclose:BTCUSDT:416d86940859:${bucket}`);
  });
});
