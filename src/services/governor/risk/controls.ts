/**
 * The governor's wiring of the pre-trade risk controls (docs/risk-controls.md): reads the mark, its time
 * and the index price from the snapshot hash the decision already read, the plan's `ref_price`, and runs
 * the pure rules of src/domain/risk-controls/ for entries. Exits and closes are never checked here.
 *
 * The loss limit (loss-limit.ts) runs beside it: entries are denied `loss_limit` while it says so.
 *
 * Metrics: `governor_mark_deviation_bps{symbol, against}` (last measured distance of the mark from the
 * plan's `ref_price` or from the index, basis points), `governor_mark_age_ms{symbol}` (age of the mark the
 * last entry used); the DENYs are counted in `governor_decisions_total{reason}` with their own reasons.
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { Gauge, type Registry } from 'prom-client';
import { Decimal, parseDecimal } from '../../../domain/decimal.js';
import { checkEntryRiskControls } from '../../../domain/risk-controls/index.js';
import { deny } from '../../../domain/permits.js';
import { isEntryAction, type Plan } from '../../../domain/plan.js';
import type { GovernorOutcome } from '../../../domain/governor.js';
import { symbolRiskSettings, type RiskConfig } from './config.js';
import { LossLimitMonitor } from './loss-limit.js';
import { FillsJournalProfit, type RealizedProfitSource } from './realized.js';
import { FillThrottle } from './fill-throttle.js';

/** What the controls need from the governor. */
export interface RiskControlsDeps {
  redis: Redis;
  logger: Logger;
  registry: Registry;
  /** `P3_ALLOWLIST`: the positions whose unrealized profit counts toward the loss limit. */
  allowlist: readonly string[];
  /** Realized profit of the venue's fills (default: the fills journal, src/services/governor/risk/realized.ts). */
  realized?: RealizedProfitSource;
}

/** Mark price fields of a snapshot hash (`mark_price`, `mark_ts_ms`, else `ts_ms`, `index_price`). */
export interface MarkRead {
  mark: Decimal | null;
  markTsMs: number | null;
  indexPrice: Decimal | null;
}

/**
 * Reads the mark, its time and the index price from a raw snapshot hash. A mark without `mark_ts_ms` is as
 * old as the snapshot (`ts_ms`): the publisher writes `mark_ts_ms` whenever the mark came from elsewhere.
 */
export function readMark(raw: Record<string, string>): MarkRead {
  const dec = (v: string | undefined) => {
    const d = v !== undefined && v !== '' ? parseDecimal(v) : null;
    return d !== null && d.gt(0) ? d : null;
  };
  const int = (v: string | undefined) => (v !== undefined && /^\d+$/.test(v.trim()) ? Number(v.trim()) : null);
  const mark = dec(raw.mark_price);
  return { mark, markTsMs: mark === null ? null : (int(raw.mark_ts_ms) ?? int(raw.ts_ms)), indexPrice: dec(raw.index_price) };
}

/** See the module comment. */
export class RiskControls {
  private readonly deviation: Gauge<'symbol' | 'against'>;
  private readonly markAge: Gauge<'symbol'>;
  /** The loss limit (kill switch on drawdown). */
  readonly lossLimit: LossLimitMonitor;
  /** The repeated-execution throttle. */
  readonly throttle: FillThrottle;

  constructor(
    readonly cfg: RiskConfig,
    deps: RiskControlsDeps,
  ) {
    const { registry } = deps;
    this.throttle = new FillThrottle({ redis: deps.redis, logger: deps.logger, registry, allowlist: deps.allowlist }, cfg);
    this.lossLimit = new LossLimitMonitor({ redis: deps.redis, logger: deps.logger, registry, allowlist: deps.allowlist, source: deps.realized ?? new FillsJournalProfit(deps.redis), periodic: (nowMs) => this.throttle.checkAll(nowMs) }, cfg);
    this.deviation = new Gauge({ name: 'governor_mark_deviation_bps', help: "Distance of the mark price from the plan's ref_price or from the index price at the last entry decision, basis points", labelNames: ['symbol', 'against'], registers: [registry] });
    this.markAge = new Gauge({ name: 'governor_mark_age_ms', help: 'Age of the mark price the last entry decision used, ms', labelNames: ['symbol'], registers: [registry] });
  }

  /** Starts the loss-limit monitor. */
  start(): void {
    this.lossLimit.start();
  }

  /** Stops the loss-limit monitor. */
  async stop(): Promise<void> {
    await this.lossLimit.stop();
  }

  /**
   * Checks an entry the governor's own rules allowed.
   * @param pre the ALLOW outcome (its qty is the entry's base quantity)
   * @param snap the raw snapshot hash the decision read
   * @param maxPositionUsd the symbol's position limit (the fat finger's base), USD; null = none
   * @returns null when every control passes (or the plan is not an entry), else the DENY outcome
   * @throws Redis errors (the throttle's read; the consumer retries the plan)
   */
  async check(plan: Plan, pre: GovernorOutcome, snap: Record<string, string>, nowMs: number, maxPositionUsd: Decimal | null): Promise<GovernorOutcome | null> {
    if (!isEntryAction(plan.action) || pre.decision !== 'ALLOW' || pre.qty === null) return null;
    const m = readMark(snap);
    const refPrice = plan.ref_price !== undefined && plan.ref_price !== null ? new Decimal(plan.ref_price) : null;
    const v = checkEntryRiskControls({ symbol: plan.symbol, qty: pre.qty, mark: m.mark, markTsMs: m.markTsMs, indexPrice: m.indexPrice, refPrice, nowMs, settings: symbolRiskSettings(this.cfg, plan.symbol, maxPositionUsd) });
    const ctx = v.context ?? {};
    if (ctx.mark_age_ms !== undefined) this.markAge.set({ symbol: plan.symbol }, Number(ctx.mark_age_ms));
    if (ctx.deviation_bps !== undefined && ctx.against !== undefined) this.deviation.set({ symbol: plan.symbol, against: ctx.against }, Number(ctx.deviation_bps));
    if (v.ok) {
      // the loss limit: past the day's threshold (before the trading state says REDUCING) or unknown
      const loss = this.lossLimit.entryBlock(nowMs);
      if (loss !== null) return { ...deny('loss_limit', { ...pre.context, ...loss }, pre.qty, pre.side), notional: pre.notional, markPrice: pre.markPrice, autoApproved: false };
      if (!this.throttle.enabled(plan.symbol)) return null;
      const t = await this.throttle.check(plan.symbol, nowMs);
      if (t.ok) return null;
      return { ...deny(t.reason, { ...pre.context, ...t.context }, pre.qty, pre.side), notional: pre.notional, markPrice: pre.markPrice, autoApproved: false };
    }
    return { ...deny(v.reason, { ...pre.context, ...v.context }, pre.qty, pre.side), notional: pre.notional, markPrice: pre.markPrice, autoApproved: false };
  }
}
