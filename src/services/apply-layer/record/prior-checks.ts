/**
 * Where the claim step leaves the pre-send query of a plan it just claimed (claim/durability.ts) and the
 * record step takes it (record.ts): running queries per apply layer (its deps object), keyed by the claimed
 * dedupe value (unique per claim). A query nobody took within 10 minutes (its handler ended without asking)
 * is dropped.
 */
import type { OrderInfo } from '../../../ports/exchange.js';
import type { ApplyDeps } from '../deps.js';

/** What the pre-send query found. `tsMs`: when the answer came, epoch ms. */
export type PriorOutcome = { kind: 'none' } | { kind: 'found'; order: OrderInfo; tsMs: number } | { kind: 'unknown'; error: string };

/** A running pre-send query of one claimed plan. */
export interface PriorCheck {
  planId: string;
  symbol: string;
  decision: string;
  entryId: string;
  /** RECONCILE_CLOSE: the position the close was sized on (the plan's `basis_amt`), copied into a recovered result. */
  basisAmt?: string;
  startedMs: number;
  result: Promise<PriorOutcome>;
}

/** Running checks per apply layer (its deps object), keyed by the claimed dedupe value (unique per claim). */
const registries = new WeakMap<ApplyDeps, Map<string, PriorCheck>>();

function registry(d: ApplyDeps): Map<string, PriorCheck> {
  let m = registries.get(d);
  if (!m) {
    m = new Map();
    registries.set(d, m);
  }
  return m;
}

/** Leaves the running query `check` of the claim `claimedValue` for {@link takePriorCheck}. */
export function putPriorCheck(d: ApplyDeps, claimedValue: string, check: PriorCheck): void {
  const m = registry(d);
  for (const [k, c] of m) if (check.startedMs - c.startedMs > 600_000) m.delete(k); // a handler that ended without asking
  m.set(claimedValue, check);
}

/** Removes and returns the running pre-send query of the claim `claimedValue`, or null when none runs. */
export function takePriorCheck(d: ApplyDeps, claimedValue: string): PriorCheck | null {
  const m = registries.get(d);
  const c = m?.get(claimedValue);
  if (!m || !c) return null;
  m.delete(claimedValue);
  return c;
}
