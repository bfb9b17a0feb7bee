/**
 * Where the user data stream lives for an exchange configuration (Binance "User Data Streams › Connect"):
 * REST `https://fapi.binance.com` + WebSocket `wss://fstream.binance.com` in production; the demo futures
 * endpoints `https://demo-fapi.binance.com` + `wss://fstream.binancefuture.com`; for any other base URL (the
 * paper exchange) the same host with `ws://` / `wss://`. `P33_USER_STREAM_WS_URL` overrides the WebSocket.
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { raiseBackoff, readBackoff } from '../backoff.js';
import { BinanceHttpError, mapExchangeError } from '../ccxt.js';
import { Banned, RateLimited } from '../errors.js';
import type { ExchangeConfig } from '../factory.js';

/** REST and WebSocket base URLs of the user data stream (no trailing slash). */
export interface UserStreamEndpoints {
  restBaseUrl: string;
  wsBaseUrl: string;
}

/** Derives the endpoints; `wsOverride` (`P33_USER_STREAM_WS_URL`) wins for the WebSocket. */
export function userStreamEndpoints(cfg: Pick<ExchangeConfig, 'exchange' | 'baseUrl' | 'demo'>, wsOverride?: string): UserStreamEndpoints {
  const strip = (u: string) => u.replace(/\/+$/, '');
  let rest: string;
  let ws: string;
  if (cfg.baseUrl) {
    rest = strip(cfg.baseUrl);
    ws = rest.replace(/^http(s?):\/\//, 'ws$1://');
  } else if (cfg.demo) {
    rest = 'https://demo-fapi.binance.com';
    ws = 'wss://fstream.binancefuture.com';
  } else {
    rest = 'https://fapi.binance.com';
    ws = 'wss://fstream.binance.com';
  }
  return { restBaseUrl: rest, wsBaseUrl: wsOverride ? strip(wsOverride) : ws };
}

/**
 * The user data stream client's hooks onto the shared exchange back-off (backoff.ts): no listen key or time
 * request while a 429/418 back-off stands (`beforeRequest` throws), and a 429/418 answer raises it for every
 * service (`onHttpError`), as the REST gateway does.
 */
export function sharedBackoffHooks(redis: Redis, logger: Logger): { beforeRequest: () => Promise<void>; onHttpError: (status: number, code: number | null, msg: string, retryAfterS: number | null) => Promise<void> } {
  return {
    beforeRequest: async () => {
      const b = await readBackoff(redis);
      if (b.untilMs > Date.now()) throw new Error(`shared exchange back-off (${b.reason}) until ${b.untilMs}: not calling the exchange`);
    },
    onHttpError: async (status, code, msg, retryAfterS) => {
      const e = mapExchangeError(new BinanceHttpError(status, code, msg, retryAfterS), 'read');
      if (e instanceof RateLimited) await raiseBackoff(redis, e.retryAfterMs, 'rate_limited');
      else if (e instanceof Banned) await raiseBackoff(redis, e.untilMs - Date.now(), 'banned');
      else return;
      logger.warn({ status, code }, `user data stream: exchange ${status === 418 ? 'ban' : 'rate limit'}; shared back-off raised`);
    },
  };
}
