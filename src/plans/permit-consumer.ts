/**
 * The consumer both permit issuers run on `quantum:stream:apply.plan` (the governor,
 * src/services/governor/governor.ts, and the position brain, src/services/position-state-brain/permits.ts;
 * docs/architecture.md#least-privilege-and-signed-permits): each supplies only its decision function.
 *
 * - A consumer group read as every plan consumer reads the plan stream ({@link PLAN_CONSUMER}); the group is
 *   created at start (best effort: the loop retries while Redis is down). Its Redis user has no
 *   XGROUP DELCONSUMER on the shared plan stream: the apply layer deletes dead consumers (`reap: 'none'`).
 * - Bad entries (malformed, unknown source, bad MAC, schema) → `PoisonEntry` → DLQ + ack, no permit,
 *   `<issuer>_plans_dead_lettered_total{reason}` and a log line.
 * - Each verified plan is decided once by the issuer's function, which writes its permit write-once; a plan
 *   that already has the issuer's permit (a redelivered entry, the same plan submitted twice) keeps it.
 * - One counted decision per plan (`<issuer>_decisions_total{symbol,decision,reason}`, every series
 *   created at 0 for the allowlist) and one log line in the incidents' shape: `BTCUSDT: ALLOW plan 86c8756d
 *   (permit issued: qty=0.0350, ...)` at info, `BTCUSDT: DENY plan 86c8756d reason=... context={...}` at warn.
 */
import { Counter, type Registry } from 'prom-client';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { StreamConsumer, type StreamEntry } from '../adapters/redis/consumer.js';
import { STREAMS } from '../adapters/redis/keys.js';
import type { Env } from '../config/env.js';
import { fmt } from '../domain/decimal.js';
import { envKeyLookup, planDigest, type Plan } from '../domain/plan.js';
import { fmtQtyForLog, type PermitOutcome } from '../domain/permits.js';
import type { PermitBinding } from '../domain/permit-signature.js';
import { planFromEntry, PLAN_CONSUMER, PLAN_POISON_REASONS } from './entry.js';

/** What an issuer's decision function did with one plan. */
export type PermitIssue<O extends PermitOutcome> =
  /** The plan already had this issuer's permit: the first decision stands (nothing written). */
  | { kind: 'already_decided' }
  /** `outcome` was decided and its permit written. */
  | { kind: 'written'; outcome: O };

/** How an issuer runs its consumer: where it reads, what it counts and logs, and its decision function. */
export interface PlanPermitConsumerSpec<O extends PermitOutcome> {
  redis: Redis;
  logger: Logger;
  registry: Registry;
  /** Consumer name within the group. */
  instanceId: string;
  /** Environment for plan keys (`P3_KEY_<SOURCE>`). */
  env: Env;
  group: string;
  /** Idle time after which another consumer takes a pending entry over, ms. */
  claimIdleMs: number;
  /** Symbols whose decision series are created at 0. */
  allowlist: readonly string[];
  /** Who decides, in log lines (`governor`, `P3.3 permits`). */
  name: string;
  metrics: {
    /** Name and help of the decision counter (`<issuer>_decisions_total{symbol,decision,reason}`). */
    decisions: { name: string; help: string };
    /** Name and help of the dead-letter counter (`<issuer>_plans_dead_lettered_total{reason}`). */
    deadLettered: { name: string; help: string };
    /** ALLOW reasons and DENY reasons of the issuer (their series are created at 0). */
    allowReasons: readonly string[];
    denyReasons: readonly string[];
  };
  /** Put before ALLOW/DENY in the decision log line (`P3.3 ` for the brain, '' for the governor). */
  logTag: string;
  /**
   * Decides a verified plan and writes its permit (signed over `binding`); never throws for a decision
   * (a Redis error throws: the entry stays pending and is retried).
   */
  issue(plan: Plan, entry: StreamEntry, binding: PermitBinding): Promise<PermitIssue<O>>;
  /** The ALLOW line's words after the qty (e.g. `notional=$3325.00`). */
  allowDetail(o: O): string;
  /** Fields of the decision log line between `side` and `context` (e.g. the governor's `notional`). */
  logFields?(o: O): Record<string, unknown>;
}

/** See the module comment. */
export class PlanPermitConsumer<O extends PermitOutcome> {
  private readonly consumer: StreamConsumer;
  private readonly decisions: Counter<'symbol' | 'decision' | 'reason'>;
  private readonly deadLettered: Counter<'reason'>;
  private readonly keyFor: (source: string) => string | undefined;

  constructor(private readonly spec: PlanPermitConsumerSpec<O>) {
    this.keyFor = envKeyLookup(spec.env);
    const m = spec.metrics;
    this.decisions = new Counter({ ...m.decisions, labelNames: ['symbol', 'decision', 'reason'], registers: [spec.registry] });
    this.deadLettered = new Counter({ ...m.deadLettered, labelNames: ['reason'], registers: [spec.registry] });
    for (const r of PLAN_POISON_REASONS) this.deadLettered.inc({ reason: r }, 0);
    this.consumer = new StreamConsumer({
      redis: spec.redis,
      stream: STREAMS.applyPlan,
      group: spec.group,
      consumer: spec.instanceId,
      logger: spec.logger,
      claimIdleMs: spec.claimIdleMs,
      handler: (e, redelivered) => this.handle(e, redelivered),
      onDeadLetter: (reason) => this.deadLettered.inc({ reason }),
      ...PLAN_CONSUMER,
      // its Redis user has no XGROUP DELCONSUMER on the shared plan stream: the apply layer deletes dead consumers
      reap: 'none',
    });
  }

  /**
   * Creates the decision series of `symbol` at 0 (called by the issuer for each allowlisted symbol, in the
   * order its metrics should list them).
   */
  zeroDecisions(symbol: string): void {
    for (const reason of this.spec.metrics.allowReasons) this.decisions.inc({ symbol, decision: 'ALLOW', reason }, 0);
    for (const reason of this.spec.metrics.denyReasons) this.decisions.inc({ symbol, decision: 'DENY', reason }, 0);
  }

  /** Creates the consumer group (best effort: the loop retries while Redis is down) and starts the loop. */
  async start(): Promise<void> {
    await this.consumer.ensureGroup().catch((err: Error) => this.spec.logger.warn({ err: err.message }, `${this.spec.name}: consumer group not created yet (Redis down?)`));
    this.consumer.start();
  }

  /** Stops after the plan in hand. Does not close the Redis connection (the service owns it). */
  async stop(): Promise<void> {
    await this.consumer.stop();
  }

  /** The consumer reached Redis on its last iteration. */
  get healthy(): boolean {
    return this.consumer.healthy;
  }

  /** Decides one plan entry; throws PoisonEntry for a bad one (DLQ + ack by the consumer). */
  private async handle(entry: StreamEntry, redelivered: boolean): Promise<void> {
    const plan = planFromEntry(entry.fields, this.keyFor);
    const { logger } = this.spec;
    const sym = plan.symbol;
    // the permit authorises this entry's exact payload only (planFromEntry checked `plan` is a string)
    const binding = { planId: plan.plan_id, entryId: entry.id, planDigest: planDigest(entry.fields.plan ?? '') };
    const issued = await this.spec.issue(plan, entry, binding);
    if (issued.kind === 'already_decided') {
      logger.info({ plan_id: plan.plan_id, symbol: sym, entry_id: entry.id, redelivered }, `${sym}: plan ${plan.plan_id} already decided; permit kept`);
      return;
    }
    const o = issued.outcome;
    this.decisions.inc({ symbol: sym, decision: o.decision, reason: o.reason });
    const fields = { plan_id: plan.plan_id, symbol: sym, decision: o.decision, reason: o.reason, qty: o.qty ? fmt(o.qty) : null, side: o.side, ...this.spec.logFields?.(o), context: o.context };
    const tag = this.spec.logTag;
    if (o.decision === 'ALLOW') {
      logger.info(fields, `${sym}: ${tag}ALLOW plan ${plan.plan_id} (permit issued: qty=${fmtQtyForLog(o.qty)}, ${this.spec.allowDetail(o)})`);
    } else {
      logger.warn(fields, `${sym}: ${tag}DENY plan ${plan.plan_id} reason=${o.reason} context=${JSON.stringify(o.context)}`);
    }
  }
}
