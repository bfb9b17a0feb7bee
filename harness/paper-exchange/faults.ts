/**
 * Fault injection of the paper exchange (docs/architecture.md#interfaces, `POST /admin/faults`).
 *
 * A fault applies to every exchange request (never `/admin`) whose path contains one of its `endpoints`
 * fragments (none = every path) and, when `methods` is given, whose HTTP method is one of them, until it has hit `count` requests or `duration_ms` has passed; with
 * neither, until `DELETE /admin/faults`. Kinds:
 * - `http_429`: HTTP 429, `Retry-After: retry_after_s` (default 1), Binance -1003 body; nothing executed.
 * - `http_418`: HTTP 418, IP banned until now + `retry_after_s` (default 2) s; nothing executed.
 * - `http_503_unknown`: the request IS executed (an order is placed), then the reply is Binance's HTTP 503
 *   "Unknown error, please check your request or try again later." (execution status unknown).
 * - `timeout`: the request IS executed, then the reply is never sent (or after `latency_ms` when given).
 *
 * The kinds below follow Binance's HTTP return codes and 503 variants
 * (https://developers.binance.com/docs/derivatives/usds-margined-futures/general-info, "HTTP Return Codes" and
 * "HTTP 503 Status: Message Variants & Handling") and its error-code page
 * (https://developers.binance.com/docs/derivatives/usds-margined-futures/error-code):
 * - `http_408`: "HTTP 408 return code is used when a timeout has occurred while waiting for a response from the
 *   backend server": HTTP 408 with -1007 "Timeout waiting for response from backend server. Send status unknown;
 *   execution status unknown." The request IS executed unless `executed: false` (both are possible on Binance).
 * - `http_503_unavailable`: HTTP 503 "Service Unavailable." — "a failure API operation", "100% failure",
 *   "Rate-limit counting: not counted": nothing executed, no weight or order counted.
 * - `http_1001`: HTTP 503 with -1001 DISCONNECTED "Internal error; unable to process your request. Please try
 *   again." — "a failure API operation and you can resend your request": nothing executed.
 * - `http_1008`: HTTP 503 with -1008 "Request throttled by system-level protection. Reduce-only/close-position
 *   orders are exempt. Please try again." Applies to new orders only (`POST /fapi/v1/order`, as the page lists);
 *   an order that reduces exposure (`reduceOnly=true` with positionSide BOTH, `closePosition=true`, LONG+SELL,
 *   SHORT+BUY) is exempt: it is served normally and does not use up the fault. Nothing executed, not counted.
 * - `http_403`: "HTTP 403 return code is used when the WAF Limit (Web Application Firewall) has been violated":
 *   an HTML 403 page from the firewall (no Binance `{code,msg}` body); nothing executed.
 * `http_503_unknown` and `http_408` take `executed` (default true): false = the backend never ran the request.
 * - `latency`: every matching request is delayed by `latency_ms` (default 500) and then served normally.
 * - `partial_fill`: a new MARKET order (`POST /fapi/v1/order` only; no other request consumes it) fills
 *   `fill_ratio` (default 0.5) of its quantity, rounded DOWN to the lot step, and ends `EXPIRED`, as Binance
 *   reports a MARKET order cut short (price protection, thin book): "EXPIRED — the order was canceled
 *   according to the order type's rules (e.g. ... MARKET orders that partially fill)"
 *   (https://developers.binance.com/docs/derivatives/usds-margined-futures/common-definition, Order Status).
 */
import { z } from 'zod';

/** Fault kinds. */
export const FAULT_KINDS = ['http_429', 'http_418', 'http_503_unknown', 'timeout', 'latency', 'partial_fill', 'http_408', 'http_503_unavailable', 'http_1001', 'http_1008', 'http_403'] as const;
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
  /** `http_503_unknown` / `http_408`: whether the request is executed before the error reply (default true). */
  executed: z.boolean().optional(),
  endpoints: z.array(z.string().min(1)).optional(),
  /** HTTP methods it applies to (e.g. `["POST"]`: order placement, not the order query); none = all. */
  methods: z.array(z.enum(['GET', 'POST', 'PUT', 'DELETE'])).optional(),
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
   * (`partial_fill` and `http_1008` apply to new orders only: `POST .../order`; `http_1008` not to an order
   * that `reducesExposure`).
   */
  decide(path: string, nowMs: number, method = 'GET', reducesExposure = false): FaultDecision {
    let delayMs = 0;
    let fault: ActiveFault | null = null;
    const newOrder = method === 'POST' && path.endsWith('/order');
    for (const f of this.list(nowMs)) {
      if (f.endpoints && f.endpoints.length > 0 && !f.endpoints.some((e) => path.includes(e))) continue;
      if (f.methods && f.methods.length > 0 && !f.methods.includes(method.toUpperCase() as 'GET')) continue;
      if (f.kind === 'partial_fill' && !newOrder) continue;
      if (f.kind === 'http_1008' && (!newOrder || reducesExposure)) continue;
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
