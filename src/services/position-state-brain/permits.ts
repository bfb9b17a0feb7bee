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
 * - Bad entries → `PoisonEntry` → DLQ + ack, no permit, `p33_permit_plans_dead_lettered_total{reason}`.
 * - Log lines in the seed's shape: `BTCUSDT: P3.3 DENY plan 86c8756d reason=... context={...}`.
 *
 * A self-contained component: the brain's `index.ts` builds it with its context and calls
 * `start()` / `stop()` / `readiness()`.
 */
import { Counter, type Registry } from 'prom-client';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { StreamConsumer, type StreamEntry } from '../../adapters/redis/consumer.js';
import { STREAMS, keys } from '../../adapters/redis/keys.js';
import type { Env } from '../../config/env.js';
import { fmt } from '../../domain/decimal.js';
import { decideP33, fmtQtyForLog, permitFields, P33_DENY_REASONS } from '../../domain/permits.js';
import { envKeyLookup } from '../../domain/plan.js';
import { planDigest, signPermit } from '../../domain/permit-signature.js';
import { readLedger, readSnapshot } from '../../domain/position.js';
import { toleranceFor } from '../../domain/tolerance.js';
import { planFromEntry, PLAN_CONSUMER, PLAN_POISON_REASONS } from '../../plans/entry.js';
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
  private readonly consumer: StreamConsumer;
  private readonly decisions: Counter<'symbol' | 'decision' | 'reason'>;
  private readonly deadLettered: Counter<'reason'>;
  private readonly keyFor: (source: string) => string | undefined;
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
    this.keyFor = envKeyLookup(env);
    this.fills = new NewestFills(ctx.redis);
    this.decisions = new Counter({
      name: 'p33_permit_decisions_total',
      help: 'Position brain (P3.3) permit decisions by symbol, decision (ALLOW|DENY) and reason',
      labelNames: ['symbol', 'decision', 'reason'],
      registers: [ctx.registry],
    });
    this.deadLettered = new Counter({
      name: 'p33_permit_plans_dead_lettered_total',
      help: 'Plan entries the position brain copied to the dead-letter stream, by reason',
      labelNames: ['reason'],
      registers: [ctx.registry],
    });
    for (const r of PLAN_POISON_REASONS) this.deadLettered.inc({ reason: r }, 0);
    for (const symbol of this.config.allowlist) {
      this.decisions.inc({ symbol, decision: 'ALLOW', reason: 'ok' }, 0);
      for (const reason of P33_DENY_REASONS) this.decisions.inc({ symbol, decision: 'DENY', reason }, 0);
    }
    this.consumer = new StreamConsumer({
      redis: ctx.redis,
      stream: STREAMS.applyPlan,
      group: this.config.group,
      consumer: ctx.instanceId,
      logger: ctx.logger,
      claimIdleMs: this.config.claimIdleMs,
      handler: (e, redelivered) => this.handle(e, redelivered),
      onDeadLetter: (reason) => this.deadLettered.inc({ reason }),
      ...PLAN_CONSUMER,
      // its Redis user has no XGROUP DELCONSUMER on the shared plan stream: the apply layer deletes dead consumers
      reap: 'none',
    });
  }

  /** Creates the consumer group (best effort; the loop retries while Redis is down) and starts the loop. No-op when disabled. */
  async start(): Promise<void> {
    if (!this.config.enabled) return;
    await this.consumer.ensureGroup().catch((err: Error) => this.ctx.logger.warn({ err: err.message }, 'P3.3 permits: consumer group not created yet (Redis down?)'));
    this.consumer.start();
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

  private async handle(entry: StreamEntry, redelivered: boolean): Promise<void> {
    const plan = planFromEntry(entry.fields, this.keyFor);
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
    if (Number(decided) === 1) {
      logger.info({ plan_id: plan.plan_id, symbol: sym, entry_id: entry.id, redelivered }, `${sym}: plan ${plan.plan_id} already decided; permit kept`);
      return;
    }
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
    // the permit authorises this entry's exact payload only (planFromEntry checked `plan` is a string)
    const binding = { planId: plan.plan_id, entryId: entry.id, planDigest: planDigest(entry.fields.plan ?? '') };
    const signed = signPermit('p33', this.config.permitKey, binding, permitFields(plan, outcome, nowMs, { entry_id: entry.id }));
    const written = await writePermitBatched(redis, 'p33', signed, this.config.permitTtlSec);
    if (!written) {
      logger.info({ plan_id: plan.plan_id, symbol: sym }, `${sym}: plan ${plan.plan_id} already decided; permit kept`);
      return;
    }
    this.decisions.inc({ symbol: sym, decision: outcome.decision, reason: outcome.reason });
    const fields = { plan_id: plan.plan_id, symbol: sym, decision: outcome.decision, reason: outcome.reason, qty: outcome.qty ? fmt(outcome.qty) : null, side: outcome.side, context: outcome.context };
    if (outcome.decision === 'ALLOW') {
      logger.info(fields, `${sym}: P3.3 ALLOW plan ${plan.plan_id} (permit issued: qty=${fmtQtyForLog(outcome.qty)}, side=${outcome.side})`);
    } else {
      logger.warn(fields, `${sym}: P3.3 DENY plan ${plan.plan_id} reason=${outcome.reason} context=${JSON.stringify(outcome.context)}`);
    }
  }
}
