/**
 * The apply layer's watch over the plan stream (src/adapters/redis/plan-stream-health.ts): every
 * {@link PLAN_STREAM_CHECK_MS} it looks for damage that Redis ACLs cannot prevent (a producer's XADD with
 * MAXLEN/MINID deleting unread plans, a planted future or largest id blocking every later XADD). Damage is
 * loud: an error log (when it appears, changes, and every minute while it lasts), the metrics
 * `apply_plan_stream_damaged` (1 while found) and `apply_plan_stream_damage_total{kind}` (each appearance),
 * and the sticky marker `quantum:apply:plan_stream_damage` that makes `p3 doctor` FAIL until an operator
 * deletes it. A planted id is removed at once when that loses nothing (`apply_plan_stream_repairs_total`). Never throws; a failed check only logs a warning (the next one retries). It also owns the
 * counter `apply_unleased_consumers_total` of the consumers (consumer.ts `onUnleasedConsumer`).
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import { planStreamDamage, removePlantedIds, type PlanStreamDamage, type PlanStreamDamageKind } from '../../adapters/redis/plan-stream-health.js';
import { sleep } from '../../lib/sleep.js';
import { markPlanStreamDamage } from './store.js';

/** How often the plan stream is checked, ms. */
export const PLAN_STREAM_CHECK_MS = 5_000;
/** How often lasting damage is logged again, ms. */
const RELOG_MS = 60_000;

const KINDS: PlanStreamDamageKind[] = ['not_a_stream', 'exhausted_id', 'future_id', 'unread_deleted', 'pending_deleted'];

/** See the module comment. `check()` runs one check; `run(signal)` checks until aborted. */
export class PlanStreamWatch {
  private readonly damaged: Gauge;
  private readonly found: Counter<'kind'>;
  /** `apply_plan_stream_repairs_total`: planted ids removed by this watch. */
  private readonly repairs: Counter;
  /** `apply_unleased_consumers_total`: consumers found reading an apply-layer group without a liveness lease. */
  readonly unleased: Counter;
  private lastKey = '';
  private lastLogMs = 0;

  constructor(
    private readonly redis: Redis,
    private readonly logger: Logger,
    registry: Registry,
  ) {
    this.damaged = new Gauge({ name: 'apply_plan_stream_damaged', help: 'Damage found on quantum:stream:apply.plan by the last check (1) or not (0)', registers: [registry] });
    this.found = new Counter({ name: 'apply_plan_stream_damage_total', help: 'Appearances of damage on quantum:stream:apply.plan, by kind', labelNames: ['kind'], registers: [registry] });
    for (const kind of KINDS) this.found.inc({ kind }, 0);
    this.repairs = new Counter({ name: 'apply_plan_stream_repairs_total', help: 'Planted ids removed from quantum:stream:apply.plan by the apply layer', registers: [registry] });
    this.unleased = new Counter({ name: 'apply_unleased_consumers_total', help: "Consumers found reading one of the apply layer's groups without a liveness lease (not an apply layer)", registers: [registry] });
  }

  /**
   * One check: metrics, log and marker as in the module comment.
   * @returns the findings (empty when sound)
   * @throws on a Redis error (the caller logs and retries)
   */
  async check(nowMs = Date.now()): Promise<PlanStreamDamage[]> {
    const found = await planStreamDamage(this.redis, nowMs);
    this.damaged.set(found.length ? 1 : 0);
    const key = found.map((d) => d.detail).join('|');
    if (found.length) {
      const prev = new Set(this.lastKey.split('|'));
      for (const d of found) if (!prev.has(d.detail)) this.found.inc({ kind: d.kind });
      if (key !== this.lastKey || nowMs - this.lastLogMs >= RELOG_MS) {
        this.lastLogMs = nowMs;
        this.logger.error({ damage: found }, `plan stream damaged: ${found.map((d) => d.detail).join('; ')} (docs/runbook.md, "Plan stream damaged")`);
      }
      if (found.some((d) => d.kind === 'exhausted_id' || d.kind === 'future_id')) await this.removePlanted(nowMs);
      await markPlanStreamDamage(this.redis, [...new Set(found.map((d) => d.kind))].join(','), key.slice(0, 2000), nowMs);
    }
    this.lastKey = key;
    return found;
  }

  /**
   * Removes planted ids at once when that loses nothing (removePlantedIds: every group read every entry;
   * the planted entry itself is dead-lettered by each consumer as unsigned first), so producers are blocked
   * for seconds, not until someone acts. Lost plans and the marker stay for the operator.
   */
  private async removePlanted(nowMs: number): Promise<void> {
    const r = await removePlantedIds(this.redis, nowMs);
    if (r.removed) {
      this.repairs.inc();
      this.logger.error({ deleted: r.deleted, last_id: r.lastId }, `plan stream: removed ${r.deleted.length} planted entr${r.deleted.length === 1 ? 'y' : 'ies'} (${r.deleted.join(', ')}); XADD works again, last id ${r.lastId}`);
    } else if (r.reason !== 'no_planted_id') {
      this.logger.warn({ reason: r.reason }, 'plan stream: planted ids not removed yet (a group has entries left to read); retried at the next check');
    }
  }

  /** Checks every {@link PLAN_STREAM_CHECK_MS} until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        await this.check();
      } catch (err) {
        if (!signal.aborted) this.logger.warn({ err: (err as Error).message }, 'plan stream check failed; retrying');
      }
      await sleep(PLAN_STREAM_CHECK_MS, signal);
    }
  }
}
