/**
 * The loss-limit monitor of the governor (docs/risk-controls.md#loss-limit): every
 * `GOVERNOR_LOSS_CHECK_INTERVAL_MS` it measures the trading day's profit (realized profit of the venue's
 * fills through {@link RealizedProfitSource}, plus the unrealized profit of the allowlist's positions from
 * their snapshots: amount × (mark − entry price)), records it in `quantum:governor:risk` with the controls'
 * settings (for `p3 status`), and when the loss passes the day's threshold trips once (`lossLimit-3.lua`):
 * the global trading state becomes REDUCING (entries DENY `trading_state_reducing`, exits pass), a
 * LOSS_LIMIT_TRIPPED event is added to `quantum:stream:governor.events`. Only an operator re-arms it
 * (`p3 trading-state set ACTIVE --reason R`); the next trip that day comes after another limit's worth of loss.
 *
 * Between measurements the governor asks {@link LossLimitMonitor.entryBlock}: entries are denied
 * `loss_limit` while the loss is past the threshold (before the trading state is written) or unknown, or
 * when no measurement is recent (a monitor that stopped measuring never lets entries through).
 *
 * Metrics: `governor_daily_loss_usd` (loss of the trading day, USD; negative = profit),
 * `governor_daily_loss_limit_usd` (0 = off), `governor_loss_limit_unknown` (1 while the loss cannot be
 * measured), `governor_loss_limit_trips_total`.
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import { EVENTS_MAXLEN, keys } from '../../../adapters/redis/keys.js';
import { lossLimit } from '../../../adapters/redis/scripts/index.js';
import { EVENT } from '../../../domain/events.js';
import { Decimal, fmt, parseDecimal } from '../../../domain/decimal.js';
import { readSnapshot } from '../../../domain/position.js';
import { evaluateLossLimit, lossContext, tradingDayStartMs, unrealizedProfit, type LossLatch, type LossVerdict, type OpenPosition } from '../../../domain/risk-controls/index.js';
import { sleep } from '../../../lib/sleep.js';
import type { RealizedProfitSource } from './realized.js';
import { riskSettingsSummary, type RiskConfig } from './config.js';

/** Measurements older than this many check intervals do not count (entries denied while a limit is set). */
const MAX_MISSED_CHECKS = 3;

/** The last evaluation. */
interface Measured {
  atMs: number;
  verdict: LossVerdict;
}

/** See the module comment. */
export class LossLimitMonitor {
  private last: Measured | null = null;
  private abort = new AbortController();
  private loop: Promise<void> | null = null;
  private readonly trips: Counter;
  private readonly lossGauge: Gauge;
  private readonly unknownGauge: Gauge;

  constructor(
    private readonly deps: { redis: Redis; logger: Logger; registry: Registry; allowlist: readonly string[]; source: RealizedProfitSource; periodic?: (nowMs: number) => Promise<void> },
    private readonly cfg: RiskConfig,
  ) {
    const registers = [deps.registry];
    this.trips = new Counter({ name: 'governor_loss_limit_trips_total', help: 'Loss-limit trips (trading state set REDUCING by the governor)', registers });
    this.lossGauge = new Gauge({ name: 'governor_daily_loss_usd', help: 'Loss of the trading day (realized from venue fills with commissions, plus unrealized), USD; negative = profit', registers });
    this.unknownGauge = new Gauge({ name: 'governor_loss_limit_unknown', help: '1 while the loss limit cannot measure the loss (no fills journal, a position without mark or entry price)', registers });
    const limit = cfg.maxDailyLossUsd;
    new Gauge({ name: 'governor_daily_loss_limit_usd', help: 'GOVERNOR_MAX_DAILY_LOSS_USD (0 = off)', registers }).set(limit ? limit.toNumber() : 0);
    this.trips.inc(0);
  }

  /** Starts the measuring loop. */
  start(): void {
    if (this.loop) return;
    this.abort = new AbortController();
    const signal = this.abort.signal;
    this.loop = (async () => {
      while (!signal.aborted) {
        await this.checkOnce().catch((err: Error) => this.deps.logger.warn({ err: err.message }, 'loss limit: measurement failed'));
        // other periodic risk checks (the repeated-execution throttle) share this loop
        if (this.deps.periodic) await this.deps.periodic(Date.now()).catch((err: Error) => this.deps.logger.warn({ err: err.message }, 'risk controls: periodic check failed'));
        await sleep(this.cfg.lossCheckIntervalMs, signal);
      }
    })();
  }

  /** Stops after the measurement in hand. */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
    this.loop = null;
  }

  /**
   * Whether entries are denied `loss_limit` now (null = no). Off (no limit): never.
   * @param nowMs epoch ms
   */
  entryBlock(nowMs: number): Record<string, string> | null {
    if (this.cfg.maxDailyLossUsd === null) return null;
    const m = this.last;
    if (m === null || nowMs - m.atMs > MAX_MISSED_CHECKS * this.cfg.lossCheckIntervalMs) return { why: 'no_recent_measurement' };
    if (m.verdict.kind === 'ok') return null;
    return { ...lossContext(m.verdict), max_daily_loss_usd: fmt(this.cfg.maxDailyLossUsd) };
  }

  /**
   * One measurement: reads the latch and the snapshots, the realized profit, evaluates, records and trips.
   * @returns the verdict (null when no limit is set: the measurement and settings are recorded only)
   * @throws Redis errors
   */
  async checkOnce(nowMs = Date.now()): Promise<LossVerdict | null> {
    const { redis, allowlist, source } = this.deps;
    const dayStartMs = tradingDayStartMs(nowMs, this.cfg.lossDayStartHourUtc);
    const m = redis.multi().hmget(keys.governorRisk(), 'day_start_ms', 'next_trip_usd');
    for (const s of allowlist) m.hgetall(keys.snapshot(s));
    const res = await m.exec();
    if (!res) throw new Error('loss-limit read aborted');
    const err = res.find(([e]) => e)?.[0];
    if (err) throw err;
    const [latchDay, latchNext] = res[0]![1] as [string | null, string | null];
    const nextTrip = latchNext !== null ? parseDecimal(latchNext) : null;
    const latch: LossLatch | null = latchDay !== null && /^\d+$/.test(latchDay) && nextTrip !== null ? { dayStartMs: Number(latchDay), nextTripUsd: nextTrip } : null;
    const positions: OpenPosition[] = [];
    let unreadable = false;
    allowlist.forEach((symbol, i) => {
      const raw = res[1 + i]![1] as Record<string, string>;
      const snap = readSnapshot(raw);
      if (snap.kind !== 'ok') {
        unreadable = true;
        return;
      }
      const entry = raw.entry_price !== undefined ? parseDecimal(raw.entry_price) : null;
      positions.push({ symbol, amount: snap.snapshot.amount, entryPrice: entry, mark: snap.snapshot.markPrice });
    });
    const realized = await source.realizedSince(dayStartMs).catch(() => null);
    const unrealized = unreadable ? null : unrealizedProfit(positions);
    const limit = this.cfg.maxDailyLossUsd;
    const verdict = evaluateLossLimit(realized, unrealized, limit ?? new Decimal(0), latch, dayStartMs);
    this.unknownGauge.set(verdict.kind === 'unknown' ? 1 : 0);
    if (verdict.kind !== 'unknown') this.lossGauge.set(verdict.lossUsd.toNumber());
    const measurement: Record<string, string> = {
      measured_ts_ms: String(nowMs),
      measured_day_start_ms: String(dayStartMs),
      realized_usd: realized === null ? '' : fmt(realized),
      unrealized_usd: unrealized === null ? '' : fmt(unrealized),
      loss_usd: verdict.kind === 'unknown' ? '' : fmt(verdict.lossUsd),
      loss_unknown: verdict.kind === 'unknown' ? verdict.why : '',
      max_daily_loss_usd: limit === null ? 'off' : fmt(limit),
      controls: JSON.stringify(riskSettingsSummary(this.cfg)),
    };
    const trip = limit !== null && verdict.kind === 'trip';
    const reason = trip ? `loss limit: loss ${fmt(verdict.lossUsd)} USD > ${fmt(verdict.thresholdUsd)} USD today (GOVERNOR_MAX_DAILY_LOSS_USD=${fmt(limit)}); an operator re-arms with p3 trading-state set ACTIVE --reason R` : '';
    const event = trip ? ['event', EVENT.LOSS_LIMIT_TRIPPED, 'scope', 'global', 'loss_usd', fmt(verdict.lossUsd), 'threshold_usd', fmt(verdict.thresholdUsd), 'max_daily_loss_usd', fmt(limit), 'realized_usd', realized === null ? '' : fmt(realized), 'unrealized_usd', unrealized === null ? '' : fmt(unrealized), 'day_start_ms', String(dayStartMs), 'ts_ms', String(nowMs)] : [];
    const expected = latch !== null && latch.dayStartMs === dayStartMs ? (latchNext ?? '') : '';
    const out = await lossLimit(redis, { measurement, trip, dayStartMs, expectedNextTripUsd: expected, nextTripUsd: trip ? fmt(verdict.nextTripUsd) : '', nowMs, reason, event, eventsMaxlen: EVENTS_MAXLEN });
    if (out !== 'recorded') {
      this.trips.inc();
      this.deps.logger.error({ loss_usd: trip ? fmt(verdict.lossUsd) : '', state_set: out === 'tripped_state_set' }, `LOSS LIMIT TRIPPED: ${reason}${out === 'tripped_state_set' ? '; trading state REDUCING' : '; trading state already REDUCING or stricter'}`);
    }
    this.last = { atMs: nowMs, verdict };
    return limit === null ? null : verdict;
  }
}
