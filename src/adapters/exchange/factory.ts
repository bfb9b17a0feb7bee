/**
 * Exchange configuration from the environment and the gateway factory (docs/architecture.md#interfaces).
 *
 * | variable | default | meaning |
 * |---|---|---|
 * | `EXCHANGE` | `paper` | `paper` (any Binance-compatible base URL) or `binanceusdm` (Binance USDⓈ-M) |
 * | `EXCHANGE_BASE_URL` | — | base URL, e.g. `http://127.0.0.1:8900`; required for `paper`, optional override for `binanceusdm` |
 * | `EXCHANGE_API_KEY` / `EXCHANGE_API_SECRET` | — | required: HMAC key pair |
 * | `EXCHANGE_DEMO` (alias `EXCHANGE_TESTNET`) | `false` | `binanceusdm` only: Binance's demo futures endpoint (demo-fapi.binance.com) instead of production |
 * | `EXCHANGE_RECV_WINDOW_MS` | `5000` | `recvWindow` of signed requests (1..60000) |
 * | `EXCHANGE_TIMEOUT_MS` | `10000` | HTTP timeout per request; a timed-out order is `OutcomeUnknown` |
 * | `EXCHANGE_SYNC_TIME` | `true` | sign with the exchange's clock (`/fapi/v1/time`, refreshed every 5 min) |
 * | `EXCHANGE_CLIENT_RATE_LIMIT` | `true` for binanceusdm, `false` for paper | ccxt's client-side throttle (`enableRateLimit`) |
 */
import { z } from 'zod';
import { ConfigError, envz, parseEnv, type Env } from '../../config/env.js';
import type { ExchangeGateway } from '../../ports/exchange.js';
import { createCcxtGateway, type CcxtGatewayConfig, type CcxtGatewayTestOptions } from './ccxt.js';
import { isPlaceholderSecret } from '../../config/keys.js';

/** Validated exchange configuration. */
export type ExchangeConfig = CcxtGatewayConfig;

const SHAPE = {
  EXCHANGE: z.enum(['paper', 'binanceusdm']).default('paper'),
  EXCHANGE_BASE_URL: z.string().regex(/^https?:\/\/[^\s/]+(\/[^\s]*)?$/, 'must be an http(s):// URL').optional(),
  EXCHANGE_API_KEY: z.string().optional(),
  EXCHANGE_API_SECRET: z.string().optional(),
  EXCHANGE_DEMO: envz.bool(false),
  EXCHANGE_TESTNET: envz.bool(false),
  EXCHANGE_RECV_WINDOW_MS: envz.int(5000, 1, 60000),
  EXCHANGE_TIMEOUT_MS: envz.int(10000, 100, 600000),
  EXCHANGE_SYNC_TIME: envz.bool(true),
  EXCHANGE_CLIENT_RATE_LIMIT: z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined) return undefined;
      const l = v.toLowerCase();
      if (['true', '1', 'yes', 'on'].includes(l)) return true;
      if (['false', '0', 'no', 'off'].includes(l)) return false;
      ctx.addIssue({ code: 'custom', message: 'must be true or false' });
      return z.NEVER;
    }),
};

/**
 * Reads the exchange variables.
 * @throws ConfigError naming the variable (missing or placeholder key/secret, missing base URL for paper, bad number)
 */
export function parseExchangeConfig(env: Env): ExchangeConfig {
  const e = parseEnv(SHAPE, env);
  if (e.EXCHANGE === 'paper' && !e.EXCHANGE_BASE_URL) throw new ConfigError('EXCHANGE_BASE_URL', 'required when EXCHANGE=paper (the paper exchange URL, e.g. http://127.0.0.1:8900)');
  if (!e.EXCHANGE_API_KEY) throw new ConfigError('EXCHANGE_API_KEY', 'required');
  if (!e.EXCHANGE_API_SECRET) throw new ConfigError('EXCHANGE_API_SECRET', 'required');
  for (const name of ['EXCHANGE_API_KEY', 'EXCHANGE_API_SECRET'] as const) {
    if (isPlaceholderSecret(e[name] ?? '')) throw new ConfigError(name, "is the template's placeholder: set the exchange API credentials (the paper exchange prints its pair at start)");
  }
  return {
    exchange: e.EXCHANGE,
    baseUrl: e.EXCHANGE_BASE_URL,
    apiKey: e.EXCHANGE_API_KEY,
    apiSecret: e.EXCHANGE_API_SECRET,
    demo: e.EXCHANGE_DEMO || e.EXCHANGE_TESTNET,
    recvWindowMs: e.EXCHANGE_RECV_WINDOW_MS,
    timeoutMs: e.EXCHANGE_TIMEOUT_MS,
    syncTime: e.EXCHANGE_SYNC_TIME,
    clientRateLimit: e.EXCHANGE_CLIENT_RATE_LIMIT ?? e.EXCHANGE === 'binanceusdm',
  };
}

/** Creates the gateway for `cfg` (ccxt `binanceusdm` for both kinds; `paper` is a base URL). Sends nothing yet. */
export function createExchangeGateway(cfg: ExchangeConfig, test: CcxtGatewayTestOptions = {}): ExchangeGateway {
  return createCcxtGateway(cfg, test);
}
