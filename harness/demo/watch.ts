/**
 * Follows what the services do for the demo's symbols: the reconcile events, apply results and snapshot
 * notification streams (XREAD BLOCK on a dedicated connection) and the reconcile state of each symbol
 * (polled), and turns them into timeline entries relative to each symbol's current phase.
 *
 * Which source noticed an incident: the first snapshot after the injection whose exchange
 * amount differs from the one at the injection is reported as `NOTICED` with its `source` (`stream`: the
 * user data stream push; `rest`: a REST poll); an incident that does not move the exchange (a ledger
 * edited or lost) is noticed on the snapshot already there, and the HOLD_SET / AUTO_REPAIR line names
 * that snapshot's source.
 */
import type { Redis } from 'ioredis';
import { fieldsToObject } from '../../src/adapters/redis/consumer.js';
import { STREAMS, keys } from '../../src/adapters/redis/keys.js';
import { sleep } from '../../src/lib/sleep.js';
import type { TimelineEntry, TimelineKind } from './timeline.js';
import { EVENT } from '../../src/domain/events.js';

/** What has been seen for a symbol since its current phase was injected (epoch ms, null = not yet). */
export interface PhaseObservations {
  t0: number;
  holdSetAt: number | null;
  holdClearedAt: number | null;
  repairAt: number | null;
  closes: Array<{ side: string; qty: string; orderId: string; tsMs: number }>;
  /** Source of the snapshot that showed the incident (`stream` | `rest`), null until known. */
  noticedBy: string | null;
  /** Exchange amount at the injection ('' when no snapshot). */
  startAmt: string;
  /** When a snapshot first showed the exchange change, epoch ms. */
  noticedAt: number | null;
}

/** Tracks phases per symbol and emits timeline entries. */
export class DemoWatcher {
  private readonly phases = new Map<string, { scenario: string; obs: PhaseObservations }>();
  private readonly lastStatus = new Map<string, string>();

  constructor(
    private readonly redis: Redis,
    private readonly emit: (e: TimelineEntry) => void,
  ) {}

  private readonly lastPermits = new Map<string, string>();

  /**
   * Starts a new phase for `symbol` at `t0` (epoch ms); later entries are timed from it. The symbol's
   * current reconcile status is taken as known, so only changes after the injection are reported.
   */
  async beginPhase(scenario: string, symbol: string, t0: number): Promise<PhaseObservations> {
    const s = await this.redis.hmget(keys.reconcileState(symbol), 'status', 'reason').catch(() => [null, null]);
    if (s[0]) this.lastStatus.set(symbol, `${s[0]}|${s[1]}`);
    const amt = await this.redis.hget(keys.snapshot(symbol), 'position_amt').catch(() => null);
    const obs: PhaseObservations = { t0, holdSetAt: null, holdClearedAt: null, repairAt: null, closes: [], noticedBy: null, startAmt: amt ?? '', noticedAt: null };
    this.phases.set(symbol, { scenario, obs });
    return obs;
  }

  /**
   * Reports both permits of a strategy plan, only when the pair of decisions differs from the previous
   * plan of the symbol (DENY(reconcile_hold_active) → ALLOW → DENY(nothing_to_close)), not every plan.
   */
  permits(symbol: string, planId: string, pair: string): void {
    if (this.lastPermits.get(symbol) === pair) return;
    this.lastPermits.set(symbol, pair);
    this.entry(symbol, 'PERMITS', `plan ${planId}: ${pair}`);
  }

  /** Emits an entry for `symbol` if it belongs to a running scenario. */
  entry(symbol: string, kind: TimelineKind, detail: string, tsMs = Date.now(), data?: Record<string, unknown>): void {
    const p = this.phases.get(symbol);
    if (!p) return;
    this.emit({ type: 'event', scenario: p.scenario, symbol, kind, t_ms: Math.max(0, tsMs - p.obs.t0), ts_ms: tsMs, detail, data });
  }

  /** Follows the streams until `signal` aborts. `conn` must be a connection used for nothing else (blocking reads). */
  async follow(conn: Redis, signal: AbortSignal): Promise<void> {
    // explicit start ids, never '$' after the first read: with '$', entries of a stream that a reply did not
    // include would be skipped by the next call (a reply of snapshots only would lose the events meanwhile)
    const lastId = async (stream: string) => ((await conn.xrevrange(stream, '+', '-', 'COUNT', 1).catch(() => []))[0]?.[0] ?? '0-0');
    let evId = await lastId(STREAMS.reconcileEvents);
    let resId = await lastId(STREAMS.applyResult);
    let snapId = await lastId(STREAMS.positionSnapshot);
    while (!signal.aborted) {
      try {
        const res = (await conn.xread('BLOCK', 500, 'STREAMS', STREAMS.reconcileEvents, STREAMS.applyResult, STREAMS.positionSnapshot, evId, resId, snapId)) as Array<[string, Array<[string, string[]]>]> | null;
        for (const [stream, entries] of res ?? []) {
          for (const [id, raw] of entries) {
            const f = fieldsToObject(raw);
            if (stream === STREAMS.reconcileEvents) {
              evId = id;
              await this.onEvent(f);
            } else if (stream === STREAMS.positionSnapshot) {
              snapId = id;
              await this.onSnapshot(f);
            } else {
              resId = id;
              this.onResult(f);
            }
          }
        }
      } catch {
        if (signal.aborted) return;
        await sleep(200, signal);
      }
    }
  }

  /** Polls each tracked symbol's reconcile state every `intervalMs` and reports status changes. */
  async pollStatus(signal: AbortSignal, intervalMs = 25): Promise<void> {
    while (!signal.aborted) {
      for (const sym of this.phases.keys()) {
        try {
          const s = await this.redis.hmget(keys.reconcileState(sym), 'status', 'reason', 'exchange_amt', 'ledger_amt');
          const key = `${s[0]}|${s[1]}`;
          if (s[0] && this.lastStatus.get(sym) !== key) {
            this.lastStatus.set(sym, key);
            this.entry(sym, 'STATUS', `reconcile status ${s[0]}${s[1] ? ` reason=${s[1]}` : ''} (exchange=${s[2]} ledger=${s[3]})`);
          }
        } catch {
          /* Redis hiccup: next poll */
        }
      }
      await sleep(intervalMs, signal);
    }
  }

  /** The first snapshot of a phase that shows the exchange moved: who wrote it. */
  private async onSnapshot(f: Record<string, string>): Promise<void> {
    const sym = f.symbol ?? '';
    const p = this.phases.get(sym);
    // after a hold or a repair, a moving exchange is the heal, not the incident
    if (!p || p.obs.noticedAt !== null || p.obs.holdSetAt !== null || p.obs.repairAt !== null) return;
    const [amt, source, ts] = await this.redis.hmget(keys.snapshot(sym), 'position_amt', 'source', 'ts_ms').catch(() => [null, null, null]);
    if (amt === null || amt === p.obs.startAmt || ts !== f.ts_ms) return;
    p.obs.noticedAt = Date.now();
    p.obs.noticedBy = source ?? '?';
    this.entry(sym, 'NOTICED', `exchange ${p.obs.startAmt || '?'} -> ${amt} noticed by ${source === 'stream' ? 'the user data stream (push)' : source === 'rest' ? 'a REST poll' : `source=${source ?? '?'}`}`, p.obs.noticedAt, { source, ts_ms: ts });
  }

  /** Source of the snapshot in place now (for incidents the exchange did not move). */
  private async currentSource(sym: string, p: { obs: PhaseObservations }): Promise<string> {
    if (p.obs.noticedBy === null) p.obs.noticedBy = (await this.redis.hget(keys.snapshot(sym), 'source').catch(() => null)) ?? '?';
    return p.obs.noticedBy;
  }

  private async onEvent(f: Record<string, string>): Promise<void> {
    const sym = f.symbol ?? '';
    const p = this.phases.get(sym);
    if (!p) return;
    const ts = Number(f.ts_ms) || Date.now();
    switch (f.event) {
      case EVENT.HOLD_SET: {
        const first = p.obs.holdSetAt === null;
        if (first) p.obs.holdSetAt = ts;
        const by = first ? ` (noticed by ${await this.currentSource(sym, p)})` : '';
        this.entry(sym, 'HOLD_SET', `HOLD_SET reason=${f.reason ?? '?'} sig=${f.hold_sig ?? f.sig ?? ''}${by}`, ts, f);
        break;
      }
      case EVENT.HOLD_CLEARED:
        p.obs.holdClearedAt = ts;
        this.entry(sym, 'HOLD_CLEARED', `HOLD_CLEARED${f.reason ? ` (${f.reason})` : ''}`, ts, f);
        break;
      case EVENT.AUTO_REPAIR: {
        const by = p.obs.holdSetAt === null && p.obs.repairAt === null ? ` (noticed by ${await this.currentSource(sym, p)})` : '';
        p.obs.repairAt = ts;
        this.entry(sym, 'LEDGER_REPAIRED', `AUTO_REPAIR ledger ${f.old_ledger_amt ?? '?'} -> ${f.new_ledger_amt ?? '?'} evidence plan=${f.evidence_plan_id ?? '-'} order=${f.evidence_order_id ?? '-'}${by}`, ts, f);
        break;
      }
      case EVENT.RECONCILE_CLOSE_PUBLISHED:
        this.entry(sym, 'CLOSE_PUBLISHED', `RECONCILE_CLOSE published ${f.side ?? ''} ${f.qty ?? ''} plan=${f.plan_id ?? ''}`, ts, f);
        break;
      default:
        this.entry(sym, 'LEDGER_EVENT', `${f.event}${f.reason ? ` reason=${f.reason}` : ''}`, ts, f);
    }
  }

  private onResult(f: Record<string, string>): void {
    const sym = f.symbol ?? '';
    const p = this.phases.get(sym);
    if (!p) return;
    const ts = Number(f.ts_ms) || Date.now();
    if (f.status === 'EXECUTED') {
      if (f.decision === 'RECONCILE_CLOSE') p.obs.closes.push({ side: f.side ?? '', qty: f.filled_qty ?? f.qty ?? '', orderId: f.order_id ?? '', tsMs: ts });
      const what = f.decision === 'RECONCILE_CLOSE' ? 'RECONCILE_CLOSE order filled' : 'plan order filled';
      this.entry(sym, 'ORDER_FILLED', `${what} ${f.side} ${f.filled_qty} order_id=${f.order_id} plan=${f.plan_id}`, ts, f);
    } else if (f.decision === 'RECONCILE_CLOSE' || (f.status !== 'SKIPPED' && f.status !== 'DROPPED_DUPLICATE')) {
      this.entry(sym, 'RESULT', `${f.decision} ${f.status}${f.reason ? ` reason=${f.reason}` : ''}${f.error ? ` error=${f.error}` : ''} plan=${f.plan_id}`, ts, f);
    }
  }
}
