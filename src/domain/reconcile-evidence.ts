/**
 * Execution evidence and drift signatures for the reconcile engine (docs/architecture.md#evidence-repair, docs/architecture.md#heal-target). Pure: no I/O.
 *
 * Invariants:
 * - Evidence is only EXECUTED fills (`fillFromResult`) of the symbol, within the evidence window and
 *   strictly newer than the ledger's `ts_epoch`: a fill the apply layer already wrote into the ledger (its
 *   result carries the same timestamp as the ledger write) is never counted twice.
 * - RECONCILE_CLOSE and FLATTEN fills are kept apart: the apply layer does not apply them to the ledger;
 *   they are only evidence for the heal rule (docs/architecture.md#heal-target), never for the quantity auto-repair.
 * - A drift shape ({@link driftSignature}) depends only on symbol, reason and the two amounts, so it is
 *   stable while a drift lasts and changes when the drift changes (seed 004's further manual +0.016 gives
 *   a new one). The hold's signature is an EPISODE of a shape ({@link episodeSignature}): the shape plus
 *   the time the engine hold was first set, so the same amounts at another time are another drift.
 */
import { createHash } from 'node:crypto';
import { Decimal } from './decimal.js';
import { fillFromResult, type Fill } from './result.js';

/** Number of `quantum:stream:apply.result` entries read per pass (seed 001: "Read last 50 entries"). */
export const EVIDENCE_LOOKBACK = 50;

/**
 * The executed fills of `symbol` among raw result entries (`[entryId, fields]`, any order), newest first.
 * Entries of other symbols and anything that is not an EXECUTED fill are ignored.
 */
export function fillsForSymbol(entries: Array<{ id: string; fields: Record<string, string> }>, symbol: string): Fill[] {
  const out: Fill[] = [];
  for (const e of entries) {
    if ((e.fields.symbol ?? '').toUpperCase() !== symbol) continue;
    const f = fillFromResult(e.id, e.fields);
    if (f) out.push(f);
  }
  return out.sort((a, b) => b.tsMs - a.tsMs);
}

/** Decisions whose fills move the exchange toward the ledger (or flat) and are not applied to the ledger. */
export const CLOSE_DECISIONS: ReadonlySet<string> = new Set(['RECONCILE_CLOSE', 'FLATTEN']);

/** Evidence selected for one pass. */
export interface EvidenceSelection {
  /** EXECUTE fills within the window and newer than the ledger, newest first. */
  tradeFills: Fill[];
  /** RECONCILE_CLOSE and FLATTEN fills within the window and newer than the ledger, newest first. */
  closeFills: Fill[];
  /** Sum of the signed quantities of `tradeFills` (base asset). */
  tradeSum: Decimal;
}

/**
 * Selects the fills that may explain a drift (docs/architecture.md#evidence-repair).
 * @param fills the symbol's fills (see {@link fillsForSymbol})
 * @param ledgerTsEpoch the ledger's `ts_epoch` in epoch seconds, null when unknown (legacy ledgers: every
 *   fill in the window counts)
 * @param nowMs epoch milliseconds
 * @param windowSec `P34_EVIDENCE_WINDOW_SEC`
 */
export function selectEvidence(fills: Fill[], ledgerTsEpoch: number | null, nowMs: number, windowSec: number): EvidenceSelection {
  const ledgerMs = ledgerTsEpoch === null ? null : ledgerTsEpoch * 1000;
  const inScope = fills.filter((f) => nowMs - f.tsMs <= windowSec * 1000 && (ledgerMs === null || f.tsMs > ledgerMs));
  const tradeFills = inScope.filter((f) => !CLOSE_DECISIONS.has(f.decision));
  const closeFills = inScope.filter((f) => CLOSE_DECISIONS.has(f.decision));
  const tradeSum = tradeFills.reduce((acc, f) => acc.plus(f.signedQty), new Decimal(0));
  return { tradeFills, closeFills, tradeSum };
}

/** Newest fill timestamp (epoch ms) of any decision, or null when there is none. */
export function newestFillTs(fills: Fill[]): number | null {
  let max: number | null = null;
  for (const f of fills) if (max === null || f.tsMs > max) max = f.tsMs;
  return max;
}

/**
 * Client order ids of the apply layer's in-flight records (`quantum:apply:inflight:<SYM>`, client order id
 * → `ts_ms`) that still count: sent within `maxAgeMs` of `nowMs`. Records with an unparseable timestamp
 * are ignored (they grant no grace: the fail-closed direction is to hold).
 */
export function activeInflight(inflight: Record<string, string>, nowMs: number, maxAgeMs: number): string[] {
  const out: string[] = [];
  for (const [coid, raw] of Object.entries(inflight)) {
    if (!/^\d+$/.test(raw.trim())) continue;
    const ts = Number(raw.trim());
    if (nowMs - ts <= maxAgeMs) out.push(coid);
  }
  return out.sort();
}

/**
 * The drift signature (`hold_sig`, a close plan's `drift_sig`): first 12 hex digits of
 * SHA-256(`symbol|reason|exchange_amt|ledger_amt`), amounts as plain decimal strings ('' when unknown).
 * Format as in seed 002 (`416d86940859`).
 */
export function driftSignature(symbol: string, reason: string, exchangeAmt: string, ledgerAmt: string): string {
  return createHash('sha256').update(`${symbol}|${reason}|${exchangeAmt}|${ledgerAmt}`).digest('hex').slice(0, 12);
}

/**
 * The episode signature of a drift (`hold_sig`, a close plan's `drift_sig`): first 12 hex digits of
 * SHA-256(`<shape>|<startedMs>`). `reconcileApply-11.lua` stores it when it SETS a new engine hold and keeps
 * it while the hold of that shape stands (several engines and passes see one signature); a hold set again
 * later, even for the same amounts, is a new episode (the same manual trade made twice).
 * @param shape the drift shape ({@link driftSignature})
 * @param startedMs epoch ms of the pass that proposed setting the hold
 */
export function episodeSignature(shape: string, startedMs: number): string {
  return createHash('sha256').update(`${shape}|${startedMs}`).digest('hex').slice(0, 12);
}
