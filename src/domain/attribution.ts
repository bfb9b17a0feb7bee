/**
 * Attribution of a position change to the fills in the venue journal (docs/architecture.md#venue-journal,
 * docs/architecture.md#reconcile-policy): which fills since the ledger's last write explain the difference
 * between the exchange and the ledger. Pure, no I/O, no clock.
 *
 * Invariants:
 * - "Since the ledger" = the fill's trade time on the local clock (`localTsMs`, never later than the truth)
 *   is strictly after the ledger's `ts_epoch`, and within the evidence window. A fill of ours whose EXECUTED
 *   result is among the results read is already in the ledger (the apply layer writes both in one step) and
 *   never counts again: a fill is never counted twice.
 * - Our fills move the ledger (EXECUTE) or do not (RECONCILE_CLOSE, FLATTEN: "heal" fills, never added to the
 *   ledger). The decision comes from the journal entry (`plan_decision`, our order record when it was
 *   journaled) or from the results; unknown means EXECUTE (the apply layer records every other plan).
 * - Explained: exchange = ledger + Σ our pending EXECUTE fills + Σ venue closes (liquidation, ADL,
 *   settlement), within the shared tolerance. A `foreign` fill within the window that no later heal fill
 *   answered is open (whatever the ledger's time: the apply layer's writes move it without absorbing the
 *   foreign fill); while the exchange differs from what our fills and venue closes make it, it is a drift at once.
 * - Long vs short is explained only exactly (no tolerance): the venue's own record of every fill is the one
 *   evidence strong enough to move a ledger across flat.
 */
import { Decimal, fmt, signOf } from './decimal.js';
import type { Fill } from './result.js';
import { clientOrderIdFor } from './apply.js';
import { CLOSE_DECISIONS } from './reconcile-evidence.js';
import { compareAmounts } from './tolerance.js';
import { signedQty, type VenueFill } from './venue-fill.js';
import { VENUE_CLOSE_ORIGINS } from './venue-origin.js';

/** `P34_VENUE_CLOSE_POLICY`: what a liquidation, ADL or settlement does to the ledger. */
export const VENUE_CLOSE_POLICIES = ['adopt', 'hold'] as const;
/** One of {@link VENUE_CLOSE_POLICIES}. */
export type VenueClosePolicy = (typeof VENUE_CLOSE_POLICIES)[number];

/** The venue journal as the engine read it for one symbol. */
export interface VenueView {
  /** The symbol's journaled fills (any order; the engine reads the newest few hundred). */
  fills: VenueFill[];
  /** `gap_since_ms` of the symbol's journal cursor (null: no open gap). */
  gapSinceMs: number | null;
  gapReason: string;
  /** `last_trade_id` of the cursor (null: none); the engine compares it with what it saw before (a rollback). */
  lastTradeId?: string | null;
}

/** Settings of the attribution. */
export interface VenueSettings {
  /** `P34_VENUE_CLOSE_POLICY`. */
  closePolicy: VenueClosePolicy;
  /** `P34_VENUE_GAP_MAX_MS`: a journal gap older than this holds the symbol. */
  gapMaxMs: number;
  /**
   * `P34_VENUE_SETTLE_MS`: an unrecorded fill of ours becomes repair evidence only once its order is no longer
   * in flight and the fill is older than this (the apply layer records a fill within milliseconds).
   */
  settleMs: number;
}

/** What the journal says about the difference. */
export interface Attribution {
  /** Fills since the ledger (see the module invariants), oldest first. */
  since: VenueFill[];
  /** Our EXECUTE fills that no result records and the ledger lacks (since it, plus the newest older ones the sum needs). */
  oursPending: VenueFill[];
  /** Liquidation / ADL / settlement fills not in the ledger: since it, plus the newest older ones the sum needs. */
  venueCloses: VenueFill[];
  /** Foreign fills within the window that no later heal fill of ours answered. */
  foreignOpen: VenueFill[];
  /** ledger + Σ oursPending + Σ venueCloses. */
  expected: Decimal;
  /** True when the exchange amount equals `expected` within the tolerance and not long vs short. */
  explained: boolean;
  /** True when every pending fill of ours may be repaired now (no order in flight, older than the settle time). */
  settled: boolean;
  /** Newest `localTsMs` among the fills since the ledger and those the attribution used (null: none). */
  newestMs: number | null;
}

/**
 * Attributes `exchangeAmt − ledgerAmt` to the journal's fills.
 * @param ledgerTsMs the ledger's `ts_epoch` in ms (null: unknown — then only fills within the window count)
 * @param results the symbol's EXECUTED results read this pass (their plan ids give our recorded client order ids)
 * @param inflight client order ids the apply layer has in flight
 * @param tolerance absolute tolerance of the symbol
 * @param nowMs epoch ms; windowMs `P34_EVIDENCE_WINDOW_SEC` in ms
 */
export function attribute(
  exchangeAmt: Decimal,
  ledgerAmt: Decimal,
  ledgerTsMs: number | null,
  view: VenueView,
  results: Fill[],
  inflight: string[],
  tolerance: Decimal,
  settings: VenueSettings,
  nowMs: number,
  windowMs: number,
): Attribution {
  const recorded = new Map<string, Fill>();
  for (const r of results) recorded.set(clientOrderIdFor(r.planId), r);
  const seen = new Set<string>();
  const since = view.fills
    .filter((f) => nowMs - f.localTsMs <= windowMs && (ledgerTsMs === null || f.localTsMs > ledgerTsMs))
    .filter((f) => (seen.has(f.tradeId) ? false : (seen.add(f.tradeId), true)))
    .sort((a, b) => a.localTsMs - b.localTsMs || (BigInt(a.tradeId) < BigInt(b.tradeId) ? -1 : 1));
  const decisionOf = (f: VenueFill) => f.planDecision || recorded.get(f.clientOrderId)?.decision || 'EXECUTE';
  const ours = since.filter((f) => f.origin === 'ours');
  const heal = ours.filter((f) => CLOSE_DECISIONS.has(decisionOf(f)));
  const oursPending = ours.filter((f) => !CLOSE_DECISIONS.has(decisionOf(f)) && !recorded.has(f.clientOrderId));
  const venueSince = since.filter((f) => VENUE_CLOSE_ORIGINS.has(f.origin));
  // Foreign fills count from the whole window, not only since the ledger: the apply layer's next write moves
  // the ledger's time past a foreign fill without including it. One the ledger did absorb (a repair, an
  // operator's `p3 ledger set`) leaves no difference, and only a difference is a drift (reconcile.ts).
  const heals = view.fills.filter((f) => f.origin === 'ours' && nowMs - f.localTsMs <= windowMs && CLOSE_DECISIONS.has(decisionOf(f)));
  const newestHeal = Math.max(-Infinity, ...heal.map((f) => f.localTsMs), ...heals.map((f) => f.localTsMs));
  const foreignSeen = new Set<string>();
  const foreignOpen = view.fills
    .filter((f) => f.origin === 'foreign' && nowMs - f.localTsMs <= windowMs && f.localTsMs > newestHeal)
    .filter((f) => (foreignSeen.has(f.tradeId) ? false : (foreignSeen.add(f.tradeId), true)))
    .sort((a, b) => a.localTsMs - b.localTsMs);
  // Fills before the ledger's time may not be in it either: the apply layer's next write moved the time past
  // a venue close or an unrecorded fill of ours (its record lost with Redis) without adding it. A repair sets
  // the ledger to the exchange, absorbing everything before it, so those still missing are the NEWEST of the
  // older ones: try the k newest, smallest k first.
  const older = view.fills
    .filter((f) => nowMs - f.localTsMs <= windowMs && ledgerTsMs !== null && f.localTsMs <= ledgerTsMs)
    .filter((f) => VENUE_CLOSE_ORIGINS.has(f.origin) || (f.origin === 'ours' && !CLOSE_DECISIONS.has(decisionOf(f)) && !recorded.has(f.clientOrderId)))
    .filter((f) => (seen.has(f.tradeId) ? false : (seen.add(f.tradeId), true)))
    .sort((a, b) => a.localTsMs - b.localTsMs);
  const sum = (fs: VenueFill[]) => fs.reduce((acc, f) => acc.plus(signedQty(f)), new Decimal(0));
  const longVsShort = signOf(exchangeAmt) * signOf(ledgerAmt) === -1;
  let venueCloses = venueSince;
  let pending = oursPending;
  let expected = ledgerAmt.plus(sum(oursPending)).plus(sum(venueSince));
  let explained = false;
  for (let k = 0; k <= older.length; k++) {
    const cand = [...older.slice(older.length - k), ...oursPending, ...venueSince];
    const exp = ledgerAmt.plus(sum(cand));
    const venue = cand.filter((f) => VENUE_CLOSE_ORIGINS.has(f.origin));
    // long vs short only when the venue's record explains it exactly (never within a tolerance)
    const match = longVsShort ? exchangeAmt.eq(exp) : compareAmounts(exchangeAmt, exp, tolerance).match;
    if (cand.length > 0 && match) {
      venueCloses = venue;
      pending = cand.filter((f) => f.origin === 'ours');
      expected = exp;
      explained = true;
      break;
    }
  }
  const inflightSet = new Set(inflight);
  const settled = pending.every((f) => !inflightSet.has(f.clientOrderId) && nowMs - f.localTsMs >= settings.settleMs);
  const used = [...since, ...pending, ...venueCloses, ...foreignOpen];
  return { since, oursPending: pending, venueCloses, foreignOpen, expected, explained, settled, newestMs: used.length > 0 ? Math.max(...used.map((f) => f.localTsMs)) : null };
}

/** Newest `localTsMs` of the view's fills within the window (any origin), or null. */
export function newestVenueFill(view: VenueView, nowMs: number, windowMs: number): number | null {
  let max: number | null = null;
  for (const f of view.fills) if (nowMs - f.localTsMs <= windowMs && (max === null || f.localTsMs > max)) max = f.localTsMs;
  return max;
}

/** Whether the journal's open gap is old enough to hold the symbol. */
export function gapHolds(view: VenueView, settings: VenueSettings, nowMs: number): boolean {
  return view.gapSinceMs !== null && nowMs - view.gapSinceMs > settings.gapMaxMs;
}

/** Short description of fills for details and events: `BUY 0.002 trade 17 order 4000000001 (ours)`. */
export function describeFills(fills: VenueFill[]): string {
  return fills.map((f) => `${f.side} ${fmt(f.lastQty)} trade ${f.tradeId} order ${f.orderId} (${f.origin})`).join('; ');
}
