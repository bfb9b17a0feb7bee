/**
 * The repeated-execution throttle of the governor (docs/risk-controls.md#repeated-execution-throttle):
 * the fills of each symbol (EXECUTED results of `quantum:stream:apply.result` with a filled quantity, read
 * incrementally) within `GOVERNOR_MAX_FILLS_WINDOW_SEC`; more than `GOVERNOR_MAX_FILLS_PER_SYMBOL[_<SYM>]`
 * (off by default) trips the symbol once (`fillThrottle-3.lua`): its trading state becomes REDUCING
 * (entries denied, exits pass), a FILL_THROTTLE_TRIPPED event is added, and only an operator re-arms it
 * (`p3 trading-state set SYMBOL ACTIVE --reason R`); fills before the trip no longer count.
 *
 * Metric: `governor_fill_throttle_trips_total{symbol}`.
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { EVENTS_MAXLEN, STREAMS, keys } from '../../../adapters/redis/keys.js';
import { fillThrottle } from '../../../adapters/redis/scripts/index.js';
import { EVENT } from '../../../domain/events.js';
import { StreamTail, streamIdMs } from '../../../adapters/redis/stream-tail.js';
import { checkFillThrottle, type ControlVerdict } from '../../../domain/risk-controls/index.js';
import { fillFromResult } from '../../../domain/result.js';
import { forSymbol, type RiskConfig } from './config.js';

/** See the module comment. One per governor process. */
export class FillThrottle {
  /** Per symbol: stream times (ms) of its fills, ascending. */
  private readonly fills = new Map<string, number[]>();
  private readonly tail: StreamTail;
  private readonly trips: Counter<'symbol'>;
  private readonly windowMs: number;

  constructor(
    private readonly deps: { redis: Redis; logger: Logger; registry: Registry; allowlist: readonly string[] },
    private readonly cfg: RiskConfig,
  ) {
    this.windowMs = cfg.maxFillsWindowSec * 1000;
    this.trips = new Counter({ name: 'governor_fill_throttle_trips_total', help: 'Repeated-execution throttle trips (symbol set REDUCING), by symbol', labelNames: ['symbol'], registers: [deps.registry] });
    for (const symbol of deps.allowlist) this.trips.inc({ symbol }, 0);
    this.tail = new StreamTail(deps.redis, STREAMS.applyResult, {
      initial: (nowMs) => ({ from: `${Math.max(0, nowMs - this.windowMs)}-0` }),
      onEntry: (id, flat) => {
        const f: Record<string, string> = {};
        for (let i = 0; i + 1 < flat.length; i += 2) f[flat[i] as string] = flat[i + 1] as string;
        if (!f.symbol || fillFromResult(id, f) === null) return;
        let ts = this.fills.get(f.symbol);
        if (!ts) this.fills.set(f.symbol, (ts = []));
        ts.push(streamIdMs(id));
      },
      onReset: () => this.fills.clear(),
      onRefreshed: (nowMs) => {
        const keep = nowMs - this.windowMs - 60_000;
        for (const [sym, ts] of this.fills) {
          while (ts.length > 0 && (ts[0] as number) < keep) ts.shift();
          if (ts.length === 0) this.fills.delete(sym);
        }
      },
    });
  }

  /** True when the throttle is on for `symbol`. */
  enabled(symbol: string): boolean {
    return forSymbol(this.cfg.maxFillsPerSymbol, symbol) !== null;
  }

  /**
   * Checks `symbol` with fresh fills and trips it when past the limit.
   * @returns the verdict (`fill_throttle` when past the limit)
   * @throws Redis errors (the caller's consumer retries the plan; the monitor logs them)
   */
  async check(symbol: string, nowMs = Date.now()): Promise<ControlVerdict> {
    const max = forSymbol(this.cfg.maxFillsPerSymbol, symbol);
    if (max === null) return { ok: true };
    const [[, last]] = await Promise.all([this.deps.redis.hmget(keys.governorRisk(), `throttle_tripped_ms:${symbol}`).then((v) => [null, v[0] ?? null] as const), this.tail.fresh(nowMs)]);
    const since = last !== null && /^\d+$/.test(last) ? Number(last) : null;
    const v = checkFillThrottle(this.fills.get(symbol) ?? [], nowMs, max, this.windowMs, since);
    if (v.ok) return v;
    const reason = `repeated-execution throttle: ${v.context.fills_in_window} fills in ${v.context.window_sec} s > ${max} (GOVERNOR_MAX_FILLS_PER_SYMBOL); an operator re-arms with p3 trading-state set ${symbol} ACTIVE --reason R`;
    const event = ['event', EVENT.FILL_THROTTLE_TRIPPED, 'scope', symbol, 'symbol', symbol, ...Object.entries(v.context).flat(), 'ts_ms', String(nowMs)];
    const out = await fillThrottle(this.deps.redis, { symbol, nowMs, lastTripMs: last ?? '', reason, event, eventsMaxlen: EVENTS_MAXLEN });
    if (out !== 'not_tripped') {
      this.trips.inc({ symbol });
      this.deps.logger.error({ symbol, ...v.context, state_set: out === 'tripped_state_set' }, `${symbol}: FILL THROTTLE TRIPPED: ${reason}`);
    }
    return v;
  }

  /** Checks every allowlisted symbol with the throttle on (the monitor's periodic pass). */
  async checkAll(nowMs = Date.now()): Promise<void> {
    for (const s of this.deps.allowlist) if (this.enabled(s)) await this.check(s, nowMs);
  }
}
