/**
 * The last-moment check of an order: what must still hold at the instant its request leaves the process (after
 * the client-side throttle queue and signing), because any of it can change during the seconds between the
 * permits and the send (time sync, the one-way-mode check, ccxt's throttle queue). Pure: every input is given.
 *
 * Invariants:
 * - HALTED (global or the symbol's, or a state that cannot be read) stops every order but an operator's FLATTEN.
 * - The circuit breaker (the symbol tripped to HALTED for its cooldown) stops every order but FLATTEN, exactly as
 *   HALTED does: a RECONCILE_CLOSE is stopped by it too.
 * - REDUCING stops every entry (OPEN, INCREASE); exits, closes and FLATTEN pass.
 * - A hold stops an EXECUTE order (entry or exit); a close needs its hold to stand with the plan's drift signature.
 * - A permitted plan (EXECUTE) is never sent with a permit older than its validity: `permitMaxAgeMs` from the
 *   older of its two permits' `ts_ms` (an unknown permit time is refused).
 * - No order is sent more than `maxSendDelayMs` after it was marked in flight: the pre-send query of a claim that
 *   Redis may have lost relies on no request being signed later than that (see src/services/apply-layer/claim/durability.ts).
 * - Fail closed: anything unreadable is a refusal with a reason; the first failing rule, in the order above, is
 *   the reason given.
 */

/** Trading state as read: `ACTIVE`, `REDUCING`, `HALTED`, or `INVALID` (present but unreadable), null = not set. */
export type StateRead = 'ACTIVE' | 'REDUCING' | 'HALTED' | 'INVALID' | null;

/** What an order is. */
export type LastMomentMode = 'entry' | 'exit' | 'close' | 'flatten';

/** Inputs of {@link lastMomentVerdict}. Times are epoch ms of the apply layer's clock unless said otherwise. */
export interface LastMomentInput {
  mode: LastMomentMode;
  globalState: StateRead;
  symbolState: StateRead;
  /** The symbol's circuit breaker key exists (tripped, within its cooldown). */
  breakerOpen: boolean;
  /** The symbol's hold key exists. */
  holdActive: boolean;
  /** The symbol's `hold_sig` (null when none). */
  holdSig: string | null;
  /** A close's drift signature (closes only). */
  driftSig?: string;
  /** The older of the plan's two permits' `ts_ms` (issuers' clocks); EXECUTE only, null = unknown. */
  permitTsMs?: number | null;
  /** Validity of a permit from its `ts_ms`, ms. */
  permitMaxAgeMs: number;
  /** When the order was marked in flight (its `ts_ms`). */
  inflightTsMs: number;
  /** Longest allowed delay between marking in flight and sending, ms. */
  maxSendDelayMs: number;
  nowMs: number;
}

/** Reasons of a refusal (the plan's result reason). */
export const LAST_MOMENT_REASONS = ['trading_halted', 'breaker_open', 'trading_state_reducing', 'reconcile_hold_active', 'hold_changed', 'permit_expired', 'send_delayed'] as const;
/** One of {@link LAST_MOMENT_REASONS}. */
export type LastMomentReason = (typeof LAST_MOMENT_REASONS)[number];

/** Verdict: send, or the reason not to with a one-line detail. */
export type LastMomentVerdict = { ok: true } | { ok: false; reason: LastMomentReason; detail: string };

/** Decides whether the order may go out now (see the module invariants). */
export function lastMomentVerdict(i: LastMomentInput): LastMomentVerdict {
  const no = (reason: LastMomentReason, detail: string): LastMomentVerdict => ({ ok: false, reason, detail });
  if (i.mode !== 'flatten') {
    if (i.globalState === 'HALTED' || i.globalState === 'INVALID' || i.symbolState === 'HALTED' || i.symbolState === 'INVALID') {
      return no('trading_halted', `trading state ${i.globalState ?? 'unset'} (global) / ${i.symbolState ?? 'unset'} (symbol) just before sending`);
    }
    if (i.breakerOpen) return no('breaker_open', 'the symbol\'s circuit breaker tripped just before sending');
  }
  if (i.mode === 'entry' && (i.globalState === 'REDUCING' || i.symbolState === 'REDUCING')) return no('trading_state_reducing', 'trading state REDUCING just before sending an entry');
  if ((i.mode === 'entry' || i.mode === 'exit') && i.holdActive) return no('reconcile_hold_active', 'a hold was set just before sending');
  if (i.mode === 'close' && (!i.holdActive || i.holdSig !== (i.driftSig ?? ''))) return no('hold_changed', 'the hold or its drift signature changed just before sending');
  if (i.mode === 'entry' || i.mode === 'exit') {
    const ts = i.permitTsMs;
    if (ts === null || ts === undefined || !Number.isFinite(ts)) return no('permit_expired', 'the permits carry no usable ts_ms');
    if (i.nowMs - ts > i.permitMaxAgeMs) return no('permit_expired', `permit issued ${i.nowMs - ts} ms ago, valid for ${i.permitMaxAgeMs} ms`);
  }
  if (!Number.isFinite(i.inflightTsMs) || i.nowMs - i.inflightTsMs > i.maxSendDelayMs) {
    return no('send_delayed', `marked in flight ${i.nowMs - i.inflightTsMs} ms ago, longer than ${i.maxSendDelayMs} ms before sending`);
  }
  return { ok: true };
}
