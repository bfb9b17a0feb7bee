/**
 * Metrics of the apply layer (port 8043). Names: `apply_*` for plans; the seeds' exact
 * `reconcile_close_*` names for RECONCILE_CLOSE (seed 002). Counters with known label sets are
 * initialised at start so dashboards and alerts see zeros before the first event (seed 002).
 */
import { Counter, Histogram, type Registry } from 'prom-client';
import { RESULT_STATUSES } from '../../domain/result.js';
import { CLOSE_RULES } from '../../domain/close-guardrails.js';
import { SEND_GATE_REASONS } from '../../domain/send-gate.js';
import { STREAMS } from '../../adapters/redis/keys.js';

/** Every metric of the service. */
export interface ApplyMetrics {
  plansConsumed: Counter<string>;
  results: Counter<'symbol' | 'status'>;
  orderLatency: Histogram<'symbol'>;
  permitWait: Histogram<'outcome'>;
  permitSignatureInvalid: Counter<'symbol' | 'issuer'>;
  /** Genuine permits of this plan id and entry decided for another plan payload (`SKIPPED permit_plan_mismatch`). */
  permitPlanMismatch: Counter<'symbol' | 'issuer'>;
  inflightResolutions: Counter<'outcome'>;
  closeConsumed: Counter<'symbol'>;
  closeExecuted: Counter<'symbol' | 'status'>;
  closeRejected: Counter<'symbol' | 'reason'>;
  closeGuardrailFail: Counter<'symbol' | 'rule'>;
  /** Orders the send-time gate refused (src/domain/send-gate.ts), by reason. */
  sendGated: Counter<'symbol' | 'reason'>;
  /** Pre-send queries of a plan's client order id (P3_CLAIM_DURABILITY=exchange-query), by outcome. */
  claimQueries: Counter<'outcome'>;
  /** `WAIT` after a claim (P3_CLAIM_DURABILITY=replica-wait), by outcome. */
  claimWaits: Counter<'outcome'>;
  /** Entries whose handler failed repeatedly and that were parked (kept pending, retried later), by stream. */
  entriesParked: Counter<'stream'>;
}

/** Outcomes of the pre-send query: not needed (plan newer than the Redis epoch), nothing sent before, an order found (its result recovered), no answer. */
export const CLAIM_QUERY_OUTCOMES = ['not_needed', 'not_found', 'found', 'unknown'] as const;

/**
 * Reasons of `reconcile_close_rejected_total`: `guardrails` (an invariant violation: pages), `duplicate`
 * (the drift's close already went out), `rate_limit`, `trading_halted` (the kill switch), `superseded`
 * (hold signature changed, hold cleared, position moved since sizing, or the send-time gate refused: a
 * race, not an attack) and `expired` (older than
 * `APPLY_CLOSE_MAX_AGE_SEC`).
 */
export const CLOSE_REJECTED_REASONS = ['duplicate', 'guardrails', 'rate_limit', 'trading_halted', 'superseded', 'expired'] as const;

/** In-flight resolution outcomes. */
export const INFLIGHT_OUTCOMES = ['found', 'not_found', 'fenced', 'unresolved'] as const;

/** Creates and initialises the metrics for `allowlist` on `registry`. */
export function createApplyMetrics(registry: Registry, allowlist: string[]): ApplyMetrics {
  const m: ApplyMetrics = {
    plansConsumed: new Counter({ name: 'apply_plans_consumed_total', help: 'Plan entries read from quantum:stream:apply.plan', registers: [registry] }),
    results: new Counter({ name: 'apply_results_total', help: 'Results published to quantum:stream:apply.result', labelNames: ['symbol', 'status'], registers: [registry] }),
    orderLatency: new Histogram({
      name: 'apply_order_latency_seconds',
      help: 'Time from sending an order to its answer (or resolution), seconds',
      labelNames: ['symbol'],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    permitWait: new Histogram({
      name: 'apply_permit_wait_seconds',
      help: 'Time waiting for both permits, seconds, by outcome (allow|deny|timeout|invalid)',
      labelNames: ['outcome'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
      registers: [registry],
    }),
    permitSignatureInvalid: new Counter({
      name: 'apply_permit_signature_invalid_total',
      help: 'Permits refused because their signature does not verify for the plan, entry and payload (unsigned, forged, without a plan digest, or of another plan), by issuer',
      labelNames: ['symbol', 'issuer'],
      registers: [registry],
    }),
    permitPlanMismatch: new Counter({
      name: 'apply_permit_plan_mismatch_total',
      help: 'Permits refused because they were decided for another payload of the plan id and entry (their plan_digest is not the digest of the plan being executed), by issuer',
      labelNames: ['symbol', 'issuer'],
      registers: [registry],
    }),
    inflightResolutions: new Counter({ name: 'apply_inflight_resolutions_total', help: 'Orders with unknown outcome resolved by client order id lookup', labelNames: ['outcome'], registers: [registry] }),
    closeConsumed: new Counter({ name: 'reconcile_close_consumed_total', help: 'RECONCILE_CLOSE entries consumed', labelNames: ['symbol'], registers: [registry] }),
    closeExecuted: new Counter({ name: 'reconcile_close_executed_total', help: 'RECONCILE_CLOSE orders by status (success|error|rate_limit)', labelNames: ['symbol', 'status'], registers: [registry] }),
    closeRejected: new Counter({ name: 'reconcile_close_rejected_total', help: 'RECONCILE_CLOSE plans not executed by reason (duplicate|guardrails|rate_limit|trading_halted|superseded|expired); only guardrails is an invariant violation', labelNames: ['symbol', 'reason'], registers: [registry] }),
    closeGuardrailFail: new Counter({ name: 'reconcile_close_guardrail_fail_total', help: 'RECONCILE_CLOSE invariant violations by rule (docs/architecture.md#reconcile_close-invariants)', labelNames: ['symbol', 'rule'], registers: [registry] }),
    sendGated: new Counter({
      name: 'apply_send_gated_total',
      help: 'Orders not sent because their position view was superseded (order_in_flight|snapshot_superseded|snapshot_unknown); the plan ends SKIPPED',
      labelNames: ['symbol', 'reason'],
      registers: [registry],
    }),
    claimQueries: new Counter({
      name: 'apply_claim_query_total',
      help: 'Pre-send queries of a freshly claimed plan\'s client order id (not_needed: created after the last possible Redis loss, no query; not_found: nothing sent before; found: the order existed, its result was recorded from the exchange; unknown: no answer, retried)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    entriesParked: new Counter({
      name: 'apply_entries_parked_total',
      help: 'Plan, close and flatten entries whose handling failed repeatedly (exchange or Redis unreachable): parked, kept pending and retried every 30 s at most until they get a final result; never dropped',
      labelNames: ['stream'],
      registers: [registry],
    }),
    claimWaits: new Counter({ name: 'apply_claim_wait_total', help: 'WAIT after marking an order in flight (acked: sent; not_acked: not sent, FAILED claim_not_durable)', labelNames: ['outcome'], registers: [registry] }),
  };
  m.plansConsumed.inc(0);
  for (const stream of [STREAMS.applyPlan, STREAMS.reconcileClose, STREAMS.applyFlatten]) m.entriesParked.inc({ stream }, 0);
  for (const o of CLAIM_QUERY_OUTCOMES) m.claimQueries.inc({ outcome: o }, 0);
  for (const o of ['acked', 'not_acked']) m.claimWaits.inc({ outcome: o }, 0);
  for (const o of INFLIGHT_OUTCOMES) m.inflightResolutions.inc({ outcome: o }, 0);
  for (const symbol of allowlist) {
    for (const status of RESULT_STATUSES) m.results.inc({ symbol, status }, 0);
    for (const issuer of ['governor', 'p33']) m.permitSignatureInvalid.inc({ symbol, issuer }, 0);
    for (const issuer of ['governor', 'p33']) m.permitPlanMismatch.inc({ symbol, issuer }, 0);
    m.closeConsumed.inc({ symbol }, 0);
    for (const status of ['success', 'error', 'rate_limit']) m.closeExecuted.inc({ symbol, status }, 0);
    for (const reason of CLOSE_REJECTED_REASONS) m.closeRejected.inc({ symbol, reason }, 0);
    for (const rule of CLOSE_RULES) m.closeGuardrailFail.inc({ symbol, rule }, 0);
    for (const reason of SEND_GATE_REASONS) m.sendGated.inc({ symbol, reason }, 0);
  }
  return m;
}
