/**
 * Trading state in Redis: global `quantum:governor:trading_state` and per symbol
 * `quantum:governor:trading_state:<SYM>`, hashes `{state, reason, ts_ms, by}`; a change is recorded as a
 * `TRADING_STATE_SET` event in `quantum:stream:governor.events` in the same MULTI. Set by an operator
 * (`p3 trading-state set`, the console), read by the governor; `p3 status` reads it with
 * src/read-model/trading-state.ts.
 */
import type { Redis } from 'ioredis';
import { EVENTS_MAXLEN, STREAMS, keys } from '../../adapters/redis/keys.js';
import type { TradingState } from '../../domain/governor.js';
import { checkOperatorText } from '../../domain/operator-text.js';
import { EVENT } from '../../domain/events.js';

/**
 * Sets the trading state of `symbol` (or the global one when `symbol` is undefined) and records the event.
 * @throws OperatorTextError for an empty reason or one with control characters (nothing written)
 */
export async function setTradingState(redis: Redis, opts: { symbol?: string; state: TradingState; reason: string; by: string; nowMs?: number }): Promise<void> {
  checkOperatorText(opts.reason);
  checkOperatorText(opts.by, 'by');
  const ts = String(opts.nowMs ?? Date.now());
  const key = keys.tradingState(opts.symbol);
  const res = await redis
    .multi()
    .hset(key, { state: opts.state, reason: opts.reason, ts_ms: ts, by: opts.by })
    .xadd(STREAMS.governorEvents, 'MAXLEN', '~', EVENTS_MAXLEN, '*', 'event', EVENT.TRADING_STATE_SET, 'scope', opts.symbol ?? 'global', 'symbol', opts.symbol ?? '', 'state', opts.state, 'reason', opts.reason, 'by', opts.by, 'ts_ms', ts)
    .exec();
  const err = res?.find(([e]) => e)?.[0];
  if (!res || err) throw err ?? new Error('trading state write aborted');
}
