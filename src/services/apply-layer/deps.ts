/**
 * What every apply-layer handler is given (configuration, connections, metrics, test seams). A module of its own
 * below every step of the staircase (see index.ts), so each step can take it without importing another.
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { ExchangeGateway } from '../../ports/exchange.js';
import type { ApplyConfig } from './config.js';
import type { ExecutorDeps } from './executor.js';
import type { ApplyMetrics } from './metrics.js';
import type { PermitWaker } from './permit-waker.js';

/** Test seams. `afterSend` runs after the order's answer and before recording; throwing simulates a crash. */
export interface ApplyHooks {
  afterSend?: (clientOrderId: string, signal: AbortSignal) => Promise<void>;
  /**
   * Test seam: runs inside the adapter at the last moment before an order request goes out, before the
   * last-moment check (simulates the seconds an order can wait in a client throttle queue).
   */
  beforeOrderRequest?: (clientOrderId: string) => Promise<void>;
}

/** Everything a handler needs. `gateway` is null in dry_run (the exchange is never touched). */
export interface ApplyDeps {
  cfg: ApplyConfig;
  redis: Redis;
  gateway: ExchangeGateway | null;
  logger: Logger;
  metrics: ApplyMetrics;
  instanceId: string;
  hooks: ApplyHooks;
  signal: AbortSignal;
  /** Wakes plans waiting for their permits on the permits' notifications; null = fallback re-reads only. */
  waker: PermitWaker | null;
}

/**
 * What the executor needs of `d`.
 * @throws Error in dry_run (no exchange gateway: nothing can be sent or looked up)
 */
export function executorDeps(d: ApplyDeps): ExecutorDeps {
  if (!d.gateway) throw new Error('no exchange gateway (dry_run)');
  return { gateway: d.gateway, logger: d.logger, metrics: d.metrics, lookupAttempts: d.cfg.lookupAttempts, lookupBackoffMs: d.cfg.lookupBackoffMs, signal: d.signal };
}
