/**
 * Sending an order and finding out, for certain, what happened to it (docs/architecture.md#exactly-once-execution).
 *
 * - An order is sent at most once per plan: the caller has moved the plan to stage `sending` and written
 *   the in-flight record first (`beginSend`); nothing here ever re-sends.
 * - `OutcomeUnknown` (503 "Unknown error", timeout) and any unexpected error after sending are resolved
 *   by looking the order up by its client order id, with back-off. Rate limits during lookups wait for
 *   the exchange's `Retry-After` instead of counting as answers. "Not found" is final only after
 *   `lookupAttempts` authoritative answers; without an authoritative answer the order stays in flight
 *   (`unresolved`) and the in-flight sweep tries again later.
 * - Errors that prove the order did not take effect (429/418, a rejection, auth, unreachable before
 *   sending, Binance's documented 100% failures: 503 "Service Unavailable.", -1001, -1008) are definitive.
 */
import type { Logger } from 'pino';
import { Banned, ExchangeError, OrderRejected, OutcomeUnknown, RateLimited, SendRefused, Unavailable } from '../../adapters/exchange/errors.js';
import type { ExchangeGateway, MarketOrderRequest, OrderInfo } from '../../ports/exchange.js';
import { sleep } from '../../lib/sleep.js';
import type { ApplyMetrics } from './metrics.js';

/** What happened to an order. `tsMs` is taken after the exchange's answer (the reconcile engine compares it with snapshot times). */
export type OrderOutcome =
  | { kind: 'order'; order: OrderInfo; tsMs: number; via: 'answer' | 'lookup' }
  | { kind: 'not_executed'; error: string; tsMs: number; notFound?: boolean }
  | { kind: 'rate_limited'; error: string; tsMs: number }
  /** The last-moment check (`beforeSend`) refused: nothing was sent. `reason` is the result reason. */
  | { kind: 'refused'; reason: string; error: string; tsMs: number }
  | { kind: 'unresolved'; error: string };

/** Dependencies of the executor. */
export interface ExecutorDeps {
  gateway: ExchangeGateway;
  logger: Logger;
  metrics: ApplyMetrics;
  lookupAttempts: number;
  lookupBackoffMs: number;
  /** Longest total wait for rate-limit back-offs during one resolution, ms. */
  maxRateLimitWaitMs?: number;
  signal: AbortSignal;
}

/** Order statuses after which nothing more fills (Binance USDⓈ-M common definitions, Order Status). */
const FINAL_STATUSES = new Set(['FILLED', 'CANCELED', 'REJECTED', 'EXPIRED', 'EXPIRED_IN_MATCH']);

/** True when nothing more of the order can fill: a final status, or its whole quantity filled. */
export function orderIsFinal(o: OrderInfo): boolean {
  return FINAL_STATUSES.has(o.status) || o.filledQty.gte(o.qty);
}

function describe(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}

/** Milliseconds to wait for a rate-limit error (Retry-After, or until a ban ends), or null when `err` is not one. */
export function rateLimitWaitMs(err: unknown): number | null {
  if (err instanceof RateLimited) return Math.max(0, err.retryAfterMs);
  if (err instanceof Banned) return Math.max(0, err.untilMs - Date.now());
  return null;
}

/**
 * Looks an order up by client order id until it is found in a final state, or `lookupAttempts`
 * authoritative "not found" answers were received.
 */
export async function resolveByLookup(d: ExecutorDeps, symbol: string, cid: string): Promise<OrderOutcome> {
  let notFound = 0;
  let lastErr = 'no answer';
  let lastSeen: OrderInfo | null = null;
  let rlWaited = 0;
  const maxRl = d.maxRateLimitWaitMs ?? 120_000;
  for (let attempt = 0; attempt < d.lookupAttempts * 3 && !d.signal.aborted; attempt++) {
    try {
      const o = await d.gateway.fetchOrderByClientId(symbol, cid);
      const tsMs = Date.now();
      if (o) {
        lastSeen = o;
        if (orderIsFinal(o)) {
          d.metrics.inflightResolutions.inc({ outcome: 'found' });
          return { kind: 'order', order: o, tsMs, via: 'lookup' };
        }
      } else {
        notFound++;
        if (notFound >= d.lookupAttempts) {
          d.metrics.inflightResolutions.inc({ outcome: 'not_found' });
          return { kind: 'not_executed', error: `order ${cid} not found after ${notFound} lookups`, tsMs, notFound: true };
        }
      }
    } catch (err) {
      const wait = rateLimitWaitMs(err);
      lastErr = describe(err);
      if (wait !== null) {
        if (rlWaited + wait > maxRl) break;
        rlWaited += wait;
        d.logger.warn({ symbol, client_order_id: cid, wait_ms: wait }, 'order lookup rate limited; waiting for Retry-After');
        await sleep(wait + 50, d.signal);
        attempt--;
        continue;
      }
    }
    await sleep(d.lookupBackoffMs * 2 ** Math.min(attempt, 5), d.signal);
  }
  if (lastSeen) {
    // Known to the exchange but not final after every attempt: it may still fill. Never record a fill so far
    // as the outcome (the ledger would miss the rest, and a close's one-close marker would be released while
    // the order can still fill): leave it in flight; the sweep looks it up again.
    d.metrics.inflightResolutions.inc({ outcome: 'unresolved' });
    return { kind: 'unresolved', error: `order ${cid} still ${lastSeen.status} (filled ${lastSeen.filledQty.toFixed()} of ${lastSeen.qty.toFixed()}) after every lookup` };
  }
  d.metrics.inflightResolutions.inc({ outcome: 'unresolved' });
  return { kind: 'unresolved', error: `order ${cid} outcome unknown: ${lastErr}` };
}

/**
 * One lookup of an order by client order id, used before an in-flight order is old enough for "not found"
 * to mean anything: only an order FOUND in a final state (or fully filled) is an answer; anything else
 * (not found yet, still open, an error) is null and the caller waits as before.
 */
export async function lookupFinalOnce(d: ExecutorDeps, symbol: string, cid: string): Promise<OrderOutcome | null> {
  try {
    const o = await d.gateway.fetchOrderByClientId(symbol, cid);
    if (o && orderIsFinal(o)) {
      d.metrics.inflightResolutions.inc({ outcome: 'found' });
      return { kind: 'order', order: o, tsMs: Date.now(), via: 'lookup' };
    }
  } catch {
    // no answer: the caller waits for the settle time and resolves as usual
  }
  return null;
}

/**
 * Sends one MARKET order and resolves its outcome. The caller has already written the in-flight record.
 * Never throws for exchange errors; returns the outcome.
 */
export async function placeAndResolve(d: ExecutorDeps, req: MarketOrderRequest): Promise<OrderOutcome> {
  const t0 = performance.now();
  let out: OrderOutcome;
  try {
    const o = await d.gateway.placeMarketOrder(req);
    const tsMs = Date.now();
    if (orderIsFinal(o)) out = { kind: 'order', order: o, tsMs, via: 'answer' };
    else out = await resolveByLookup(d, req.symbol, req.clientOrderId);
  } catch (err) {
    const tsMs = Date.now();
    if (err instanceof SendRefused) out = { kind: 'refused', reason: err.reason, error: err.message, tsMs };
    else if (err instanceof RateLimited || err instanceof Banned) out = { kind: 'rate_limited', error: describe(err), tsMs };
    else if (err instanceof OrderRejected || (err instanceof ExchangeError && !(err instanceof OutcomeUnknown) && !(err instanceof Unavailable))) {
      out = { kind: 'not_executed', error: describe(err), tsMs };
    } else if (err instanceof Unavailable) out = { kind: 'not_executed', error: describe(err), tsMs };
    else {
      d.logger.warn({ symbol: req.symbol, client_order_id: req.clientOrderId, err: describe(err) }, 'order outcome unknown; looking it up by client order id');
      out = await resolveByLookup(d, req.symbol, req.clientOrderId);
    }
  }
  d.metrics.orderLatency.observe({ symbol: req.symbol }, (performance.now() - t0) / 1000);
  return out;
}
