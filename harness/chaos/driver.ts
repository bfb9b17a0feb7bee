/**
 * The strategy of a chaos run: opens, grows and exits positions on every symbol through signed plans
 * (OPEN by notional from flat, INCREASE on the same side, PARTIAL_50, REDUCE, FULL_CLOSE; the demo's
 * cycle, harness/demo/driver.ts `nextTrade`), one plan per symbol at a time (it waits for the plan's final
 * result, at most {@link RESULT_WAIT_MS}, as a strategy would), and the plan-level faults: duplicated
 * entries, forged plans and closes (MAC by a wrong key) and malformed entries. It records everything it
 * submitted for the invariant checker.
 *
 * It is a correct producer (README "Producer contract", docs/reliability.md): a plan is finished only when its
 * final result is durably in Redis. The same signed entry (same plan id, same MAC) is added again when no final
 * result arrived within {@link RESUBMIT_AFTER_MS} (then with a doubling back-off) AND Redis restarted or failed
 * over since the plan's last submission (its `run_id` changed: the entry itself may be lost; without a restart
 * nothing was lost and the apply layer answers in its own time), or when a final result seen earlier is gone from Redis
 * {@link DURABLE_AFTER_MS} later (a host crash lost it); the apply layer answers a re-submission exactly once
 * (DROPPED_DUPLICATE while the plan is known, else the outcome recovered from the exchange by client order id).
 * `produce()` keeps doing so until the run's final checks, after the trading loop has stopped.
 *
 * Invariants: every plan id is unique per run; a plan is `acked` once Redis answered one of its XADDs (an
 * unanswered XADD may still have been applied: it is kept as `acked: false`, its order still needs permits).
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { keys, STREAMS, PLAN_STREAM_MAXLEN } from '../../src/adapters/redis/keys.js';
import { canonicalJson, hmacHex, signPlan, type PlanInput, type SignedPlanFields } from '../../src/domain/plan.js';
import { clientOrderIdFor } from '../../src/domain/apply.js';
import { buildStrategyPlan } from '../../src/plans/submit.js';
import { nextTrade } from '../demo/driver.js';
import { sleep } from '../../src/lib/sleep.js';
import type { SeededRng } from './rng.js';

/** Longest wait for a plan's final result before the symbol's next plan, ms. */
export const RESULT_WAIT_MS = 15_000;
/**
 * A plan without a final result this long after its first submission is submitted again (same signed entry), ms;
 * each further re-submission waits twice as long (at most {@link RESUBMIT_MAX_MS}).
 */
export const RESUBMIT_AFTER_MS = 4000;
/** Longest gap between two re-submissions of a plan still without a final result, ms. */
export const RESUBMIT_MAX_MS = 30_000;
/**
 * A final result seen is read again this long after it was seen; gone = lost by a Redis crash, and the plan is
 * submitted again. `appendfsync everysec` loses at most about 2 s of writes, so a result still there after this
 * is on disk, ms.
 */
export const DURABLE_AFTER_MS = 5000;
/** The producer stops re-submitting a plan this long after its first submission (plans expire after 120 s), ms. */
export const PRODUCER_KEEP_MS = 150_000;

/** A well-formed plan the strategy submitted. */
export interface DriverPlan {
  plan_id: string;
  client_order_id: string;
  symbol: string;
  action: string;
  side?: string;
  /** Epoch ms of the (first) XADD. */
  submitted_ms: number;
  /** True when Redis acknowledged the first XADD. */
  acked: boolean;
  /** Stream entry ids (the original and its duplicates). */
  entry_ids: string[];
  /** Extra copies of the same signed entry added (the `duplicate_plan` fault). */
  duplicates: number;
  /** Re-submissions of the producer (no final result in time, or the result lost by Redis). */
  resubmits: number;
  /** Epoch ms of the last submission (first or re-submission). */
  last_submit_ms: number;
  /** True once its final result was read back from Redis after {@link DURABLE_AFTER_MS}. */
  durable: boolean;
  /** Redis `run_id` seen before its last submission (null when unknown: counts as changed). */
  submit_epoch?: string | null;
}

/** A forged or malformed entry; each must end in a dead-letter stream. */
export interface BadEntry {
  kind: 'forged_plan' | 'forged_close' | 'malformed';
  /** Stream it was added to. */
  stream: string;
  entry_id: string;
  /** Its plan id when it has a readable one. */
  plan_id?: string;
  /** Client order id the plan id would map to (an order with it would be a forged execution). */
  client_order_id?: string;
  submitted_ms: number;
  detail: string;
}

/** Options of {@link ChaosDriver}. */
export interface ChaosDriverOptions {
  redis: Redis;
  symbols: string[];
  /** `P3_KEY_EXIT_BRAIN`. */
  key: string;
  rng: SeededRng;
  /** Gap between two plans (round robin over the symbols), ms. */
  gapMs: number;
  /** True when the plan has a final result (the observer's view). */
  hasFinal: (planId: string) => boolean;
  /** The plan's final result seen (entry id, when seen), null when none (the observer's view). */
  finalResult?: (planId: string) => { entry_id: string; seen_ms: number } | null;
  /** Called when a final result seen earlier is gone from Redis (before the plan is re-submitted). */
  onLost?: (planId: string) => void;
  /** Called with each plan id before its entry is added (the observer starts sampling its permits). */
  onPlan?: (planId: string) => void;
}

/** Notional of an OPEN, USD (INCREASE is half). */
const ENTRY_USD = 300;

/** See the module comment. */
export class ChaosDriver {
  readonly plans = new Map<string, DriverPlan>();
  readonly bad: BadEntry[] = [];
  private readonly signed = new Map<string, SignedPlanFields>();
  private readonly inFlight = new Map<string, { planId: string; since: number }>();
  private readonly opens = new Map<string, number>();
  private seq = 0;
  /** Redis `run_id` as last read by the producer (null until read). */
  private epoch: string | null = null;
  private readonly runTag = randomBytes(3).toString('hex');

  constructor(private readonly o: ChaosDriverOptions) {}

  private nextId(prefix: string): string {
    this.seq++;
    return `${prefix}-${this.runTag}-${this.seq}`;
  }

  /** Adds `fields` to `stream`; returns the entry id or null when Redis did not answer. */
  private async add(stream: string, fields: Record<string, string>): Promise<string | null> {
    try {
      return (await this.o.redis.xadd(stream, 'MAXLEN', '~', PLAN_STREAM_MAXLEN, '*', ...Object.entries(fields).flat())) ?? null;
    } catch {
      return null;
    }
  }

  /** Runs the trading loop until `signal` aborts. Never throws. */
  async run(signal: AbortSignal): Promise<void> {
    let i = 0;
    while (!signal.aborted) {
      const symbol = this.o.symbols[i % this.o.symbols.length] as string;
      i++;
      await this.tradeOnce(symbol).catch(() => undefined);
      await sleep(this.o.gapMs, signal);
    }
  }

  /** One plan for `symbol`, unless its previous plan is still waiting for a result. */
  async tradeOnce(symbol: string): Promise<DriverPlan | null> {
    const prev = this.inFlight.get(symbol);
    if (prev && !this.o.hasFinal(prev.planId) && Date.now() - prev.since < RESULT_WAIT_MS) return null;
    const position = await this.o.redis.hget(keys.snapshot(symbol), 'position_amt').catch(() => null);
    const k = this.opens.get(symbol) ?? 0;
    const side: 'BUY' | 'SELL' = this.o.rng.chance(0.5) ? 'BUY' : 'SELL';
    const t = nextTrade(position, this.o.rng.int(0, 3), side, ENTRY_USD);
    if (!t) return null;
    if (t.action === 'OPEN') this.opens.set(symbol, k + 1);
    const planId = this.nextId(`chaos-${symbol}`);
    const plan = buildStrategyPlan({ symbol, planId, killScore: 0.5, reason: `chaos_${t.action.toLowerCase()}`, ...t });
    const fields = signPlan(plan, this.o.key);
    const rec: DriverPlan = { plan_id: planId, client_order_id: clientOrderIdFor(planId), symbol, action: t.action, side: t.side, submitted_ms: Date.now(), acked: false, entry_ids: [], duplicates: 0, resubmits: 0, last_submit_ms: Date.now(), durable: false };
    this.plans.set(planId, rec);
    this.signed.set(planId, fields);
    this.inFlight.set(symbol, { planId, since: Date.now() });
    rec.submit_epoch = this.epoch;
    this.o.onPlan?.(planId);
    const id = await this.add(STREAMS.applyPlan, { plan: fields.plan, mac: fields.mac });
    if (id) {
      rec.acked = true;
      rec.entry_ids.push(id);
    }
    return rec;
  }

  /** Re-submits plans as the producer contract says (see the module comment) until `signal` aborts. Never throws. */
  async produce(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await this.resubmitPass().catch(() => undefined);
      await sleep(250, signal);
    }
  }

  /**
   * One pass of the producer: re-submits every plan without a final result for {@link RESUBMIT_AFTER_MS}, and
   * every plan whose final result is gone from Redis; marks plans whose result was read back after
   * {@link DURABLE_AFTER_MS} as durable. @returns plan ids re-submitted
   */
  async resubmitPass(): Promise<string[]> {
    const out: string[] = [];
    const info = await this.o.redis.info('server');
    this.epoch = /^run_id:(\S+)/m.exec(info)?.[1] ?? null;
    const now = Date.now();
    for (const p of this.plans.values()) {
      if (p.durable || now - p.submitted_ms > PRODUCER_KEEP_MS) continue;
      const fin = this.o.finalResult?.(p.plan_id) ?? (this.o.hasFinal(p.plan_id) ? { entry_id: '', seen_ms: now } : null);
      if (!fin) {
        const gap = Math.min(RESUBMIT_MAX_MS, RESUBMIT_AFTER_MS * 2 ** Math.min(p.resubmits, 6));
        const mayBeLost = !p.acked || !p.submit_epoch || p.submit_epoch !== this.epoch;
        if (mayBeLost && now - p.last_submit_ms >= gap && (await this.resubmit(p))) out.push(p.plan_id);
        continue;
      }
      if (!fin.entry_id || now - fin.seen_ms < DURABLE_AFTER_MS) continue;
      const still = await this.o.redis.xrange(STREAMS.applyResult, fin.entry_id, fin.entry_id);
      if (still.length > 0) {
        p.durable = true;
        continue;
      }
      this.o.onLost?.(p.plan_id);
      if (await this.resubmit(p)) out.push(p.plan_id);
    }
    return out;
  }

  private async resubmit(p: DriverPlan): Promise<boolean> {
    const f = this.signed.get(p.plan_id);
    if (!f) return false;
    p.last_submit_ms = Date.now();
    p.submit_epoch = this.epoch;
    this.o.onPlan?.(p.plan_id); // the observer samples its permits again
    const id = await this.add(STREAMS.applyPlan, { plan: f.plan, mac: f.mac });
    if (!id) return false;
    p.acked = true;
    p.resubmits++;
    p.entry_ids.push(id);
    return true;
  }

  /** The `duplicate_plan` fault: the newest acknowledged plan's signed entry added again. @returns its plan id, or null */
  async duplicate(): Promise<string | null> {
    const recent = [...this.plans.values()].filter((p) => p.acked).slice(-4);
    if (recent.length === 0) return null;
    const p = this.o.rng.pick(recent);
    const f = this.signed.get(p.plan_id);
    if (!f) return null;
    const id = await this.add(STREAMS.applyPlan, { plan: f.plan, mac: f.mac });
    if (!id) return null;
    p.duplicates++;
    p.entry_ids.push(id);
    return p.plan_id;
  }

  /** The `forged_plan` fault: a well-formed plan (or, one time in three, a RECONCILE_CLOSE) signed with a wrong key. */
  async forge(): Promise<BadEntry | null> {
    const symbol = this.o.rng.pick(this.o.symbols);
    const wrongKey = randomBytes(32).toString('hex');
    const close = this.o.rng.int(0, 2) === 0;
    const planId = this.nextId(close ? 'forged-close' : 'forged');
    let plan: PlanInput;
    if (close) {
      plan = { plan_id: planId, symbol, decision: 'RECONCILE_CLOSE', action: 'RECONCILE_CLOSE', side: this.o.rng.chance(0.5) ? 'BUY' : 'SELL', qty: '0.001', type: 'MARKET', reduceOnly: true, reason: 'reconcile_drift', source: 'p3.4', ts_ms: Date.now(), drift_sig: randomBytes(8).toString('hex') };
    } else {
      plan = buildStrategyPlan({ symbol, planId, action: 'OPEN', side: 'BUY', notionalUsd: String(ENTRY_USD), reason: 'forged' });
    }
    const f = signPlan(plan, wrongKey);
    this.o.onPlan?.(planId);
    const stream = close ? STREAMS.reconcileClose : STREAMS.applyPlan;
    const id = await this.add(stream, { plan: f.plan, mac: f.mac });
    if (!id) return null;
    const b: BadEntry = { kind: close ? 'forged_close' : 'forged_plan', stream, entry_id: id, plan_id: planId, client_order_id: clientOrderIdFor(planId), submitted_ms: Date.now(), detail: `${plan.decision} ${symbol} signed with a wrong key` };
    this.bad.push(b);
    return b;
  }

  /** The `malformed_entry` fault: not JSON, no plan field, a schema-breaking plan signed with the right key, or an unknown source. */
  async malformed(): Promise<BadEntry | null> {
    const symbol = this.o.rng.pick(this.o.symbols);
    const planId = this.nextId('malformed');
    const variant = this.o.rng.int(0, 3);
    let fields: Record<string, string>;
    let detail: string;
    if (variant === 0) {
      fields = { plan: `{"plan_id":"${planId}", not json`, mac: '00' };
      detail = 'plan is not JSON';
    } else if (variant === 1) {
      fields = { junk: planId };
      detail = 'no plan field';
    } else if (variant === 2) {
      // an OPEN flagged reduce-only breaks the action rules (docs/architecture.md#plans); signed with the strategy's real key
      const p = canonicalJson({ ...buildStrategyPlan({ symbol, planId, action: 'OPEN', side: 'BUY', notionalUsd: '100' }), reduceOnly: true });
      fields = { plan: p, mac: hmacHex(this.o.key, p) };
      detail = 'OPEN with reduceOnly true (invalid_schema), correctly signed';
    } else {
      const p = canonicalJson({ ...buildStrategyPlan({ symbol, planId, action: 'FULL_CLOSE' }), source: 'nobody' });
      fields = { plan: p, mac: hmacHex(this.o.key, p) };
      detail = 'unknown source';
    }
    const id = await this.add(STREAMS.applyPlan, fields);
    if (!id) return null;
    const b: BadEntry = { kind: 'malformed', stream: STREAMS.applyPlan, entry_id: id, plan_id: variant === 1 ? undefined : planId, client_order_id: clientOrderIdFor(planId), submitted_ms: Date.now(), detail };
    this.bad.push(b);
    return b;
  }
}
