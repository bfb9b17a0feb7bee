/**
 * The position brain's permit consumer (P3.3): "does our state match the exchange right now?"
 *
 * A consumer group (`p33` by default) on `quantum:stream:apply.plan`; for every plan it writes
 * `quantum:permit:p33:<plan_id>` (TTL 60 s, write-once, signed with `P3_KEY_P33` over its fields, the plan
 * id, the entry id and the digest of the entry's plan payload) from `decideP33` (src/domain/permits.ts):
 * hold (seed 001), fresh snapshot, ledger (canonical and legacy layouts via `fetchLedger`), exchange vs
 * ledger under the tolerance shared with the reconcile engine (seed 004), and the quantity resolved
 * from the snapshot and rounded down to the lot step.
 *
 * - The group is created at start with `$` (plans submitted before the group first existed are not
 *   decided; later restarts resume where the group stopped, pending entries re-read or XAUTOCLAIMed).
 * - The consumer, dead letters, decision counts and log lines are those of every permit issuer
 *   (src/plans/permit-consumer.ts): bad entries → DLQ + ack, no permit, `p33_permit_plans_dead_lettered_total{reason}`.
 * - Log lines in the seed's shape: `BTCUSDT: P3.3 DENY plan 86c8756d reason=... context={...}`.
 *
 * A self-contained component: the brain's `index.ts` builds it with its context and calls
 * `start()` / `stop()` / `readiness()`.
 */
import type { Registry } from 'prom-client';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { StreamEntry } from '../../adapters/redis/consumer.js';
import { keys } from '../../adapters/redis/keys.js';
import type { Env } from '../../config/env.js';
import { decideP33, permitFields, P33_DENY_REASONS, type PermitOutcome } from '../../domain/permits.js';
import type { Plan } from '../../domain/plan.js';
import { signPermit, type PermitBinding } from '../../domain/permit-signature.js';
import { readLedger, readSnapshot } from '../../domain/position.js';
import { toleranceFor } from '../../domain/tolerance.js';
import { PlanPermitConsumer, type PermitIssue } from '../../plans/permit-consumer.js';
import { writePermitBatched } from '../../plans/permit-store.js';
import { replyValues, tickBatch } from '../../adapters/redis/tick-batch.js';
import { parsePermitsConfig, type PermitsConfig } from './permits-config.js';
import { NewestFills } from './newest-fills.js';

/** What the component needs from the brain service (a `ServiceContext` fits). */
export interface PermitConsumerContext {
  redis: Redis;
  logger: Logger;
  registry: Registry;
  /** Consumer name within the group (`P3_INSTANCE_ID`, else host-pid). */
  instanceId: string;
}

/** See the module comment. */
export class PermitConsumer {
  private readonly consumer: PlanPermitConsumer<PermitOutcome>;
  readonly config: PermitsConfig;
  /** Newest fill per symbol from the result stream, read incrementally. */
  private readonly fills: NewestFills;

  /**
   * @param ctx the brain's service context
   * @param env environment: plan keys `P3_KEY_<SOURCE>` and, unless `config` is given, the `P33_*` variables
   * @param config parsed configuration (default `parsePermitsConfig(env)`; throws ConfigError)
   */
  constructor(
    private readonly ctx: PermitConsumerContext,
    env: Env,
    config?: PermitsConfig,
  ) {
    this.config = config ?? parsePermitsConfig(env);
    this.fills = new NewestFills(ctx.redis);
    this.consumer = new PlanPermitConsumer<PermitOutcome>({
      ...ctx,
      env,
      group: this.config.group,
      claimIdleMs: this.config.claimIdleMs,
      allowlist: this.config.allowlist,
      name: 'P3.3 permits',
      metrics: {
        decisions: { name: 'p33_permit_decisions_total', help: 'Position brain (P3.3) permit decisions by symbol, decision (ALLOW|DENY) and reason' },
        deadLettered: { name: 'p33_permit_plans_dead_lettered_total', help: 'Plan entries the position brain copied to the dead-letter stream, by reason' },
        allowReasons: ['ok'],
        denyReasons: P33_DENY_REASONS,
      },
      logTag: 'P3.3 ',
      issue: (plan, entry, binding) => this.issue(plan, entry, binding),
      allowDetail: (o) => `side=${o.side}`,
    });
    for (const symbol of this.config.allowlist) this.consumer.zeroDecisions(symbol);
  }

  /** Creates the consumer group (best effort; the loop retries while Redis is down) and starts the loop. No-op when disabled. */
  async start(): Promise<void> {
    if (!this.config.enabled) return;
    await this.consumer.start();
    this.ctx.logger.info({ group: this.config.group, instance: this.ctx.instanceId }, 'P3.3 permit consumer started');
  }

  /** Stops after the plan in hand. Does not close the Redis connection (the service owns it). */
  async stop(): Promise<void> {
    await this.consumer.stop();
  }

  /** `p33_permits_loop`: the consumer reached Redis on its last iteration (true when disabled). */
  readiness(): Record<string, boolean> {
    return { p33_permits_loop: !this.config.enabled || this.consumer.healthy };
  }

  /** Decides one verified plan entry and writes its permit (src/plans/permit-consumer.ts logs and counts it). */
  private async issue(plan: Plan, entry: StreamEntry, binding: PermitBinding): Promise<PermitIssue<PermitOutcome>> {
    const { redis, logger } = this.ctx;
    const sym = plan.symbol;
    // everything the decision reads, in one MULTI (ledger included: one consistent view), sent in this
    // turn's one pipeline with the other plans' reads (tick-batch.ts)
    const read = tickBatch(redis).multi([
      ['exists', keys.permitP33(plan.plan_id)],
      ['exists', keys.hold(sym)],
      ['hgetall', keys.snapshot(sym)],
      ['hlen', keys.applyInflight(sym)],
      ['get', keys.lastFill(sym)],
      ['hgetall', keys.ledger(sym)],
      ['hgetall', keys.legacyLedger004(sym)],
    ]);
    // the newest fill among the results, read incrementally by a refresh issued AFTER the reads above
    // (same connection, same or a later pipeline: Redis runs it after them; newest-fills.ts)
    const fills = this.fills.newestFor(sym);
    fills.catch(() => undefined); // awaited below, after the reads (whose error comes first)
    const [decided, hold, snap, inflight, lastFillRaw, ledgerHash, legacyHash] = replyValues(await read) as [number, number, Record<string, string>, number, string | null, Record<string, string>, Record<string, string>];
    // a redelivered entry, or the same plan submitted twice: the first decision stands (write-once)
    if (Number(decided) === 1) return { kind: 'already_decided' };
    // one line per decision at info (the ALLOW/DENY line below); this one at debug
    logger.debug({ plan_id: plan.plan_id, symbol: sym, entry_id: entry.id }, `${sym}: Evaluating plan ${plan.plan_id} from stream msg ${entry.id}`);
    const holdActive = Number(hold) === 1;
    const snapshot = readSnapshot(snap);
    const inFlight = Number(inflight ?? 0);
    const lastFill = lastFillRaw && /^\d+$/.test(lastFillRaw) ? Number(lastFillRaw) : null;
    const fromResults = await fills;
    const newestFillTsMs = fromResults === null ? lastFill : lastFill === null ? fromResults : Math.max(fromResults, lastFill);
    const ledger = { read: readLedger(ledgerHash ?? {}, legacyHash ?? {}) };
    const step = snapshot.kind === 'ok' ? snapshot.snapshot.stepSize : null;
    const tolerance = toleranceFor(this.config.tolerance, sym, step);
    const nowMs = Date.now();
    const outcome = decideP33({
      plan,
      nowMs,
      holdActive,
      snapshot,
      ledger: ledger.read,
      tolerance,
      freshnessSec: this.config.exchangeFreshnessSec,
      allowlist: this.config.allowlist,
      inFlight,
      newestFillTsMs,
    });
    const signed = signPermit('p33', this.config.permitKey, binding, permitFields(plan, outcome, nowMs, { entry_id: entry.id }));
    const written = await writePermitBatched(redis, 'p33', signed, this.config.permitTtlSec);
    return written ? { kind: 'written', outcome } : { kind: 'already_decided' };
  }
}
