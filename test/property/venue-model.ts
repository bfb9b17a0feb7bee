/**
 * A model of one symbol with the venue journal, for model-based tests: a simulated exchange (every fill a
 * trade with an id), a user data stream that may lose or duplicate fill messages, a REST verifier, Redis
 * state that can roll back to an earlier checkpoint, the apply layer recording our fills (now, later, or
 * never), driven by the REAL pure decision (`decideReconcile` with the venue view, `attribute`) and the
 * journal's exactly-once rule re-stated (a trade id is recorded once). Sequential, as Redis runs scripts.
 */
import { Decimal, fmt, roundDownToStep } from '../../src/domain/decimal.js';
import { clientOrderIdFor } from '../../src/domain/apply.js';
import { readLedger, readSnapshot, type RawHash } from '../../src/domain/position.js';
import { decideReconcile, type ReconcileConfig, type ReconcileOutcome } from '../../src/domain/reconcile.js';
import type { Fill } from '../../src/domain/result.js';
import type { VenueFill } from '../../src/domain/venue-fill.js';
import { venueOriginOf, type VenueOrigin } from '../../src/domain/venue-origin.js';

export const STEP = new Decimal('0.001');
const SYM = 'BTCUSDT';

/** A step of the world. Quantities in lot steps. */
export type VCmd =
  | { k: 'ours'; lots: number; record: 'now' | 'later' | 'lost'; stream: 'ok' | 'lost' | 'dup' } // our EXECUTE order fills
  | { k: 'recordPending' } // the apply layer records its oldest pending fill (ledger + result in one step)
  | { k: 'foreign'; lots: number; stream: 'ok' | 'lost' | 'dup' } // a person trades
  | { k: 'venueClose'; kind: 'liquidation' | 'adl' | 'settlement'; lots: number; stream: 'ok' | 'lost' } // the exchange reduces the position
  | { k: 'checkpoint' } // Redis state as a replica has it
  | { k: 'rollback' } // failover to that replica: everything written since is lost (no re-submission)
  | { k: 'verify' } // the brain's REST verifier closes every gap
  | { k: 'observe' } // a fresh snapshot
  | { k: 'tick'; ms: number }
  | { k: 'pass' }
  | { k: 'apply' }; // the apply layer executes the pending closes

/** What Redis holds (everything a rollback can take back). */
interface RedisState {
  ledger: { amt: Decimal; tsMs: number; version: number };
  results: Fill[];
  journal: VenueFill[];
  lastFillMs: number | null;
  hold: { reason: string; shape: string } | null;
  gapSinceMs: number | null;
}

/** A copy of the Redis state (decimals are immutable: copying the containers is enough). */
function cloneState(r: RedisState): RedisState {
  return { ledger: { ...r.ledger }, results: [...r.results], journal: [...r.journal], lastFillMs: r.lastFillMs, hold: r.hold ? { ...r.hold } : null, gapSinceMs: r.gapSinceMs };
}

/** One close the exchange received from us. */
export interface SentClose {
  side: 'BUY' | 'SELL';
  qty: Decimal;
  exBefore: Decimal;
  ledBefore: Decimal;
  /** Whether any foreign fill had happened before this close was published. */
  foreignBefore: boolean;
}

export const VENUE_MODEL_CONFIG = (attribution: boolean): ReconcileConfig => ({
  freshnessSec: 10,
  driftTolerancePct: '1.0',
  evidenceWindowSec: 300,
  graceMs: 3000,
  tolerance: { defaultAbs: null, perSymbol: {} },
  closeEnabled: true,
  healPolicy: 'flatten',
  ...(attribution ? { venue: { closePolicy: 'adopt' as const, gapMaxMs: 15_000, settleMs: 1000 } } : {}),
});

/** The simulated world. */
export class VenueModel {
  now = 1_800_000_000_000;
  ex: Decimal;
  /** Every trade the exchange made (REST's record). */
  trades: VenueFill[] = [];
  r: RedisState;
  saved: RedisState | null = null;
  snapshot: { amt: Decimal; tsMs: number } | null = null;
  /** The apply layer's fills sent and not yet recorded (in flight). */
  pendingRecord: VenueFill[] = [];
  pendingCloses: Array<{ side: 'BUY' | 'SELL'; qty: Decimal; basis: Decimal; foreignBefore: boolean }> = [];
  sent: SentClose[] = [];
  foreignCount = 0;
  /** Passes that saw a journaled foreign fill drift and did not hold. */
  foreignMisses: string[] = [];
  /** Trade ids journaled twice. */
  duplicates: string[] = [];
  last: ReconcileOutcome | null = null;
  private seq = 0;

  constructor(startLots: number, readonly attribution = true) {
    this.ex = STEP.mul(startLots);
    this.r = { ledger: { amt: this.ex, tsMs: this.now - 60_000, version: 1 }, results: [], journal: [], lastFillMs: null, hold: null, gapSinceMs: null };
  }

  private trade(lots: number, clientOrderId: string, orderType: string): VenueFill {
    const q = STEP.mul(Math.abs(lots));
    const side = lots > 0 ? 'BUY' : 'SELL';
    this.now += 1;
    this.ex = side === 'BUY' ? this.ex.plus(q) : this.ex.minus(q);
    const id = String(++this.seq);
    const f: VenueFill = { symbol: SYM, orderId: `9${id}`, clientOrderId, tradeId: id, side, lastQty: q, cumQty: q, price: null, realizedPnl: null, commission: null, commissionAsset: 'USDT', reduceOnly: false, orderType, eventTimeMs: this.now, tradeTimeMs: this.now, localTsMs: this.now, origin: venueOriginOf(clientOrderId, orderType), source: 'stream', planDecision: '' };
    this.trades.push(f);
    return f;
  }

  /** venueFillRecord-4.lua: once per trade id. */
  private journal(f: VenueFill, decision = ''): void {
    if (this.r.journal.some((j) => j.tradeId === f.tradeId)) return;
    this.r.journal.push({ ...f, planDecision: decision });
  }

  private deliver(f: VenueFill, stream: 'ok' | 'lost' | 'dup', decision = ''): void {
    if (stream === 'lost') {
      // the brain notices REST disagreeing with the stream (missed_event) and reconnects: a gap from then
      if (this.r.gapSinceMs === null) this.r.gapSinceMs = this.now + 750;
      return;
    }
    this.journal(f, decision);
    if (stream === 'dup') this.journal(f, decision);
  }

  private record(f: VenueFill, decision: string): void {
    this.now += 1;
    const q = f.side === 'BUY' ? f.lastQty : f.lastQty.neg();
    const planId = `plan-${f.tradeId}`;
    this.r.results.push({ planId, orderId: f.orderId, decision, signedQty: q, tsMs: this.now, entryId: `${this.now}-0` });
    this.r.lastFillMs = this.now;
    if (decision === 'EXECUTE') this.r.ledger = { amt: this.r.ledger.amt.plus(q), tsMs: this.now, version: this.r.ledger.version + 1 };
  }

  run(c: VCmd): void {
    switch (c.k) {
      case 'ours': {
        if (c.lots === 0) return;
        const planId = `plan-${this.seq + 1}`;
        const f = this.trade(c.lots, clientOrderIdFor(planId), 'MARKET');
        this.deliver(f, c.stream, 'EXECUTE');
        if (c.record === 'now') this.record(f, 'EXECUTE');
        else if (c.record === 'later') this.pendingRecord.push(f);
        return;
      }
      case 'recordPending': {
        const f = this.pendingRecord.shift();
        if (f) this.record(f, 'EXECUTE');
        return;
      }
      case 'foreign': {
        if (c.lots === 0) return;
        this.foreignCount++;
        this.deliver(this.trade(c.lots, `web_${this.seq}`, 'MARKET'), c.stream);
        return;
      }
      case 'venueClose': {
        const have = Math.round(this.ex.div(STEP).toNumber());
        const lots = Math.min(Math.abs(have), Math.max(1, c.lots));
        if (have === 0) return;
        const cid = c.kind === 'adl' ? 'adl_autoclose' : c.kind === 'liquidation' ? `autoclose-${this.now}` : `settlement_autoclose-${this.now}`;
        this.deliver(this.trade(have > 0 ? -lots : lots, cid, c.kind === 'settlement' ? 'MARKET' : 'LIQUIDATION'), c.stream);
        return;
      }
      case 'checkpoint':
        // only while nothing of ours is in flight (the apply layer's recovery after a rollback is its own model)
        if (this.pendingRecord.length === 0) this.saved = cloneState(this.r);
        return;
      case 'rollback':
        if (!this.saved || this.pendingRecord.length > 0) return;
        this.r = cloneState(this.saved);
        // the brain finds its cursor behind what it recorded: a gap, REST re-reads
        this.r.gapSinceMs = this.now;
        return;
      case 'verify':
        for (const t of this.trades) this.journal({ ...t, source: 'rest' }, this.decisionOf(t));
        this.r.gapSinceMs = null;
        return;
      case 'observe':
        this.snapshot = { amt: this.ex, tsMs: this.now };
        this.now += 1;
        return;
      case 'tick':
        this.now += c.ms;
        return;
      case 'pass':
        this.pass();
        return;
      case 'apply':
        this.applyCloses();
        return;
    }
  }

  /** Our order record's decision as the verifier's journal write finds it (lost after a rollback: ''). */
  private decisionOf(t: VenueFill): string {
    if (t.origin !== 'ours') return '';
    return this.r.results.find((x) => clientOrderIdFor(x.planId) === t.clientOrderId)?.decision ?? (t.clientOrderId.startsWith('p3-') && this.closeIds.has(t.clientOrderId) ? 'RECONCILE_CLOSE' : '');
  }

  private readonly closeIds = new Set<string>();

  /** One engine pass with the real decision. */
  pass(): void {
    const snapRaw: RawHash | null = this.snapshot ? { position_amt: fmt(this.snapshot.amt), ts_ms: String(this.snapshot.tsMs), step_size: fmt(STEP) } : null;
    const l = this.r.ledger;
    const ledRaw: RawHash = { ledger_amt: fmt(l.amt), ts_epoch: String(l.tsMs / 1000), version: String(l.version) };
    const inflight: Record<string, string> = {};
    for (const f of this.pendingRecord) inflight[f.clientOrderId] = String(f.localTsMs);
    const hold = this.r.hold ? { exists: true, reason: this.r.hold.reason, sig: 'sig' } : { exists: false, reason: null, sig: null };
    const o = decideReconcile({
      symbol: SYM,
      snapshot: readSnapshot(snapRaw),
      ledger: readLedger(ledRaw, {}),
      fills: [...this.r.results].reverse().slice(0, 50),
      inflight,
      lastFillTsMs: this.r.lastFillMs,
      hold,
      tradingHalted: false,
      config: VENUE_MODEL_CONFIG(this.attribution),
      nowMs: this.now,
      ...(this.attribution ? { venue: { fills: this.r.journal, gapSinceMs: this.r.gapSinceMs, gapReason: 'model' } } : {}),
    });
    this.last = o;
    // property: a journaled foreign fill no heal answered, on a snapshot that shows it, is held in this pass
    const shows = this.snapshot !== null && this.snapshot.amt.eq(this.ex) && this.snapshot.tsMs > Math.max(...this.r.journal.map((j) => j.localTsMs), 0);
    const openForeign = this.openForeign();
    // (within the tolerance of one lot, only what a reduce-only close can heal must hold: an excess or a position the ledger lacks)
    const led = this.r.ledger.amt;
    const beyond = this.ex.minus(led).abs().gt(STEP);
    const reachable = !this.ex.isZero() && !(this.ex.isNeg() === led.isNeg() && !led.isZero() && this.ex.abs().lt(led.abs()));
    if (this.attribution && shows && openForeign && !led.eq(this.ex) && (beyond || reachable) && o.status !== 'HOLD' && o.status !== 'MANUAL_REQUIRED' && this.r.gapSinceMs === null) {
      this.foreignMisses.push(`foreign ${openForeign} not held: status ${o.status} ${o.reason} ex ${fmt(this.ex)} ledger ${fmt(l.amt)}`);
    }
    if (o.ledger) this.r.ledger = { amt: o.ledger.amount, tsMs: this.now, version: l.version + 1 };
    if (o.hold.kind === 'clear') this.r.hold = null;
    else if (o.hold.kind === 'set') this.r.hold = { reason: o.hold.reason, shape: o.hold.shape };
    if (o.close && this.r.hold && this.pendingCloses.length === 0) this.pendingCloses.push({ side: o.close.side, qty: o.close.qty, basis: o.exchangeAmt!, foreignBefore: this.foreignCount > 0 });
    this.now += 1;
  }

  /** The newest journaled foreign fill that no later close of ours answered (trade id), or null. */
  private openForeign(): string | null {
    const heals = this.r.journal.filter((j) => j.origin === 'ours' && j.planDecision === 'RECONCILE_CLOSE').map((j) => j.localTsMs);
    const newestHeal = heals.length > 0 ? Math.max(...heals) : -Infinity;
    const f = this.r.journal.filter((j) => j.origin === 'foreign' && j.localTsMs > newestHeal && this.now - j.localTsMs <= 300_000);
    return f.length > 0 ? f[f.length - 1]!.tradeId : null;
  }

  /** The apply layer: each pending close, reduce-only, sized fresh (refused when the position moved). */
  applyCloses(): void {
    for (const p of this.pendingCloses.splice(0)) {
      if (!this.r.hold || !this.ex.eq(p.basis)) continue;
      const qty = roundDownToStep(Decimal.min(p.qty, this.ex.abs()), STEP);
      if (qty.isZero()) continue;
      const exBefore = this.ex;
      const planId = `close-${this.seq + 1}`;
      const cid = clientOrderIdFor(planId);
      this.closeIds.add(cid);
      const f = this.trade(p.side === 'BUY' ? Number(qty.div(STEP)) : -Number(qty.div(STEP)), cid, 'MARKET');
      this.sent.push({ side: p.side, qty, exBefore, ledBefore: this.r.ledger.amt, foreignBefore: p.foreignBefore });
      this.deliver(f, 'ok', 'RECONCILE_CLOSE');
      this.record(f, 'RECONCILE_CLOSE');
    }
  }

  /**
   * Rounds of (REST verify, every pending record, snapshot, pass, closes) until exchange = ledger (within the
   * tolerance) with no hold, or a legitimate MANUAL_REQUIRED. @returns the rounds it took, or null
   */
  converge(maxRounds: number): number | null {
    for (let r = 1; r <= maxRounds; r++) {
      this.now += 1500;
      this.run({ k: 'verify' });
      while (this.pendingRecord.length > 0) this.run({ k: 'recordPending' });
      this.run({ k: 'observe' });
      this.pass();
      this.applyCloses();
      if (this.pendingCloses.length > 0) continue;
      // in sync (the shared tolerance: one lot step), or a legitimate MANUAL_REQUIRED: someone else flattened
      // the position (nothing of ours to close, no evidence of ours: a person decides)
      if (this.r.hold === null && this.ex.minus(this.r.ledger.amt).abs().lte(STEP)) return r;
      if (this.last?.status === 'MANUAL_REQUIRED' && this.ex.isZero() && this.foreignCount > 0) return r;
    }
    return null;
  }

  /** Journal entries per trade id (the exactly-once check). */
  journalDuplicates(): string[] {
    const seen = new Set<string>();
    const dup: string[] = [];
    for (const j of this.r.journal) {
      if (seen.has(j.tradeId)) dup.push(j.tradeId);
      seen.add(j.tradeId);
    }
    return dup;
  }
}

export type { VenueOrigin };
