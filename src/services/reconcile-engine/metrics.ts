/**
 * Prometheus metrics of the reconcile engine, with the seeds' names (seed 001 table, seed 002), served on
 * `P34_PROMETHEUS_PORT` (8046). Every label set of the allowlist is initialised at start (seed 002: lazily
 * created metrics were invisible until the first event).
 */
import { Counter, Gauge, type Registry } from 'prom-client';

/** Hold reasons counted as drift episodes by `p34_reconcile_drift_total{symbol,reason}`. */
export const EPISODE_REASONS = ['missing_exchange', 'stale_exchange', 'invalid_exchange', 'invalid_ledger', 'side_mismatch', 'qty_mismatch_no_evidence', 'venue_close', 'venue_journal_gap'] as const;

/** The engine's metrics. */
export interface ReconcileMetrics {
  /** Drift episodes (a hold verdict that differs from the previous state), not loop iterations. */
  driftTotal: Counter<'symbol' | 'reason'>;
  autoRepairTotal: Counter<'symbol'>;
  /** 1 while any hold (engine or operator) stands on the symbol. */
  holdActive: Gauge<'symbol'>;
  /** |exchange − ledger|, base asset (0 when unknown). */
  diffAmt: Gauge<'symbol'>;
  /** Seconds since the last ledger repair of the symbol; -1 when never repaired. */
  lastFixAgeSec: Gauge<'symbol'>;
  closePublishedTotal: Counter<'symbol'>;
  /** Passes that failed (Redis unreachable, ...), by trigger. */
  passErrorsTotal: Counter<'trigger'>;
  /** Shortfalls adopted into the ledger under `P34_HEAL_POLICY=adopt` (event LEDGER_ADOPTED). */
  adoptedTotal: Counter<'symbol'>;
  /** 1 while the symbol's status is MANUAL_REQUIRED (a person must act; alert `P34ManualRequired`). */
  manualRequired: Gauge<'symbol'>;
  /**
   * Liquidations, ADLs and settlements the engine found in the venue journal, by kind (`LIQUIDATION`, `ADL`,
   * `SETTLEMENT`; alert `P34VenueClose`), whatever `P34_VENUE_CLOSE_POLICY` then did.
   */
  venueCloseTotal: Counter<'symbol' | 'kind'>;
}

/** Registers the metrics on `registry` and initialises every label set of `symbols`. */
export function createReconcileMetrics(registry: Registry, symbols: string[]): ReconcileMetrics {
  const m: ReconcileMetrics = {
    driftTotal: new Counter({ name: 'p34_reconcile_drift_total', help: 'Drift episodes detected (one per change of verdict, not per loop)', labelNames: ['symbol', 'reason'], registers: [registry] }),
    autoRepairTotal: new Counter({ name: 'p34_reconcile_auto_repair_total', help: 'Ledger repairs from evidence (auto_fixed, healed_after_close)', labelNames: ['symbol'], registers: [registry] }),
    holdActive: new Gauge({ name: 'p34_reconcile_hold_active', help: 'Hold active on the symbol (1 = yes, 0 = no)', labelNames: ['symbol'], registers: [registry] }),
    diffAmt: new Gauge({ name: 'p34_reconcile_diff_amt', help: 'Current |exchange - ledger| (base asset)', labelNames: ['symbol'], registers: [registry] }),
    lastFixAgeSec: new Gauge({ name: 'p34_reconcile_last_fix_age_sec', help: 'Seconds since the last ledger repair (-1 = never)', labelNames: ['symbol'], registers: [registry] }),
    closePublishedTotal: new Counter({ name: 'p34_reconcile_close_published_total', help: 'RECONCILE_CLOSE plans published', labelNames: ['symbol'], registers: [registry] }),
    passErrorsTotal: new Counter({ name: 'p34_reconcile_pass_errors_total', help: 'Reconcile passes that failed (Redis unreachable, ...)', labelNames: ['trigger'], registers: [registry] }),
    adoptedTotal: new Counter({ name: 'p34_reconcile_adopted_total', help: 'Shortfalls adopted into the ledger without evidence (P34_HEAL_POLICY=adopt)', labelNames: ['symbol'], registers: [registry] }),
    venueCloseTotal: new Counter({ name: 'p34_reconcile_venue_close_total', help: 'Liquidations, ADLs and settlements of the exchange found in the venue journal (adopted or held by P34_VENUE_CLOSE_POLICY)', labelNames: ['symbol', 'kind'], registers: [registry] }),
    manualRequired: new Gauge({ name: 'p34_reconcile_manual_required', help: 'Status MANUAL_REQUIRED: a person must act on the symbol (1 = yes)', labelNames: ['symbol'], registers: [registry] }),
  };
  for (const symbol of symbols) {
    for (const reason of EPISODE_REASONS) m.driftTotal.inc({ symbol, reason }, 0);
    m.autoRepairTotal.inc({ symbol }, 0);
    m.holdActive.set({ symbol }, 0);
    m.diffAmt.set({ symbol }, 0);
    m.lastFixAgeSec.set({ symbol }, -1);
    m.closePublishedTotal.inc({ symbol }, 0);
    for (const kind of ['LIQUIDATION', 'ADL', 'SETTLEMENT']) m.venueCloseTotal.inc({ symbol, kind }, 0);
    m.adoptedTotal.inc({ symbol }, 0);
    m.manualRequired.set({ symbol }, 0);
  }
  for (const trigger of ['sweep', 'snapshot']) m.passErrorsTotal.inc({ trigger }, 0);
  return m;
}
