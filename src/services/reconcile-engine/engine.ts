/**
 * The reconcile engine's loops (docs/architecture.md#reconcile-policy): reacts to snapshot notifications within milliseconds and
 * sweeps every allowlisted symbol every `P34_LOOP_CADENCE_SEC`.
 *
 * Guarantees:
 * - One pass = one MULTI read of every input of its symbols plus the last 50 results, the pure decision
 *   (`decideReconcile`), then per symbol: the ledger write (`writeLedger`, compare-and-set), the state/hold
 *   script (`reconcileApply-11.lua`, compare-and-set on snapshot and ledger fingerprints) and, for a drift
 *   hold, the close script (`closePublish-5.lua`, hold_sig check + SET NX cooldown + XADD).
 * - Several engines may run at once: every write is conditional on the inputs it was decided from, and
 *   events come from the scripts only when something changed, so results stay correct and each change
 *   produces one event (whichever engine applies it first). A decision whose inputs changed is re-read and
 *   decided again (at most {@link MAX_RETRIES} times in the pass; the next sweep catches the rest).
 * - A failing symbol (corrupt hash, script error) never stops the others; Redis down: the pass fails,
 *   /readyz turns not-ready, the loop backs off and resumes when Redis answers.
 * - The engine never sends an order (docs/architecture.md#reconcile-policy): a close is a signed plan on a stream.
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { STREAMS } from '../../adapters/redis/keys.js';
import { writeLedger } from '../../adapters/redis/ledger.js';
import { fieldsToObject } from '../../adapters/redis/consumer.js';
import { fmt, type Decimal } from '../../domain/decimal.js';
import { ledgerFingerprint, readLedger, readSnapshot, sideOf, type LedgerRead, type SnapshotRead } from '../../domain/position.js';
import { decideReconcile, type HoldView, type ReconcileOutcome } from '../../domain/reconcile.js';
import { episodeSignature, fillsForSymbol } from '../../domain/reconcile-evidence.js';
import { readTradingState } from '../../domain/governor.js';
import { buildClosePlan } from '../../domain/reconcile-close.js';
import { signPlan } from '../../domain/plan.js';
import { sleep } from '../../lib/sleep.js';
import type { ReconcileEngineConfig } from './config.js';
import type { ReconcileMetrics } from './metrics.js';
import type { VenueView } from '../../domain/attribution.js';
import { readVenue, venueCloseEventName, venueEvidenceFields, VenueRollbackWatch } from './venue.js';
import { applyDecision, publishClose, readPass, snapshotFingerprint, writtenLedgerFingerprint, type ResultEntry, type SymbolReads } from './store.js';
import { EVENT } from '../../domain/events.js';

/** Re-reads of one symbol within a pass after a compare-and-set conflict. */
export const MAX_RETRIES = 3;

/** What happened to one symbol in one pass (returned for tests and logs). */
export interface SymbolPassResult {
  symbol: string;
  outcome: ReconcileOutcome | null;
  /** 'applied', 'conflict' (inputs changed, retried later) or 'error'. */
  result: 'applied' | 'conflict' | 'error';
  transitioned: boolean;
  hold: string;
  closePublished: boolean;
  error?: string;
}

const dstr = (d: Decimal | null): string => (d === null ? '' : fmt(d));

/** The engine (one instance). */
export class ReconcileEngine {
  private stopped = true;
  private readonly abort = new AbortController();
  private readonly pending = new Set<string>();
  private wake: (() => void) | null = null;
  private loopDone: Promise<void> | null = null;
  private notifyDone: Promise<void> | null = null;
  private blocking: Redis | null = null;
  private redisOk = false;
  private lastPassOkMs = 0;
  private downLogged = false;
  private readonly venueRollback = new VenueRollbackWatch();

  constructor(
    private readonly redis: Redis,
    private readonly cfg: ReconcileEngineConfig,
    private readonly logger: Logger,
    private readonly metrics: ReconcileMetrics,
    private readonly instanceId: string,
  ) {}

  /** Starts the sweep loop and the snapshot-notification reader. */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.blocking = this.redis.duplicate();
    this.blocking.on('error', () => undefined);
    this.loopDone = this.loop();
    this.notifyDone = this.notifyLoop();
  }

  /** Stops both loops (the pass in hand finishes) and closes the blocking connection. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.abort.abort();
    this.wake?.();
    this.blocking?.disconnect();
    await Promise.allSettled([this.loopDone, this.notifyDone]);
  }

  /** `/readyz` checks: Redis answered the last pass, and a pass completed recently. */
  readiness(): Record<string, boolean> {
    const staleAfter = Math.max(3 * this.cfg.cadenceSec * 1000, 5000);
    return { redis: this.redisOk, loop: !this.stopped && Date.now() - this.lastPassOkMs <= staleAfter };
  }

  /** Queues symbols for a pass as soon as possible (used by the notification reader). */
  trigger(symbols: string[]): void {
    for (const s of symbols) this.pending.add(s);
    this.wake?.();
  }

  private async loop(): Promise<void> {
    const cadenceMs = this.cfg.cadenceSec * 1000;
    let nextSweep = 0;
    while (!this.stopped) {
      const now = Date.now();
      let symbols: string[];
      let trigger: 'sweep' | 'snapshot';
      if (now >= nextSweep) {
        symbols = this.cfg.allowlist;
        trigger = 'sweep';
        nextSweep = now + cadenceMs;
        this.pending.clear();
      } else if (this.pending.size > 0) {
        symbols = [...this.pending];
        trigger = 'snapshot';
        this.pending.clear();
      } else {
        await new Promise<void>((resolve) => {
          const done = () => {
            clearTimeout(t);
            this.wake = null;
            resolve();
          };
          const t = setTimeout(done, nextSweep - now);
          this.wake = done;
        });
        continue;
      }
      try {
        await this.pass(symbols);
        if (!this.redisOk && this.downLogged) this.logger.info('redis reachable again; reconcile passes resumed');
        this.redisOk = true;
        this.downLogged = false;
        this.lastPassOkMs = Date.now();
      } catch (err) {
        this.redisOk = false;
        this.metrics.passErrorsTotal.inc({ trigger });
        if (!this.downLogged) this.logger.error({ err: (err as Error).message, trigger }, 'reconcile pass failed; retrying every cadence');
        this.downLogged = true;
        await sleep(Math.min(cadenceMs, 1000), this.abort.signal);
      }
    }
  }

  /** Blocks on the snapshot notification stream (plain XREAD from `$`: every engine sees every entry). */
  private async notifyLoop(): Promise<void> {
    const allow = new Set(this.cfg.allowlist);
    let lastId = '$';
    let lastFillId = '$';
    while (!this.stopped && this.blocking) {
      try {
        // new snapshots, and new fills in the venue journal (a foreign fill is held at once)
        const res = (await this.blocking.xread('COUNT', 100, 'BLOCK', 1000, 'STREAMS', STREAMS.positionSnapshot, STREAMS.exchangeFills, lastId, lastFillId)) as Array<[string, Array<[string, string[]]>]> | null;
        if (!res) continue;
        const syms: string[] = [];
        for (const [stream, entries] of res) {
          for (const [id, f] of entries) {
            if (stream === STREAMS.exchangeFills) lastFillId = id;
            else lastId = id;
            const sym = (fieldsToObject(f).symbol ?? '').toUpperCase();
            if (allow.has(sym)) syms.push(sym);
          }
        }
        if (syms.length > 0) this.trigger(syms);
      } catch {
        if (this.stopped) return;
        await sleep(500, this.abort.signal);
      }
    }
  }

  /**
   * One pass over `symbols`: one MULTI read, then each symbol decided and applied independently.
   * @throws when the read fails (Redis down); per-symbol failures are reported in the results instead
   */
  async pass(symbols: string[]): Promise<SymbolPassResult[]> {
    if (symbols.length === 0) return [];
    const reads = await readPass(this.redis, symbols, this.cfg.decision.evidenceWindowSec);
    const venue = await this.readVenue(symbols);
    const nowMs = Date.now();
    const out = await Promise.all(reads.symbols.map((r) => this.reconcileSymbol(r, reads.results, reads.globalTradingStateRaw, nowMs, venue?.get(r.symbol))));
    const retry = out.filter((r) => r.result === 'conflict').map((r) => r.symbol);
    for (let i = 0; i < MAX_RETRIES && retry.length > 0; i++) {
      const again = await readPass(this.redis, retry, this.cfg.decision.evidenceWindowSec);
      const venue2 = await this.readVenue(retry);
      const now2 = Date.now();
      const res2 = await Promise.all(again.symbols.map((r) => this.reconcileSymbol(r, again.results, again.globalTradingStateRaw, now2, venue2?.get(r.symbol))));
      retry.length = 0;
      for (const r of res2) {
        out[out.findIndex((o) => o.symbol === r.symbol)] = r;
        if (r.result === 'conflict') retry.push(r.symbol);
      }
    }
    return out;
  }

  /** The venue journal's view of `symbols` (null when `P34_VENUE_EVIDENCE=false`). @throws when Redis fails */
  private async readVenue(symbols: string[]): Promise<Map<string, VenueView> | null> {
    if (!this.cfg.decision.venue) return null;
    const { views, invalid } = await readVenue(this.redis, symbols);
    if (invalid > 0) this.logger.warn({ invalid }, `venue journal: ${invalid} unparseable entr${invalid === 1 ? 'y' : 'ies'} skipped (never evidence)`);
    const now = Date.now();
    for (const [sym, v] of views) views.set(sym, this.venueRollback.apply(sym, v, now));
    return views;
  }

  private async reconcileSymbol(r: SymbolReads, results: ResultEntry[], globalState: Record<string, string> | null, nowMs: number, venue?: VenueView): Promise<SymbolPassResult> {
    const symbol = r.symbol;
    try {
      return await this.reconcileSymbolUnsafe(r, results, globalState, nowMs, venue);
    } catch (err) {
      this.logger.error({ symbol, err: (err as Error).message }, 'reconcile of symbol failed');
      return { symbol, outcome: null, result: 'error', transitioned: false, hold: 'none', closePublished: false, error: (err as Error).message };
    }
  }

  private async reconcileSymbolUnsafe(r: SymbolReads, results: ResultEntry[], globalState: Record<string, string> | null, nowMs: number, venue?: VenueView): Promise<SymbolPassResult> {
    const { symbol } = r;
    // the kill switch: HALTED globally or for the symbol, or an unreadable state (fail closed)
    const halted = [globalState, r.tradingStateRaw].some((raw) => {
      if (raw === null) return true;
      const st = readTradingState(raw);
      return st.state === 'HALTED' || st.state === 'INVALID';
    });
    const snapshot: SnapshotRead = r.snapshotError ? { kind: 'invalid', error: `unreadable:${r.snapshotError}` } : readSnapshot(r.snapshotRaw);
    const ledger: LedgerRead = r.ledgerError ? { kind: 'invalid', error: `unreadable:${r.ledgerError}` } : readLedger(r.ledgerRaw, r.legacyRaw);
    const hold: HoldView = r.holdError ? { exists: true, reason: null, sig: null } : { exists: r.hold !== null, reason: r.holdReason, sig: r.holdSig };
    const outcome = decideReconcile({ symbol, snapshot, ledger, fills: fillsForSymbol(results, symbol), inflight: r.inflight, lastFillTsMs: r.lastFillTsMs, hold, tradingHalted: halted, config: this.cfg.decision, nowMs, ...(venue ? { venue } : {}) });

    const snapshotFp = r.snapshotError ? 'WRONGTYPE' : snapshotFingerprint(r.snapshotRaw);
    let ledgerFp = r.ledgerError ? 'WRONGTYPE' : ledgerFingerprint(r.ledgerRaw, r.legacyRaw);
    const eventBase = {
      symbol,
      exchange_amt: dstr(outcome.exchangeAmt),
      ledger_amt: dstr(outcome.ledgerAmt),
      diff_amt: dstr(outcome.diff),
      diff_pct: outcome.diffPct === null ? '' : fmt(outcome.diffPct.toDecimalPlaces(4)),
      ts_ms: String(nowMs),
      instance: this.instanceId,
    };

    if (outcome.ledger) {
      const l = outcome.ledger;
      const old = ledger.kind === 'ok' ? fmt(ledger.ledger.amount) : '';
      const event: Record<string, string> =
        l.kind === 'init'
          ? { event: EVENT.LEDGER_INIT, symbol, reason: 'ledger_init', ledger_amt: fmt(l.amount), exchange_amt: eventBase.exchange_amt, source: 'init', ts_ms: String(nowMs), instance: this.instanceId }
          : l.kind === 'adopt'
          ? { event: EVENT.LEDGER_ADOPTED, symbol, reason: outcome.reason, old_ledger_amt: old, new_ledger_amt: fmt(l.amount), exchange_amt: eventBase.exchange_amt, policy: 'adopt', detail: outcome.detail, source: l.source, ts_ms: String(nowMs), instance: this.instanceId }
          : l.kind === 'venue'
          ? { event: venueCloseEventName(l.venueFills ?? []), symbol, reason: outcome.reason, old_ledger_amt: old, new_ledger_amt: fmt(l.amount), exchange_amt: eventBase.exchange_amt, policy: 'adopt', ...venueEvidenceFields(l.venueFills ?? []), detail: outcome.detail, source: l.source, ts_ms: String(nowMs), instance: this.instanceId }
          : l.venueFills && l.venueFills.length > 0
          ? { event: EVENT.AUTO_REPAIR, symbol, reason: outcome.reason, old_ledger_amt: old, new_ledger_amt: fmt(l.amount), exchange_amt: eventBase.exchange_amt, evidence_plan_id: '', ...venueEvidenceFields(l.venueFills), detail: outcome.detail, source: 'p34_auto', ts_ms: String(nowMs), instance: this.instanceId }
          : {
              event: EVENT.AUTO_REPAIR,
              symbol,
              reason: outcome.reason,
              old_ledger_amt: old,
              new_ledger_amt: fmt(l.amount),
              exchange_amt: eventBase.exchange_amt,
              evidence_plan_id: l.evidence.map((f) => f.planId).join(','),
              evidence_order_id: l.evidence.map((f) => f.orderId).join(','),
              evidence_count: String(l.evidence.length),
              source: 'p34_auto',
              ts_ms: String(nowMs),
              instance: this.instanceId,
            };
      const version = await writeLedger(this.redis, { symbol, expectedFingerprint: ledgerFp, amount: l.amount, source: l.source, event, nowMs });
      if (version === null) return { symbol, outcome, result: 'conflict', transitioned: false, hold: 'none', closePublished: false };
      ledgerFp = writtenLedgerFingerprint(version, fmt(l.amount), sideOf(l.amount));
      if (l.kind === 'venue') {
        const kind = event.event!;
        this.metrics.venueCloseTotal.inc({ symbol, kind });
        this.metrics.lastFixAgeSec.set({ symbol }, 0);
        this.logger.error({ symbol, event: kind, old_ledger_amt: old, new_ledger_amt: fmt(l.amount), evidence_order_id: event.evidence_order_id, evidence_trade_id: event.evidence_trade_id, ledger_version: version }, `P3.4 ${kind} ${symbol}: the exchange closed ${event.evidence_order_id}; ledger ${old} -> ${fmt(l.amount)} (P34_VENUE_CLOSE_POLICY=adopt, no order sent)`);
      } else if (l.kind === 'adopt') {
        this.metrics.adoptedTotal.inc({ symbol });
        this.metrics.lastFixAgeSec.set({ symbol }, 0);
        this.logger.warn({ symbol, old_ledger_amt: old, new_ledger_amt: fmt(l.amount), ledger_version: version }, `P3.4 LEDGER_ADOPTED ${symbol} ledger ${old} -> ${fmt(l.amount)} (P34_HEAL_POLICY=adopt, no evidence)`);
      } else if (l.kind === 'repair') {
        this.metrics.autoRepairTotal.inc({ symbol });
        this.metrics.lastFixAgeSec.set({ symbol }, 0);
        this.logger.warn({ symbol, reason: outcome.reason, old_ledger_amt: old, new_ledger_amt: fmt(l.amount), evidence_order_id: event.evidence_order_id ?? '', ledger_version: version }, `P3.4 AUTO_REPAIR ${symbol} ledger ${old} -> ${fmt(l.amount)} (${outcome.reason})`);
      } else {
        this.logger.info({ symbol, ledger_amt: fmt(l.amount), ledger_version: version }, `P3.4 LEDGER_INIT ${symbol} ledger := ${fmt(l.amount)}`);
      }
    }

    const state: Record<string, string> = {
      exchange_amt: eventBase.exchange_amt,
      ledger_amt: eventBase.ledger_amt,
      diff_amt: eventBase.diff_amt,
      diff_pct: eventBase.diff_pct,
      tolerance: dstr(outcome.tolerance),
      last_seen_ts: String(Math.floor(nowMs / 1000)),
      last_seen_ts_ms: String(nowMs),
      snapshot_ts_ms: outcome.snapshotTsMs === null ? '' : String(outcome.snapshotTsMs),
      detail: outcome.detail,
      instance: this.instanceId,
    };
    const holdAction = outcome.hold.kind;
    const reply = await applyDecision(this.redis, {
      symbol,
      snapshotFp,
      ledgerFp,
      status: outcome.status,
      reason: outcome.reason,
      holdAction,
      driftSig: outcome.driftSig,
      newHoldSig: outcome.driftSig ? episodeSignature(outcome.driftSig, nowMs) : '',
      readHoldSig: r.holdError ? null : r.holdSig,
      readLastFill: r.lastFillRaw,
      readInflight: Object.keys(r.inflight),
      holdTtlSec: this.cfg.holdTtlSec,
      state,
      eventBase,
      nowMs,
      manualRequired: outcome.manualRequired,
    });
    if (!reply.applied) return { symbol, outcome, result: 'conflict', transitioned: false, hold: 'stale', closePublished: false };

    const holdStands = ['set', 'renewed', 'kept', 'operator'].includes(reply.hold);
    this.metrics.holdActive.set({ symbol }, holdStands ? 1 : 0);
    this.metrics.manualRequired.set({ symbol }, outcome.status === 'MANUAL_REQUIRED' ? 1 : 0);
    this.metrics.diffAmt.set({ symbol }, outcome.diff === null ? 0 : outcome.diff.toNumber());
    if (r.lastFixTsMs !== null && !outcome.ledger) this.metrics.lastFixAgeSec.set({ symbol }, Math.max(0, Math.floor((nowMs - r.lastFixTsMs) / 1000)));
    if (reply.transitioned) {
      const episode = (outcome.status === 'HOLD' || outcome.status === 'MANUAL_REQUIRED') && outcome.reason !== 'operator_hold';
      if (episode) this.metrics.driftTotal.inc({ symbol, reason: outcome.reason });
      if (outcome.reason === 'venue_close') for (const f of outcome.detail.match(/\((liquidation|adl|settlement)\)/g) ?? []) this.metrics.venueCloseTotal.inc({ symbol, kind: f === '(adl)' ? 'ADL' : f === '(settlement)' ? 'SETTLEMENT' : 'LIQUIDATION' });
      const line = `P3.4 ${outcome.status} ${symbol} reason=${outcome.reason} exchange=${eventBase.exchange_amt || '-'} ledger=${eventBase.ledger_amt || '-'} diff=${eventBase.diff_amt || '-'} hold=${reply.hold}${outcome.manualRequired ? ' MANUAL_REQUIRED' : ''}${outcome.detail ? ` detail="${outcome.detail}"` : ''}`;
      const fields = { ...eventBase, status: outcome.status, reason: outcome.reason, hold: reply.hold, drift_sig: outcome.driftSig, hold_sig: reply.holdSig };
      if (outcome.status === 'OK' || outcome.status === 'REPAIRED') this.logger.info(fields, line);
      else this.logger.warn(fields, line);
    }

    let closePublished = false;
    if (outcome.close && (reply.hold === 'set' || reply.hold === 'renewed') && reply.holdSig && this.cfg.closeKey) {
      closePublished = await this.publishClose(outcome, reply.holdSig, nowMs);
    }
    return { symbol, outcome, result: 'applied', transitioned: reply.transitioned, hold: reply.hold, closePublished };
  }

  /** Publishes the close of `outcome` for the engine hold whose episode signature is `holdSig`. */
  private async publishClose(outcome: ReconcileOutcome, holdSig: string, nowMs: number): Promise<boolean> {
    const close = outcome.close;
    if (!close || !this.cfg.closeKey) return false;
    const symbol = outcome.symbol;
    const { plan, bucket } = buildClosePlan(symbol, close, holdSig, nowMs, this.cfg.closeCooldownSec, outcome.exchangeAmt ?? undefined);
    const signed = signPlan(plan, this.cfg.closeKey);
    const res = await publishClose(this.redis, {
      symbol,
      driftSig: holdSig,
      bucket,
      cooldownSec: this.cfg.closeCooldownSec,
      plan: signed.plan,
      mac: signed.mac,
      event: {
        symbol,
        reason: outcome.reason,
        plan_id: plan.plan_id,
        drift_sig: holdSig,
        side: close.side,
        qty: fmt(close.qty),
        target: close.target,
        exchange_amt: dstr(outcome.exchangeAmt),
        ledger_amt: dstr(outcome.ledgerAmt),
        ts_ms: String(nowMs),
        instance: this.instanceId,
      },
    });
    if (res !== 'published') return false;
    this.metrics.closePublishedTotal.inc({ symbol });
    this.logger.warn(
      { symbol, plan_id: plan.plan_id, side: close.side, qty: fmt(close.qty), drift_sig: holdSig, reason: outcome.reason },
      `[RECONCILE_CLOSE] published ${symbol} ${close.side} ${fmt(close.qty)} reduceOnly plan_id=${plan.plan_id} drift_sig=${holdSig}`,
    );
    return true;
  }
}
