/**
 * Liveness watchdog of a stream consumer: a consumer that has taken nothing for a while although its group has
 * work waiting says so and is recovered without a restart (docs/architecture.md, "Failover liveness").
 *
 * Progress of a consumer: a read (own pending, new, claimed, taken over) that delivered entries, or a handler
 * that settled (succeeded or failed). A consumer whose reads come back empty while entries wait (a read
 * parked on a connection that never answers, a handler promise that never settles and fills every slot, a
 * loop waiting on a reply that never comes) makes none.
 * A STALL is either of:
 * - entries no consumer of the group has read yet, the oldest of them added at least `stallMs` ago, and no
 *   progress of this consumer for `stallMs` (the whole consumer stopped: {@link groupBacklog} `undelivered`);
 * - an entry pending on this consumer that nothing touched for `pendingStallMs` (default
 *   {@link CONSUMER_STALL_PENDING_IDLE_MS}; a handler that never settles, even while other partitions move): a
 *   parked entry is re-read at least every 30 s and a handed-over one every 5 s, so neither gets that idle.
 * Redis refusing the consumer's commands (`NOREPLICAS` while replicas resync, a closed connection: Redis down) is
 * no stall: the consumer goes on by itself once Redis takes them.
 * The watchdog then logs an error (with where the loop
 * waits and for how long), reports it (`onStall`, the `p3_stream_consumer_stalls_total` counter), and asks the
 * consumer to recover: a new loop on a new blocking connection that re-reads its own pending entries, the
 * service's connection reconnected when it does not answer a PING (consumer.ts `recover`). Handling an entry
 * again that a stuck handler still holds is what taking over an idle entry already does (XAUTOCLAIM after
 * `claimIdleMs`): every handler is idempotent, the apply layer's fenced by its dedupe claim.
 * The checks run on a connection of their own (a `duplicate()`), every `stallMs / 4`, each bounded by
 * {@link PROBE_TIMEOUT_MS}: a wedged consumer connection does not blind the watchdog, and a Redis that does not
 * answer (down, failing over) is no stall (nothing is known; reconnecting is ioredis' job).
 * Invariants: the watchdog never acknowledges, claims or deletes an entry; it acts only on work Redis shows
 * waiting; at most one recovery per `stallMs`.
 */
import type { Redis } from 'ioredis';
import { Counter, Gauge, type Registry } from 'prom-client';

/** Default time without progress, with work waiting, that makes a stall, ms. */
export const CONSUMER_STALL_MS = 20_000;
/** Own pending entries untouched this long count as work waiting, ms. */
export const CONSUMER_STALL_PENDING_IDLE_MS = 60_000;
/** Longest wait for one probe of the watchdog, ms. */
export const PROBE_TIMEOUT_MS = 5_000;

/** Work waiting for a group, as Redis shows it. */
export interface GroupBacklog {
  /** Entries no consumer of the group has read yet (XINFO GROUPS `lag`; at least 1 when Redis cannot count them but one exists). */
  undelivered: number;
  /** Id of the oldest of them (null when none). */
  oldestUndeliveredId: string | null;
  /** Pending entries of the consumer asked about (none asked: of the group) idle at least `idleMs`. */
  stalePending: number;
}

/** Fields of one XINFO GROUPS row as an object. */
function row(raw: unknown[]): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (let i = 0; i + 1 < raw.length; i += 2) o[String(raw[i])] = raw[i + 1];
  return o;
}

/** The epoch-ms part of a stream id (0 when unparseable). */
export function streamIdMs(id: string): number {
  const ms = Number(id.split('-')[0]);
  return Number.isFinite(ms) ? ms : 0;
}

/**
 * What waits for `group` on `stream` (see {@link GroupBacklog}). Reads only: XINFO GROUPS, XRANGE, XPENDING.
 * @param consumer the consumer whose stale pending entries count (omitted: every consumer's)
 * @param idleMs idle time from which a pending entry is stale, ms
 * @returns null when the stream or the group does not exist
 * @throws on other Redis errors
 */
export async function groupBacklog(redis: Redis, stream: string, group: string, consumer: string | undefined, idleMs = CONSUMER_STALL_PENDING_IDLE_MS): Promise<GroupBacklog | null> {
  let groups: unknown[][];
  try {
    groups = (await redis.call('XINFO', 'GROUPS', stream)) as unknown[][];
  } catch (err) {
    if (/no such key/i.test((err as Error).message)) return null;
    throw err;
  }
  const g = groups.map(row).find((r) => String(r.name) === group);
  if (!g) return null;
  const lastDelivered = String(g['last-delivered-id'] ?? '0-0');
  const next = (await redis.call('XRANGE', stream, `(${lastDelivered}`, '+', 'COUNT', 1)) as Array<[string, unknown]>;
  const oldestUndeliveredId = next[0]?.[0] ?? null;
  const lag = g.lag === null || g.lag === undefined ? null : Number(g.lag);
  const undelivered = oldestUndeliveredId === null ? 0 : lag !== null && Number.isFinite(lag) && lag > 0 ? lag : 1;
  const args: Array<string | number> = ['XPENDING', stream, group, 'IDLE', idleMs, '-', '+', 100];
  if (consumer) args.push(consumer);
  const stale = (await redis.call(...(args as [string, ...Array<string | number>]))) as unknown[];
  return { undelivered, oldestUndeliveredId, stalePending: stale.length };
}

/** What the watchdog knows of its consumer (consumer.ts). */
export interface WatchedConsumer {
  readonly stream: string;
  readonly group: string;
  readonly consumer: string;
  /** When the consumer last made progress (see the module comment), epoch ms. */
  lastProgressMs(): number;
  /** When Redis last refused one of its commands (`isRedisUnavailable`: NOREPLICAS, a closed connection...), epoch ms (0: never). */
  lastRefusedMs(): number;
  /** Where its loop waits now and since when (for the log line), and how many entries it has in hand. */
  state(): { phase: string; sinceMs: number; inHand: number };
  /** Recovers it (new loop, new blocking connection, ...); resolves once done. */
  recover(reason: string): Promise<void>;
}

/** One stall, as logged and reported. */
export interface StallReport {
  stream: string;
  group: string;
  consumer: string;
  /** Since the last progress, ms. */
  idle_ms: number;
  backlog: GroupBacklog;
  /** Where the loop waited, for how long (ms), and the entries it had in hand. */
  phase: string;
  phase_ms: number;
  in_hand: number;
}

/** Watchdog settings. */
export interface WatchdogOptions {
  /** A probe connection (the watchdog closes it on stop). */
  probe: Redis;
  logger: { error(o: object, msg: string): void; info(o: object, msg: string): void };
  /** Time without progress, with work waiting, that makes a stall, ms (default {@link CONSUMER_STALL_MS}). */
  stallMs?: number;
  /** Idle time of an own pending entry that makes a stall, ms (default {@link CONSUMER_STALL_PENDING_IDLE_MS}). */
  pendingStallMs?: number;
  /** Called for every stall, before the recovery. */
  onStall?: (r: StallReport) => void;
}

/** Rejects after `ms` (a probe on a connection that does not answer). */
function within<T>(p: Promise<T>, ms: number): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    t = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(t));
}

/** Every watched consumer of this process, for the metrics ({@link registerConsumerMetrics}). */
const watched = new Set<ConsumerWatchdog>();

/** See the module comment. `start()` arms it; `stop()` disarms it and closes the probe connection. */
export class ConsumerWatchdog {
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private lastRecoveryMs = 0;
  /** When the last check found a stall (0: it found none), epoch ms. */
  private stallSeenMs = 0;
  /** Stalls seen so far. */
  stalls = 0;
  private readonly stallMs: number;
  private readonly pendingStallMs: number;

  constructor(
    readonly target: WatchedConsumer,
    private readonly opts: WatchdogOptions,
  ) {
    this.stallMs = opts.stallMs ?? CONSUMER_STALL_MS;
    this.pendingStallMs = opts.pendingStallMs ?? CONSUMER_STALL_PENDING_IDLE_MS;
  }

  /** True from a stall found until the consumer takes or finishes an entry again (or a check finds none). */
  get stalled(): boolean {
    return this.stallSeenMs > 0 && this.target.lastProgressMs() <= this.stallSeenMs;
  }

  /** Checks every `stallMs / 4` (at least every 250 ms). */
  start(): void {
    if (this.timer) return;
    watched.add(this);
    this.timer = setInterval(() => void this.check(), Math.max(250, Math.floor(this.stallMs / 4)));
    this.timer.unref();
  }

  /** Disarms the watchdog and closes its probe connection. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    watched.delete(this);
    this.opts.probe.disconnect();
  }

  /** Seconds since the consumer last made progress. */
  idleSeconds(now = Date.now()): number {
    return Math.max(0, (now - this.target.lastProgressMs()) / 1000);
  }

  /**
   * One check (the timer runs it; tests may call it): a stall when work waits and nothing progressed for
   * `stallMs`; then logs, reports and recovers (at most once per `stallMs`).
   * @returns the stall found, or null
   */
  async check(now = Date.now()): Promise<StallReport | null> {
    if (this.running) return null;
    this.running = true;
    try {
      const t = this.target;
      const idle = now - t.lastProgressMs();
      // Redis refusing its commands (writes refused while replicas resync, Redis down) is no stall of the consumer:
      // it goes on by itself once Redis takes them
      if (now - t.lastRefusedMs() < Math.max(1000, this.stallMs / 4)) {
        this.stallSeenMs = 0;
        return null;
      }
      let backlog: GroupBacklog | null;
      try {
        backlog = await within(groupBacklog(this.opts.probe, t.stream, t.group, t.consumer, this.pendingStallMs), PROBE_TIMEOUT_MS);
      } catch {
        return null; // Redis does not answer: nothing known
      }
      const waitingNew = idle >= this.stallMs && backlog !== null && backlog.oldestUndeliveredId !== null && now - streamIdMs(backlog.oldestUndeliveredId) >= this.stallMs;
      if (!backlog || (!waitingNew && backlog.stalePending === 0)) {
        this.stallSeenMs = 0;
        return null;
      }
      this.stallSeenMs = now;
      if (now - this.lastRecoveryMs < this.stallMs) return null;
      this.lastRecoveryMs = now;
      this.stalls++;
      const s = t.state();
      const report: StallReport = { stream: t.stream, group: t.group, consumer: t.consumer, idle_ms: idle, backlog, phase: s.phase, phase_ms: now - s.sinceMs, in_hand: s.inHand };
      this.opts.logger.error(
        report,
        `stream consumer STALLED: ${t.group}/${t.consumer} on ${t.stream} took nothing for ${Math.round(idle / 1000)} s while ${backlog.undelivered} entries wait unread and ${backlog.stalePending} of its own are pending untouched (its loop waits in ${s.phase} for ${Math.round((now - s.sinceMs) / 1000)} s, ${s.inHand} in hand); recovering it (docs/runbook.md, "Consumer stalled")`,
      );
      this.opts.onStall?.(report);
      await t.recover(`stalled ${Math.round(idle / 1000)} s in ${s.phase}`);
      // the new loop gets `stallMs` from the end of the recovery (a reconnect can take seconds) to re-read its entries
      this.lastRecoveryMs = Date.now();
      return report;
    } finally {
      this.running = false;
    }
  }
}

/**
 * Registers, in `registry`, the gauges and the counter of every watched consumer of this process:
 * `p3_stream_consumer_idle_seconds`, `p3_stream_consumer_stalled` (1 while a stall lasts) and
 * `p3_stream_consumer_stalls_total`, labelled `stream`, `group`, `consumer`. Idempotent per registry.
 */
export function registerConsumerMetrics(registry: Registry): void {
  if (registry.getSingleMetric('p3_stream_consumer_stalled')) return;
  const labelNames = ['stream', 'group', 'consumer'] as const;
  const each = (f: (w: ConsumerWatchdog, l: Record<(typeof labelNames)[number], string>) => void) => {
    for (const w of watched) f(w, { stream: w.target.stream, group: w.target.group, consumer: w.target.consumer });
  };
  new Gauge({
    name: 'p3_stream_consumer_idle_seconds',
    help: 'Seconds since the stream consumer last took or finished an entry (high is normal on a quiet stream)',
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      each((w, l) => this.set(l, w.idleSeconds()));
    },
  });
  new Gauge({
    name: 'p3_stream_consumer_stalled',
    help: '1 while the stream consumer has taken nothing for the stall time although entries wait for its group (docs/runbook.md, "Consumer stalled")',
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      each((w, l) => this.set(l, w.stalled ? 1 : 0));
    },
  });
  new Counter({
    name: 'p3_stream_consumer_stalls_total',
    help: 'Stalls of the stream consumer found (and recovered) by its liveness watchdog',
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      each((w, l) => this.inc(l, w.stalls));
    },
  });
}
