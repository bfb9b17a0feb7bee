/**
 * `P3Client`: what a strategy needs to trade through the gates (docs/plan-format.md, README "Strategy
 * client"): build and sign a plan, add it to `quantum:stream:apply.plan`, await its one final result from
 * `quantum:stream:apply.result`, and keep the producer contract (producer.ts) — the same signed entry is
 * added again when Redis restarted or failed over before a final result, or lost a result it had shown.
 *
 * Rights: only those of the strategy's Redis user `p3-strategy` (src/acl/users.ts): XADD on the plan stream;
 * XRANGE/XREVRANGE/XREAD on the result stream; INFO (Redis's `run_id`, to see restarts and failovers).
 * So `status` and `positions` are read from the result stream (reads.ts) (the fills the gates executed), not from the
 * exchange snapshot, which the strategy's user cannot read.
 *
 * Invariants:
 * - A plan is signed once; every (re-)submission adds exactly that `plan` string and `mac`.
 * - `submit` resolves at most once per plan, with its first final result; a `DROPPED_DUPLICATE` never
 *   resolves it. Timeout and abort stop the wait, never the plan (and never the producer contract for it).
 * - The result cursor is read before the plan is added, so its result cannot be missed; after a Redis
 *   restart or failover the cursor goes back to before the oldest plan in flight (a replica's ids may be
 *   lower), and each plan's final result is still taken once.
 */
import type { Redis } from 'ioredis';
import { ZodError } from 'zod';
import { openRedis } from '../adapters/redis/client.js';
import { fieldsToObject } from '../adapters/redis/consumer.js';
import { PLAN_STREAM_MAXLEN, STREAMS } from '../adapters/redis/keys.js';
import { parseRedisTarget, type RedisTarget } from '../config/redis.js';
import { signPlan, type PlanInput } from '../domain/plan.js';
import { sleep } from '../lib/sleep.js';
import { buildStrategyPlan, newPlanId, planKeyFromEnv, DEFAULT_PLAN_SOURCE } from '../plans/submit.js';
import { P3AbortError, P3ClosedError, P3InvalidPlanError, P3TimeoutError } from './errors.js';
import { DEFAULT_TIMING, producerAction, runIdOf, type ProducedPlan, type ProducerTiming } from './producer.js';
import { HOLD_REASONS, TRANSIENT_REASONS, isFinalStatus, toP3Result, type P3Result } from './result.js';
import { findResult, PAGE, readPositions, readStatus } from './reads.js';
import type { HoldEvent, PlanRequest, PositionView, SubmitOptions, SymbolStatus } from './types.js';

/** Options of {@link P3Client}. */
export interface P3ClientOptions {
  /** Redis of the stack: a URL (`redis://p3-strategy:<password>@host:6379`) or a Sentinel target (src/config/redis.ts). */
  redis: string | RedisTarget;
  /** The producer name the plans carry (default `exit_brain`); the services verify it with `P3_KEY_<SOURCE>`. */
  source?: string;
  /** The source's HMAC key (the value of `P3_KEY_<SOURCE>`). */
  key: string;
  /** Default bound of `submit`, ms (default 60000). */
  timeoutMs?: number;
  /** Producer contract timing (producer.ts {@link DEFAULT_TIMING}). */
  timing?: Partial<ProducerTiming>;
  /** Longest blocking read of the result stream, ms (default 1000). */
  blockMs?: number;
  /** Interval of the producer pass (restart check, re-submission, durability), ms (default 250). */
  passMs?: number;
}

type Waiter = { resolve: (r: P3Result) => void; reject: (e: Error) => void };

/** Without an acknowledged entry id: a final result this much older than a plan's first submission belongs to an earlier plan of the same id, ms (clock skew between hosts). */
const REUSE_SKEW_MS = 1000;

/**
 * The strategy client. Create one per process (`new P3Client({...})` or `P3Client.fromEnv()`), `submit`
 * plans, `close()` at the end.
 */
export class P3Client {
  readonly source: string;
  private readonly key: string;
  private readonly cmd: Redis;
  private readonly reader: Redis;
  private readonly timing: ProducerTiming;
  private readonly timeoutMs: number;
  private readonly blockMs: number;
  private readonly passMs: number;
  private readonly plans = new Map<string, ProducedPlan>();
  private readonly waiters = new Map<string, Waiter>();
  private readonly resultCbs = new Set<(r: P3Result) => void>();
  private readonly holdCbs = new Set<(h: HoldEvent) => void>();
  /** Entry ids of holds already reported (bounded), so a re-read after a restart does not report them twice. */
  private readonly holdSeen = new Set<string>();
  private cursor = '0-0';
  /** Set by the producer pass after a restart: the read loop goes back to it before its next read. */
  private rescanFrom: string | null = null;
  private epoch: string | null = null;
  private closed = false;
  private started: Promise<void> | null = null;
  private readonly loops: Array<Promise<void>> = [];
  private readonly stop = new AbortController();

  constructor(o: P3ClientOptions) {
    if (!o.key) throw new P3InvalidPlanError('P3Client needs the source key (P3_KEY_<SOURCE>)', ['key']);
    this.source = o.source ?? DEFAULT_PLAN_SOURCE;
    this.key = o.key;
    this.timing = { ...DEFAULT_TIMING, ...o.timing };
    this.timeoutMs = o.timeoutMs ?? 60_000;
    this.blockMs = o.blockMs ?? 1000;
    this.passMs = o.passMs ?? 250;
    const common = { disableClientInfo: true, maxRetriesPerRequest: 1, enableOfflineQueue: true, retryStrategy: (n: number) => Math.min(50 * 2 ** Math.min(n, 5), 1000) };
    this.cmd = openRedis(o.redis, { ...common, connectionName: 'p3-client', commandTimeout: 5000 });
    this.reader = openRedis(o.redis, { ...common, connectionName: 'p3-client-results', commandTimeout: this.blockMs + 5000 });
    for (const c of [this.cmd, this.reader]) c.on('error', () => undefined); // reconnects on its own; failures surface as timeouts
  }

  /**
   * A client from the environment: `REDIS_URL` (or the Sentinel variables, src/config/redis.ts) and
   * `P3_KEY_<SOURCE>`.
   * @throws ConfigError naming the missing or placeholder variable
   */
  static fromEnv(env: Record<string, string | undefined> = process.env, o: Omit<P3ClientOptions, 'redis' | 'key'> = {}): P3Client {
    const source = o.source ?? DEFAULT_PLAN_SOURCE;
    return new P3Client({ ...o, source, redis: parseRedisTarget(env), key: planKeyFromEnv(env, source) });
  }

  /**
   * Signs, submits and awaits one plan (see the module comment for re-submissions). When the plan was refused
   * for a transient reason where nothing was sent ({@link TRANSIENT_REASONS}: sized on a snapshot older than a
   * fill, another order in flight, the snapshot momentarily missing or stale), a NEW plan of the same request
   * (plan id `<id>.r<n>`) is submitted after 250 ms × n, at most `retries` times (default 3) within the timeout.
   * Each attempt's result also goes to `onResult`.
   * @returns the final result of the last attempt (EXECUTED, DENY, SKIPPED, REJECTED or FAILED)
   * @throws P3InvalidPlanError (nothing submitted), P3TimeoutError / P3AbortError (the plan may still
   *   execute: its result goes to `onResult`), P3ClosedError
   */
  async submit(req: PlanRequest, o: SubmitOptions = {}): Promise<P3Result> {
    const retries = o.retries ?? 3;
    const deadline = Date.now() + (o.timeoutMs ?? this.timeoutMs);
    const first = req.planId ?? newPlanId();
    for (let attempt = 0; ; attempt++) {
      const r = await this.submitOnce({ ...req, planId: attempt === 0 ? first : `${first.slice(0, 58)}.r${attempt}` }, { signal: o.signal, timeoutMs: Math.max(1, deadline - Date.now()) });
      if (r.status === 'EXECUTED' || !TRANSIENT_REASONS.includes(r.reason) || attempt >= retries || Date.now() + 250 * (attempt + 1) >= deadline) return r;
      await sleep(250 * (attempt + 1), o.signal);
      if (o.signal?.aborted) throw new P3AbortError(`stopped before re-trying plan ${first}`, r.planId);
    }
  }

  /** One plan: sign, add, await (no re-try as a new plan; the producer contract still applies). */
  private async submitOnce(req: PlanRequest, o: SubmitOptions): Promise<P3Result> {
    if (this.closed) throw new P3ClosedError('client closed');
    const plan = this.planOf(req);
    let signed;
    try {
      signed = signPlan(plan, this.key);
    } catch (err) {
      if (err instanceof ZodError) throw new P3InvalidPlanError(`invalid plan: ${err.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`, err.issues.map((i) => i.message));
      throw err;
    }
    if (this.plans.has(plan.plan_id)) throw new P3InvalidPlanError(`plan ${plan.plan_id} was already submitted by this client`, ['plan_id']);
    if (o.signal?.aborted) throw new P3AbortError('aborted before submission', plan.plan_id);
    await this.start();
    const now = Date.now();
    const p: ProducedPlan = { planId: plan.plan_id, symbol: plan.symbol, signed, firstSubmitMs: now, lastSubmitMs: now, submitEpoch: this.epoch, acked: false, resubmits: 0, entryIds: [], final: null, durable: false };
    const done = new Promise<P3Result>((resolve, reject) => this.waiters.set(p.planId, { resolve, reject }));
    this.plans.set(p.planId, p);
    await this.add(p);
    return this.await(p.planId, done, o);
  }

  /** The fills of the gates' executed results per symbol (reads.ts {@link readPositions}). */
  positions(): Promise<PositionView[]> {
    return readPositions(this.cmd);
  }

  /** What the result stream says about `symbol` (reads.ts {@link readStatus}), with this client's plans in flight on it. */
  status(symbol: string): Promise<SymbolStatus> {
    const sym = symbol.toUpperCase();
    return readStatus(this.cmd, sym, [...this.plans.values()].filter((p) => p.symbol === sym && !p.final).map((p) => p.planId));
  }

  /** The newest result entry whose fields satisfy `match` (reads.ts {@link findResult}). */
  findResult(match: (f: Record<string, string>) => boolean, lookback?: number): Promise<{ entryId: string; fields: Record<string, string> } | null> {
    return findResult(this.cmd, match, lookback);
  }

  /** Calls `cb` with the final result of each plan this client submitted (once per plan). @returns unsubscribe */
  onResult(cb: (r: P3Result) => void): () => void {
    this.resultCbs.add(cb);
    void this.start().catch(() => undefined);
    return () => this.resultCbs.delete(cb);
  }

  /** Calls `cb` for each result (any plan, any source) refused for a hold reason ({@link HOLD_REASONS}). @returns unsubscribe */
  onHold(cb: (h: HoldEvent) => void): () => void {
    this.holdCbs.add(cb);
    void this.start().catch(() => undefined);
    return () => this.holdCbs.delete(cb);
  }

  /** Plans not yet finished under the producer contract (no final result, or one not yet read back). */
  get pending(): number {
    return [...this.plans.values()].filter((p) => !p.durable).length;
  }

  /**
   * Waits until every submitted plan is finished under the producer contract (its final result read back
   * `durableAfterMs` later), at most `timeoutMs`. @returns true when none is left
   */
  async drain(timeoutMs = 30_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.plans.size > 0 && Date.now() < deadline && !this.closed) await sleep(50);
    return this.plans.size === 0;
  }

  /** Stops the loops and closes the connections; waiting submits reject with P3ClosedError. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stop.abort();
    for (const [id, w] of this.waiters) w.reject(new P3ClosedError('client closed before the final result', id));
    this.waiters.clear();
    this.reader.disconnect();
    await Promise.allSettled(this.loops);
    this.cmd.disconnect();
  }

  private planOf(req: PlanRequest): PlanInput {
    return buildStrategyPlan({ ...req, source: this.source });
  }

  /** Reads the result cursor and Redis's run_id, then starts the read loop and the producer loop (once). */
  private start(): Promise<void> {
    this.started ??= (async () => {
      const [info, newest] = await Promise.all([this.cmd.info('server'), this.cmd.xrevrange(STREAMS.applyResult, '+', '-', 'COUNT', 1)]);
      this.epoch = runIdOf(info);
      this.cursor = newest[0]?.[0] ?? '0-0';
      this.loops.push(this.readLoop(), this.producerLoop());
    })();
    this.started.catch(() => (this.started = null));
    return this.started;
  }

  private async add(p: ProducedPlan): Promise<void> {
    p.lastSubmitMs = Date.now();
    p.submitEpoch = this.epoch;
    try {
      const id = await this.cmd.xadd(STREAMS.applyPlan, 'MAXLEN', '~', PLAN_STREAM_MAXLEN, '*', 'plan', p.signed.plan, 'mac', p.signed.mac);
      if (id) {
        p.acked = true;
        p.entryIds.push(id);
      }
    } catch {
      // not answered: it may still have been added; the producer pass re-submits it (producer.ts)
    }
  }

  private await(planId: string, done: Promise<P3Result>, o: SubmitOptions): Promise<P3Result> {
    const timeoutMs = o.timeoutMs ?? this.timeoutMs;
    return new Promise<P3Result>((resolve, reject) => {
      const finish = () => {
        clearTimeout(timer);
        o.signal?.removeEventListener('abort', onAbort);
        this.waiters.delete(planId);
      };
      const timer = setTimeout(() => {
        finish();
        reject(new P3TimeoutError(`no final result for plan ${planId} within ${timeoutMs} ms (it may still execute)`, planId));
      }, timeoutMs);
      const onAbort = () => {
        finish();
        reject(new P3AbortError(`stopped waiting for plan ${planId} (it may still execute)`, planId));
      };
      if (o.signal?.aborted) return onAbort();
      o.signal?.addEventListener('abort', onAbort, { once: true });
      done.then(
        (r) => (finish(), resolve(r)),
        (e: Error) => (finish(), reject(e)),
      );
    });
  }

  private async readLoop(): Promise<void> {
    while (!this.closed) {
      try {
        if (this.rescanFrom) {
          this.cursor = this.rescanFrom;
          this.rescanFrom = null;
        }
        const res = (await this.reader.xread('COUNT', PAGE, 'BLOCK', this.blockMs, 'STREAMS', STREAMS.applyResult, this.cursor)) as Array<[string, Array<[string, string[]]>]> | null;
        for (const [, entries] of res ?? []) {
          for (const [id, arr] of entries) {
            this.cursor = id;
            this.dispatch(id, fieldsToObject(arr));
          }
        }
      } catch {
        if (!this.closed) await sleep(100, this.stop.signal);
      }
    }
  }

  private dispatch(entryId: string, f: Record<string, string>): void {
    const r = toP3Result(entryId, f);
    if (!r) {
      const p = f.status === 'DROPPED_DUPLICATE' ? this.plans.get(f.plan_id ?? '') : undefined;
      if (p && !p.final) void this.onDuplicate(p).catch(() => undefined);
      return;
    }
    if (HOLD_REASONS.includes(r.reason) && !this.holdSeen.has(entryId)) {
      if (this.holdSeen.size > 10_000) this.holdSeen.clear();
      this.holdSeen.add(entryId);
      for (const cb of this.holdCbs) safe(() => cb({ symbol: r.symbol, reason: r.reason, planId: r.planId, tsMs: r.tsMs, entryId }));
    }
    const p = this.plans.get(r.planId);
    if (!p || p.final) return;
    p.final = { result: r, seenMs: Date.now() };
    if (p.reported) return; // a result recorded again after Redis lost the first one: the caller has it
    p.reported = true;
    this.waiters.get(r.planId)?.resolve(r);
    for (const cb of this.resultCbs) safe(() => cb(r));
  }

  /**
   * A DROPPED_DUPLICATE for a plan still without a final result: the apply layer knew the plan id before. When
   * its final result predates this client's first submission, the plan id was used by an earlier plan (the
   * apply layer executes a plan id at most once, so no result will ever come for this one): the submit
   * rejects with P3InvalidPlanError. A final result of this submission found there is taken as its result.
   */
  private async onDuplicate(p: ProducedPlan): Promise<void> {
    const found = await this.findResult((f) => f.plan_id === p.planId && isFinalStatus(f.status));
    if (!found || p.final || !this.plans.has(p.planId)) return;
    const ts = Number(found.fields.ts_ms);
    // the same server numbers both streams: a result entry older than this plan's first entry answered an earlier one
    const earlier = p.entryIds[0] ? compareIds(found.entryId, p.entryIds[0]) < 0 : Number.isFinite(ts) && ts < p.firstSubmitMs - REUSE_SKEW_MS;
    if (earlier) {
      this.plans.delete(p.planId);
      this.waiters.get(p.planId)?.reject(new P3InvalidPlanError(`plan id ${p.planId} was already used by an earlier plan (result ${found.fields.status} at ${ts}): plan ids must be unique`, ['plan_id']));
      return;
    }
    this.dispatch(found.entryId, found.fields);
  }

  private async producerLoop(): Promise<void> {
    while (!this.closed) {
      await sleep(this.passMs, this.stop.signal);
      if (this.closed) return;
      try {
        await this.producerPass();
      } catch {
        // Redis unreachable: the next pass tries again
      }
    }
  }

  /** One pass of the producer contract (producer.ts): restart check, re-submissions, durability read-backs. */
  private async producerPass(): Promise<void> {
    const epoch = runIdOf(await this.cmd.info('server'));
    if (epoch !== this.epoch) {
      // a restart or failover: the new server's ids may be lower than what was read; read again from before the oldest plan in flight
      const oldest = Math.min(...[...this.plans.values()].map((p) => p.firstSubmitMs));
      if (Number.isFinite(oldest)) this.rescanFrom = `${Math.max(0, oldest - 5000)}-0`;
      this.epoch = epoch;
    }
    const now = Date.now();
    for (const p of [...this.plans.values()]) {
      const a = producerAction(p, now, this.epoch, this.timing);
      if (a === 'drop') this.plans.delete(p.planId);
      else if (a === 'resubmit') {
        p.resubmits++;
        await this.add(p);
      } else if (a === 'check_durable' && p.final) {
        const still = await this.cmd.xrange(STREAMS.applyResult, p.final.result.entryId, p.final.result.entryId);
        if (still.length > 0) {
          p.durable = true;
          this.plans.delete(p.planId);
        } else {
          // lost with Redis's last writes: the same signed entry again; the apply layer records the outcome
          // recovered from the exchange (never a second order); the caller already has the result
          p.final = null;
          p.resubmits++;
          await this.add(p);
        }
      }
    }
  }
}

/** Orders two stream entry ids (`<ms>-<seq>`): negative when `a` is older. */
function compareIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(Number) as [number, number];
  const [bm, bs] = b.split('-').map(Number) as [number, number];
  return am !== bm ? am - bm : (as ?? 0) - (bs ?? 0);
}

function safe(f: () => void): void {
  try {
    f();
  } catch {
    // a subscriber's error never stops the client
  }
}
