/**
 * Shared exchange back-off (docs/architecture.md#exactly-once-execution, seed 002's 418 ban): when any service is rate limited (HTTP 429,
 * `Retry-After`) or banned (HTTP 418, "banned until <ms>"), no service may call the exchange before that
 * time. The time is shared through Redis `quantum:exchange:backoff_until` (epoch ms, string) with its
 * reason in `quantum:exchange:backoff_reason`, raised atomically and only ever extended
 * (`exchangeBackoff-2.lua`).
 *
 * {@link withSharedBackoff} decorates a gateway:
 * - before every call it reads the back-off; while in force it throws `RateLimited{retryAfterMs = remaining}`
 *   or `Banned{untilMs}` WITHOUT calling the exchange;
 * - when a call throws `RateLimited`/`Banned` it raises the shared back-off (and a local copy, so this
 *   process honours it even if the Redis write fails) and rethrows;
 * - fail closed: when Redis cannot be read (down, or an unparseable value) the call is refused with
 *   `Unavailable`, because an unknown back-off may be a ban in force.
 * The back-off lives on the Redis server's clock (exchangeBackoff-2.lua), at most {@link MAX_BACKOFF_MS}.
 * Operators lift one with `p3 exchange-backoff clear` (or `DEL quantum:exchange:backoff_until
 * quantum:exchange:backoff_reason` as p3-operator).
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { keys } from '../redis/keys.js';
import { exchangeBackoff } from '../redis/scripts/index.js';
import type { ExchangeGateway } from '../../ports/exchange.js';
import { Banned, RateLimited, Unavailable } from './errors.js';

/** How long the keys outlive the back-off itself, ms (so operators can still see a just-expired one). */
const RETENTION_MS = 60_000;

/**
 * Longest back-off ever stored, ms: 3 days, Binance's longest IP ban ("IP bans scale from 2 minutes to 3 days",
 * Binance USDⓈ-M general info, LIMITS). A longer one can only come from a clock error.
 */
export const MAX_BACKOFF_MS = 3 * 24 * 3600_000;

/** The shared back-off as read from Redis. */
export interface BackoffState {
  /** Epoch ms (this process's clock) until which no call may be made (0 = none). */
  untilMs: number;
  reason: 'rate_limited' | 'banned' | null;
}

/**
 * Reads the shared back-off: its stored end, bounded by the key's PTTL (the Redis server's clock) and by
 * {@link MAX_BACKOFF_MS}, so a host clock behind the writer's never lengthens it beyond the key's life.
 * @throws Unavailable when Redis cannot be read or the stored value is unparseable (fail closed)
 */
export async function readBackoff(redis: Redis): Promise<BackoffState> {
  let res: Array<[Error | null, unknown]> | null;
  try {
    res = await redis.multi().mget(keys.exchangeBackoffUntil(), keys.exchangeBackoffReason()).pttl(keys.exchangeBackoffUntil()).exec();
  } catch (err) {
    throw new Unavailable(`shared exchange back-off unreadable (Redis: ${(err as Error).message}); refusing to call the exchange`);
  }
  const err = res?.find(([e]) => e)?.[0];
  if (!res || err) throw new Unavailable(`shared exchange back-off unreadable (${err?.message ?? 'aborted'}); refusing to call the exchange`);
  const [untilRaw, reasonRaw] = res[0]![1] as Array<string | null>;
  const pttl = Number(res[1]![1]);
  if (untilRaw === null || untilRaw === undefined) return { untilMs: 0, reason: null };
  if (!/^\d+$/.test(untilRaw) || !Number.isSafeInteger(Number(untilRaw))) throw new Unavailable(`shared exchange back-off unparseable (${JSON.stringify(untilRaw)}); refusing to call the exchange`);
  // its stored end by this host's clock, but never longer than the key lives (PTTL, the Redis server's clock: a
  // back-off this system wrote outlives its end by RETENTION_MS only) nor than the longest ban: a host whose clock
  // runs behind the writer's cannot be blocked for longer than the back-off itself (plus that retention)
  const leftMs = Math.max(0, Math.min(Number(untilRaw) - Date.now(), MAX_BACKOFF_MS, pttl >= 0 ? pttl : Number.POSITIVE_INFINITY));
  return { untilMs: leftMs > 0 ? Date.now() + leftMs : 0, reason: reasonRaw === 'banned' ? 'banned' : 'rate_limited' };
}

/**
 * Raises the shared back-off to end `durationMs` from now (on the Redis server's clock; never lowers it; at most
 * {@link MAX_BACKOFF_MS}).
 * @returns what is left of the back-off in force afterwards, ms
 * @throws Redis errors as thrown by ioredis
 */
export async function raiseBackoff(redis: Redis, durationMs: number, reason: 'rate_limited' | 'banned'): Promise<number> {
  return exchangeBackoff(redis, { durationMs, reason, retentionMs: RETENTION_MS, maxMs: MAX_BACKOFF_MS });
}

/**
 * Lifts the shared back-off (the operator's way out: `p3 exchange-backoff clear`).
 * @returns true when one was stored
 */
export async function clearBackoff(redis: Redis): Promise<boolean> {
  return Number(await redis.del(keys.exchangeBackoffUntil(), keys.exchangeBackoffReason())) > 0;
}

/** Options of {@link withSharedBackoff}. */
export interface SharedBackoffOptions {
  /** Called when a call is refused because of the back-off (for metrics). */
  onRefused?: (state: BackoffState) => void;
  /** Called when the back-off was raised after a 429/418 (for metrics). */
  onRaised?: (state: BackoffState) => void;
}

/**
 * Wraps `gateway` so that every call honours and feeds the shared back-off (see the module comment).
 * `close()` is passed through untouched.
 */
export function withSharedBackoff(gateway: ExchangeGateway, redis: Redis, logger?: Logger, opts: SharedBackoffOptions = {}): ExchangeGateway {
  let local: BackoffState = { untilMs: 0, reason: null };

  const guard = async () => {
    const shared = await readBackoff(redis);
    const state = shared.untilMs >= local.untilMs ? shared : local;
    const now = Date.now();
    if (state.untilMs > now) {
      opts.onRefused?.(state);
      if (state.reason === 'banned') throw new Banned(state.untilMs, `IP banned until ${state.untilMs} (shared exchange back-off); not calling the exchange`);
      throw new RateLimited(state.untilMs - now, `rate limited for another ${state.untilMs - now} ms (shared exchange back-off); not calling the exchange`);
    }
  };

  const feed = async (err: unknown) => {
    let state: BackoffState | null = null;
    if (err instanceof RateLimited) state = { untilMs: Date.now() + Math.max(0, err.retryAfterMs), reason: 'rate_limited' };
    else if (err instanceof Banned) state = { untilMs: err.untilMs, reason: 'banned' };
    if (!state) return;
    if (state.untilMs > Date.now() + MAX_BACKOFF_MS) state = { ...state, untilMs: Date.now() + MAX_BACKOFF_MS };
    if (state.untilMs > local.untilMs) local = state;
    try {
      const leftMs = await raiseBackoff(redis, Math.min(MAX_BACKOFF_MS, state.untilMs - Date.now()), state.reason as 'rate_limited' | 'banned');
      const inForce = Date.now() + leftMs;
      logger?.warn({ reason: state.reason, backoff_until_ms: inForce, retry_in_ms: leftMs }, `exchange ${state.reason === 'banned' ? 'ban (HTTP 418)' : 'rate limit (HTTP 429)'}: shared back-off for ${leftMs} ms`);
      opts.onRaised?.({ untilMs: inForce, reason: state.reason });
    } catch (e) {
      logger?.error({ err: (e as Error).message, backoff_until_ms: state.untilMs }, 'could not write the shared exchange back-off to Redis; honouring it locally');
    }
  };

  const wrap =
    <A extends unknown[], R>(fn: (...a: A) => Promise<R>) =>
    async (...a: A): Promise<R> => {
      await guard();
      try {
        return await fn(...a);
      } catch (err) {
        await feed(err);
        throw err;
      }
    };

  return {
    fetchPositions: wrap(() => gateway.fetchPositions()),
    symbolRules: wrap((s: string) => gateway.symbolRules(s)),
    placeMarketOrder: wrap((r) => gateway.placeMarketOrder(r)),
    fetchOrderByClientId: wrap((s: string, c: string) => gateway.fetchOrderByClientId(s, c)),
    serverTime: wrap(() => gateway.serverTime()),
    ...(gateway.fetchMarkPrices ? { fetchMarkPrices: wrap(() => gateway.fetchMarkPrices!()) } : {}),
    ...(gateway.fetchTrades ? { fetchTrades: wrap((s: string, from: string | null, limit: number) => gateway.fetchTrades!(s, from, limit)) } : {}),
    ...(gateway.fetchOrderById ? { fetchOrderById: wrap((s: string, id: string) => gateway.fetchOrderById!(s, id)) } : {}),
    ...(gateway.fetchPremiumIndex ? { fetchPremiumIndex: wrap(() => gateway.fetchPremiumIndex!()) } : {}),
    close: () => gateway.close(),
  };
}
