/**
 * The governor's (P3.2) decision: "can we trade at all?" (docs/architecture.md#components; seeds 002, 004). Pure: no I/O.
 *
 * Invariants:
 * - Trading state is an enum ACTIVE | REDUCING (only reduce-only plans pass) | HALTED (nothing passes),
 *   global and per symbol; the stricter of the two wins; an unreadable state counts as HALTED.
 * - Never skipped, in any mode: plan age, trading state, circuit breaker, reconcile hold, snapshot
 *   presence/validity/freshness, lot step and quantity resolution, mark price, plan rate.
 * - `testnet`/`paper` auto-approve skips ONLY the max-notional limit, and still computes and records the
 *   real quantity and notional (seed 004's `qty=0.0000, notional=$0.00` permits hid the exposure); the
 *   permit's context says which limit was skipped (`would_deny`).
 * - The rate token is taken last (by the caller, after {@link decideGovernorPreRate} said ALLOW), so
 *   denied plans never use the budget.
 */
import { Decimal, fmt } from './decimal.js';
import type { Plan } from './plan.js';
import type { SnapshotRead } from './position.js';
import { checkPlanAndSnapshot, deny, isReduceOnly, resolvePlanQty, type PermitOutcome } from './permits.js';

import { TRADING_STATES, type TradingState } from './trading-states.js';
import { RISK_DENY_REASONS } from './risk-controls/index.js';

export { TRADING_STATES, type TradingState } from './trading-states.js';

/** A trading state as read from its hash `{state, reason, ts_ms, by}`; `invalid` when unreadable. */
export type TradingStateRead = { state: TradingState; reason: string; tsMs: number | null; by: string; set: boolean } | { state: 'INVALID'; error: string; set: true };

/** Reads a trading-state hash; an empty hash is ACTIVE (never set). */
export function readTradingState(raw: Record<string, string> | null | undefined): TradingStateRead {
  if (!raw || Object.keys(raw).length === 0) return { state: 'ACTIVE', reason: '', tsMs: null, by: '', set: false };
  const s = (raw.state ?? '').trim().toUpperCase();
  if (!(TRADING_STATES as readonly string[]).includes(s)) return { state: 'INVALID', error: `unknown state ${JSON.stringify(raw.state ?? null)}`, set: true };
  const ts = Number(raw.ts_ms);
  return { state: s as TradingState, reason: raw.reason ?? '', tsMs: Number.isFinite(ts) ? ts : null, by: raw.by ?? '', set: true };
}

const RANK: Record<TradingState, number> = { ACTIVE: 0, REDUCING: 1, HALTED: 2 };

/** The stricter of two trading states (HALTED > REDUCING > ACTIVE). */
export function stricter(a: TradingState, b: TradingState): TradingState {
  return RANK[a] >= RANK[b] ? a : b;
}

/** Governor mode (`GOVERNOR_MODE`). */
export type GovernorMode = 'testnet' | 'paper' | 'live';

/** Limits of one decision (from the governor's configuration, per symbol already resolved). */
export interface GovernorLimits {
  mode: GovernorMode;
  /** Max plan age, seconds (`GOVERNOR_MAX_PLAN_AGE_SEC`). */
  maxPlanAgeSec: number;
  /** Allowed clock skew for plans dated in the future, seconds (`GOVERNOR_PLAN_FUTURE_SKEW_SEC`). */
  futureSkewSec: number;
  /** Max snapshot age, seconds (`GOVERNOR_SNAPSHOT_FRESHNESS_SEC`). */
  freshnessSec: number;
  /** Max notional of one plan in USD (quote) for this symbol. */
  maxNotionalUsd: Decimal;
  /** Symbols served (`P3_ALLOWLIST`); empty = any. */
  allowlist: readonly string[];
}

/** What the governor read from Redis for one plan. */
export interface GovernorInput {
  plan: Plan;
  nowMs: number;
  globalState: TradingStateRead;
  symbolState: TradingStateRead;
  /** Circuit breaker open for the symbol (key present). */
  breakerOpen: boolean;
  holdActive: boolean;
  snapshot: SnapshotRead;
  limits: GovernorLimits;
}

/** A governor outcome: the permit outcome plus notional/mark price when computed. */
export interface GovernorOutcome extends PermitOutcome {
  notional: Decimal | null;
  markPrice: Decimal | null;
  /** True when ALLOW came from testnet/paper auto-approve. */
  autoApproved: boolean;
}

function g(o: PermitOutcome, notional: Decimal | null = null, markPrice: Decimal | null = null): GovernorOutcome {
  return { ...o, notional, markPrice, autoApproved: false };
}

/**
 * Every check but the rate limit, in order: decision type, allowlist, plan age (too old / from the
 * future), trading state (global and symbol), circuit breaker, reconcile hold (seed 002 "Governor →
 * DENY (HOLD active)"), snapshot, quantity, mark price, max notional (skipped by auto-approve).
 * @returns DENY, or ALLOW pending the caller's rate-limit token
 */
export function decideGovernorPreRate(i: GovernorInput): GovernorOutcome {
  const { plan, limits } = i;
  if (plan.decision !== 'EXECUTE') return g(deny('unsupported_decision', { decision: plan.decision }));
  if (limits.allowlist.length > 0 && !limits.allowlist.includes(plan.symbol)) return g(deny('symbol_not_allowed', { allowlist: limits.allowlist.join(',') }));
  const ageMs = i.nowMs - plan.ts_ms;
  if (ageMs > limits.maxPlanAgeSec * 1000) return g(deny('plan_too_old', { age_ms: ageMs, max_plan_age_sec: limits.maxPlanAgeSec }));
  if (-ageMs > limits.futureSkewSec * 1000) return g(deny('plan_from_future', { ahead_ms: -ageMs, skew_sec: limits.futureSkewSec }));
  for (const [scope, st] of [['global', i.globalState], ['symbol', i.symbolState]] as const) {
    if (st.state === 'INVALID') return g(deny('trading_state_invalid', { scope, error: st.error }));
  }
  const gs = i.globalState as Extract<TradingStateRead, { reason: string }>;
  const ss = i.symbolState as Extract<TradingStateRead, { reason: string }>;
  const effective = stricter(gs.state, ss.state);
  const from = RANK[ss.state] >= RANK[gs.state] && ss.set ? ss : gs;
  const stateCtx = { state: effective, scope: from === ss ? 'symbol' : 'global', state_reason: from.reason, by: from.by };
  if (effective === 'HALTED') return g(deny('trading_halted', stateCtx));
  if (effective === 'REDUCING' && !isReduceOnly(plan)) return g(deny('trading_state_reducing', stateCtx));
  if (i.breakerOpen) return g(deny('circuit_breaker_open'));
  if (i.holdActive) return g(deny('reconcile_hold_active'));
  const snap = checkPlanAndSnapshot(plan, i.snapshot, i.nowMs, limits.freshnessSec, limits.allowlist);
  if ('decision' in snap) return g(snap);
  const r = resolvePlanQty(plan, snap.snapshot);
  if (!r.ok) return g(deny(r.reason, r.context));
  const mark = snap.snapshot.markPrice;
  if (!mark || mark.lte(0)) return g(deny('mark_price_unknown', { qty: fmt(r.qty) }, r.qty, r.side));
  const notional = r.qty.mul(mark);
  const ctx: Record<string, unknown> = {
    position_amt: fmt(snap.snapshot.amount),
    max_notional_usd: fmt(limits.maxNotionalUsd),
    mode: limits.mode,
    snapshot_ts_ms: snap.snapshot.tsMs,
  };
  const autoApprove = limits.mode !== 'live';
  if (notional.gt(limits.maxNotionalUsd)) {
    if (!autoApprove) return g(deny('max_notional_exceeded', { ...ctx, notional: fmt(notional) }, r.qty, r.side), notional, mark);
    ctx.would_deny = 'max_notional_exceeded';
  }
  return { decision: 'ALLOW', reason: autoApprove ? 'auto_approve' : 'ok', context: ctx, qty: r.qty, side: r.side, notional, markPrice: mark, autoApproved: autoApprove };
}

/** Every DENY reason of the governor (metrics are initialised with these). */
export const GOVERNOR_DENY_REASONS = [
  'unsupported_decision',
  'symbol_not_allowed',
  'plan_too_old',
  'plan_from_future',
  'trading_state_invalid',
  'trading_halted',
  'trading_state_reducing',
  'max_position_exceeded',
  'max_gross_exceeded',
  'exposure_unknown',
  'exposure_contended',
  'position_not_flat',
  'side_conflict',
  'symbol_rules_unknown',
  'below_min_qty',
  'below_min_notional',
  'circuit_breaker_open',
  'reconcile_hold_active',
  'missing_exchange',
  'invalid_exchange',
  'stale_exchange',
  'lot_step_unknown',
  'exit_requires_reduce_only',
  'unresolvable_qty',
  'qty_below_lot_step',
  'nothing_to_close',
  'side_not_reducing',
  'reduce_only_exceeds_position',
  'mark_price_unknown',
  'max_notional_exceeded',
  'rate_limited_global',
  'rate_limited_symbol',
  // the pre-trade risk controls (docs/risk-controls.md)
  ...RISK_DENY_REASONS,
] as const;
