/**
 * Where the user data stream lives for an exchange configuration (Binance "User Data Streams › Connect"):
 * REST `https://fapi.binance.com` + WebSocket `wss://fstream.binance.com` in production; the demo futures
 * endpoints `https://demo-fapi.binance.com` + `wss://fstream.binancefuture.com`; for any other base URL (the
 * paper exchange) the same host with `ws://` / `wss://`. `P33_USER_STREAM_WS_URL` overrides the WebSocket.
 */
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
