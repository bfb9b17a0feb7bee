/**
 * Fault injection of the paper exchange (DESIGN §10, `POST /admin/faults`).
 *
 * A fault applies to every exchange request (never `/admin`) whose path contains one of its `endpoints`
 * fragments (none = every path), until it has hit `count` requests or `duration_ms` has passed; with
 * neither, until `DELETE /admin/faults`. Kinds:
 * - `http_429`: HTTP 429, `Retry-After: retry_after_s` (default 1), Binance -1003 body; nothing executed.
 * - `http_418`: HTTP 418, IP banned until now + `retry_after_s` (default 2) s; nothing executed.
 * - `http_503_unknown`: the request IS executed (an order is placed), then the reply is Binance's HTTP 503
 *   "Unknown error, please check your request or try again later." (execution status unknown).
 * - `timeout`: the request IS executed, then the reply is never sent (or after `latency_ms` when given).
 * - `latency`: every matching request is delayed by `latency_ms` (default 500) and then served normally.
 * - `partial_fill`: a new MARKET order (`POST /fapi/v1/order` only; no other request consumes it) fills
 *   `fill_ratio` (default 0.5) of its quantity, rounded DOWN to the lot step, and ends `EXPIRED`, as Binance
 *   reports a MARKET order cut short (price protection, thin book): "EXPIRED — the order was canceled
 *   according to the order type's rules (e.g. ... MARKET orders that partially fill)"
 *   (https://developers.binance.com/docs/derivatives/usds-margined-futures/common-definition, Order Status).
 */
import { z } from 'zod';

/** Fault kinds. */
export const FAULT_KINDS = ['http_429', 'http_418', 'http_503_unknown', 'timeout', 'latency', 'partial_fill'] as const;
/** One of {@link FAULT_KINDS}. */
export type FaultKind = (typeof FAULT_KINDS)[number];

/** Body of `POST /admin/faults`. */
export const FaultSpecSchema = z.object({
  kind: z.enum(FAULT_KINDS),
  count: z.number().int().positive().optional(),
  duration_ms: z.number().int().positive().optional(),
  latency_ms: z.number().int().nonnegative().optional(),
  retry_after_s: z.number().int().nonnegative().optional(),
  /** `partial_fill`: fraction of the quantity that fills, 0 <= fill_ratio < 1. */
  fill_ratio: z.number().min(0).lt(1).optional(),
  endpoints: z.array(z.string().min(1)).optional(),
});
/** A fault as posted to `POST /admin/faults` (validated by {@link FaultSpecSchema}). */
export type FaultSpec = z.infer<typeof FaultSpecSchema>;

/** An installed fault with its remaining budget. */
export interface ActiveFault extends FaultSpec {
  id: number;
  /** Epoch ms after which the fault is gone (duration_ms), or null. */
  expiresAtMs: number | null;
  /** Requests it still applies to (count), or null. */
  remaining: number | null;
  /** Requests it has hit so far. */
  hits: number;
}

/** What the server must do with one request. */
export interface FaultDecision {
  /** Delay before anything else, ms (sum of matching latency faults). */
  delayMs: number;
  /** The first matching non-latency fault, if any. */
  fault: ActiveFault | null;
}

/** The set of installed faults. */
export class FaultTable {
  private faults: ActiveFault[] = [];
  private nextId = 1;

  /** Installs a fault; returns it. */
  add(spec: FaultSpec, nowMs: number): ActiveFault {
    const f: ActiveFault = {
      ...spec,
      id: this.nextId++,
      expiresAtMs: spec.duration_ms !== undefined ? nowMs + spec.duration_ms : null,
      remaining: spec.count ?? null,
      hits: 0,
    };
    this.faults.push(f);
    return f;
  }

  /** Removes every fault. */
  clear(): void {
    this.faults = [];
  }

  /** Faults still in force. */
  list(nowMs: number): ActiveFault[] {
    this.faults = this.faults.filter((f) => (f.expiresAtMs === null || nowMs < f.expiresAtMs) && (f.remaining === null || f.remaining > 0));
    return [...this.faults];
  }

  /**
   * Decides the faults for a request `method path`, consuming one unit of every fault that applies
   * (`partial_fill` applies to new orders only: `POST .../order`).
   */
  decide(path: string, nowMs: number, method = 'GET'): FaultDecision {
    let delayMs = 0;
    let fault: ActiveFault | null = null;
    for (const f of this.list(nowMs)) {
      if (f.endpoints && f.endpoints.length > 0 && !f.endpoints.some((e) => path.includes(e))) continue;
      if (f.kind === 'partial_fill' && !(method === 'POST' && path.endsWith('/order'))) continue;
      if (f.kind === 'latency') {
        delayMs += f.latency_ms ?? 500;
      } else if (fault === null) {
        fault = f;
      } else continue;
      f.hits++;
      if (f.remaining !== null) f.remaining--;
    }
    return { delayMs, fault };
  }
}
