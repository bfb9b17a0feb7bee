/**
 * Circuit breaker per symbol: `GOVERNOR_BREAKER_MAX_ERRORS` or more `FAILED` results of the symbol in
 * `quantum:stream:apply.result` within `GOVERNOR_BREAKER_WINDOW_SEC` (stream ids are ms timestamps, so
 * XRANGE by time) trip the symbol to HALTED for `GOVERNOR_BREAKER_COOLDOWN_SEC` (a key with TTL),
 * recorded as one `CIRCUIT_BREAKER_TRIPPED` event in `quantum:stream:governor.events` per trip
 * (`breakerTrip-3.lua`). Failures up to a trip never count again, so a breaker does not re-trip on the
 * same failures after its cooldown.
 */
import type { Redis } from 'ioredis';
import { EVENTS_MAXLEN, STREAMS, keys } from '../../adapters/redis/keys.js';
import { breakerTrip } from '../../adapters/redis/scripts/index.js';
import type { FailureCounter } from './failure-window.js';
import { EVENT } from '../../domain/events.js';

/** Breaker settings (seconds). */
export interface BreakerSettings {
  windowSec: number;
  maxErrors: number;
  cooldownSec: number;
}

/** Outcome of {@link checkBreaker}. */
export interface BreakerState {
  open: boolean;
  /** True when this call tripped it (the event was written by this call). */
  tripped: boolean;
  /** FAILED results counted (0 when the breaker was already open). */
  errors: number;
}

/**
 * The breaker's two keys as the caller already read them (in its own MULTI): `EXISTS` of
 * `quantum:governor:breaker:<SYM>` and `GET` of `quantum:governor:breaker_last_trip:<SYM>`.
 */
export interface BreakerRead {
  openRaw: unknown;
  lastRaw: unknown;
}

/** Result entries read per round trip; the whole window is scanned newest-first, page by page, until the limit is reached. */
const PAGE = 1000;

/**
 * Returns whether the symbol's breaker is open, tripping it first when the failures in the window
 * reach the limit.
 * @param read the breaker keys, when the caller read them already (saves a round trip)
 * @param failures the governor's incremental view of the window's FAILED results (`failure-window.ts`,
 *   one round trip per check); without it the window is scanned in full (up to window × rate entries)
 */
export async function checkBreaker(redis: Redis, symbol: string, s: BreakerSettings, nowMs = Date.now(), failures?: FailureCounter, read?: BreakerRead): Promise<BreakerState> {
  let openRaw: unknown;
  let lastRaw: unknown;
  if (read) {
    ({ openRaw, lastRaw } = read);
  } else {
    const res = await redis.multi().exists(keys.governorBreaker(symbol)).get(keys.governorBreakerLastTrip(symbol)).exec();
    if (!res) throw new Error('breaker read aborted');
    const err = res.find(([e]) => e)?.[0];
    if (err) throw err;
    openRaw = res[0]?.[1];
    lastRaw = res[1]?.[1];
  }
  if (Number(openRaw) === 1) return { open: true, tripped: false, errors: 0 };
  // a last-trip time in the future (a governor with a fast clock, a bad edit) must not hide failures: ignore it
  const lastTripRaw = Number(lastRaw ?? 0) || 0;
  const lastTrip = lastTripRaw > nowMs ? 0 : lastTripRaw;
  const from = Math.max(nowMs - s.windowSec * 1000, lastTrip + 1);
  // Count the symbol's FAILED results in the window, newest first, page by page (never a truncated view
  // that could undercount under heavy traffic), stopping as soon as the limit is reached.
  let errors = failures ? await failures.count(symbol, from, nowMs) : 0;
  let end = '+';
  for (; !failures; ) {
    const page = await redis.xrevrange(STREAMS.applyResult, end, String(from), 'COUNT', PAGE);
    for (const [, f] of page) {
      let sym = '';
      let status = '';
      for (let i = 0; i + 1 < f.length; i += 2) {
        if (f[i] === 'symbol') sym = f[i + 1] as string;
        else if (f[i] === 'status') status = f[i + 1] as string;
      }
      if (sym === symbol && status === 'FAILED') errors++;
    }
    if (errors >= s.maxErrors || page.length < PAGE) break;
    end = `(${page[page.length - 1]![0]}`;
  }
  if (errors < s.maxErrors) return { open: false, tripped: false, errors };
  const until = nowMs + s.cooldownSec * 1000;
  const detail = { symbol, errors, window_sec: s.windowSec, cooldown_sec: s.cooldownSec, tripped_ts_ms: nowMs, until_ms: until };
  const event = {
    event: EVENT.CIRCUIT_BREAKER_TRIPPED,
    symbol,
    errors: String(errors),
    window_sec: String(s.windowSec),
    cooldown_sec: String(s.cooldownSec),
    until_ms: String(until),
    ts_ms: String(nowMs),
  };
  const reply = await breakerTrip(redis, { symbol, cooldownSec: s.cooldownSec, nowMs, detailJson: JSON.stringify(detail), event, eventsMaxlen: EVENTS_MAXLEN, lastTripMs: lastTrip, lastTripTtlSec: s.windowSec + s.cooldownSec + 3600 });
  return { open: true, tripped: reply === 'tripped', errors };
}
