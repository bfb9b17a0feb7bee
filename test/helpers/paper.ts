/**
 * Typed helpers over the paper exchange's admin HTTP API (docs/architecture.md#interfaces) for tests. Each throws when the
 * admin API answers with a non-2xx status (message = its `error`).
 */
import type { FaultSpec, PaperOrder, PaperTrade } from '../../harness/paper-exchange/index.js';

export { startPaperExchange, type PaperExchange } from '../../harness/paper-exchange/index.js';

/** A position as `GET /admin/positions` reports it (decimal strings). */
export interface AdminPosition {
  positionAmt: string;
  entryPrice: string;
  markPrice: string;
}

/** One exchange request as logged by the paper exchange. */
export interface AdminRequest {
  ts_ms: number;
  method: string;
  path: string;
  status: number;
}

async function call<T>(url: string, method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  const json = text === '' ? null : (JSON.parse(text) as unknown);
  if (!res.ok) throw new Error(`paper admin ${method} ${path} -> ${res.status}: ${(json as { error?: string } | null)?.error ?? text}`);
  return json as T;
}

/** A manual trade at the mark price (`POST /admin/trade`). Returns the logged order and the new position. */
export function adminTrade(url: string, symbol: string, side: 'BUY' | 'SELL', qty: string): Promise<{ order: PaperOrder; position: AdminPosition }> {
  return call(url, 'POST', '/admin/trade', { symbol, side, qty });
}

/**
 * The exchange's own reducing order (`POST /admin/liquidate`, `/admin/adl`, `/admin/settle`): a liquidation
 * (client order id `autoclose-…`), an ADL (`adl_autoclose`) or a settlement (`settlement_autoclose-…`) of `qty`
 * (default the whole position). Returns the logged order and the new position.
 */
export function adminVenueClose(url: string, kind: 'liquidate' | 'adl' | 'settle', symbol: string, qty?: string): Promise<{ order: PaperOrder; position: AdminPosition }> {
  return call(url, 'POST', `/admin/${kind}`, { symbol, ...(qty === undefined ? {} : { qty }) });
}

/** Moves every order and trade `ms` into the past (`POST /admin/age`): records older than REST serves. */
export async function adminAge(url: string, ms: number): Promise<void> {
  await call(url, 'POST', '/admin/age', { ms });
}

/** Every fill on the account (`GET /admin/trades`), oldest first. */
export function adminTrades(url: string): Promise<PaperTrade[]> {
  return call(url, 'GET', '/admin/trades');
}

/** Every symbol's position (`GET /admin/positions`), flat ones as `"0"`. */
export function adminPositions(url: string): Promise<Record<string, AdminPosition>> {
  return call(url, 'GET', '/admin/positions');
}

/** Sets a position outright (`POST /admin/positions`). */
export function adminSetPosition(url: string, symbol: string, amount: string, entryPrice?: string): Promise<AdminPosition> {
  return call(url, 'POST', '/admin/positions', { symbol, amount, ...(entryPrice ? { entry_price: entryPrice } : {}) });
}

/** Every order received, accepted or not (`GET /admin/orders`). */
export function adminOrders(url: string): Promise<PaperOrder[]> {
  return call(url, 'GET', '/admin/orders');
}

/** Installs a fault (`POST /admin/faults`). */
export function adminFaults(url: string, fault: FaultSpec): Promise<unknown> {
  return call(url, 'POST', '/admin/faults', fault);
}

/** Removes every fault (`DELETE /admin/faults`). */
export async function clearFaults(url: string): Promise<void> {
  await call(url, 'DELETE', '/admin/faults');
}

/** Sets a symbol's mark price (`POST /admin/mark-price`). */
export function setMarkPrice(url: string, symbol: string, price: string): Promise<AdminPosition> {
  return call(url, 'POST', '/admin/mark-price', { symbol, price });
}

/** Sets the index price apart from the mark (`POST /admin/index-price`). */
export function setIndexPrice(url: string, symbol: string, price: string): Promise<AdminPosition & { indexPrice: string }> {
  return call(url, 'POST', '/admin/index-price', { symbol, price });
}

/** Every exchange request received (`GET /admin/requests`). */
export function adminRequests(url: string): Promise<AdminRequest[]> {
  return call(url, 'GET', '/admin/requests');
}

/** Clears the request log (`DELETE /admin/requests`). */
export async function clearRequests(url: string): Promise<void> {
  await call(url, 'DELETE', '/admin/requests');
}

/** Switches hedge mode on or off (`POST /admin/position-mode`). */
export async function setPositionMode(url: string, dual: boolean): Promise<void> {
  await call(url, 'POST', '/admin/position-mode', { dual });
}

/** A user data stream fault (`POST /admin/faults` with kind ws_drop | ws_silence | ws_delay | listen_key_expire). */
export function adminWsFault(url: string, fault: { kind: 'ws_drop' | 'ws_silence' | 'ws_delay' | 'listen_key_expire'; duration_ms?: number; latency_ms?: number }): Promise<unknown> {
  return call(url, 'POST', '/admin/faults', fault);
}
