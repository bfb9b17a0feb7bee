/**
 * Public shapes of the strategy client (docs/plan-format.md). Quantities are base-asset decimal strings,
 * notionals USD (quote) decimal strings, times epoch ms.
 */
import type { P3Result } from './result.js';

/**
 * A plan as a strategy asks for it (docs/plan-format.md#plans): an entry (`OPEN` from flat, `INCREASE` on the
 * same side; `side` and exactly one of `qty` / `notionalUsd`), an exit of a fraction of the current position
 * (`FULL_CLOSE`, `PARTIAL_75|50|25`) or `REDUCE` by `qty`. Always a MARKET order; exits are reduce-only.
 */
export interface PlanRequest {
  /** Upper-case exchange symbol, e.g. `BTCUSDT`. */
  symbol: string;
  action: 'OPEN' | 'INCREASE' | 'REDUCE' | 'FULL_CLOSE' | 'PARTIAL_75' | 'PARTIAL_50' | 'PARTIAL_25';
  /** Entries: BUY (long) or SELL (short). */
  side?: 'BUY' | 'SELL';
  /** Base-asset quantity, plain decimal string (0 < qty <= 1e9, at most 18 decimals). */
  qty?: string;
  /** Entries: size in USD notional instead of `qty` (qty = notional / mark, rounded down to the lot step). */
  notionalUsd?: string;
  /** Plan id, 1-64 of `[A-Za-z0-9:._-]` (default: 16 random hex characters). Unique per plan. */
  planId?: string;
  /** Free-text reason (default `entry` / `exit`). */
  reason?: string;
  /** Informational score of the strategy, |score| <= 1e6. */
  killScore?: number | null;
  /** Plan time, epoch ms (default now). */
  tsMs?: number;
}

/** Options of one `submit`. */
export interface SubmitOptions {
  /** Bound of the wait for the final result, ms (default: the client's `timeoutMs`). */
  timeoutMs?: number;
  /** Stops the wait (never the plan). */
  signal?: AbortSignal;
  /** New plans after a transient refusal (result.ts `TRANSIENT_REASONS`), default 3; 0 = none. */
  retries?: number;
}

/** A result refused for a hold reason (`onHold`). */
export interface HoldEvent {
  symbol: string;
  /** One of result.ts `HOLD_REASONS` (`reconcile_hold_active`, `operator_hold`, `trading_halted`, ...). */
  reason: string;
  planId: string;
  tsMs: number;
  entryId: string;
}

/** The net of the executed fills the result stream records for a symbol (base asset). */
export interface PositionView {
  symbol: string;
  /** Signed base-asset quantity: + long, - short. */
  netQty: string;
  side: 'LONG' | 'SHORT' | 'FLAT';
  /** Number of executed results counted. */
  fills: number;
  /** Newest fill, epoch ms (0 when none). */
  lastFillTsMs: number;
}

/** What `status(symbol)` returns. */
export interface SymbolStatus {
  symbol: string;
  /** The newest final result of the symbol (any source), null when none. */
  lastResult: P3Result | null;
  /** Set when the newest result was refused for a hold reason and nothing executed since. */
  hold: HoldEvent | null;
  position: PositionView;
  /** Plans of this client on the symbol still without a final result. */
  inFlight: string[];
}
