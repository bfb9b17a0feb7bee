/**
 * The position brain's snapshot publisher (P3.3): polls the exchange's positions (REST) every
 * `P33_SNAPSHOT_INTERVAL_MS` — or every `P33_REST_VERIFY_INTERVAL_MS` while the user data stream is
 * healthy (`user-stream.ts` sets {@link SnapshotPublisher.setIntervalProvider}) — and, for every
 * `P3_ALLOWLIST` symbol, replaces
 * `quantum:position:snapshot:<SYM>` and adds `{symbol, ts_ms}` to `quantum:stream:position.snapshot`
 * (MAXLEN ~10000) in ONE atomic step (`snapshotWrite-2.lua`).
 *
 * Hash fields: `position_amt` (signed decimal string), `side` (LONG|SHORT|FLAT), `entry_price`,
 * `mark_price` (from the position row, else from the exchange's mark prices refreshed every
 * {@link MARK_REFRESH_MS} and between slow polls; absent when unknown), `mark_ts_ms` (when that mark was read: the sending time
 * of the request that returned it, for the governor's stale-mark check), `index_price` (premiumIndex
 * `indexPrice`, for the price collar; absent when unknown), `step_size` (the symbol's lot step, so the shared
 * tolerance defaults to one lot step; absent when unknown), `min_qty` and `min_notional` (exchangeInfo, for
 * sizing entries; absent when unknown), `ts_ms`, `ts_epoch`
 * (seconds, 3 decimals), `received_ts_ms` (when the answer arrived, diagnostics only), `source` = `rest`
 * (the user data stream writes the same hash with `source` = `stream`, see user-stream.ts).
 *
 * SAFETY: `ts_ms`/`ts_epoch` is the time the positions REQUEST WAS SENT (taken before the call), not
 * when the answer arrived. The answer reflects the exchange at or after that instant, so the timestamp
 * is conservative: a fill that happened while the request was in flight is NEWER than the snapshot, and
 * the reconcile engine, which never acts on a snapshot older than the newest fill, waits for the next one.
 *
 * Fail closed:
 * - any exchange failure (rate limit, ban, 5xx, timeout, auth, hedge mode, unparseable answer) writes
 *   NOTHING: the snapshots go stale and the reconcile engine holds (`stale_exchange`);
 * - a symbol absent from a SUCCESSFUL answer is flat (v3 positionRisk omits flat symbols); a failed,
 *   partial or unparseable answer is never read as flat (the gateway throws for those);
 * - the shared back-off (`quantum:exchange:backoff_until`) is honoured by the gateway decorator: while
 *   it is in force no request is sent.
 * - several publishers may run: a snapshot never moves back in time (the script keeps the newer one).
 *
 * Metrics: `p33_snapshot_written_total{symbol}`, `p33_snapshot_errors_total{kind}`,
 * `p33_snapshot_polls_total{result}`, `p33_snapshot_age_sec{symbol}` (age of the newest snapshot this
 * instance wrote, at scrape time), `p33_snapshot_last_success_timestamp_seconds`.
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import { Auth, Banned, HedgeModeRefused, RateLimited, Unavailable } from '../../adapters/exchange/errors.js';
import { EVENTS_MAXLEN } from '../../adapters/redis/keys.js';
import { snapshotMark, snapshotWrite } from '../../adapters/redis/scripts/index.js';
import { Decimal, fmt } from '../../domain/decimal.js';
import { SNAPSHOT_FUTURE_SKEW_MS } from '../../domain/position.js';
import type { ExchangeGateway, PremiumIndexEntry } from '../../ports/exchange.js';
import { sleep } from '../../lib/sleep.js';
import type { SnapshotConfig } from './config.js';

/** Error kinds counted in `p33_snapshot_errors_total{kind}`. */
export const SNAPSHOT_ERROR_KINDS = ['rate_limited', 'banned', 'unavailable', 'auth', 'hedge_mode', 'redis', 'other'] as const;
/** One of {@link SNAPSHOT_ERROR_KINDS} (label of `p33_snapshot_errors_total`). */
export type SnapshotErrorKind = (typeof SNAPSHOT_ERROR_KINDS)[number];

/** How far in the future a stored ts_ms may be before a publisher overwrites it anyway, ms (readers treat such a snapshot as invalid). */
const FUTURE_TOLERANCE_MS = SNAPSHOT_FUTURE_SKEW_MS;
/** How often the lot steps are re-read from exchangeInfo, ms. */
const STEP_REFRESH_MS = 600_000;
/**
 * How often the mark and index prices are refreshed, ms (premiumIndex, weight 10): well below the governor's
 * `GOVERNOR_MARK_MAX_AGE_MS` (5000), which denies entries on an older mark (docs/risk-controls.md#stale-mark).
 */
const MARK_REFRESH_MS = 2_000;

/** What the publisher needs from the brain service (a `ServiceContext` fits). */
export interface SnapshotPublisherContext {
  redis: Redis;
  logger: Logger;
  registry: Registry;
}

/** Result of one poll; `positions` = the exchange's answer (symbols absent are flat). */
export type PollResult = { ok: true; sentMs: number; receivedMs: number; written: string[]; skipped: string[]; positions: Map<string, { amount: Decimal }> } | { ok: false; kind: SnapshotErrorKind; error: string };

/**
 * Writes one snapshot hash + notification entry atomically (`snapshotWrite-2.lua`: never back in time).
 * @returns true when written, false when a newer snapshot was already stored
 * @throws on a Redis error
 */
export async function writeSnapshot(redis: Redis, symbol: string, tsMs: number, fields: Record<string, string>): Promise<boolean> {
  const res = await snapshotWrite(redis, { symbol, tsMs, maxlen: EVENTS_MAXLEN, nowMs: Date.now(), futureToleranceMs: FUTURE_TOLERANCE_MS, fields });
  return res.kind === 'written';
}

/** Classifies a failure for metrics and logs. */
export function classifySnapshotError(err: unknown): SnapshotErrorKind {
  if (err instanceof RateLimited) return 'rate_limited';
  if (err instanceof Banned) return 'banned';
  if (err instanceof Auth) return 'auth';
  if (err instanceof HedgeModeRefused) return 'hedge_mode';
  if (err instanceof Unavailable) return 'unavailable';
  return 'other';
}

/** The hash fields of one snapshot (exported for tests and tools). */
export function snapshotFields(p: { amount: Decimal; entryPrice: Decimal | null; markPrice: Decimal | null; markTsMs?: number | null; indexPrice?: Decimal | null; stepSize: Decimal | null; minQty?: Decimal | null; minNotional?: Decimal | null; sentMs: number; receivedMs: number; source?: 'rest' | 'stream' }): Record<string, string> {
  const side = p.amount.isZero() ? 'FLAT' : p.amount.isNeg() ? 'SHORT' : 'LONG';
  const f: Record<string, string> = {
    position_amt: fmt(p.amount),
    side,
    entry_price: p.entryPrice && !p.amount.isZero() ? fmt(p.entryPrice) : '0',
    ts_ms: String(p.sentMs),
    ts_epoch: (p.sentMs / 1000).toFixed(3),
    received_ts_ms: String(p.receivedMs),
    source: p.source ?? 'rest',
  };
  if (p.markPrice) {
    f.mark_price = fmt(p.markPrice);
    // the mark's own time (the request that returned it); a writer that does not know it uses the snapshot's
    f.mark_ts_ms = String(p.markTsMs ?? p.sentMs);
  }
  if (p.indexPrice) f.index_price = fmt(p.indexPrice);
  if (p.stepSize) f.step_size = fmt(p.stepSize);
  if (p.minQty) f.min_qty = fmt(p.minQty);
  if (p.minNotional) f.min_notional = fmt(p.minNotional);
  return f;
}

/** See the module comment. A component of the brain service: `start()` / `stop()` / `readiness()`. */
export class SnapshotPublisher {
  private readonly written: Counter<'symbol'>;
  private readonly errors: Counter<'kind'>;
  private readonly polls: Counter<'result'>;
  private readonly lastWrittenMs = new Map<string, number>();
  private readonly stepSizes = new Map<string, { step: Decimal; minQty: Decimal; minNotional: Decimal | null; atMs: number }>();
  private marks: { atMs: number; bySymbol: Map<string, PremiumIndexEntry> } | null = null;
  private lastSuccessMs = 0;
  private lastErrorKind: SnapshotErrorKind | null = null;
  private lastErrorLogMs = 0;
  private abort = new AbortController();
  private wake = new AbortController();
  private loop: Promise<void> | null = null;
  private markLoop: Promise<void> | null = null;
  private intervalProvider: () => number;
  private readonly pollListeners: Array<(r: PollResult) => void> = [];
  private readonly lastMarks = new Map<string, { mark: Decimal; atMs: number; index: Decimal | null }>();
  private writeFilter: (symbol: string, amount: Decimal, sentMs: number) => boolean = () => true;

  constructor(
    private readonly ctx: SnapshotPublisherContext,
    private readonly gateway: ExchangeGateway,
    readonly config: SnapshotConfig,
  ) {
    this.intervalProvider = () => config.intervalMs;
    const registers = [ctx.registry];
    this.written = new Counter({ name: 'p33_snapshot_written_total', help: 'Exchange position snapshots written, by symbol', labelNames: ['symbol'], registers });
    this.errors = new Counter({ name: 'p33_snapshot_errors_total', help: 'Snapshot polls that wrote nothing, by error kind', labelNames: ['kind'], registers });
    this.polls = new Counter({ name: 'p33_snapshot_polls_total', help: 'Snapshot polls by result (ok|error)', labelNames: ['result'], registers });
    for (const symbol of config.allowlist) this.written.inc({ symbol }, 0);
    for (const kind of SNAPSHOT_ERROR_KINDS) this.errors.inc({ kind }, 0);
    for (const result of ['ok', 'error']) this.polls.inc({ result }, 0);
    const lastWrittenMs = this.lastWrittenMs;
    new Gauge({
      name: 'p33_snapshot_age_sec',
      help: 'Age of the newest snapshot this instance wrote (seconds since its positions request was sent), by symbol',
      labelNames: ['symbol'],
      registers,
      collect() {
        const now = Date.now();
        for (const [symbol, ts] of lastWrittenMs) this.set({ symbol }, (now - ts) / 1000);
      },
    });
    const lastSuccess = () => this.lastSuccessMs;
    new Gauge({
      name: 'p33_snapshot_last_success_timestamp_seconds',
      help: 'When the last successful poll sent its positions request, epoch seconds (0 = never)',
      registers,
      collect() {
        this.set(lastSuccess() / 1000);
      },
    });
  }

  /** Starts the poll loop (no-op when disabled or already running). */
  async start(): Promise<void> {
    if (!this.config.enabled || this.loop) return;
    this.abort = new AbortController();
    this.loop = this.run(this.abort.signal);
    this.markLoop = this.refreshMarksLoop(this.abort.signal);
    this.ctx.logger.info({ allowlist: this.config.allowlist, interval_ms: this.config.intervalMs }, 'P3.3 snapshot publisher started');
  }

  /** Stops after the poll in hand. Does not close Redis or the gateway (the service owns them). */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
    await this.markLoop;
    this.loop = null;
    this.markLoop = null;
  }

  /** `p33_snapshot_loop`: the last successful poll is younger than `readyMaxAgeMs` (true when disabled). */
  readiness(): Record<string, boolean> {
    return { p33_snapshot_loop: !this.config.enabled || Date.now() - this.lastSuccessMs <= this.config.readyMaxAgeMs };
  }

  /** Sets the poll period source (ms), read before every wait (the user data stream lengthens it while healthy). */
  setIntervalProvider(fn: () => number): void {
    this.intervalProvider = fn;
  }

  /** Cuts the current wait short: the next poll starts as soon as `P33_SNAPSHOT_INTERVAL_MS` after the previous one's start allows. */
  pollSoon(): void {
    this.wake.abort();
  }

  /**
   * Sets a per-symbol check before each REST write: false = leave this symbol's snapshot as it is this poll
   * (the user data stream received a different amount after this request was sent, so this answer may
   * predate that change: the push is the newer truth).
   */
  setWriteFilter(fn: (symbol: string, amount: Decimal, sentMs: number) => boolean): void {
    this.writeFilter = fn;
  }

  /** Calls `fn` after every poll with its result (never throws into the loop). */
  onPoll(fn: (r: PollResult) => void): void {
    this.pollListeners.push(fn);
  }

  /** The newest mark price a poll wrote for `symbol`, if that poll's request was sent at most `maxAgeMs` ago (else null). */
  lastMark(symbol: string, maxAgeMs: number): Decimal | null {
    const m = this.lastMarks.get(symbol);
    return m && Date.now() - m.atMs <= maxAgeMs ? m.mark : null;
  }

  /** The newest mark (with its time, epoch ms) and index price a poll wrote for `symbol`, if the mark is at most `maxAgeMs` old (else null). */
  lastQuote(symbol: string, maxAgeMs: number): { mark: Decimal; atMs: number; index: Decimal | null } | null {
    const m = this.lastMarks.get(symbol);
    return m && Date.now() - m.atMs <= maxAgeMs ? m : null;
  }

  /** The cached exchangeInfo rules of `symbol` (null when unknown); never calls the exchange. */
  knownRules(symbol: string): { step: Decimal; minQty: Decimal; minNotional: Decimal | null } | null {
    return this.stepSizes.get(symbol) ?? null;
  }

  /**
   * The poll loop. Polls start at most every `config.intervalMs` (`P33_SNAPSHOT_INTERVAL_MS`) whatever asks
   * for them ({@link pollSoon} included), so the REST weight never exceeds the stream-off configuration; the
   * wait between polls is `intervalProvider()` unless {@link pollSoon} cuts it short.
   */
  private async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const started = Date.now();
      if (this.wake.signal.aborted) this.wake = new AbortController();
      const r = await this.pollOnce();
      for (const fn of this.pollListeners) {
        try {
          fn(r);
        } catch (err) {
          this.ctx.logger.warn({ err: (err as Error).message }, 'P3.3 poll listener failed');
        }
      }
      if (!this.wake.signal.aborted) await sleep(Math.max(0, this.intervalProvider() - (Date.now() - started)), AbortSignal.any([signal, this.wake.signal]));
      // woken early: still no sooner than the minimum spacing
      if (this.wake.signal.aborted) await sleep(Math.max(0, this.config.intervalMs - (Date.now() - started)), signal);
    }
  }

  /**
   * While position polls are slower than {@link MARK_REFRESH_MS} (the user data stream is healthy), refreshes
   * the marks of the existing snapshots in between (`snapshotMark-1.lua`: mark fields only, never back in
   * time), so an entry's mark stays younger than the governor's `GOVERNOR_MARK_MAX_AGE_MS`. Never throws.
   */
  private async refreshMarksLoop(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await sleep(MARK_REFRESH_MS, signal);
      if (signal.aborted || this.intervalProvider() <= MARK_REFRESH_MS) continue;
      try {
        const marks = await this.markPrices();
        for (const symbol of this.config.allowlist) {
          const q = marks.bySymbol.get(symbol);
          if (!q) continue;
          if ((await snapshotMark(this.ctx.redis, { symbol, mark: fmt(q.markPrice), markTsMs: marks.atMs, indexPrice: q.indexPrice ? fmt(q.indexPrice) : '' })) === 'written') {
            this.lastMarks.set(symbol, { mark: q.markPrice, atMs: marks.atMs, index: q.indexPrice });
          }
        }
      } catch (err) {
        this.ctx.logger.debug({ err: (err as Error).message }, 'marks not refreshed between polls');
      }
    }
  }

  /**
   * Lot step of `symbol` from exchangeInfo, refreshed every {@link STEP_REFRESH_MS}; on a failed refresh
   * the last known step is kept, and with none the field is left out this time (tolerance then falls back
   * to the configured one, else an exact match: fail closed).
   */
  private async stepSize(symbol: string): Promise<{ step: Decimal; minQty: Decimal; minNotional: Decimal | null } | null> {
    const known = this.stepSizes.get(symbol);
    if (known && Date.now() - known.atMs < STEP_REFRESH_MS) return known;
    try {
      const r = await this.gateway.symbolRules(symbol);
      const v = { step: r.stepSize, minQty: r.minQty, minNotional: r.minNotional, atMs: Date.now() };
      this.stepSizes.set(symbol, v);
      return v;
    } catch (err) {
      if (known) return known;
      this.ctx.logger.warn({ symbol, err: (err as Error).message }, `${symbol}: lot step unknown (exchangeInfo failed); snapshot written without step_size`);
      return null;
    }
  }

  /**
   * Mark and index prices from the exchange (premiumIndex), refreshed every {@link MARK_REFRESH_MS} (a flat
   * symbol has no position row to carry its mark; entries need one; the index feeds the price collar).
   * A failed refresh keeps the last ones for at most 3 refresh periods, then none (entries on flat symbols
   * are then denied `mark_price_unknown`; the governor denies a mark older than its limit `stale_mark`).
   * `atMs` is when the request was sent (the marks' conservative time).
   */
  private async markPrices(): Promise<{ atMs: number; bySymbol: Map<string, PremiumIndexEntry> }> {
    const now = Date.now();
    if (this.marks && now - this.marks.atMs < MARK_REFRESH_MS) return this.marks;
    try {
      if (this.gateway.fetchPremiumIndex) this.marks = { atMs: now, bySymbol: await this.gateway.fetchPremiumIndex() };
      else if (this.gateway.fetchMarkPrices) {
        const m = await this.gateway.fetchMarkPrices();
        this.marks = { atMs: now, bySymbol: new Map([...m].map(([s, markPrice]) => [s, { markPrice, indexPrice: null }])) };
      }
    } catch (err) {
      this.ctx.logger.debug({ err: (err as Error).message }, 'mark prices not refreshed');
      if (this.marks && now - this.marks.atMs > 3 * MARK_REFRESH_MS) this.marks = null;
    }
    return this.marks ?? { atMs: now, bySymbol: new Map() };
  }

  /**
   * One poll: fetch positions, write every allowlisted symbol's snapshot. Never throws.
   * @returns what was written, or the error kind (nothing written)
   */
  async pollOnce(): Promise<PollResult> {
    const { logger } = this.ctx;
    const sentMs = Date.now(); // BEFORE the request: the conservative timestamp (see the module comment)
    let positions;
    try {
      positions = (await this.gateway.fetchPositions()).positions;
    } catch (err) {
      return this.fail(classifySnapshotError(err), err);
    }
    const receivedMs = Date.now();
    const written: string[] = [];
    const skipped: string[] = [];
    const marks = await this.markPrices();
    try {
      for (const symbol of this.config.allowlist) {
        const p = positions.get(symbol);
        if (!this.writeFilter(symbol, p?.amount ?? new Decimal(0), sentMs)) {
          skipped.push(symbol);
          continue;
        }
        const rules = await this.stepSize(symbol);
        const quote = marks.bySymbol.get(symbol);
        const fields = snapshotFields({
          amount: p?.amount ?? new Decimal(0),
          entryPrice: p?.entryPrice ?? null,
          markPrice: p?.markPrice ?? quote?.markPrice ?? null,
          markTsMs: p?.markPrice ? sentMs : quote ? marks.atMs : null,
          indexPrice: quote?.indexPrice ?? null,
          stepSize: rules?.step ?? null,
          minQty: rules?.minQty ?? null,
          minNotional: rules?.minNotional ?? null,
          sentMs,
          receivedMs,
        });
        if (fields.mark_price) this.lastMarks.set(symbol, { mark: new Decimal(fields.mark_price), atMs: Number(fields.mark_ts_ms), index: quote?.indexPrice ?? null });
        if (!(await writeSnapshot(this.ctx.redis, symbol, sentMs, fields))) {
          skipped.push(symbol);
          continue;
        }
        written.push(symbol);
        this.written.inc({ symbol });
        this.lastWrittenMs.set(symbol, sentMs);
        logger.debug({ symbol, ...fields }, `${symbol}: snapshot ${fields.side} ${fields.position_amt}`);
      }
    } catch (err) {
      return this.fail('redis', err);
    }
    this.polls.inc({ result: 'ok' });
    this.lastSuccessMs = sentMs;
    if (this.lastErrorKind !== null) {
      logger.info({ previous_error: this.lastErrorKind }, 'P3.3 snapshots resumed');
      this.lastErrorKind = null;
    }
    return { ok: true, sentMs, receivedMs, written, skipped, positions };
  }

  private fail(kind: SnapshotErrorKind, err: unknown): PollResult {
    this.errors.inc({ kind });
    this.polls.inc({ result: 'error' });
    const now = Date.now();
    const error = (err as Error)?.message ?? String(err);
    // log on a new kind of failure, then at most every 30 s
    if (kind !== this.lastErrorKind || now - this.lastErrorLogMs > 30_000) {
      this.ctx.logger.warn({ kind, err: error }, `P3.3 snapshot poll failed (${kind}); nothing written, snapshots go stale`);
      this.lastErrorLogMs = now;
    }
    this.lastErrorKind = kind;
    return { ok: false, kind, error };
  }
}
