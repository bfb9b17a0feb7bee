/**
 * What the invariant checker sees while the run goes on, sampled from Redis and the paper exchange:
 * - permits: every decision seen for a plan's governor and p33 permit (they live 60 s): read when Redis
 *   notifies a permit hash write (keyspace notifications) and by polling the plans still waiting;
 * - RECONCILE_CLOSE and FLATTEN plans as published (`quantum:stream:reconcile.close`,
 *   `quantum:stream:apply.flatten`), MAC-verified with the engine's / operator's key (a forged close never
 *   counts as permission);
 * - results (`quantum:stream:apply.result`) as written, to tell a result Redis lost in a crash from one never
 *   written;
 * - the exchange's order log (`GET /admin/orders`), checked continuously (invariants.ts).
 *
 * Invariants: sampling never writes to Redis; a sampling error (Redis down) is retried, never fatal.
 */
import type { Redis } from 'ioredis';
import { STREAMS, keys } from '../../src/adapters/redis/keys.js';
import { fieldsToObject } from '../../src/adapters/redis/consumer.js';
import { verifyPlanEntry } from '../../src/domain/plan.js';
import { clientOrderIdFor } from '../../src/domain/apply.js';
import { sleep } from '../../src/lib/sleep.js';
import type { PaperOrder } from '../paper-exchange/index.js';

/** Permit decisions seen for one plan. */
export interface PermitsSeen {
  governor: string[];
  p33: string[];
}

/** A close or flatten plan seen on its stream with a MAC that verifies. */
export interface PublishedPlan {
  plan_id: string;
  client_order_id: string;
  decision: 'RECONCILE_CLOSE' | 'FLATTEN';
  symbol: string;
  side: string;
  qty: string;
  seen_ms: number;
  /** Epoch ms of its stream entry id (when it was published). */
  entry_ms: number;
}

/** A result entry as first seen. */
export interface SeenResult {
  entry_id: string;
  plan_id: string;
  status: string;
  seen_ms: number;
  /** Set when the strategy found it gone from Redis after a crash (and re-submitted its plan). */
  lost?: boolean;
}

/** Epoch ms of a stream entry id (`<ms>-<seq>`). */
export const entryMs = (id: string): number => Number(id.split('-')[0]);

type XReadReply = Array<[string, Array<[string, string[]]>]> | null;

/** See the module comment. */
export class Observer {
  readonly permits = new Map<string, PermitsSeen>();
  readonly published = new Map<string, PublishedPlan>();
  /** Client order id → close/flatten plan. */
  readonly publishedByCid = new Map<string, PublishedPlan>();
  readonly results = new Map<string, SeenResult[]>();
  orders: PaperOrder[] = [];
  /** Plans whose permits are still sampled: plan id → since (ms). */
  private readonly watch = new Map<string, number>();
  private sub: Redis | null = null;
  private blocking: Redis | null = null;

  constructor(
    private readonly redis: Redis,
    private readonly paperUrl: string,
    private readonly engineKey: string,
    private readonly operatorKey: string,
  ) {}

  /** Starts sampling the permits of `planId` (for 75 s: the permit TTL plus margin). */
  watchPlan(planId: string): void {
    this.watch.set(planId, Date.now());
    if (!this.permits.has(planId)) this.permits.set(planId, { governor: [], p33: [] });
  }

  /** True when the plan has a final result (anything but DROPPED_DUPLICATE) seen so far and not found lost since. */
  hasFinal(planId: string): boolean {
    return this.finalResult(planId) !== null;
  }

  /** The newest final result seen for the plan and not found lost since, or null. */
  finalResult(planId: string): SeenResult | null {
    const rs = (this.results.get(planId) ?? []).filter((r) => r.status !== 'DROPPED_DUPLICATE' && !r.lost);
    return rs[rs.length - 1] ?? null;
  }

  /** Marks every result seen for the plan as lost by Redis (the strategy found it gone and re-submitted the plan). */
  markLost(planId: string): void {
    for (const r of this.results.get(planId) ?? []) r.lost = true;
  }

  /** True when a final result of the plan was seen written and later found lost by Redis. */
  wasLost(planId: string): boolean {
    return (this.results.get(planId) ?? []).some((r) => r.lost && r.status !== 'DROPPED_DUPLICATE');
  }

  private note(planId: string, issuer: 'governor' | 'p33', decision: string | null): void {
    if (!decision) return;
    const p = this.permits.get(planId) ?? { governor: [], p33: [] };
    if (!p[issuer].includes(decision)) p[issuer].push(decision);
    this.permits.set(planId, p);
  }

  /** Runs every sampling loop until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    // autoResubscribe off: ioredis' own re-subscription has no rejection handler and a Redis killed again before
    // its reply turns it into an unhandled rejection that ended a run (seed 41); re-subscribed on 'ready' instead
    this.sub = this.redis.duplicate({ autoResubscribe: false });
    this.sub.on('error', () => undefined);
    this.sub.on('ready', () => void this.sub?.psubscribe('__keyspace@0__:quantum:permit:*').catch(() => undefined));
    this.blocking = this.redis.duplicate();
    this.blocking.on('error', () => undefined);
    const prefix = '__keyspace@0__:';
    this.sub.on('pmessage', (_p: string, channel: string) => {
      const key = channel.slice(prefix.length);
      const gov = keys.permitGovernor('');
      const p33 = keys.permitP33('');
      const issuer = key.startsWith(gov) ? 'governor' : key.startsWith(p33) ? 'p33' : null;
      if (!issuer) return;
      const planId = key.slice(issuer === 'governor' ? gov.length : p33.length);
      this.redis.hget(key, 'decision').then((d) => this.note(planId, issuer, d), () => undefined);
    });
    await this.sub.psubscribe(`${prefix}quantum:permit:*`).catch(() => undefined);
    const stop = () => {
      this.sub?.disconnect();
      this.blocking?.disconnect();
    };
    signal.addEventListener('abort', stop, { once: true });
    await Promise.all([this.pollPermits(signal), this.tailStreams(signal), this.pollOrders(signal)]);
  }

  private async pollPermits(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        const now = Date.now();
        const ids = [...this.watch.entries()].filter(([, since]) => now - since < 75_000).map(([id]) => id);
        for (const [id, since] of this.watch) if (now - since >= 75_000) this.watch.delete(id);
        if (ids.length > 0) {
          const m = this.redis.multi();
          for (const id of ids) m.hget(keys.permitGovernor(id), 'decision').hget(keys.permitP33(id), 'decision');
          const res = (await m.exec()) ?? [];
          ids.forEach((id, i) => {
            this.note(id, 'governor', (res[2 * i]?.[1] as string | null) ?? null);
            this.note(id, 'p33', (res[2 * i + 1]?.[1] as string | null) ?? null);
          });
        }
      } catch {
        // Redis down: try again
      }
      await sleep(150, signal);
    }
  }

  private async tailStreams(signal: AbortSignal): Promise<void> {
    const last: Record<string, string> = { [STREAMS.reconcileClose]: '0-0', [STREAMS.applyFlatten]: '0-0', [STREAMS.applyResult]: '0-0' };
    const names = Object.keys(last);
    while (!signal.aborted) {
      try {
        const conn = this.blocking;
        if (!conn) break;
        const res = (await conn.xread('COUNT', 500, 'BLOCK', 500, 'STREAMS', ...names, ...names.map((n) => last[n] as string))) as XReadReply;
        for (const [stream, entries] of res ?? []) {
          for (const [id, raw] of entries) {
            last[stream] = id;
            this.onEntry(stream, id, fieldsToObject(raw));
          }
        }
      } catch {
        await sleep(200, signal);
      }
    }
  }

  private onEntry(stream: string, id: string, f: Record<string, string>): void {
    const now = Date.now();
    if (stream === STREAMS.applyResult) {
      if (!f.plan_id) return;
      const list = this.results.get(f.plan_id) ?? [];
      if (!list.some((r) => r.entry_id === id)) list.push({ entry_id: id, plan_id: f.plan_id, status: f.status ?? '', seen_ms: now });
      this.results.set(f.plan_id, list);
      return;
    }
    const close = stream === STREAMS.reconcileClose;
    const key = close ? this.engineKey : this.operatorKey;
    const v = verifyPlanEntry(f, (source) => (source === (close ? 'p3.4' : 'operator') ? key : undefined));
    if (!v.ok) return;
    const p: PublishedPlan = {
      plan_id: v.plan.plan_id,
      client_order_id: clientOrderIdFor(v.plan.plan_id),
      decision: close ? 'RECONCILE_CLOSE' : 'FLATTEN',
      symbol: v.plan.symbol,
      side: String(v.plan.side ?? ''),
      qty: String(v.plan.qty ?? ''),
      seen_ms: now,
      entry_ms: entryMs(id),
    };
    this.published.set(p.plan_id, p);
    this.publishedByCid.set(p.client_order_id, p);
  }

  private async pollOrders(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await this.refreshOrders().catch(() => undefined);
      await sleep(1000, signal);
    }
  }

  /** Reads the exchange's order log now. */
  async refreshOrders(): Promise<PaperOrder[]> {
    const res = await fetch(`${this.paperUrl}/admin/orders`);
    if (!res.ok) throw new Error(`GET /admin/orders -> ${res.status}`);
    this.orders = (await res.json()) as PaperOrder[];
    return this.orders;
  }
}
