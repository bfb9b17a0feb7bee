/**
 * Properties of the heal policy and the reconcile decision (docs/architecture.md#reconcile-policy, docs/architecture.md#heal-target, docs/architecture.md#reconcile_close-invariants), over
 * generated inputs: amounts and lot steps from 1 to 1e-8, malformed hashes, stale and future timestamps,
 * dust, fills, in-flight records, holds, trading state and configuration.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Decimal, fmt, signOf } from '../../src/domain/decimal.js';
import { afterClose, classifyDrift, closeProposal, HEAL_POLICIES, type HealPolicy } from '../../src/domain/heal-policy.js';
import { readLedger, readSnapshot, SNAPSHOT_FUTURE_SKEW_MS, type RawHash } from '../../src/domain/position.js';
import { decideReconcile, DRIFT_HOLD_REASONS, type ReconcileConfig, type ReconcileInput } from '../../src/domain/reconcile.js';
import { decideP33 } from '../../src/domain/permits.js';
import { compareAmounts, toleranceFor } from '../../src/domain/tolerance.js';
import type { Fill } from '../../src/domain/result.js';
import { PlanSchema } from '../../src/domain/plan.js';
import { params, STEPS } from './runs.js';

const NOW = 1_800_000_000_000;
const SYM = 'BTCUSDT';

const stepArb = fc.constantFrom(...STEPS).map((s) => new Decimal(s));
const policyArb = fc.constantFrom(...HEAL_POLICIES);
/** A signed amount on the lot step, sometimes with dust below one step; small amounts and 0 often. */
const amountOn = (step: Decimal) =>
  fc.tuple(fc.oneof(fc.integer({ min: -50_000, max: 50_000 }), fc.integer({ min: -5, max: 5 }), fc.constant(0)), fc.constantFrom('0', '0', '0', '0.5', '0.999')).map(([n, dust]) => step.mul(n).plus(step.mul(dust).mul(Math.sign(n) || 1)));

describe('closeProposal (docs/architecture.md#heal-target)', () => {
  it('never opens, grows or flips a position, never exceeds |ex|, never moves away from its target, whatever fills of it', () => {
    fc.assert(
      fc.property(
        stepArb.chain((step) => fc.tuple(fc.constant(step), amountOn(step), amountOn(step), policyArb, fc.double({ min: 0, max: 1, noNaN: true }))),
        ([step, ex, led, policy, ratio]) => {
          const p = closeProposal(ex, led, step, policy);
          if (p === null) return;
          expect(p.qty.gt(0)).toBe(true);
          expect(p.qty.lte(ex.abs())).toBe(true);
          expect(p.qty.mod(step).isZero()).toBe(true);
          expect(p.side).toBe(ex.isNeg() ? 'BUY' : 'SELL');
          const target = p.target === 'ledger' ? led : new Decimal(0);
          const shape = classifyDrift(ex, led);
          if (p.target === 'ledger') expect(shape).toBe('excess');
          else expect(policy === 'hold' || (policy === 'adopt' && shape === 'shortfall')).toBe(false);
          // any fill of it, partial or full (rounded to the step), keeps every invariant
          for (const filled of [p.qty, p.qty.mul(ratio).toDecimalPlaces(step.decimalPlaces(), Decimal.ROUND_DOWN)]) {
            const after = afterClose(ex, p.side, filled);
            expect(signOf(after) === 0 || signOf(after) === signOf(ex)).toBe(true);
            expect(after.abs().lte(ex.abs())).toBe(true);
            expect(after.minus(target).abs().lte(ex.minus(target).abs())).toBe(true);
          }
          // a full fill reaches the target exactly (up to the lot step's rounding)
          const full = afterClose(ex, p.side, p.qty);
          expect(full.minus(target).abs().lt(step)).toBe(true);
        },
      ),
      params(4000),
    );
  });

  it('the heal-target cases: 0.098 vs 0.1 is ONE close of 0.098 (flatten), none (hold), none (adopt); 1.2 vs 1.0 is 0.2 under every policy', () => {
    const step = new Decimal('0.001');
    expect(fmt(closeProposal(new Decimal('0.098'), new Decimal('0.1'), step, 'flatten')!.qty)).toBe('0.098');
    expect(closeProposal(new Decimal('0.098'), new Decimal('0.1'), step, 'hold')).toBeNull();
    expect(closeProposal(new Decimal('0.098'), new Decimal('0.1'), step, 'adopt')).toBeNull();
    for (const p of HEAL_POLICIES) expect(fmt(closeProposal(new Decimal('1.2'), new Decimal('1.0'), step, p)!.qty)).toBe('0.2');
  });
});

// ---- decideReconcile over generated inputs -------------------------------------------------------

const garbage = fc.constantFrom('abc', '', '1,5', 'NaN', '--1', '1e', ' ', 'Infinity');
const sideArb = fc.option(fc.constantFrom('LONG', 'SHORT', 'FLAT', 'BUY', 'SELL', 'long', 'sideways'), { nil: undefined });

const snapshotArb = (step: Decimal): fc.Arbitrary<RawHash | null> =>
  fc.option(
    fc.record({
      amt: fc.oneof({ weight: 8, arbitrary: amountOn(step).map(fmt) }, { weight: 1, arbitrary: garbage }),
      side: fc.oneof({ weight: 3, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: sideArb }),
      ageMs: fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 0, max: 5_000 }) }, { weight: 1, arbitrary: fc.integer({ min: -10_000, max: 30_000 }) }),
      tsGarbage: fc.integer({ min: 0, max: 19 }).map((n) => n === 0),
      stepKnown: fc.oneof({ weight: 9, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
    }).map((r) => {
      const h: RawHash = { position_amt: r.amt, ts_ms: r.tsGarbage ? 'soon' : String(NOW - r.ageMs) };
      if (r.side !== undefined) h.side = r.side;
      if (r.stepKnown) h.step_size = fmt(step);
      return h;
    }),
    { nil: null, freq: 12 },
  );

const ledgerArb = (step: Decimal): fc.Arbitrary<RawHash | null> =>
  fc.option(
    fc.record({
      amt: fc.oneof({ weight: 8, arbitrary: amountOn(step).map(fmt) }, { weight: 1, arbitrary: garbage }),
      side: fc.oneof({ weight: 3, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: sideArb }),
      ageSec: fc.integer({ min: 0, max: 900 }),
    }).map((r) => {
      const h: RawHash = { ledger_amt: r.amt, ts_epoch: String((NOW - r.ageSec * 1000) / 1000), version: '3' };
      if (r.side !== undefined) h.ledger_side = r.side;
      return h;
    }),
    { nil: null, freq: 12 },
  );

const fillsArb = (step: Decimal): fc.Arbitrary<Fill[]> =>
  fc.array(
    fc.record({ q: amountOn(step), ago: fc.integer({ min: 0, max: 400_000 }), decision: fc.constantFrom('EXECUTE', 'EXECUTE', 'RECONCILE_CLOSE', 'FLATTEN'), id: fc.integer({ min: 1, max: 9999 }) }).filter((r) => !r.q.isZero()).map((r) => ({ planId: `p${r.id}`, orderId: `o${r.id}`, decision: r.decision, signedQty: r.q, tsMs: NOW - r.ago, entryId: `${NOW - r.ago}-0` })),
    { maxLength: 4 },
  );

const holdArb = fc.oneof(
  { weight: 4, arbitrary: fc.constant({ exists: false, reason: null, sig: null }) },
  { weight: 2, arbitrary: fc.record({ exists: fc.constant(true), reason: fc.constantFrom('side_mismatch', 'qty_mismatch_no_evidence', 'stale_exchange'), sig: fc.constantFrom('a1b2c3d4e5f6', '000000000000') }) },
  { weight: 2, arbitrary: fc.record({ exists: fc.constant(true), reason: fc.constantFrom(null, 'investigating'), sig: fc.constant(null) }) },
);

const configArb: fc.Arbitrary<ReconcileConfig> = fc.record({
  freshnessSec: fc.constantFrom(10, 5, 30),
  driftTolerancePct: fc.constantFrom('1.0', '0', '5'),
  evidenceWindowSec: fc.constantFrom(300, 60),
  graceMs: fc.constantFrom(3000, 0, 500),
  tolerance: fc.constantFrom({ defaultAbs: null, perSymbol: {} }, { defaultAbs: '0', perSymbol: {} }),
  closeEnabled: fc.boolean(),
  healPolicy: policyArb,
});

const inputArb: fc.Arbitrary<{ input: ReconcileInput; step: Decimal; snapRaw: RawHash | null; ledRaw: RawHash | null }> = stepArb.chain((step) =>
  fc
    .record({
      snapRaw: snapshotArb(step),
      ledRaw: ledgerArb(step),
      fills: fillsArb(step),
      inflight: fc.dictionary(fc.constantFrom('p3-a', 'p3-b'), fc.oneof(fc.integer({ min: 0, max: 600_000 }).map((a) => String(NOW - a)), garbage), { maxKeys: 2 }),
      lastFill: fc.option(fc.integer({ min: 0, max: 20_000 }).map((a) => NOW - a), { nil: null }),
      hold: holdArb,
      halted: fc.boolean(),
      config: configArb,
    })
    .map((r) => ({
      step,
      snapRaw: r.snapRaw,
      ledRaw: r.ledRaw,
      input: {
        symbol: SYM,
        snapshot: readSnapshot(r.snapRaw),
        ledger: readLedger(r.ledRaw, {}),
        fills: r.fills,
        inflight: r.inflight,
        lastFillTsMs: r.lastFill,
        hold: r.hold,
        tradingHalted: r.halted,
        config: r.config,
        nowMs: NOW,
      },
    })),
);

describe('decideReconcile over generated inputs', () => {
  it('fail closed; closes only for drift holds, within |ex|, opposite side; operator holds untouched; MANUAL_REQUIRED iff a person must act', () => {
    fc.assert(
      fc.property(inputArb, ({ input, step }) => {
        const o = decideReconcile(input);
        const snap = input.snapshot.kind === 'ok' ? input.snapshot.snapshot : null;
        const fresh = snap !== null && NOW - snap.tsMs <= input.config.freshnessSec * 1000 && snap.tsMs <= NOW + SNAPSHOT_FUTURE_SKEW_MS;
        const operatorHold = input.hold.exists && input.hold.sig === null;
        // missing, stale, future-dated or unparseable data is never OK, a repair or a close
        if (!fresh || input.ledger.kind === 'invalid') {
          expect(['OK', 'REPAIRED']).not.toContain(o.status);
          expect(o.close).toBeNull();
          if (!fresh) expect(o.ledger).toBeNull();
          if (input.ledger.kind === 'invalid') expect(o.ledger).toBeNull();
        }
        // an operator hold is never set, renewed or cleared, and no close or adoption happens under it
        if (operatorHold) {
          expect(o.hold.kind).toBe('keep');
          expect(o.close).toBeNull();
          expect(o.ledger?.kind).not.toBe('adopt');
        }
        if (o.close) {
          expect(snap).not.toBeNull();
          expect(fresh).toBe(true);
          expect(input.config.closeEnabled && !input.tradingHalted && !operatorHold).toBe(true);
          expect(DRIFT_HOLD_REASONS.has(o.reason)).toBe(true);
          expect(o.status).toBe('HOLD');
          expect(o.hold.kind).toBe('set');
          expect(o.close.qty.gt(0) && o.close.qty.lte(snap!.amount.abs())).toBe(true);
          expect(o.close.qty.mod(step).isZero()).toBe(true);
          expect(o.close.side).toBe(snap!.amount.isNeg() ? 'BUY' : 'SELL');
          // never computed from a snapshot older than the symbol's newest fill, nor while an order is in flight
          const newest = Math.max(input.lastFillTsMs ?? -1, ...input.fills.map((f) => f.tsMs));
          expect(snap!.tsMs).toBeGreaterThan(newest);
        }
        if (o.ledger?.kind === 'adopt') {
          expect(input.config.healPolicy).toBe('adopt');
          expect(classifyDrift(o.exchangeAmt!, o.ledgerAmt!)).toBe('shortfall');
        }
        expect(o.status === 'MANUAL_REQUIRED').toBe(o.manualRequired);
        if (o.manualRequired) expect(DRIFT_HOLD_REASONS.has(o.reason)).toBe(true);
        // a drift hold is MANUAL_REQUIRED exactly when a person must act: no automatic close will come
        if (DRIFT_HOLD_REASONS.has(o.reason) && (o.status === 'HOLD' || o.status === 'MANUAL_REQUIRED')) {
          const proposal = closeProposal(o.exchangeAmt!, o.ledgerAmt!, snap!.stepSize, input.config.healPolicy);
          const mustAct = operatorHold || input.tradingHalted === true || !input.config.closeEnabled || proposal === null;
          expect(o.manualRequired).toBe(mustAct);
          if (!mustAct) expect(o.close).not.toBeNull();
        }
        if (input.tradingHalted && o.status === 'HOLD') expect(DRIFT_HOLD_REASONS.has(o.reason)).toBe(false);
      }),
      params(3000),
    );
  });

  it('the engine and the position brain agree on "in drift" for the same snapshot, ledger and tolerance', () => {
    const plan = PlanSchema.parse({ plan_id: 'p1', symbol: SYM, decision: 'EXECUTE', action: 'FULL_CLOSE', source: 'exit_brain', ts_ms: NOW });
    fc.assert(
      fc.property(inputArb, ({ input }) => {
        if (input.snapshot.kind !== 'ok' || input.ledger.kind !== 'ok') return;
        const calm: ReconcileInput = { ...input, fills: [], inflight: {}, lastFillTsMs: null, hold: { exists: false, reason: null, sig: null }, tradingHalted: false };
        const snap = input.snapshot.snapshot;
        const fresh = NOW - snap.tsMs <= input.config.freshnessSec * 1000 && snap.tsMs <= NOW + SNAPSHOT_FUTURE_SKEW_MS;
        if (!fresh || (input.ledger.ledger.tsEpoch !== null && snap.tsMs <= input.ledger.ledger.tsEpoch * 1000)) return;
        const engineInDrift = decideReconcile(calm).reason !== 'in_sync';
        const tol = toleranceFor(input.config.tolerance, SYM, snap.stepSize);
        const brain = decideP33({ plan, nowMs: NOW, holdActive: false, snapshot: input.snapshot, ledger: input.ledger, tolerance: tol, freshnessSec: input.config.freshnessSec, allowlist: [SYM] });
        expect(brain.reason === 'reconcile_required_qty_mismatch').toBe(engineInDrift);
        expect(compareAmounts(snap.amount, input.ledger.ledger.amount, tol).match).toBe(!engineInDrift);
      }),
      params(2000),
    );
  });

  it('the heal policy never changes anything outside an unreachable drift: excess and in-sync symbols decide alike under every policy', () => {
    fc.assert(
      fc.property(inputArb, ({ input }) => {
        const outs = (['flatten', 'hold', 'adopt'] as HealPolicy[]).map((healPolicy) => decideReconcile({ ...input, config: { ...input.config, healPolicy } }));
        const ex = outs[0]!.exchangeAmt;
        const led = outs[0]!.ledgerAmt;
        if (ex === null || led === null) return;
        const shape = classifyDrift(ex, led);
        if (shape !== 'excess' && shape !== 'none') return;
        const view = (o: (typeof outs)[number]) => ({ status: o.status, reason: o.reason, close: o.close ? `${o.close.side} ${fmt(o.close.qty)}` : null, ledger: o.ledger ? fmt(o.ledger.amount) : null });
        expect(view(outs[1]!)).toEqual(view(outs[0]!));
        expect(view(outs[2]!)).toEqual(view(outs[0]!));
      }),
      params(1500),
    );
  });
});
