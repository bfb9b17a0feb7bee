/**
 * A model of one symbol's self-healing loop for model-based tests: a simulated exchange and
 * Redis state, driven by the REAL pure functions (`decideReconcile`, `episodeSignature`, `buildClosePlan`,
 * `checkCloseHold`, `checkClosePosition`), with the Lua scripts' rules re-stated in a few lines each
 * (reconcileApply's episode signatures, closePublish's cooldown SET NX, applyBegin's one-close marker,
 * the apply layer's dedupe). Sequential: one step at a time, as Redis runs scripts.
 */
import { Decimal, fmt, roundDownToStep } from '../../src/domain/decimal.js';
import { readLedger, readSnapshot, type RawHash } from '../../src/domain/position.js';
import { decideReconcile, type ReconcileConfig } from '../../src/domain/reconcile.js';
import { episodeSignature } from '../../src/domain/reconcile-evidence.js';
import { buildClosePlan } from '../../src/domain/reconcile-close.js';
import { checkCloseHold, checkClosePosition } from '../../src/domain/close-guardrails.js';
import { classifyDrift, type CloseProposal, type HealPolicy } from '../../src/domain/heal-policy.js';
import type { Fill } from '../../src/domain/result.js';

export const STEP = new Decimal('0.001');
const SYM = 'BTCUSDT';

/** A disturbance or a step of the system. Quantities are in lot steps (integers). */
export type Cmd =
  | { k: 'manual'; lots: number } // a person trades on the exchange (either side, any size)
  | { k: 'ourFill'; lots: number; lostLedger: boolean } // our EXECUTE order fills; its ledger update may be lost
  | { k: 'observe' } // the brain reads the exchange now (the snapshot is written later)
  | { k: 'deliver'; which: number; dup: boolean } // a pending observation is written (any order; may repeat)
  | { k: 'tick'; ms: number }
  | { k: 'pass' } // one engine pass (any engine: they are stateless)
  | { k: 'apply'; which: number; outcome: 'fill' | 'partial' | 'fail' } // an apply layer executes a pending close
  | { k: 'restart' } // an engine restart: nothing in memory survives, nothing in Redis is lost
  | { k: 'operatorHold'; on: boolean }
  | { k: 'undoClose' }; // a person makes the trade our last close made, in reverse (the same drift again)

/** A close plan waiting on the stream. */
interface PendingClose {
  planId: string;
  /** The exchange position the close was sized from (`basis_amt`). */
  basis: Decimal;
  sig: string;
  side: 'BUY' | 'SELL';
  qty: Decimal;
  tsMs: number;
}

/** One order the exchange received from us for a close. */
export interface SentClose {
  planId: string;
  sig: string;
  side: 'BUY' | 'SELL';
  qty: Decimal;
  filled: Decimal;
  exBefore: Decimal;
  ledBefore: Decimal;
  phase: 'disturb' | 'converge';
  outcome: 'fill' | 'partial' | 'fail';
}

/** How the close quantity is computed: the engine's own proposal, or seed 003's `min(|ex − led|, |ex|)`. */
export type CloseFormula = 'current' | 'seed003';

export const MODEL_CONFIG = (healPolicy: HealPolicy): ReconcileConfig => ({
  freshnessSec: 10,
  driftTolerancePct: '1.0',
  evidenceWindowSec: 300,
  graceMs: 3000,
  tolerance: { defaultAbs: null, perSymbol: {} },
  closeEnabled: true,
  healPolicy,
});

/** The simulated world. */
export class Model {
  now = 1_800_000_000_000;
  ex: Decimal;
  ledger: { amt: Decimal; tsMs: number; version: number };
  snapshot: { amt: Decimal; tsMs: number } | null = null;
  observations: Array<{ amt: Decimal; tsMs: number }> = [];
  fills: Fill[] = [];
  lastFillMs: number | null = null;
  hold: { reason: string; sig: string } | null = null;
  holdShape = '';
  operatorHold = false;
  cooldown = new Set<string>();
  markers = new Set<string>();
  dedupe = new Set<string>();
  pending: PendingClose[] = [];
  sent: SentClose[] = [];
  phase: 'disturb' | 'converge' = 'disturb';
  status = '';
  violations: string[] = [];
  private seq = 0;

  constructor(
    start: { exLots: number; ledLots: number },
    readonly policy: HealPolicy,
    readonly formula: CloseFormula = 'current',
  ) {
    this.ex = STEP.mul(start.exLots);
    this.ledger = { amt: STEP.mul(start.ledLots), tsMs: this.now - 60_000, version: 1 };
  }

  run(c: Cmd): void {
    switch (c.k) {
      case 'manual':
        if (c.lots !== 0) this.ex = this.ex.plus(STEP.mul(c.lots));
        return;
      case 'ourFill': {
        if (c.lots === 0) return;
        const q = STEP.mul(c.lots);
        this.ex = this.ex.plus(q);
        this.now += 1;
        this.fills.push({ planId: `x${this.seq}`, orderId: `o${this.seq++}`, decision: 'EXECUTE', signedQty: q, tsMs: this.now, entryId: `${this.now}-0` });
        this.lastFillMs = this.now;
        if (!c.lostLedger) this.ledger = { amt: this.ledger.amt.plus(q), tsMs: this.now, version: this.ledger.version + 1 };
        return;
      }
      case 'observe':
        this.observations.push({ amt: this.ex, tsMs: this.now });
        return;
      case 'deliver': {
        if (this.observations.length === 0) return;
        const i = c.which % this.observations.length;
        const o = this.observations[i]!;
        if (!c.dup) this.observations.splice(i, 1);
        // snapshotWrite: a snapshot never moves back in time
        if (this.snapshot === null || o.tsMs > this.snapshot.tsMs) this.snapshot = { ...o };
        return;
      }
      case 'tick':
        this.now += c.ms;
        return;
      case 'pass':
        this.pass();
        return;
      case 'apply':
        if (this.pending.length > 0) this.apply(this.pending.splice(c.which % this.pending.length, 1)[0]!, c.outcome);
        return;
      case 'restart':
        return;
      case 'undoClose': {
        const last = [...this.sent].reverse().find((x) => x.filled.gt(0));
        if (last) this.ex = last.side === 'BUY' ? this.ex.minus(last.filled) : this.ex.plus(last.filled);
        return;
      }
      case 'operatorHold':
        this.operatorHold = c.on;
        if (c.on) this.hold = null; // SETEX over an engine hold: an operator hold (no hold_sig)
        return;
    }
  }

  /** One engine pass: read, decide (the real decision), apply as reconcileApply + closePublish do. */
  pass(): void {
    const snapRaw: RawHash | null = this.snapshot ? { position_amt: fmt(this.snapshot.amt), ts_ms: String(this.snapshot.tsMs), step_size: fmt(STEP) } : null;
    const ledRaw: RawHash = { ledger_amt: fmt(this.ledger.amt), ts_epoch: String(this.ledger.tsMs / 1000), version: String(this.ledger.version) };
    const holdView = this.operatorHold ? { exists: true, reason: 'operator', sig: null } : this.hold ? { exists: true, reason: this.hold.reason, sig: this.hold.sig } : { exists: false, reason: null, sig: null };
    const o = decideReconcile({ symbol: SYM, snapshot: readSnapshot(snapRaw), ledger: readLedger(ledRaw, {}), fills: [...this.fills].reverse().slice(0, 50), inflight: {}, lastFillTsMs: this.lastFillMs, hold: holdView, tradingHalted: false, config: MODEL_CONFIG(this.policy), nowMs: this.now });
    this.status = o.status;
    if (o.ledger) this.ledger = { amt: o.ledger.amount, tsMs: this.now, version: this.ledger.version + 1 };
    if (this.operatorHold) return;
    if (o.hold.kind === 'clear') {
      this.hold = null;
      this.holdShape = '';
    } else if (o.hold.kind === 'set') {
      // renewed only while the episode's close has not been sent (reconcileApply-11.lua: the marker ends it)
      if (!(this.hold && this.holdShape === o.hold.shape && !this.markers.has(this.hold.sig))) {
        this.hold = { reason: o.hold.reason, sig: episodeSignature(o.hold.shape, this.now + this.seq++) };
        this.holdShape = o.hold.shape;
      }
    }
    if (o.close && this.hold) {
      let close: CloseProposal = o.close;
      if (this.formula === 'seed003') close = { ...close, qty: roundDownToStep(Decimal.min(o.exchangeAmt!.minus(o.ledgerAmt!).abs(), o.exchangeAmt!.abs()), STEP) };
      const { plan, bucket } = buildClosePlan(SYM, close, this.hold.sig, this.now, 120);
      const ck = `${this.hold.sig}:${bucket}`;
      if (!this.cooldown.has(ck)) {
        this.cooldown.add(ck);
        this.pending.push({ planId: plan.plan_id, basis: o.exchangeAmt!, sig: this.hold.sig, side: close.side, qty: close.qty, tsMs: this.now });
      }
    }
  }

  /** The apply layer on one close plan: dedupe, age, hold/hold_sig, fresh position, one-close marker, send. */
  apply(p: PendingClose, outcome: 'fill' | 'partial' | 'fail'): void {
    if (this.dedupe.has(p.planId)) return;
    this.dedupe.add(p.planId);
    if (this.now - p.tsMs > 120_000) return; // stale_plan
    const hold = checkCloseHold({ active: this.hold !== null || this.operatorHold, sig: this.hold?.sig ?? null }, p.sig);
    if (!hold.ok) return;
    if (!this.ex.eq(p.basis)) return; // close_superseded: the position moved since it was sized
    if (!checkClosePosition(p.qty, p.side, this.ex).ok) return;
    if (this.markers.has(p.sig)) return; // a close of this drift was already sent
    this.markers.add(p.sig);
    const filled = outcome === 'fill' ? p.qty : outcome === 'partial' ? roundDownToStep(p.qty.mul('0.4'), STEP) : new Decimal(0);
    const exBefore = this.ex;
    // safety, at the exchange: a reduce-only order never grows or flips the position
    const after = p.side === 'BUY' ? this.ex.plus(filled) : this.ex.minus(filled);
    if (after.abs().gt(this.ex.abs()) || (!after.isZero() && after.isNeg() !== this.ex.isNeg())) this.violations.push(`close ${p.planId} ${p.side} ${fmt(p.qty)} grew or flipped ${fmt(this.ex)}`);
    this.ex = after;
    this.sent.push({ planId: p.planId, sig: p.sig, side: p.side, qty: p.qty, filled, exBefore, ledBefore: this.ledger.amt, phase: this.phase, outcome });
    this.now += 1;
    if (filled.gt(0)) {
      this.fills.push({ planId: p.planId, orderId: `c${this.seq++}`, decision: 'RECONCILE_CLOSE', signedQty: p.side === 'BUY' ? filled : filled.neg(), tsMs: this.now, entryId: `${this.now}-0` });
      this.lastFillMs = this.now;
    }
    if (outcome !== 'fill' || filled.lt(p.qty)) this.markers.delete(p.sig); // released: the next bucket may retry
  }

  /**
   * After the last disturbance: the operator lifts a hold of theirs, then rounds of (a tick, a fresh
   * snapshot, a pass, every pending close executed) until converged or `maxRounds` passed. Ticks are 1 s
   * for the first `fastRounds` rounds, then `slowTickMs` (a failed close is retried by the next cooldown
   * bucket, 120 s).
   * @returns the number of rounds it took, or null when it did not converge
   */
  converge(maxRounds: number, fastRounds = maxRounds, slowTickMs = 20_000): number | null {
    this.phase = 'converge';
    this.operatorHold = false;
    this.observations = [];
    for (let r = 1; r <= maxRounds; r++) {
      this.now += r <= fastRounds ? 1000 : slowTickMs;
      this.snapshot = { amt: this.ex, tsMs: this.now };
      this.now += 5;
      this.pass();
      while (this.pending.length > 0) this.apply(this.pending.shift()!, 'fill');
      if (this.converged()) return r;
    }
    return null;
  }

  /**
   * Exchange = ledger (within one lot step) and no engine hold; or a legitimate MANUAL_REQUIRED: nothing
   * closable (flat exchange), or `hold` policy on a drift no reduce-only close reaches.
   */
  converged(): boolean {
    const match = this.ex.minus(this.ledger.amt).abs().lte(STEP);
    if (match && this.hold === null && !this.operatorHold && this.pending.length === 0) return true;
    if (this.status !== 'MANUAL_REQUIRED' || this.pending.length > 0) return false;
    return this.ex.isZero() || (this.policy === 'hold' && classifyDrift(this.ex, this.ledger.amt) !== 'excess');
  }

  /** True when some close failed or filled partly (its retry waits for the next cooldown bucket). */
  hadFailure(): boolean {
    return this.sent.some((s) => s.outcome !== 'fill');
  }

  /** Closes sent after the last disturbance beyond one, minus the ones a failure or partial fill explains. */
  excessConvergeCloses(): number {
    const conv = this.sent.filter((s) => s.phase === 'converge');
    const retries = conv.filter((s) => s.outcome !== 'fill').length;
    // a close published before the disturbances stopped and executed after them can legitimately be one more
    return Math.max(0, conv.length - 1 - retries);
  }

  /** The heal target of a close at send time, by the amended rule (ledger for an excess, else flat). */
  static target(exBefore: Decimal, ledBefore: Decimal): Decimal {
    return classifyDrift(exBefore, ledBefore) === 'excess' ? ledBefore : new Decimal(0);
  }
}
