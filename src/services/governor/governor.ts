/**
 * The governor component (P3.2): a consumer group (`governor` by default) on `quantum:stream:apply.plan`
 * that decides every plan once and writes `quantum:permit:governor:<plan_id>` (TTL 60 s, write-once),
 * signed with `P3_KEY_GOVERNOR` over its fields, the plan id, the entry id and the digest of the entry's
 * plan payload.
 *
 * - The group is created at start with `$` (only plans submitted after the group first existed; later
 *   restarts resume where the group stopped: pending entries are re-read, idle ones XAUTOCLAIMed).
 * - The consumer, dead letters, decision counts and log lines are those of every permit issuer
 *   (src/plans/permit-consumer.ts): bad entries → DLQ + ack, no permit, `governor_plans_dead_lettered_total{reason}`.
 * - Decision: `decideGovernorPreRate` (src/domain/governor.ts), then one rate token (shared bucket).
 * - Log lines in the seed's shape (seed 004): `BTCUSDT: ALLOW plan 86c8756d (permit issued: qty=0.0350,
 *   notional=$3325.00)` / `BTCUSDT: DENY plan 86c8756d reason=...`.
 */
import { Counter } from 'prom-client';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { StreamEntry } from '../../adapters/redis/consumer.js';
import { keys } from '../../adapters/redis/keys.js';
import { fmt } from '../../domain/decimal.js';
import { decideGovernorPreRate, readTradingState, GOVERNOR_DENY_REASONS, type GovernorOutcome } from '../../domain/governor.js';
import type { Plan } from '../../domain/plan.js';
import { deny, permitFields } from '../../domain/permits.js';
import { signPermit, type PermitBinding } from '../../domain/permit-signature.js';
import { readSnapshot } from '../../domain/position.js';
import type { Env } from '../../config/env.js';
import { PlanPermitConsumer, type PermitIssue } from '../../plans/permit-consumer.js';
import { writePermitBatched } from '../../plans/permit-store.js';
import { replyValues, tickBatch } from '../../adapters/redis/tick-batch.js';
import { checkBreaker, type BreakerRead } from './breaker.js';
import { FailureWindow, type FailureCounter } from './failure-window.js';
import { Mutex } from '../../lib/mutex.js';
import type { GovernorConfig } from './config.js';
import { issueAllow, type RateSettings } from './rate.js';
import { releaseReservation, reserveExposure } from './exposure.js';
import { isEntryAction } from '../../domain/plan.js';
import { RiskControls } from './risk/controls.js';

/** What the component needs from its service. */
export interface GovernorDeps {
  redis: Redis;
  logger: Logger;
  registry: Registry;
  /** Consumer name within the group. */
  instanceId: string;
  /** Environment for plan keys (`P3_KEY_<SOURCE>`). */
  env: Env;
}

/** See the module comment. */
export class Governor {
  private readonly consumer: PlanPermitConsumer<GovernorOutcome>;
  private readonly trips: Counter<'symbol'>;
  /** Serialises this process's exposure reservations (see `decide`). */
  private readonly exposureLock = new Mutex();
  /** FAILED results in the breaker window, read incrementally (one round trip per check). */
  private readonly failures: FailureWindow;
  /** The pre-trade risk controls of entries (docs/risk-controls.md). */
  private readonly risk: RiskControls;

  constructor(
    private readonly deps: GovernorDeps,
    private readonly cfg: GovernorConfig,
  ) {
    this.failures = new FailureWindow(deps.redis, cfg.breakerWindowSec * 1000);
    this.risk = new RiskControls(cfg.risk, { redis: deps.redis, logger: deps.logger, registry: deps.registry, allowlist: cfg.allowlist });
    this.consumer = new PlanPermitConsumer<GovernorOutcome>({
      ...deps,
      group: cfg.group,
      claimIdleMs: cfg.claimIdleMs,
      allowlist: cfg.allowlist,
      name: 'governor',
      metrics: {
        decisions: { name: 'governor_decisions_total', help: 'Governor permit decisions by symbol, decision (ALLOW|DENY) and reason' },
        deadLettered: { name: 'governor_plans_dead_lettered_total', help: 'Plan entries the governor copied to the dead-letter stream, by reason' },
        allowReasons: ['ok', 'auto_approve'],
        denyReasons: GOVERNOR_DENY_REASONS,
      },
      logTag: '',
      issue: (plan, entry, binding) => this.issue(plan, entry, binding),
      allowDetail: (o) => `notional=$${o.notional?.toFixed(2) ?? '0.00'}`,
      logFields: (o) => ({ notional: o.notional ? o.notional.toFixed(2) : '' }),
    });
    this.trips = new Counter({ name: 'governor_circuit_breaker_trips_total', help: 'Circuit breaker trips by symbol', labelNames: ['symbol'], registers: [deps.registry] });
    for (const symbol of cfg.allowlist) {
      this.trips.inc({ symbol }, 0);
      this.consumer.zeroDecisions(symbol);
    }
  }

  /** Creates the consumer group (best effort: the loop retries while Redis is down) and starts the loop. */
  async start(): Promise<void> {
    await this.consumer.start();
    this.risk.start();
  }

  /** Stops after the plan in hand. */
  async stop(): Promise<void> {
    await this.consumer.stop();
    await this.risk.stop();
  }

  /** `loop`: the consumer reached Redis on its last iteration. */
  readiness(): Record<string, boolean> {
    return { governor_loop: this.consumer.healthy };
  }

  /** Decides one verified plan entry and writes its permit (src/plans/permit-consumer.ts logs and counts it). */
  private async issue(plan: Plan, entry: StreamEntry, binding: PermitBinding): Promise<PermitIssue<GovernorOutcome>> {
    const { logger, redis } = this.deps;
    const sym = plan.symbol;
    // everything the decision reads, in one MULTI; the breaker window's refresh (incremental) is issued
    // first, and both go out in this turn's one pipeline with the other plans' reads (tick-batch.ts)
    const failures = this.failures.begin();
    const [decided, breakerOpen, lastTrip, g, s, h, snap] = replyValues(
      await tickBatch(redis).multi([
        ['exists', keys.permitGovernor(plan.plan_id)],
        ['exists', keys.governorBreaker(sym)],
        ['get', keys.governorBreakerLastTrip(sym)],
        ['hgetall', keys.tradingState()],
        ['hgetall', keys.tradingState(sym)],
        ['exists', keys.hold(sym)],
        ['hgetall', keys.snapshot(sym)],
      ]),
    ) as [number, number, string | null, Record<string, string>, Record<string, string>, number, Record<string, string>];
    // a redelivered entry, or the same plan submitted twice: the first decision stands (write-once)
    if (Number(decided) === 1) return { kind: 'already_decided' };
    // one line per decision at info (the ALLOW/DENY line below); the steps before it at debug (
    // each synchronous line costs a write(2) per plan)
    if (logger.isLevelEnabled('debug')) {
      logger.debug(
        { plan_id: plan.plan_id, symbol: sym, entry_id: entry.id, action: plan.action, mode: this.cfg.mode },
        `${sym}: Evaluating plan ${plan.plan_id} (action=${plan.action}, decision=${plan.decision}, kill_score=${plan.kill_score ?? 'n/a'}, mode=${this.cfg.mode})`,
      );
    }
    const pre = await this.decide(plan, { breaker: { openRaw: breakerOpen, lastRaw: lastTrip }, failures, g, s, h, snap });
    let outcome: GovernorOutcome = pre.outcome;
    const sign = (o: GovernorOutcome) => {
      // `reserved`: this ALLOW reserved exposure; the apply layer then sends only while the reservation exists
      const extra = { notional: o.notional ? o.notional.toFixed(2) : '', mark_price: o.markPrice ? fmt(o.markPrice) : '', mode: this.cfg.mode, entry_id: entry.id, ...(o.decision === 'ALLOW' && pre.reserved ? { reserved: '1' } : {}) };
      return signPermit('governor', this.cfg.permitKey, binding, permitFields(plan, o, Date.now(), extra));
    };
    let written: boolean;
    if (outcome.decision === 'ALLOW') {
      // the rate token and the ALLOW permit in one script (governorIssue-3.lua); a refused token writes nothing
      const rate = await issueAllow(redis, sym, sign(outcome), this.cfg.permitTtlSec, this.rateSettings(sym));
      if (rate.kind === 'refused') {
        if (pre.reserved) await releaseReservation(redis, plan.plan_id);
        outcome = { ...deny(rate.reason, { ...outcome.context, global_tokens: rate.globalTokens, symbol_tokens: rate.symbolTokens }, outcome.qty, outcome.side), notional: outcome.notional, markPrice: outcome.markPrice, autoApproved: false };
        written = await writePermitBatched(redis, 'governor', sign(outcome), this.cfg.permitTtlSec);
      } else {
        written = rate.kind === 'written';
      }
    } else {
      written = await writePermitBatched(redis, 'governor', sign(outcome), this.cfg.permitTtlSec);
    }
    // (a reservation made here stays when not written: it is keyed by the plan id, which the first decision reserved too)
    if (!written) return { kind: 'already_decided' };
    if (outcome.decision === 'ALLOW' && outcome.autoApproved) logger.debug({ plan_id: plan.plan_id, symbol: sym }, `${sym}: ${this.cfg.mode === 'paper' ? 'Paper' : 'Testnet'} mode - auto-approving plan ${plan.plan_id}`);
    return { kind: 'written', outcome };
  }

  /** The token buckets' settings of `sym`. */
  private rateSettings(sym: string): RateSettings {
    return {
      globalPerMin: this.cfg.ratePerMin,
      globalBurst: this.cfg.rateBurst,
      symbolPerMin: this.cfg.symbolRatePerMinBySymbol[sym] ?? this.cfg.symbolRatePerMin,
      symbolBurst: this.cfg.symbolRateBurst,
    };
  }

  /**
   * Decides from what `handle` read (and the breaker window), every check but the rate token (taken with
   * the ALLOW permit's write, `issueAllow`); reserves the exposure of an entry it allows.
   * @returns the outcome, and whether an exposure reservation was made (released if the ALLOW is not issued)
   */
  private async decide(plan: Plan, read: { breaker: BreakerRead; failures: FailureCounter; g: Record<string, string>; s: Record<string, string>; h: number; snap: Record<string, string> }): Promise<{ outcome: GovernorOutcome; reserved: boolean }> {
    const { redis } = this.deps;
    const sym = plan.symbol;
    const breaker = await checkBreaker(redis, sym, { windowSec: this.cfg.breakerWindowSec, maxErrors: this.cfg.breakerMaxErrors, cooldownSec: this.cfg.breakerCooldownSec }, Date.now(), read.failures, read.breaker);
    if (breaker.tripped) {
      this.trips.inc({ symbol: sym });
      this.deps.logger.error(
        { symbol: sym, errors: breaker.errors, cooldown_sec: this.cfg.breakerCooldownSec },
        `${sym}: circuit breaker TRIPPED (${breaker.errors} FAILED results in ${this.cfg.breakerWindowSec}s); HALTED for ${this.cfg.breakerCooldownSec}s`,
      );
    }
    const { g, s, h, snap } = read;
    const pre = decideGovernorPreRate({
      plan,
      nowMs: Date.now(),
      globalState: readTradingState(g),
      symbolState: readTradingState(s),
      breakerOpen: breaker.open,
      holdActive: Number(h) === 1,
      snapshot: readSnapshot(snap),
      limits: {
        mode: this.cfg.mode,
        maxPlanAgeSec: this.cfg.maxPlanAgeSec,
        futureSkewSec: this.cfg.futureSkewSec,
        freshnessSec: this.cfg.snapshotFreshnessSec,
        maxNotionalUsd: this.cfg.maxNotionalUsdBySymbol[sym] ?? this.cfg.maxNotionalUsd,
        allowlist: this.cfg.allowlist,
      },
    });
    if (pre.decision !== 'ALLOW') return { outcome: pre, reserved: false };
    const risk = await this.risk.check(plan, pre, snap, Date.now(), this.cfg.maxPositionUsdBySymbol[sym] ?? this.cfg.maxPositionUsd);
    if (risk) return { outcome: risk, reserved: false };
    // Entries: the exposure limits, checked and reserved in one compare-and-set step (docs/architecture.md#risk-limits-and-trading-states)
    if (isEntryAction(plan.action) && pre.qty && pre.markPrice) {
      const sr = readSnapshot(snap);
      if (sr.kind !== 'ok') return { outcome: { ...deny('missing_exchange'), notional: pre.notional, markPrice: pre.markPrice, autoApproved: false }, reserved: false };
      const position = sr.snapshot.amount;
      const limits = { maxPositionUsd: this.cfg.maxPositionUsdBySymbol[sym] ?? this.cfg.maxPositionUsd, maxGrossUsd: this.cfg.maxGrossUsd };
      // one reservation at a time in this process: plans of different symbols run concurrently, and their
      // compare-and-set attempts on the one reservations hash would otherwise conflict with each other
      const req = { planId: plan.plan_id, symbol: sym, qty: pre.qty, mark: pre.markPrice, position, ttlMs: this.cfg.permitTtlSec * 1000 };
      const ex = await this.exposureLock.run(() => reserveExposure(redis, req, this.cfg.allowlist, limits));
      if (!ex.ok) return { outcome: { ...deny(ex.reason, { ...pre.context, ...ex.context }, pre.qty, pre.side), notional: pre.notional, markPrice: pre.markPrice, autoApproved: false }, reserved: false };
      return { outcome: pre, reserved: limits.maxPositionUsd !== null || limits.maxGrossUsd !== null };
    }
    return { outcome: pre, reserved: false };
  }
}
