/**
 * The reconcile decision for one symbol (docs/architecture.md#reconcile-policy) (rules 1-7 as numbered there): pure, no I/O, no clock. The engine
 * (src/services/reconcile-engine) reads Redis, calls {@link decideReconcile} and applies the outcome
 * with atomic scripts.
 *
 * Invariants:
 * - Fail closed: a missing, stale or unparseable snapshot, or an unparseable ledger, is a HOLD; it never
 *   becomes OK, a repair or a close.
 * - Two amounts match by the ONE shared tolerance model (`compareAmounts` + `toleranceFor`), so the
 *   engine and the position brain always agree on "in drift".
 * - Never act (ledger init/repair, close) on a snapshot that is not strictly newer than the newest fill
 *   recorded for the symbol, nor while an order of the apply layer is in flight: report DRIFT and wait.
 * - Long vs short is never auto-repaired, except when the fills in the venue journal explain it exactly
 *   (src/domain/attribution.ts). Flat vs non-flat is repaired only when EXECUTE fills explain it,
 *   or by the heal rule: our own RECONCILE_CLOSE filled, the snapshot is newer than that fill and the
 *   exchange is flat → ledger := flat.
 * - Quantity auto-repair needs evidence: ledger + Σ signed fills must equal the exchange within the
 *   absolute tolerance or `P34_QTY_DRIFT_TOLERANCE_PCT` of residual.
 * - An operator hold (hold without `hold_sig`) is never set, renewed or cleared by the engine, and no
 *   close is proposed under it.
 * - A close is proposed only for a drift hold (`side_mismatch`, `qty_mismatch_no_evidence`) on a fresh
 *   snapshot, by the heal policy of `heal-policy.ts` (excess → `|ex| − |led|`; unreachable drifts by
 *   `P34_HEAL_POLICY`), rounded DOWN to the lot step, side opposite the exchange position, never 0, never
 *   without a known lot step, never under an operator hold or while trading is HALTED (the kill switch).
 * - `adopt` (opt-in) repairs a shortfall without evidence (ledger := exchange, LEDGER_ADOPTED); it is
 *   never applied to long vs short, under an operator hold, or before the grace of a fill has passed.
 * - All quantity arithmetic is exact decimal.
 * - Whenever a person must act (closes disabled, `hold` policy, an operator hold over a drift, nothing
 *   closable, trading HALTED) the status is MANUAL_REQUIRED (the drift reason kept in `reason`) and
 *   `manualRequired` is true; the engine hold still stands (never cleared by the engine while drifting).
 * - The drift signature is two-level: `driftShape` (symbol|reason|amounts) identifies WHAT drifts; the
 *   engine's Lua turns it into an episode signature (`hold_sig`) that stays the same while one engine hold
 *   of that shape stands and is new for every new hold, so the same amounts at another time are another
 *   drift, never waiting out the cooldown or close marker of a healed one.
 */
import { Decimal, fmt, signOf } from './decimal.js';
import type { LedgerRead, SnapshotRead } from './position.js';
import type { Fill } from './result.js';
import { compareAmounts, toleranceFor, type ToleranceSettings } from './tolerance.js';
import { SNAPSHOT_FUTURE_SKEW_MS } from './position.js';
import { activeInflight, driftSignature, newestFillTs, selectEvidence } from './reconcile-evidence.js';
import { adoptsLedger, closeProposal, type CloseProposal, type HealPolicy } from './heal-policy.js';
import { attribute, describeFills, gapHolds, newestVenueFill, type VenueSettings, type VenueView } from './attribution.js';
import type { VenueFill } from './venue-fill.js';

export type { CloseProposal } from './heal-policy.js';

/** Status of a symbol in `quantum:reconcile:state:<SYM>` (seed 001). */
export type ReconcileStatus = 'OK' | 'DRIFT' | 'HOLD' | 'REPAIRED' | 'MANUAL_REQUIRED';

/** Reasons written to `quantum:reconcile:state:<SYM>` field `reason` and to hold_reason. */
export type ReconcileReason =
  | 'in_sync'
  | 'ledger_init'
  | 'auto_fixed'
  | 'ledger_adopted'
  | 'healed_after_close'
  | 'operator_hold'
  | 'in_flight'
  | 'recent_fill'
  | 'snapshot_older_than_fill'
  | 'missing_exchange'
  | 'stale_exchange'
  | 'invalid_exchange'
  | 'invalid_ledger'
  | 'side_mismatch'
  | 'qty_mismatch_no_evidence'
  | 'awaiting_record'
  | 'venue_close'
  | 'venue_close_adopted'
  | 'venue_journal_gap'
  | 'venue_unverified';

/** Hold reasons that describe a real position drift (a close may heal them, docs/architecture.md#heal-target). */
export const DRIFT_HOLD_REASONS: ReadonlySet<string> = new Set(['side_mismatch', 'qty_mismatch_no_evidence']);

/** Engine settings the decision needs (from `P34_*` and tolerance variables). */
export interface ReconcileConfig {
  /** `P34_EXCHANGE_FRESHNESS_SEC`, seconds. */
  freshnessSec: number;
  /** `P34_QTY_DRIFT_TOLERANCE_PCT`, percent as a decimal string (`1.0` = 1 %). */
  driftTolerancePct: string;
  /** `P34_EVIDENCE_WINDOW_SEC`, seconds; also the max age of an in-flight record that grants grace. */
  evidenceWindowSec: number;
  /** `P34_GRACE_MS`, milliseconds after the newest fill during which a drift is only DRIFT. */
  graceMs: number;
  /** Absolute tolerance settings (`P3_QTY_TOLERANCE_ABS[_<SYM>]`). */
  tolerance: ToleranceSettings;
  /** `P34_RECONCILE_CLOSE_ENABLED`. */
  closeEnabled: boolean;
  /** `P34_HEAL_POLICY` (default `flatten`): drifts no reduce-only order can reach (docs/architecture.md#heal-target). */
  healPolicy: HealPolicy;
  /** The venue journal's settings (`P34_VENUE_*`); absent: the journal is not used. */
  venue?: VenueSettings;
}

/** The symbol's hold as read: `hold`, `hold_reason`, `hold_sig`. */
export interface HoldView {
  exists: boolean;
  reason: string | null;
  /** null = no `hold_sig` (an operator's hold when `exists`). */
  sig: string | null;
}

/** Everything one decision looks at. */
export interface ReconcileInput {
  symbol: string;
  snapshot: SnapshotRead;
  ledger: LedgerRead;
  /** The symbol's EXECUTED fills among the last results (`fillsForSymbol`), any order. */
  fills: Fill[];
  /** `quantum:apply:inflight:<SYM>`: client order id → ts_ms. */
  inflight: Record<string, string>;
  /**
   * `quantum:apply:last_fill_ms:<SYM>`: the symbol's newest EXECUTED fill, epoch ms, kept by the apply layer
   * however many results followed it (the last-50 `fills` can miss it); null when none.
   */
  lastFillTsMs?: number | null;
  hold: HoldView;
  /**
   * True when the global or the symbol's trading state is HALTED (or unreadable: fail closed): the kill
   * switch, no close is proposed (docs/architecture.md#risk-limits-and-trading-states).
   */
  tradingHalted?: boolean;
  config: ReconcileConfig;
  /** Epoch milliseconds. */
  nowMs: number;
  /** The symbol's venue journal (docs/architecture.md#venue-journal); absent: evidence is `apply.result` only. */
  venue?: VenueView;
}

/**
 * What to do with the hold keys. `set` sets an engine hold, or renews the one standing when it has the
 * same `shape` (then its episode signature is kept); `keep` leaves them.
 */
export type HoldAction = { kind: 'set'; reason: ReconcileReason; shape: string } | { kind: 'clear' } | { kind: 'keep' };

/** A ledger write the engine must perform (through `writeLedger`, compare-and-set). */
export interface LedgerAction {
  /**
   * `adopt`: a shortfall adopted without evidence under `P34_HEAL_POLICY=adopt` (event LEDGER_ADOPTED);
   * `venue`: the ledger follows a liquidation / ADL / settlement (`P34_VENUE_CLOSE_POLICY=adopt`).
   */
  kind: 'init' | 'repair' | 'adopt' | 'venue';
  /** New signed amount. */
  amount: Decimal;
  source: 'init' | 'p34_auto' | 'p34_adopt';
  /** Fills that justify a repair (newest first): their plan_id/order_id go into the event. */
  evidence: Fill[];
  /** Fills of the venue journal that justify it (evidence source `exchange`), oldest first. */
  venueFills?: VenueFill[];
}

/** The decision for one symbol on one pass. */
export interface ReconcileOutcome {
  symbol: string;
  status: ReconcileStatus;
  reason: ReconcileReason;
  /** Signed exchange amount (null when the snapshot is missing or invalid). */
  exchangeAmt: Decimal | null;
  /** Signed ledger amount (null when missing or invalid). */
  ledgerAmt: Decimal | null;
  diff: Decimal | null;
  diffPct: Decimal | null;
  tolerance: Decimal | null;
  /** Snapshot `ts_ms` (null when missing/invalid). */
  snapshotTsMs: number | null;
  /**
   * The verdict's drift shape: `driftSignature(symbol|reason|exchange|ledger)` ('' for OK/DRIFT/REPAIRED
   * verdicts). Not the hold's episode signature: see the module invariants.
   */
  driftSig: string;
  hold: HoldAction;
  ledger: LedgerAction | null;
  close: CloseProposal | null;
  /** Human detail: the parse error of an invalid hash, the in-flight client order ids, ... */
  detail: string;
  /**
   * True when a person must act (closes disabled, `hold` policy, operator hold over a drift, nothing
   * closable, trading HALTED): the status is MANUAL_REQUIRED; the engine emits MANUAL_REQUIRED once.
   */
  manualRequired: boolean;
}

const str = (d: Decimal | null): string => (d === null ? '' : fmt(d));

/**
 * Decides what to do for one symbol (docs/architecture.md#reconcile-policy). Pure and total: never throws for any input.
 */
export function decideReconcile(input: ReconcileInput): ReconcileOutcome {
  const { symbol, config, nowMs } = input;
  const operatorHold = input.hold.exists && input.hold.sig === null;
  const ledgerAmt = input.ledger.kind === 'ok' ? input.ledger.ledger.amount : null;
  const snap = input.snapshot.kind === 'ok' ? input.snapshot.snapshot : null;
  const exchangeAmt = snap ? snap.amount : null;
  const tolerance = toleranceFor(config.tolerance, symbol, snap?.stepSize ?? null);
  const cmp = exchangeAmt !== null && ledgerAmt !== null ? compareAmounts(exchangeAmt, ledgerAmt, tolerance) : null;

  const base = {
    symbol,
    exchangeAmt,
    ledgerAmt,
    diff: cmp?.diff ?? null,
    diffPct: cmp?.diffPct ?? null,
    tolerance: snap ? tolerance : null,
    snapshotTsMs: snap?.tsMs ?? null,
    ledger: null,
    close: null,
    detail: '',
    manualRequired: false,
  };

  /** An engine hold for `reason`, unless an operator hold stands (then status only). */
  const holdOutcome = (reason: ReconcileReason, detail = '', close: CloseProposal | null = null, manual = false): ReconcileOutcome => {
    const sig = driftSignature(symbol, reason, str(exchangeAmt), str(ledgerAmt));
    return {
      ...base,
      status: manual ? 'MANUAL_REQUIRED' : 'HOLD',
      manualRequired: manual,
      reason,
      driftSig: sig,
      hold: operatorHold ? { kind: 'keep' } : { kind: 'set', reason, shape: sig },
      close: operatorHold ? null : close,
      detail,
    };
  };
  /** A non-hold verdict; under an operator hold an OK is reported as HOLD operator_hold. */
  const plain = (status: ReconcileStatus, reason: ReconcileReason, hold: HoldAction, extra: Partial<ReconcileOutcome> = {}): ReconcileOutcome => {
    const o: ReconcileOutcome = { ...base, status, reason, driftSig: '', hold: operatorHold ? { kind: 'keep' } : hold, ...extra };
    if (operatorHold && status === 'OK') return { ...o, status: 'HOLD', reason: 'operator_hold' };
    return o;
  };

  // Rule 1: the exchange side must be trustworthy.
  if (input.snapshot.kind === 'missing') return holdOutcome('missing_exchange');
  if (input.snapshot.kind === 'invalid') return holdOutcome('invalid_exchange', input.snapshot.error);
  if (!snap || exchangeAmt === null) return holdOutcome('invalid_exchange');
  if (nowMs - snap.tsMs > config.freshnessSec * 1000) return holdOutcome('stale_exchange', `snapshot age ${nowMs - snap.tsMs} ms`);
  if (snap.tsMs > nowMs + SNAPSHOT_FUTURE_SKEW_MS) return holdOutcome('invalid_exchange', `snapshot_from_future: ts_ms ${snap.tsMs} is ${snap.tsMs - nowMs} ms ahead`);
  if (input.ledger.kind === 'invalid') return holdOutcome('invalid_ledger', input.ledger.error);
  // A journal gap REST could not close: a fill may be missing from the venue's record (never a silent pass).
  if (input.venue && config.venue && gapHolds(input.venue, config.venue, nowMs)) {
    return holdOutcome('venue_journal_gap', `venue journal gap since ${input.venue.gapSinceMs} (${input.venue.gapReason || 'unknown'}): REST has not verified the fills`);
  }

  const fromResults = newestFillTs(input.fills);
  const lastFill = input.lastFillTsMs ?? null;
  const newestFill = fromResults === null ? lastFill : lastFill === null ? fromResults : Math.max(fromResults, lastFill);
  // The venue journal's newest fill (any origin) too: never act on a snapshot that predates it. Both are
  // the exchange's times on the local clock, so a snapshot of the same instant (the push of the same
  // transaction) covers it: only an OLDER snapshot is behind.
  const venueNewest = input.venue && config.venue ? newestVenueFill(input.venue, nowMs, config.evidenceWindowSec * 1000) : null;
  // The ledger's ts_epoch is the time of the newest write (a fill, a repair): a snapshot taken before it
  // cannot say whether the ledger is right.
  const ledgerTsMs = input.ledger.kind === 'ok' && input.ledger.ledger.tsEpoch !== null ? Math.floor(input.ledger.ledger.tsEpoch * 1000) : null;
  const behindMs = Math.max(newestFill ?? -1, ledgerTsMs ?? -1);
  const snapshotBehindFill = (behindMs >= 0 && snap.tsMs <= behindMs) || (venueNewest !== null && snap.tsMs < venueNewest);
  const inflight = activeInflight(input.inflight, nowMs, config.evidenceWindowSec * 1000);
  const waitReason = (): ReconcileOutcome | null => {
    if (snapshotBehindFill) return plain('DRIFT', 'snapshot_older_than_fill', { kind: 'keep' }, { detail: `snapshot ts_ms ${snap.tsMs} <= newest fill/ledger write ${Math.max(behindMs, venueNewest ?? -1)}` });
    if (inflight.length > 0) return plain('DRIFT', 'in_flight', { kind: 'keep' }, { detail: `in flight: ${inflight.join(',')}` });
    return null;
  };

  // Rule 2: no ledger → initialise it from the exchange (not while the exchange may be about to move).
  if (input.ledger.kind === 'missing') {
    const wait = waitReason();
    if (wait) return wait;
    return plain('OK', 'ledger_init', { kind: 'clear' }, {
      ledgerAmt: exchangeAmt,
      diff: new Decimal(0),
      diffPct: new Decimal(0),
      ledger: { kind: 'init', amount: exchangeAmt, source: 'init', evidence: [] },
    });
  }
  const ledger = input.ledger.ledger;
  if (ledgerAmt === null || cmp === null) return holdOutcome('invalid_ledger');

  // The venue's record (docs/architecture.md#venue-journal): our fills, venue closes and foreign fills since the ledger.
  const att = input.venue && config.venue ? attribute(exchangeAmt, ledgerAmt, ledgerTsMs, input.venue, input.fills, inflight, tolerance, config.venue, nowMs, config.evidenceWindowSec * 1000) : null;
  // A foreign fill no heal of ours answered, while the exchange is not exactly what our fills and the venue's
  // closes make it: a drift at once — no grace, and not hidden by the tolerance.
  // (A position exactly at the ledger is no drift, whatever made it so.)
  const foreignDrift: VenueFill[] = att && att.foreignOpen.length > 0 && !exchangeAmt.eq(att.expected) && !exchangeAmt.eq(ledgerAmt) ? att.foreignOpen : [];

  // Rule 3: match. Within the tolerance a foreign fill still holds when a reduce-only close can heal what it
  // left (an excess, or a position the ledger does not have); one that shrank the position or flattened it
  // within the tolerance is a match, as before (nothing to close).
  const foreignReachable = foreignDrift.length > 0 && !exchangeAmt.isZero() && !(signOf(exchangeAmt) === signOf(ledgerAmt) && exchangeAmt.abs().lt(ledgerAmt.abs()));
  if (cmp.match && !foreignReachable) return plain('OK', 'in_sync', { kind: 'clear' });

  if (att && input.venue && config.venue && foreignDrift.length === 0) {
    // never on a snapshot that may predate a fill used or a ledger write (the existing rule 6 wait)
    const snapshotCovers = !snapshotBehindFill && (att.newestMs === null || snap.tsMs >= att.newestMs);
    if (att.explained && snapshotCovers) {
      const detail = `explained by the venue: ${describeFills([...att.oursPending, ...att.venueCloses])}`;
      if (!att.settled || inflight.length > 0) return plain('DRIFT', 'awaiting_record', { kind: 'keep' }, { detail });
      if (att.venueCloses.length > 0) {
        if (config.venue.closePolicy === 'hold' || operatorHold) return holdOutcome('venue_close', `${detail}; P34_VENUE_CLOSE_POLICY=${config.venue.closePolicy}: fix the ledger by hand (p3 ledger set)`, null, true);
        return plain('REPAIRED', 'venue_close_adopted', { kind: 'clear' }, {
          ledger: { kind: 'venue', amount: exchangeAmt, source: 'p34_auto', evidence: [], venueFills: [...att.oursPending, ...att.venueCloses] },
          detail,
        });
      }
      return plain('REPAIRED', 'auto_fixed', { kind: 'clear' }, {
        ledger: { kind: 'repair', amount: exchangeAmt, source: 'p34_auto', evidence: [], venueFills: att.oursPending },
        detail,
      });
    }
    // Unexplained while the venue's record has an open gap (a restart, a reconnect, Redis lost writes): REST is
    // re-reading it; the gap itself holds once older than P34_VENUE_GAP_MAX_MS.
    if (input.venue.gapSinceMs !== null) {
      return plain('DRIFT', 'venue_unverified', { kind: 'keep' }, { detail: `venue journal gap since ${input.venue.gapSinceMs} (${input.venue.gapReason || 'unknown'}): waiting for REST to verify the fills` });
    }
  }
  if (foreignDrift.length > 0 && att && exchangeAmt.isZero() && inflight.length === 0 && !snapshotBehindFill) {
    // Our own order already flattened it (an exit sized on a position that included the foreign fill): the
    // venue's record explains the flat exchange exactly and nothing is left to close → ledger := flat.
    const foreignSum = foreignDrift.reduce((acc, f) => acc.plus(f.side === 'BUY' ? f.lastQty : f.lastQty.neg()), new Decimal(0));
    const newestForeign = foreignDrift[foreignDrift.length - 1]!.localTsMs;
    // only our reduce-only exits (an exit sized on the position), never an entry of ours
    const oursAfter = input.venue!.fills.filter((f) => f.origin === 'ours' && f.reduceOnly && f.localTsMs > newestForeign);
    if (oursAfter.length > 0 && att.expected.plus(foreignSum).isZero()) {
      return plain('REPAIRED', 'healed_after_close', { kind: 'clear' }, {
        ledger: { kind: 'repair', amount: new Decimal(0), source: 'p34_auto', evidence: [], venueFills: [...foreignDrift, ...oursAfter] },
        detail: `foreign fill closed by our own order: ${describeFills([...foreignDrift, ...oursAfter])}`,
      });
    }
  }
  if (foreignDrift.length > 0) {
    // the close waits until nothing of ours is in flight and the snapshot is newer than every fill
    const reason: ReconcileReason = signOf(exchangeAmt) !== signOf(ledgerAmt) ? 'side_mismatch' : 'qty_mismatch_no_evidence';
    const detail = `foreign fill: ${describeFills(foreignDrift)}`;
    if (waitReason() !== null) return holdOutcome(reason, `${detail}; close after our orders in flight are recorded`);
  }

  // Never act on a snapshot that may predate a fill, nor while an order is in flight (rule 6).
  const wait = waitReason();
  if (wait) return wait;

  const sEx = signOf(exchangeAmt);
  const sLed = signOf(ledgerAmt);
  const longVsShort = sEx * sLed === -1;
  const evidence = selectEvidence(input.fills, ledger.tsEpoch, nowMs, config.evidenceWindowSec);

  // Rule 7 (heal): our newest close (or FLATTEN) brought the position to flat, the snapshot is newer than
  // it and the exchange is flat → ledger := flat. A close that only trimmed an excess (its basis minus its
  // fill is not 0) explains nothing about a flat exchange: someone else flattened it (no evidence of ours).
  const close = evidence.closeFills[0];
  const closeFlattened = close !== undefined && (close.basisAmt == null || close.basisAmt.abs().minus(close.signedQty.abs()).isZero());
  if (sEx === 0 && close && closeFlattened && snap.tsMs > close.tsMs) {
    return plain('REPAIRED', 'healed_after_close', { kind: 'clear' }, {
      ledger: { kind: 'repair', amount: new Decimal(0), source: 'p34_auto', evidence: [close] },
    });
  }

  // Rule 5 (and 4 for flat vs non-flat): EXECUTE fills explain the drift → ledger := exchange.
  if (!longVsShort && evidence.tradeFills.length > 0) {
    const expected = ledgerAmt.plus(evidence.tradeSum);
    const residual = compareAmounts(exchangeAmt, expected, tolerance);
    if (residual.match || residual.diffPct.lte(new Decimal(config.driftTolerancePct))) {
      return plain('REPAIRED', 'auto_fixed', { kind: 'clear' }, {
        ledger: { kind: 'repair', amount: exchangeAmt, source: 'p34_auto', evidence: evidence.tradeFills },
        detail: `expected ${fmt(expected)} from ${evidence.tradeFills.length} fill(s), residual ${fmt(residual.diff)}`,
      });
    }
  }

  // Rule 6: within the grace of the newest fill, a drift is only DRIFT (never for a foreign fill).
  if (foreignDrift.length === 0 && newestFill !== null && nowMs - newestFill <= config.graceMs) {
    return plain('DRIFT', 'recent_fill', { kind: 'keep' }, { detail: `newest fill ${nowMs - newestFill} ms ago` });
  }

  // Rules 4/5: hold; rule 7: propose the close that heals it (or adopt a shortfall, by policy).
  const reason: ReconcileReason = sEx !== sLed ? 'side_mismatch' : 'qty_mismatch_no_evidence';
  if (!operatorHold && adoptsLedger(exchangeAmt, ledgerAmt, config.healPolicy)) {
    return plain('REPAIRED', 'ledger_adopted', { kind: 'clear' }, {
      ledger: { kind: 'adopt', amount: exchangeAmt, source: 'p34_adopt', evidence: [] },
      detail: `P34_HEAL_POLICY=adopt: shortfall (${reason}) adopted without evidence`,
    });
  }
  const proposal = closeProposal(exchangeAmt, ledgerAmt, snap.stepSize, config.healPolicy);
  const halted = input.tradingHalted === true;
  const closes = config.closeEnabled && proposal !== null && !operatorHold && !halted;
  const foreignDetail = foreignDrift.length > 0 ? `foreign fill: ${describeFills(foreignDrift)}` : '';
  const blocked = closes ? '' : closeBlockedDetail(config, proposal, operatorHold, halted);
  return holdOutcome(reason, [foreignDetail, blocked].filter((x) => x !== '').join('; '), closes ? proposal : null, !closes);
}

function closeBlockedDetail(config: ReconcileConfig, proposal: CloseProposal | null, operatorHold: boolean, halted: boolean): string {
  if (operatorHold) return 'operator hold: no automatic close; clear the hold or fix the ledger';
  if (halted) return 'trading HALTED (kill switch): no close is sent; flatten (p3 flatten) or resume trading';
  if (!config.closeEnabled) return 'P34_RECONCILE_CLOSE_ENABLED=false: fix by hand';
  if (proposal === null && config.healPolicy === 'hold') return 'P34_HEAL_POLICY=hold: no reduce-only close reaches the ledger; fix by hand (p3 flatten, or p3 ledger set)';
  if (proposal === null) return 'nothing closable (exchange flat, qty below one lot step, or lot step unknown): fix the ledger by hand';
  return '';
}
