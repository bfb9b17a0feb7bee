/**
 * Binance's SIGNED request checks (USDⓈ-M futures "General Info" → "SIGNED endpoint security"):
 * `X-MBX-APIKEY` must name the account's key (-2014 missing/malformed, -2015 unknown), `timestamp`
 * must be within `recvWindow` (default 5000 ms, max 60000) of the server's time and at most 1000 ms in
 * the future (-1021), and `signature` must be the hex HMAC-SHA256 of the total params — the query string
 * followed by the request body, without the signature itself — under the account's secret (-1022).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { BinanceError } from './state.js';

/** The parsed parameters of a request: query and form body merged (the query string wins on a duplicate name, as Binance documents). */
export type Params = Record<string, string>;

/** Removes the `signature=<hex>` parameter from a raw query/body string and returns [rest, signature]. */
function stripSignature(raw: string): [string, string | undefined] {
  const parts = raw === '' ? [] : raw.split('&');
  let sig: string | undefined;
  const kept: string[] = [];
  for (const p of parts) {
    if (p.startsWith('signature=')) sig = decodeURIComponent(p.slice('signature='.length));
    else kept.push(p);
  }
  return [kept.join('&'), sig];
}

/** Hex HMAC-SHA256 of `payload` under `secret` (what a Binance client sends as `signature`). */
export function hmacHex(secret: string, payload: string): string {
  return createHmac('sha256', secret).update(payload).digest('hex');
}

/**
 * Checks a SIGNED request.
 * @param rawQuery query string without `?`
 * @param rawBody form-encoded body (`''` for none)
 * @param params query and body merged
 * @throws BinanceError 401 -2014/-2015 (key), 400 -1102 (no timestamp), 400 -1021 (timestamp), 400 -1022 (signature)
 */
export function checkSigned(
  apiKeyHeader: string | undefined,
  rawQuery: string,
  rawBody: string,
  params: Params,
  account: { apiKey: string; apiSecret: string },
  nowMs: number,
): void {
  if (!apiKeyHeader || !/^[A-Za-z0-9]{8,128}$/.test(apiKeyHeader)) throw new BinanceError(401, -2014, 'API-key format invalid.');
  if (apiKeyHeader !== account.apiKey) throw new BinanceError(401, -2015, 'Invalid API-key, IP, or permissions for action.');
  const tsRaw = params.timestamp;
  if (tsRaw === undefined || !/^\d+$/.test(tsRaw)) throw new BinanceError(400, -1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.");
  const recvWindow = params.recvWindow === undefined ? 5000 : Number(params.recvWindow);
  if (!Number.isInteger(recvWindow) || recvWindow <= 0 || recvWindow > 60000) {
    throw new BinanceError(400, -1131, 'recvWindow must be less than 60000');
  }
  const ts = Number(tsRaw);
  if (ts >= nowMs + 1000 || nowMs - ts > recvWindow) {
    throw new BinanceError(400, -1021, "Timestamp for this request is outside of the recvWindow.");
  }
  const [q, sigQ] = stripSignature(rawQuery);
  const [b, sigB] = stripSignature(rawBody);
  const sig = sigQ ?? sigB;
  if (!sig) throw new BinanceError(400, -1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.");
  const expected = Buffer.from(hmacHex(account.apiSecret, q + b), 'utf8');
  const got = Buffer.from(sig.toLowerCase(), 'utf8');
  if (expected.length !== got.length || !timingSafeEqual(expected, got)) throw new BinanceError(400, -1022, 'Signature for this request is not valid.');
}
