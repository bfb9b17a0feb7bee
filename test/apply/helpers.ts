/**
 * Test rig of the apply layer: a private Redis, a paper exchange reached through the real ccxt gateway,
 * helpers to submit signed plans, write signed permits (the governor/brain are not under test here) and read
 * results and the paper exchange's order log.
 */
import type { Redis } from 'ioredis';
import { createRedis } from '../../src/adapters/redis/client.js';
import { STREAMS, keys } from '../../src/adapters/redis/keys.js';
import { fieldsToObject } from '../../src/adapters/redis/consumer.js';
import { canonicalJson, hmacHex, signPlan, type PlanInput } from '../../src/domain/plan.js';
import { clientOrderIdFor } from '../../src/domain/apply.js';
import { planDigest, signPermit, type PermitBinding } from '../../src/domain/permit-signature.js';
import { createApplyLayerService, type ApplyLayerOptions } from '../../src/services/apply-layer/index.js';
import type { Service } from '../../src/host/service.js';
import { startTestRedis, waitFor, type TestRedis } from '../helpers/redis.js';
import { adminOrders, startPaperExchange, type PaperExchange } from '../helpers/paper.js';

export const EXIT_KEY = 'test-exit-brain-key';
export const P34_KEY = 'test-p34-key';
/** Permit keys (docs/architecture.md#least-privilege-and-signed-permits): the test plays the governor and the brain, so it signs permits with these. */
export const GOV_KEY = 'test-governor-permit-key';
export const P33_KEY = 'test-p33-permit-key';

/** A running rig. */
export interface Rig {
  srv: TestRedis;
  paper: PaperExchange;
  redis: Redis;
  env: Record<string, string>;
  services: Service[];
  /** Starts an apply layer with `extra` env overrides. */
  startApply(extra?: Record<string, string>, opts?: ApplyLayerOptions): Promise<Service>;
  stop(): Promise<void>;
}

/**
 * Starts Redis and the paper exchange (BTCUSDT, ETHUSDT; lot step 0.001).
 * @param redisArgs extra redis-server arguments (e.g. `--appendonly yes`: `srv.restart()` then reloads the AOF)
 */
export async function startRig(positions: Record<string, string> = {}, redisArgs: string[] = []): Promise<Rig> {
  const srv = await startTestRedis({ args: redisArgs });
  const paper = await startPaperExchange({ symbols: ['BTCUSDT', 'ETHUSDT'], positions });
  const redis = createRedis(srv.url, { name: 'test' });
  // plans of the tests are created after this Redis's start by more than the apply layer's clock-skew margin,
  // so they need no pre-send query (claim/durability.ts); test/apply/claim-durability.test.ts tests the query
  await waitFor(async () => Number(/uptime_in_seconds:(\d+)/.exec(await redis.info('server'))?.[1] ?? 0) >= 2, 10_000, 100, 'Redis up for 2 s');
  const env: Record<string, string> = {
    REDIS_URL: srv.url,
    P3_ALLOWLIST: 'BTCUSDT,ETHUSDT',
    APPLY_MODE: 'testnet',
    APPLY_LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    APPLY_PROMETHEUS_PORT: '0',
    APPLY_PERMIT_WAIT_MS: '3000',
    APPLY_INFLIGHT_SETTLE_MS: '2500',
    APPLY_INFLIGHT_SWEEP_MS: '500',
    APPLY_LOOKUP_BACKOFF_MS: '100',
    // plans here start within a second of Redis: no crash-loss settle wait (test/apply/claim-durability.test.ts tests it)
    APPLY_CLAIM_QUERY_SETTLE_MS: '0',
    APPLY_CLAIM_IDLE_MS: '3000',
    EXCHANGE: 'paper',
    EXCHANGE_BASE_URL: paper.url,
    EXCHANGE_API_KEY: paper.apiKey,
    EXCHANGE_API_SECRET: paper.apiSecret,
    EXCHANGE_TIMEOUT_MS: '1500',
    P3_KEY_EXIT_BRAIN: EXIT_KEY,
    P3_KEY_P3_4: P34_KEY,
    P3_KEY_GOVERNOR: GOV_KEY,
    P3_KEY_P33: P33_KEY,
    // the snapshots these tests write by hand carry no mark: the send-time price collar and stale-mark check
    // (price-at-send.ts) are off here and tested on their own in test/apply/price-at-send.test.ts
    GOVERNOR_PRICE_COLLAR_BPS: 'off',
    GOVERNOR_MARK_INDEX_MAX_BPS: 'off',
    GOVERNOR_MARK_MAX_AGE_MS: 'off',
  };
  const services: Service[] = [];
  let n = 0;
  return {
    srv,
    paper,
    redis,
    env,
    services,
    async startApply(extra = {}, opts = {}) {
      const s = await createApplyLayerService({ P3_INSTANCE_ID: `apply-${++n}`, ...env, ...extra }, opts);
      await s.start();
      services.push(s);
      return s;
    },
    async stop() {
      for (const s of services) await s.stop().catch(() => undefined);
      redis.disconnect();
      await paper.close();
      await srv.stop();
    },
  };
}

let seq = 0;
/** A unique plan id for this test file. */
export function planId(tag: string): string {
  return `t-${tag}-${process.pid}-${Date.now()}-${++seq}`;
}

/** Submits a signed EXECUTE plan to `quantum:stream:apply.plan`. @returns the stream entry id */
export async function submitPlan(redis: Redis, p: Partial<PlanInput> & { plan_id: string }, key = EXIT_KEY): Promise<string> {
  const plan: PlanInput = {
    symbol: 'BTCUSDT',
    decision: 'EXECUTE',
    action: 'PARTIAL_50',
    side: 'SELL',
    type: 'MARKET',
    reduceOnly: true,
    reason: 'exit',
    source: 'exit_brain',
    kill_score: 0.5,
    ts_ms: Date.now(),
    ...p,
  };
  const f = signPlan(plan, key);
  const entryId = (await redis.xadd(STREAMS.applyPlan, '*', 'plan', f.plan, 'mac', f.mac)) as string;
  const pending = staged.get(plan.plan_id);
  if (pending) {
    staged.delete(plan.plan_id);
    void permitsForClaimedEntry(redis, plan.plan_id, pending);
  }
  return entryId;
}

/**
 * Plays the governor and the brain for a staged plan: once an apply layer has claimed one of the plan's
 * entries (`quantum:apply:dedupe:<plan_id>` = `claimed|<entry_id>|<token>`), writes the permits signed for
 * that entry, as the real issuers sign the entry they decided. Gives up silently after 15 s (an entry
 * that is never claimed: forged, wrong stream).
 */
async function permitsForClaimedEntry(redis: Redis, id: string, p: PermitPair): Promise<void> {
  const deadline = Date.now() + 15_000;
  try {
    while (Date.now() < deadline) {
      const v = await redis.get(keys.applyDedupe(id));
      const [, entryId] = (v ?? '').split('|');
      if (entryId) return await writeSignedPermits(redis, id, { id: entryId, plan: await planOfEntry(redis, entryId) }, p);
      await new Promise((r) => setTimeout(r, 5));
    }
  } catch {
    // the rig stopped
  }
}

/** Permit hashes of one plan, as the governor/brain would write them (without `sig`/`entry_id`). */
export interface PermitPair {
  gov?: Record<string, string>;
  p33?: Record<string, string>;
  /**
   * The plan payload (the stream entry's exact `plan` string) the permits were decided for; default: the
   * payload of the entry they are written for. Another payload plays a permit issued for different plan
   * content under the same plan id and entry id.
   */
  planJson?: string;
  /** Sign in the first permit format (no plan digest), as an issuer that predates the digest would. */
  legacyV1?: boolean;
}

/** Permits written by the test before their plan was submitted: signed and written right after its XADD. */
const staged = new Map<string, PermitPair>();

/**
 * A permit in the first format (`p3-permit-v1`, no plan digest), signed as an issuer predating the digest
 * would: what the apply layer must refuse.
 */
function signPermitV1(issuer: 'governor' | 'p33', key: string, id: string, entryId: string, fields: Record<string, string>): Record<string, string> {
  return { ...fields, sig: hmacHex(key, `p3-permit-v1\n${canonicalJson({ issuer, plan_id: id, entry_id: entryId, fields })}`) };
}

async function writeSignedPermits(redis: Redis, id: string, entry: { id: string; plan: string }, p: PermitPair): Promise<void> {
  const entryId = entry.id;
  const binding = { planId: id, entryId, planDigest: planDigest(p.planJson ?? entry.plan) };
  const sign = (issuer: 'governor' | 'p33', key: string, f: Record<string, string>) =>
    p.legacyV1 ? signPermitV1(issuer, key, id, entryId, { ...f, plan_id: id, entry_id: entryId }) : signPermit(issuer, key, binding, { ...f, plan_id: id, entry_id: entryId });
  const m = redis.multi();
  if (p.gov) m.hset(keys.permitGovernor(id), sign('governor', GOV_KEY, p.gov)).expire(keys.permitGovernor(id), 60);
  if (p.p33) m.hset(keys.permitP33(id), sign('p33', P33_KEY, p.p33)).expire(keys.permitP33(id), 60);
  await m.exec();
}

/** Newest stream entry of plan `id` in `quantum:stream:apply.plan` (its id and exact `plan` string), null when not submitted yet. */
async function entryOf(redis: Redis, id: string): Promise<{ id: string; plan: string } | null> {
  for (const [eid, f] of await redis.xrevrange(STREAMS.applyPlan, '+', '-', 'COUNT', 500)) {
    const plan = fieldsToObject(f).plan;
    if (plan && (JSON.parse(plan) as { plan_id?: string }).plan_id === id) return { id: eid, plan };
  }
  return null;
}

/** The exact `plan` string of stream entry `entryId` of `quantum:stream:apply.plan` ('' when absent). */
async function planOfEntry(redis: Redis, entryId: string): Promise<string> {
  const [e] = await redis.xrange(STREAMS.applyPlan, entryId, entryId);
  return e ? (fieldsToObject(e[1]).plan ?? '') : '';
}

/** What an issuer signs for entry `entryId` of plan `id`: the plan id, the entry id and the digest of the entry's payload ('' payload when the entry is absent). */
export async function entryBinding(redis: Redis, id: string, entryId: string): Promise<PermitBinding> {
  return { planId: id, entryId, planDigest: planDigest(await planOfEntry(redis, entryId)) };
}

/**
 * Writes validly signed permits of a plan (60 s TTL, as the governor/brain do). The signature binds the
 * plan's stream entry id and the digest of its payload (`p.planJson`, default the entry's own `plan`): for a plan not submitted yet they are written, after its `submitPlan`, for the
 * entry an apply layer claims (see {@link permitsForClaimedEntry}).
 */
export async function writePermits(redis: Redis, id: string, p: PermitPair): Promise<void> {
  const entry = await entryOf(redis, id);
  if (entry) await writeSignedPermits(redis, id, entry, p);
  else staged.set(id, p);
}

/**
 * Writes both permits of a plan as ALLOW (see {@link writePermits}). The p33 permit's context names the
 * snapshot it was sized from (`snapshot_ts_ms`, default now), as the brain's does.
 */
export async function allowPermits(redis: Redis, id: string, qty: string, side: 'BUY' | 'SELL' = 'SELL', govQty: string | null = qty, symbol = 'BTCUSDT', snapshotTsMs = Date.now()): Promise<void> {
  const ts = String(Date.now());
  const gov: Record<string, string> = { decision: 'ALLOW', reason: 'ok', context: '{}', side, symbol, ts_ms: ts };
  if (govQty !== null) gov.qty = govQty;
  await writePermits(redis, id, { gov, p33: { decision: 'ALLOW', reason: 'ok', context: JSON.stringify({ snapshot_ts_ms: snapshotTsMs }), qty, side, symbol, ts_ms: ts } });
}

/** Every result entry of a plan, oldest first. */
export async function resultsOf(redis: Redis, id: string): Promise<Array<Record<string, string>>> {
  const all = await redis.xrange(STREAMS.applyResult, '-', '+');
  return all.map(([, f]) => fieldsToObject(f)).filter((f) => f.plan_id === id) as Array<Record<string, string>>;
}

/** Waits for the first result of a plan with one of `statuses` (any status when empty). */
export async function waitResult(redis: Redis, id: string, statuses: string[] = [], timeoutMs = 20_000): Promise<Record<string, string>> {
  return waitFor(async () => (await resultsOf(redis, id)).find((r) => statuses.length === 0 || statuses.includes(r.status ?? "")), timeoutMs, 50, `result of ${id} (${statuses.join('|')})`);
}

/** Orders of a plan in the paper exchange's order log. */
export async function ordersOf(paper: PaperExchange, id: string): Promise<unknown[]> {
  const cid = clientOrderIdFor(id);
  return (await adminOrders(paper.url)).filter((o) => o.clientOrderId === cid);
}

/** Waits `ms` (to let a wrongly duplicated order show up before asserting there is none). */
export const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));
