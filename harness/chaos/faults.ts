/**
 * The fault injector of a chaos run: at random moments from the seed (gaps uniform in 0.3-1.7 × the
 * mean gap), one fault of a random enabled kind (options.ts lists them). Process faults are undone by
 * themselves after a short random delay (restart after `kill -9`, SIGCONT after SIGSTOP, Redis restarted
 * from its AOF); exchange faults are bounded by count or duration. `quiesce()` undoes everything still
 * in force so the convergence phase starts from a whole system.
 *
 * With `--sentinel` (stack.sentinel), Redis faults strike the master the sentinels name now, a killed node
 * comes back as a replica when Sentinel promoted the other one meanwhile, and `sentinel_failover` fails
 * over (SENTINEL FAILOVER, or kill -9 of the master and let Sentinel promote the replica).
 *
 * Invariants: at most one Redis outage or failover at a time; a service is never killed while paused
 * (resumed first); every fault is logged with its time and detail.
 */
import type { FaultSpec } from '../paper-exchange/faults.js';
import type { WsFaultSpec } from '../paper-exchange/user-stream.js';
import { sleep } from '../../src/lib/sleep.js';
import type { ChaosFaultKind } from './options.js';
import type { SeededRng } from './rng.js';
import type { ChaosStack } from './stack.js';
import type { ChaosDriver } from './driver.js';
import type { DurableRedis } from './redis.js';

/** One injected fault. */
export interface FaultEvent {
  kind: ChaosFaultKind;
  /** Epoch ms when it was injected. */
  at_ms: number;
  detail: string;
}

/** Lot-step sized manual trade quantities per symbol (about 100-300 USD at the paper marks). */
function manualQty(rng: SeededRng, symbol: string): string {
  const mark = symbol === 'BTCUSDT' ? 95_000 : symbol === 'ETHUSDT' ? 3_300 : 100;
  const usd = rng.int(100, 300);
  const q = Math.max(0.001, Math.floor((usd / mark) * 1000) / 1000);
  return q.toFixed(3);
}

/** See the module comment. */
export class FaultInjector {
  readonly events: FaultEvent[] = [];
  /** Epoch ms of each Redis kill (both kinds). */
  readonly redisKills: number[] = [];
  /** Epoch ms of each host crash that dropped AOF writes (`redis_crash_loss`). */
  readonly lossyCrashes: number[] = [];
  /** `sentinel_failover` faults that switched the master (ms from the fault to `+switch-master`). */
  readonly failoverTimes: number[] = [];
  private readonly pending = new Set<Promise<void>>();
  private redisDown = false;

  constructor(
    private readonly stack: ChaosStack,
    private readonly driver: ChaosDriver,
    private readonly rng: SeededRng,
    private readonly kinds: ChaosFaultKind[],
    private readonly meanGapMs: number,
    private readonly log: (e: FaultEvent) => void = () => undefined,
  ) {}

  /** Counts per kind (every enabled kind present, 0 when never injected). */
  counts(): Record<string, number> {
    const c: Record<string, number> = {};
    for (const k of this.kinds) c[k] = 0;
    for (const e of this.events) c[e.kind] = (c[e.kind] ?? 0) + 1;
    return c;
  }

  private record(kind: ChaosFaultKind, detail: string): void {
    const e = { kind, at_ms: Date.now(), detail };
    this.events.push(e);
    this.log(e);
  }

  private later(ms: number, fn: () => Promise<void>): void {
    const p: Promise<void> = sleep(ms)
      .then(fn)
      .catch(() => undefined)
      .finally(() => this.pending.delete(p));
    this.pending.add(p);
  }

  /** Injects faults until `signal` aborts. Never throws. */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const gap = Math.round(this.meanGapMs * (0.3 + this.rng.int(0, 1400) / 1000));
      await sleep(gap, signal);
      if (signal.aborted) break;
      await this.inject(this.rng.pick(this.kinds)).catch(() => undefined);
    }
  }

  private async exchangeFault(kind: ChaosFaultKind, spec: FaultSpec | WsFaultSpec): Promise<void> {
    const res = await fetch(`${this.stack.paper.url}/admin/faults`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(spec) });
    if (!res.ok) throw new Error(`POST /admin/faults -> ${res.status}`);
    this.record(kind, JSON.stringify(spec));
  }

  /** The Redis node a Redis fault strikes: the master the sentinels name (`--sentinel`), else the one node. */
  private async redisTarget(): Promise<DurableRedis | null> {
    const s = this.stack.sentinel;
    if (!s) return this.stack.redis;
    const m = await s.master();
    return m && m.pid() !== 0 ? m : null;
  }

  /** Starts a killed node again (as a replica of the new master when Sentinel promoted another node meanwhile). */
  private async restartNode(node: DurableRedis): Promise<void> {
    if (this.stack.sentinel) await this.stack.sentinel.restart(node);
    else await node.start();
  }

  /** Injects one fault of `kind`. */
  async inject(kind: ChaosFaultKind): Promise<void> {
    const rng = this.rng;
    const procs = this.stack.processes;
    const orderOr = (): string[] | undefined => (rng.chance(0.6) ? ['order'] : undefined);
    switch (kind) {
      case 'kill_service': {
        const p = rng.pick(procs.filter((x) => x.running));
        if (!p) return;
        const delay = rng.int(100, 3000);
        p.resume();
        await p.kill9();
        this.record(kind, `kill -9 ${p.instance}, restart in ${delay} ms`);
        this.later(delay, async () => p.start());
        return;
      }
      case 'pause_service': {
        const p = rng.pick(procs.filter((x) => x.running && !x.isPaused));
        if (!p) return;
        const ms = rng.int(500, 6000);
        if (!p.pause()) return;
        this.record(kind, `SIGSTOP ${p.instance} for ${ms} ms`);
        this.later(ms, async () => p.resume());
        return;
      }
      case 'redis_kill': {
        if (this.redisDown) return;
        const delay = rng.int(200, 2500);
        const node = await this.redisTarget();
        if (!node || this.redisDown) return;
        this.redisDown = true;
        await node.kill();
        this.redisKills.push(Date.now());
        this.record(kind, `kill -9 redis-server${this.stack.sentinel ? ` (master :${node.port})` : ''}, restart from AOF in ${delay} ms`);
        this.later(delay, async () => {
          try {
            await this.restartNode(node);
          } finally {
            this.redisDown = false;
          }
        });
        return;
      }
      case 'redis_crash_loss': {
        if (this.redisDown) return;
        const delay = rng.int(200, 2500);
        const lossMs = rng.int(300, 1000);
        const node = await this.redisTarget();
        if (!node || this.redisDown) return;
        this.redisDown = true;
        const dropped = await node.crashWithLoss(lossMs);
        this.redisKills.push(Date.now());
        if (dropped > 0) this.lossyCrashes.push(Date.now());
        this.record(kind, `host crash: kill -9 redis-server${this.stack.sentinel ? ` (master :${node.port})` : ''}, AOF loses its last ${lossMs} ms (${dropped} bytes), restart in ${delay} ms`);
        this.later(delay, async () => {
          try {
            await this.restartNode(node);
          } finally {
            this.redisDown = false;
          }
        });
        return;
      }
      case 'http_429':
        return this.exchangeFault(kind, { kind, count: rng.int(1, 4), retry_after_s: rng.int(0, 2), endpoints: orderOr() });
      case 'http_418':
        return this.exchangeFault(kind, { kind, count: 1, retry_after_s: rng.int(1, 3), endpoints: orderOr() });
      case 'http_503_unknown':
        return this.exchangeFault(kind, { kind, count: rng.int(1, 3), endpoints: orderOr() });
      case 'timeout':
        return this.exchangeFault(kind, { kind, count: rng.int(1, 2), ...(rng.chance(0.5) ? { latency_ms: rng.int(1000, 7000) } : {}), endpoints: orderOr() });
      case 'latency':
        return this.exchangeFault(kind, { kind, duration_ms: rng.int(500, 4000), latency_ms: rng.int(50, 1500) });
      case 'partial_fill':
        return this.exchangeFault(kind, { kind, count: rng.int(1, 3), fill_ratio: rng.int(0, 9) / 10 });
      case 'user_stream': {
        const ws = rng.pick(['ws_drop', 'ws_silence', 'ws_delay', 'listen_key_expire'] as const);
        const spec: WsFaultSpec = ws === 'ws_silence' ? { kind: ws, duration_ms: rng.int(1000, 8000) } : ws === 'ws_delay' ? { kind: ws, duration_ms: rng.int(1000, 5000), latency_ms: rng.int(100, 2000) } : { kind: ws };
        return this.exchangeFault(kind, spec);
      }
      case 'manual_trade': {
        const symbol = rng.pick(this.stack.paper.book.rules.size > 0 ? [...this.stack.paper.book.rules.keys()] : []);
        const side = rng.chance(0.5) ? 'BUY' : 'SELL';
        const qty = manualQty(rng, symbol);
        const res = await fetch(`${this.stack.paper.url}/admin/trade`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ symbol, side, qty }) });
        if (!res.ok) throw new Error(`POST /admin/trade -> ${res.status}`);
        this.record(kind, `${symbol} ${side} ${qty}`);
        return;
      }
      case 'duplicate_plan': {
        const id = await this.driver.duplicate();
        if (id) this.record(kind, `plan ${id} added again`);
        return;
      }
      case 'forged_plan': {
        const b = await this.driver.forge();
        if (b) this.record(kind, `${b.detail} (entry ${b.entry_id}, plan ${b.plan_id})`);
        return;
      }
      case 'malformed_entry': {
        const b = await this.driver.malformed();
        if (b) this.record(kind, `${b.detail} (entry ${b.entry_id})`);
        return;
      }
      case 'sentinel_failover': {
        const s = this.stack.sentinel;
        if (!s || this.redisDown) return;
        // a third of them while one replica is stopped and behind (two replicas: the other one is promoted)
        const mode = rng.pick(['command', 'kill', 'lagging'] as const);
        this.redisDown = true;
        const t0 = Date.now();
        const before = s.switches.length;
        // in the background: a kill-mode failover lasts down-after + election + restart (several seconds)
        this.later(0, async () => {
          try {
            const r = await s.failover(mode);
            if (r === null) return; // no good replica yet (just resynced) or a failover in progress: nothing injected
            if (r.killed_ms !== undefined) this.redisKills.push(r.killed_ms);
            this.record(kind, r.detail);
            const sw = s.switches[before];
            if (sw) this.failoverTimes.push(sw.at_ms - t0);
          } finally {
            this.redisDown = false;
          }
        });
        return;
      }
    }
  }

  /**
   * Undoes every fault still in force: waits for the scheduled restarts/resumes, resumes paused
   * services, restarts dead ones and Redis, clears the exchange's faults.
   */
  async quiesce(): Promise<void> {
    await Promise.all([...this.pending]);
    if (this.stack.sentinel) await this.stack.sentinel.settle();
    else if (this.stack.redis.pid() === 0) await this.stack.redis.start();
    this.redisDown = false;
    for (const p of this.stack.processes) {
      p.resume();
      if (!p.running) p.start();
    }
    await fetch(`${this.stack.paper.url}/admin/faults`, { method: 'DELETE' }).catch(() => undefined);
  }
}
