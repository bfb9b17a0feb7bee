/**
 * The checks of `p3 doctor [--json] [--env-dir DIR] [--services a,b]` (command: src/cli/commands/doctor.ts):
 * one line per check, `OK`, `WARN` or `FAIL` with a detail; the command exits 1 when any check fails.
 *
 * Checks:
 * - `redis`: reachable at `REDIS_URL` and version >= 6.2 (GETDEL, XAUTOCLAIM, SET ... GET are used).
 * - `config:<service>`: every `parse*Config` exported by the service's `*config.ts` files, plus the common
 *   variables (`REDIS_URL`, `P3_ALLOWLIST`) and, for services that talk to the exchange, the exchange
 *   variables. With `--env-dir DIR` each service is checked against `DIR/<service>.env` (the systemd
 *   `EnvironmentFile`), else against this process's environment.
 * - `exchange`: `/fapi/v1/time` through the exchange gateway; clock skew (local clock minus exchange
 *   clock at the request's midpoint). Binance rejects a signed request whose timestamp is more than
 *   1000 ms ahead of its clock or older than `recvWindow` (Binance USDⓈ-M "Timing security"), so a skew
 *   above 1000 ms fails unless `EXCHANGE_SYNC_TIME` (sign with the exchange's clock) is on.
 * - `schema:*`: keys that break docs/architecture.md#redis-schema (SCAN, never KEYS): wrong TYPE, snapshots and ledgers that
 *   `readSnapshot`/`readLedger` reject, permits without TTL.
 * - `holds`: a hold without TTL (a hold that never clears) or with a TTL above the configured lease
 *   (`P34_HOLD_TTL_SEC`, default 900) fails; active holds and `hold_reason`/`hold_sig` left behind by a
 *   hand-deleted hold are a WARN.
 * - `snapshots`: each symbol of the brain's `P3_ALLOWLIST` has a readable snapshot younger than
 *   `P34_EXCHANGE_FRESHNESS_SEC` (default 10 s); a missing or stale one fails (bad credentials, brain down).
 * - `user-stream`: the brain's user data stream (src/read-model/user-streams.ts): healthy (OK), not healthy or not
 *   reported (WARN), `P33_REST_VERIFY_INTERVAL_MS` not below the freshness limit (FAIL).
 * - `trading`: HALTED/REDUCING trading states and open circuit breakers (WARN), unreadable state (FAIL).
 * - `dlq`: dead-letter streams (`*.dlq`) that are not empty (FAIL: a message was rejected for good).
 * - `heartbeats`: each expected service has a live heartbeat (FAIL when missing).
 * - `plan-stream`: damage to the plan stream a producer's XADD arguments can do (deleted unread plans, a
 *   planted id that blocks every XADD), now or recorded earlier by the apply layer (plan-stream-check.ts).
 * - `consumers`: a consumer group with entries unread for more than 20 s, or pending untouched for 60 s: its
 *   consumers stalled or none runs (consumer-check.ts).
 * - `acl:*`: the `default` user enabled with full rights, a generated ACL user with more rights than
 *   `p3 redis-acl` gives it, a service connecting as another component's user (src/acl/doctor-check.ts).
 * - `keys`, `endpoints`, `secrets`: placeholder or shared keys, orders or closes aimed at a
 *   production endpoint without their guard, placeholder Redis passwords (src/cli/doctor/safety-checks.ts).
 */
import { readdirSync } from 'node:fs';
import type { Redis } from 'ioredis';
import { envz, parseEnv, type Env } from '../../config/env.js';
import { describeRedisTarget, parseRedisTarget } from '../../config/redis.js';
import { openRedis, scanKeys } from '../../adapters/redis/client.js';
import { databaseRefusal, RedisDatabaseError } from '../../adapters/redis/database-guard.js';
import { keys, STREAMS } from '../../adapters/redis/keys.js';
import { readLedger, readSnapshot } from '../../domain/position.js';
import { livenessReport, readHeartbeats } from '../../read-model/heartbeats.js';
import { readTradingStates } from '../../read-model/trading-state.js';
import type { ServiceName } from '../../host/service-names.js';
import { checkUserStream } from '../../read-model/user-streams.js';
import { checkAcl } from '../../acl/doctor-check.js';
import { checkPlanStream } from './plan-stream-check.js';
import { checkConsumers } from './consumer-check.js';
import { checkEndpoints, checkKeys, checkSecrets } from './safety-checks.js';

export type { CheckResult, CheckStatus, DoctorOptions } from './types.js';
import type { CheckResult, DoctorOptions } from './types.js';

/**
 * Whether a service talks to the exchange with this environment: the brain while its snapshot publisher
 * is on (`P33_SNAPSHOTS_ENABLED`, default true), the apply layer unless `APPLY_MODE` is `dry_run` (the
 * default). Their exchange variables are then checked, and the exchange check uses their environment.
 */
function needsExchange(service: ServiceName, env: Env): boolean {
  if (service === 'position-state-brain') return !/^(false|0|no|off)$/i.test((env.P33_SNAPSHOTS_ENABLED ?? '').trim());
  if (service === 'apply-layer') return /^(testnet|live)$/i.test((env.APPLY_MODE ?? '').trim());
  return false;
}
/** Oldest Redis version the Lua scripts and commands need. */
const MIN_REDIS: [number, number] = [6, 2];
/** Default hold lease, seconds (docs/architecture.md#redis-schema). */
const DEFAULT_HOLD_LEASE_SEC = 900;
const MAX_LISTED = 5;

const list = (items: string[]): string => (items.length > MAX_LISTED ? `${items.slice(0, MAX_LISTED).join(', ')} (+${items.length - MAX_LISTED} more)` : items.join(', '));
const msg = (err: unknown): string => (err as Error)?.message ?? String(err);

/** Every `parse*Config(env)` exported by the `*config.ts` modules of a service's folder. */
async function serviceConfigParsers(service: ServiceName): Promise<[string, (env: Env) => unknown][]> {
  const dir = new URL(`../../services/${service}/`, import.meta.url);
  const out: [string, (env: Env) => unknown][] = [];
  let files: string[] = [];
  try {
    files = readdirSync(dir).filter((f) => /config\.(ts|js)$/.test(f) && !f.endsWith('.d.ts'));
  } catch {
    return out;
  }
  for (const f of files.sort()) {
    const mod = (await import(new URL(f, dir).href)) as Record<string, unknown>;
    for (const [name, fn] of Object.entries(mod)) if (/^parse\w*Config$/.test(name) && typeof fn === 'function') out.push([name, fn as (env: Env) => unknown]);
  }
  return out;
}

/** The exchange adapter loads ccxt (~100 MB, ~0.4 s): only when a check needs it, not for every `p3` command. */
const exchangeFactory = () => import('../../adapters/exchange/factory.js');

async function checkConfig(service: ServiceName, env: Env): Promise<CheckResult> {
  const check = `config:${service}`;
  const warnings: string[] = [];
  try {
    const common = parseEnv({ REDIS_URL: envz.redisUrl(), P3_ALLOWLIST: envz.symbols(), P34_ALLOWLIST: envz.symbols() }, env);
    parseRedisTarget(env);
    if (common.P3_ALLOWLIST.length === 0 && !(service === 'reconcile-engine' && common.P34_ALLOWLIST.length > 0)) warnings.push('P3_ALLOWLIST is empty: no symbol is served');
    if (needsExchange(service, env)) (await exchangeFactory()).parseExchangeConfig(env);
    const parsers = await serviceConfigParsers(service);
    for (const [, parse] of parsers) parse(env);
    if (parsers.length === 0) warnings.push('no service config parser found; checked common variables only');
    return { check, status: warnings.length ? 'WARN' : 'OK', detail: warnings.length ? warnings.join('; ') : `valid (${parsers.map(([n]) => n).join(', ')})` };
  } catch (err) {
    return { check, status: 'FAIL', detail: msg(err) };
  }
}

async function checkExchange(envs: DoctorOptions['envs'], timeoutMs: number): Promise<CheckResult> {
  const env = (['apply-layer', 'position-state-brain'] as const).map((s) => envs[s]).find((e, i) => e !== undefined && needsExchange((['apply-layer', 'position-state-brain'] as const)[i] as ServiceName, e));
  if (!env) return { check: 'exchange', status: 'OK', detail: 'no expected service talks to the exchange (brain snapshots off, apply layer dry_run); skipped' };
  const { createExchangeGateway, parseExchangeConfig } = await exchangeFactory();
  let cfg;
  try {
    cfg = parseExchangeConfig(env);
  } catch (err) {
    return { check: 'exchange', status: 'FAIL', detail: `cannot check: ${msg(err)}` };
  }
  const gw = createExchangeGateway({ ...cfg, syncTime: false, timeoutMs: Math.min(cfg.timeoutMs, timeoutMs) });
  try {
    const t0 = Date.now();
    const timeout = new Promise<never>((_, rej) => {
      setTimeout(() => rej(new Error(`no answer in ${timeoutMs} ms`)), timeoutMs).unref();
    });
    const server = await Promise.race([gw.serverTime(), timeout]);
    const t1 = Date.now();
    const skew = Math.round((t0 + t1) / 2 - server);
    const where = cfg.baseUrl ?? cfg.exchange;
    const detail = `${where} answered in ${t1 - t0} ms; local clock ${skew >= 0 ? 'ahead' : 'behind'} by ${Math.abs(skew)} ms`;
    if (skew > 1000 || Math.abs(skew) > cfg.recvWindowMs) {
      return cfg.syncTime
        ? { check: 'exchange', status: 'WARN', detail: `${detail} (EXCHANGE_SYNC_TIME compensates for signing; fix NTP)` }
        : { check: 'exchange', status: 'FAIL', detail: `${detail}: signed requests will be rejected (-1021); fix NTP or set EXCHANGE_SYNC_TIME=true` };
    }
    return { check: 'exchange', status: Math.abs(skew) > 500 ? 'WARN' : 'OK', detail };
  } catch (err) {
    return { check: 'exchange', status: 'FAIL', detail: `unreachable: ${msg(err)}` };
  } finally {
    await gw.close().catch(() => undefined);
  }
}

/** Keys of `pattern` whose TYPE is not `type`. */
async function wrongTypes(redis: Redis, found: string[], type: string): Promise<string[]> {
  const bad: string[] = [];
  for (const k of found) {
    const t = await redis.type(k);
    if (t !== type && t !== 'none') bad.push(`${k} is a ${t}, expected ${type}`);
  }
  return bad;
}

async function checkSchema(redis: Redis): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  const report = (check: string, bad: string[], okDetail: string) =>
    out.push(bad.length ? { check, status: 'FAIL', detail: list(bad) } : { check, status: 'OK', detail: okDetail });

  const snaps = await scanKeys(redis, 'quantum:position:snapshot:*');
  const badSnaps = await wrongTypes(redis, snaps, 'hash');
  for (const k of snaps.filter((k) => !badSnaps.some((b) => b.startsWith(`${k} `)))) {
    const r = readSnapshot(await redis.hgetall(k));
    if (r.kind === 'invalid') badSnaps.push(`${k}: ${r.error}`);
  }
  report('schema:snapshots', badSnaps, `${snaps.length} snapshot(s) readable`);

  const ledgers = await scanKeys(redis, 'quantum:position:ledger:*');
  const legacy004 = (await scanKeys(redis, 'quantum:position:*')).filter((k) => k.split(':').length === 3);
  const badLedgers = [...(await wrongTypes(redis, ledgers, 'hash')), ...(await wrongTypes(redis, legacy004, 'hash'))];
  const legacy: string[] = [];
  const symbols = new Set([...ledgers, ...legacy004].map((k) => k.slice(k.lastIndexOf(':') + 1)));
  for (const sym of symbols) {
    if (badLedgers.some((b) => b.startsWith(`${keys.ledger(sym)} `) || b.startsWith(`${keys.legacyLedger004(sym)} `))) continue;
    const r = readLedger(await redis.hgetall(keys.ledger(sym)), await redis.hgetall(keys.legacyLedger004(sym)));
    if (r.kind === 'invalid') badLedgers.push(`${keys.ledger(sym)}: ${r.error}`);
    else if (r.kind === 'ok' && r.ledger.layout !== 'canonical') legacy.push(`${sym} (${r.ledger.layout})`);
  }
  report('schema:ledgers', badLedgers, `${symbols.size} ledger(s) readable${legacy.length ? `; legacy layout, migrated on the next write: ${list(legacy)}` : ''}`);

  const typed: [string, string, string][] = [
    ['schema:states', 'quantum:reconcile:state:*', 'hash'],
    ['schema:hold-keys', 'quantum:reconcile:hold*', 'string'],
    ['schema:heartbeats', 'quantum:heartbeat:*', 'hash'],
    ['schema:trading-state', 'quantum:governor:trading_state*', 'hash'],
  ];
  for (const [check, pattern, type] of typed) {
    const found = await scanKeys(redis, pattern);
    report(check, await wrongTypes(redis, found, type), `${found.length} key(s)`);
  }
  const streams = Object.values(STREAMS).flatMap((s) => [s, `${s}.dlq`]);
  report('schema:streams', await wrongTypes(redis, streams, 'stream'), `${streams.length} stream names checked`);

  const permits = await scanKeys(redis, 'quantum:permit:*');
  const badPermits = await wrongTypes(redis, permits, 'hash');
  for (const k of permits) if ((await redis.pttl(k)) === -1) badPermits.push(`${k} has no TTL (a permit must expire)`);
  report('schema:permits', badPermits, `${permits.length} permit(s)`);
  return out;
}

async function checkHolds(redis: Redis, leaseSec: number): Promise<CheckResult> {
  const fails: string[] = [];
  const active: string[] = [];
  const orphans: string[] = [];
  const longOperator: string[] = [];
  const holdKeys = (await scanKeys(redis, 'quantum:reconcile:hold:*')).sort();
  for (const k of holdKeys) {
    const sym = k.slice(keys.hold('').length);
    const [ttl, reason, sig] = await Promise.all([redis.ttl(k), redis.get(keys.holdReason(sym)).catch(() => null), redis.get(keys.holdSig(sym)).catch(() => null)]);
    if (ttl === -1) fails.push(`${sym}: hold has no TTL (never clears)`);
    else if (ttl > leaseSec && sig !== null) fails.push(`${sym}: engine hold TTL ${ttl}s above the lease ${leaseSec}s`);
    else if (ttl > leaseSec) longOperator.push(`${sym} operator hold for ${ttl}s more (longer than the ${leaseSec}s lease: on purpose?)`);
    active.push(`${sym} (${reason ?? 'no reason'}${sig === null ? ', manual' : ''}, ${ttl}s left)`);
  }
  for (const k of [...(await scanKeys(redis, 'quantum:reconcile:hold_reason:*')), ...(await scanKeys(redis, 'quantum:reconcile:hold_sig:*'))]) {
    const sym = k.slice(k.lastIndexOf(':') + 1);
    const ttl = await redis.ttl(k);
    if (ttl === -1) fails.push(`${k} has no TTL`);
    else if (!holdKeys.includes(keys.hold(sym)) && ttl > 0) orphans.push(k);
  }
  if (fails.length) return { check: 'holds', status: 'FAIL', detail: list(fails) };
  const orphanNote = orphans.length ? `; leftovers of a hold deleted by hand (a later manual hold would inherit them; \`p3 hold clear\` removes all): ${list(orphans)}` : '';
  const longNote = longOperator.length ? `; ${list(longOperator)}` : '';
  if (active.length || orphans.length) return { check: 'holds', status: 'WARN', detail: `${active.length ? `trading blocked on ${list(active)}` : 'no hold'}${orphanNote}${longNote}` };
  return { check: 'holds', status: 'OK', detail: 'no hold' };
}

/**
 * Every allowlisted symbol of the brain has a readable snapshot younger than the reconcile engine's
 * freshness limit (`P34_EXCHANGE_FRESHNESS_SEC`, default 10 s); catches what the unauthenticated time
 * check cannot (bad API key, positions endpoint failing, brain not publishing).
 */
async function checkSnapshots(redis: Redis, symbols: string[], freshnessSec: number): Promise<CheckResult> {
  if (symbols.length === 0) return { check: 'snapshots', status: 'WARN', detail: 'no allowlisted symbol (P3_ALLOWLIST of the brain); skipped' };
  const bad: string[] = [];
  const ages: string[] = [];
  for (const sym of symbols) {
    const t = await redis.type(keys.snapshot(sym));
    const r = t === 'hash' ? readSnapshot(await redis.hgetall(keys.snapshot(sym))) : t === 'none' ? ({ kind: 'missing' } as const) : ({ kind: 'invalid', error: `a ${t}` } as const);
    if (r.kind === 'missing') bad.push(`${sym}: no snapshot`);
    else if (r.kind === 'invalid') bad.push(`${sym}: invalid (${r.error})`);
    else {
      const age = (Date.now() - r.snapshot.tsMs) / 1000;
      if (age > freshnessSec) bad.push(`${sym}: ${age.toFixed(0)}s old (limit ${freshnessSec}s)`);
      else ages.push(`${sym} ${age.toFixed(1)}s`);
    }
  }
  return bad.length
    ? { check: 'snapshots', status: 'FAIL', detail: `${list(bad)}: the brain is not publishing (see its log: credentials, rate limit, exchange down)` }
    : { check: 'snapshots', status: 'OK', detail: `fresh: ${list(ages)}` };
}

async function checkTrading(redis: Redis): Promise<CheckResult> {
  const v = await readTradingStates(redis);
  const fails: string[] = [];
  const warns: string[] = [];
  for (const [scope, s] of [['global', v.global], ...Object.entries(v.symbols).map(([k, s]) => [k.replace(/^:/, ''), s] as const)] as const) {
    if (s.state === 'INVALID') fails.push(`${scope}: ${s.error}`);
    else if (s.state !== 'ACTIVE') warns.push(`${scope} ${s.state}${s.reason ? ` (${s.reason})` : ''}`);
  }
  for (const b of v.breakers) warns.push(`${b.symbol} circuit breaker open (${b.ttlSec}s left)`);
  if (fails.length) return { check: 'trading', status: 'FAIL', detail: list(fails) };
  return warns.length ? { check: 'trading', status: 'WARN', detail: list(warns) } : { check: 'trading', status: 'OK', detail: 'ACTIVE, no breaker open' };
}

async function checkDlq(redis: Redis): Promise<CheckResult> {
  const found = (await scanKeys(redis, 'quantum:*.dlq')).sort();
  const nonEmpty: string[] = [];
  for (const k of found) {
    const n = (await redis.type(k)) === 'stream' ? await redis.xlen(k) : 0;
    if (n > 0) nonEmpty.push(`${k}: ${n}`);
  }
  return nonEmpty.length
    ? { check: 'dlq', status: 'FAIL', detail: `dead letters: ${list(nonEmpty)} (inspect with XREVRANGE, see docs/runbook.md)` }
    : { check: 'dlq', status: 'OK', detail: `${found.length} dead-letter stream(s), all empty` };
}

async function checkHeartbeats(redis: Redis, services: ServiceName[]): Promise<CheckResult> {
  const rep = livenessReport(await readHeartbeats(redis), services, Date.now());
  const alive = Object.entries(rep.alive).map(([n, hbs]) => `${n} x${hbs.length}`);
  const stale = rep.stale.map((h) => `${h.name}/${h.instance}`);
  if (rep.missing.length) return { check: 'heartbeats', status: 'FAIL', detail: `missing: ${rep.missing.join(', ')}${alive.length ? `; alive: ${alive.join(', ')}` : ''}` };
  if (stale.length) return { check: 'heartbeats', status: 'WARN', detail: `alive: ${alive.join(', ')}; stale: ${list(stale)}` };
  return { check: 'heartbeats', status: 'OK', detail: `alive: ${alive.join(', ')}` };
}

/** The symbols of `P3_ALLOWLIST` (empty when unset or invalid). */
function allowlistOf(env: Env): string[] {
  try {
    return parseEnv({ P3_ALLOWLIST: envz.symbols() }, env).P3_ALLOWLIST;
  } catch {
    return [];
  }
}

/** Runs every check. Never throws: a check that crashes is reported as FAIL. */
export async function runDoctor(opts: DoctorOptions): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const redis = openRedis({ url: opts.redisUrl, sentinel: opts.sentinel ?? null }, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 3000, connectionName: 'p3:doctor' });
  redis.on('error', () => undefined);
  let redisOk = false;
  try {
    await redis.connect();
    const version = /redis_version:([\d.]+)/.exec(await redis.info('server'))?.[1] ?? '0';
    const [maj = 0, min = 0] = version.split('.').map(Number);
    const okVersion = maj > MIN_REDIS[0] || (maj === MIN_REDIS[0] && min >= MIN_REDIS[1]);
    results.push({ check: 'redis', status: okVersion ? 'OK' : 'FAIL', detail: `${describeRedisTarget({ url: opts.redisUrl, sentinel: opts.sentinel ?? null })} version ${version}${okVersion ? '' : ` (need >= ${MIN_REDIS.join('.')})`}` });
    redisOk = true;
  } catch (caught) {
    // a refused SELECT closes the connection: connect() then fails with "Connection is closed"
    const err = caught instanceof RedisDatabaseError ? caught : ((await databaseRefusal(redis)) ?? caught);
    if (err instanceof RedisDatabaseError) results.push({ check: 'redis', status: 'FAIL', detail: `${describeRedisTarget({ url: opts.redisUrl, sentinel: opts.sentinel ?? null })}: ${err.message}` });
    else results.push({ check: 'redis', status: 'FAIL', detail: `unreachable at ${describeRedisTarget({ url: opts.redisUrl, sentinel: opts.sentinel ?? null })}: ${msg(err)}` });
  }
  for (const s of opts.services) results.push(await checkConfig(s, opts.envs[s] ?? {}));
  results.push(checkKeys(opts.envs), checkEndpoints(opts.envs, opts.services), checkSecrets(opts.redisUrl, opts.envs));
  results.push(await checkExchange(opts.envs, opts.exchangeTimeoutMs ?? 5000));
  if (redisOk) {
    const leaseRaw = opts.envs['reconcile-engine']?.P34_HOLD_TTL_SEC;
    const lease = leaseRaw && /^\d+$/.test(leaseRaw.trim()) ? Number(leaseRaw) : DEFAULT_HOLD_LEASE_SEC;
    const freshRaw = Number(opts.envs['reconcile-engine']?.P34_EXCHANGE_FRESHNESS_SEC);
    const freshness = Number.isFinite(freshRaw) && freshRaw > 0 ? freshRaw : 10;
    type Step = [string, () => Promise<CheckResult | CheckResult[]>];
    const snapshotStep: Step[] = opts.services.includes('position-state-brain')
      ? [
          ['snapshots', () => checkSnapshots(redis, allowlistOf(opts.envs['position-state-brain'] ?? {}), freshness)],
          ['user-stream', () => checkUserStream(redis, opts.envs['position-state-brain'] ?? {}, freshness)],
        ]
      : [];
    const steps: Step[] = [
      ['schema', () => checkSchema(redis)],
      ['holds', () => checkHolds(redis, lease)],
      ...snapshotStep,
      ['trading', () => checkTrading(redis)],
      ['dlq', () => checkDlq(redis)],
      ['plan-stream', () => checkPlanStream(redis)],
      ['consumers', () => checkConsumers(redis)],
      ['heartbeats', () => checkHeartbeats(redis, opts.services)],
      ['acl', () => checkAcl(redis, opts.redisUrl, opts.envFiles ? opts.envs : {}, opts.sentinel ?? null)],
    ];
    for (const [check, run] of steps) {
      try {
        results.push(...[await run()].flat());
      } catch (err) {
        results.push({ check, status: 'FAIL', detail: `check crashed: ${msg(err)}` });
      }
    }
  } else {
    results.push({ check: 'redis-checks', status: 'WARN', detail: 'schema, holds, snapshots, trading, dlq, heartbeats skipped: Redis unreachable' });
  }
  redis.disconnect();
  return results;
}
