/**
 * The checks of `p3 doctor` that catch unsafe settings rather than broken ones (the other checks are in
 * checks.ts):
 * - `keys`: every `P3_KEY_*` is a real secret (not a template placeholder, 32+ characters), one variable
 *   has the same value in every service (the engine signs closes with `P3_KEY_P3_4`, the apply layer
 *   verifies them: a mismatch dead-letters every close), and no two variables share a value, in one
 *   service or across services (one issuer's key must not sign for another).
 * - `endpoints`: the apply layer sends orders (`APPLY_MODE` testnet or live) to an endpoint that is not
 *   certainly loopback or demo without `APPLY_ALLOW_LIVE=yes`; the engine's RECONCILE_CLOSE is on by
 *   default (its `EXCHANGE_*` say paper or demo) while the apply layer sends to production; closes turned on
 *   explicitly against production are a WARN; the governor in `testnet`/`paper` mode (no notional cap)
 *   while the apply layer sends to production.
 * - `secrets`: a placeholder password in a `REDIS_URL`, `REDIS_SENTINEL_PASSWORD` or
 *   `P3_REDIS_PASSWORD_*`, or a placeholder `EXCHANGE_API_KEY`/`EXCHANGE_API_SECRET` (FAIL); a service
 *   `REDIS_URL` sending its password over plain `redis://` to another host (WARN).
 */
import type { Env } from '../../config/env.js';
import { exchangeEndpoint, isSafeEndpoint } from '../../config/exchange-endpoint.js';
import { isPlaceholderSecret, keyVariables } from '../../config/keys.js';
import { parseReconcileEngineConfig } from '../../services/reconcile-engine/config.js';
import type { ServiceName } from '../../host/service-names.js';
import type { CheckResult, DoctorOptions } from './types.js';

const MAX_LISTED = 5;
const list = (items: string[]): string => (items.length > MAX_LISTED ? `${items.slice(0, MAX_LISTED).join(', ')} (+${items.length - MAX_LISTED} more)` : items.join(', '));

/** Shortest key accepted as a real secret by `p3 doctor` (32 characters: 16 random bytes in hex). */
export const MIN_KEY_LENGTH = 32;

/**
 * Plan and permit keys (see the module comment): placeholders, short keys, a variable with different
 * values in two services, two variables with one value. A missing `P3_KEY_OPERATOR` on the apply layer is a WARN.
 */
export function checkKeys(envs: DoctorOptions['envs']): CheckResult {
  const fails: string[] = [];
  const byVar = new Map<string, Map<string, string[]>>();
  const byValue = new Map<string, Set<string>>();
  const weak = new Map<string, string[]>();
  for (const [svc, env] of Object.entries(envs)) {
    for (const [k, v] of keyVariables(env ?? {})) {
      const why = isPlaceholderSecret(v) ? `${k} is a placeholder` : v.length < MIN_KEY_LENGTH ? `${k} is shorter than ${MIN_KEY_LENGTH} characters` : null;
      if (why) weak.set(why, [...(weak.get(why) ?? []), svc]);
      const m = byVar.get(k) ?? new Map<string, string[]>();
      m.set(v, [...(m.get(v) ?? []), svc]);
      byVar.set(k, m);
      byValue.set(v, (byValue.get(v) ?? new Set<string>()).add(k));
    }
  }
  // shared values first: one leaked key signing for several issuers is the worst of these
  for (const vars of byValue.values()) if (vars.size > 1) fails.push(`${[...vars].sort().join(' and ')} have the same value (every issuer needs its own key)`);
  for (const [k, m] of byVar) if (m.size > 1) fails.push(`${k} differs between ${[...m.values()].map((s) => s.join('+')).join(' and ')}`);
  for (const [why, svcs] of weak) fails.push(`${why} (${svcs.join(', ')})`);
  const closes = envs['reconcile-engine']?.P3_KEY_P3_4 !== undefined || envs['apply-layer']?.P3_KEY_P3_4 !== undefined;
  if (closes && envs['reconcile-engine'] && envs['apply-layer'] && (!envs['reconcile-engine'].P3_KEY_P3_4 || !envs['apply-layer'].P3_KEY_P3_4)) {
    fails.push('P3_KEY_P3_4 must be set for both reconcile-engine (signs closes) and apply-layer (verifies them)');
  }
  if (fails.length) return { check: 'keys', status: 'FAIL', detail: `${list(fails)}; generate one key per issuer: openssl rand -hex 32` };
  // p3 flatten is the one order that passes the kill switch: without the operator key on the apply layer
  // every FLATTEN is dead-lettered, found out during an incident
  if (envs['apply-layer'] && !envs['apply-layer'].P3_KEY_OPERATOR) {
    return { check: 'keys', status: 'WARN', detail: 'apply-layer has no P3_KEY_OPERATOR: `p3 flatten` (the only order allowed while HALTED) would be refused; set it (and the same value where operators run p3)' };
  }
  return { check: 'keys', status: 'OK', detail: byVar.size ? `${[...byVar.keys()].sort().join(', ')} consistent and distinct` : 'no plan key configured here' };
}

/** Where the apply layer sends orders and whether the engine's closes may reach production (see the module comment). */
export function checkEndpoints(envs: DoctorOptions['envs'], services: ServiceName[]): CheckResult {
  const fails: string[] = [];
  const warns: string[] = [];
  const notes: string[] = [];
  const apply = services.includes('apply-layer') ? envs['apply-layer'] : undefined;
  const mode = (apply?.APPLY_MODE ?? 'dry_run').trim().toLowerCase();
  const applyEndpoint = apply ? exchangeEndpoint(apply) : null;
  const applyLive = applyEndpoint !== null && mode !== 'dry_run' && !isSafeEndpoint(applyEndpoint.kind);
  if (apply && applyEndpoint) {
    const allowLive = (apply.APPLY_ALLOW_LIVE ?? '').trim().toLowerCase() === 'yes';
    if (applyLive && !allowLive) fails.push(`apply-layer: APPLY_MODE=${mode} sends orders to a production or unknown endpoint (${applyEndpoint.why}) without APPLY_ALLOW_LIVE=yes`);
    else notes.push(mode === 'dry_run' ? 'apply-layer dry_run (sends nothing)' : `apply-layer ${mode} to ${applyEndpoint.kind}${allowLive ? ' (APPLY_ALLOW_LIVE=yes)' : ''}`);
  }
  // the governor's testnet/paper modes skip the notional cap: only for money that is not real
  const governor = services.includes('governor') ? envs.governor : undefined;
  const govMode = (governor?.GOVERNOR_MODE ?? 'live').trim().toLowerCase();
  if (governor && govMode !== 'live' && applyLive) fails.push(`governor: GOVERNOR_MODE=${govMode} skips the notional cap while the apply layer sends to production (${applyEndpoint?.why}): set GOVERNOR_MODE=live`);
  const engine = services.includes('reconcile-engine') ? envs['reconcile-engine'] : undefined;
  if (engine) {
    let closeOn: boolean | null = null;
    let why = '';
    try {
      const cfg = parseReconcileEngineConfig(engine);
      closeOn = cfg.decision.closeEnabled;
      why = cfg.closeEnabledWhy;
    } catch {
      // reported by config:reconcile-engine
    }
    const explicit = (engine.P34_RECONCILE_CLOSE_ENABLED ?? '').trim() !== '';
    if (closeOn && applyLive && !explicit) fails.push(`reconcile-engine: RECONCILE_CLOSE on by default (${why}) while the apply layer sends to production (${applyEndpoint?.why}): give the engine the apply layer's EXCHANGE/EXCHANGE_BASE_URL, or set P34_RECONCILE_CLOSE_ENABLED`);
    else if (closeOn && applyLive) warns.push('reconcile-engine: P34_RECONCILE_CLOSE_ENABLED=true against a production exchange (closes sell real positions to heal drift: on purpose?)');
    else if (closeOn !== null) notes.push(`reconcile-engine closes ${closeOn ? 'on' : 'off'} (${why})`);
  }
  if (fails.length) return { check: 'endpoints', status: 'FAIL', detail: list(fails) };
  if (warns.length) return { check: 'endpoints', status: 'WARN', detail: list([...warns, ...notes]) };
  return { check: 'endpoints', status: 'OK', detail: notes.length ? list(notes) : 'no apply layer or engine checked here' };
}

/** The password of a `redis://user:password@host` URL (decoded), or null. */
function urlPassword(url: string): string | null {
  try {
    const p = new URL(url).password;
    return p ? decodeURIComponent(p) : null;
  } catch {
    return null;
  }
}

/** A `redis://` (not TLS) URL with a password to a host other than this machine. */
function passwordInClear(url: string): boolean {
  try {
    const u = new URL(url);
    const host = u.hostname.replace(/^\[|\]$/g, '');
    return u.protocol === 'redis:' && u.password !== '' && !(host === 'localhost' || host === '::1' || /^127\./.test(host));
  } catch {
    return false;
  }
}

/** Placeholder Redis passwords and exchange credentials; a password sent unencrypted off this machine is a WARN. */
export function checkSecrets(redisUrl: string, envs: DoctorOptions['envs']): CheckResult {
  const fails = new Set<string>();
  const clear = new Set<string>();
  const pw = urlPassword(redisUrl);
  if (pw !== null && isPlaceholderSecret(pw)) fails.add('REDIS_URL (this shell): password is a placeholder');
  for (const [svc, env] of Object.entries(envs) as [string, Env | undefined][]) {
    for (const [k, v] of Object.entries(env ?? {})) {
      if (v === undefined || v.trim() === '') continue;
      if (k === 'REDIS_URL' && passwordInClear(v)) clear.add(svc);
      const secret = k === 'REDIS_URL' ? urlPassword(v) : /^(P3_REDIS_PASSWORD_\w+|REDIS_SENTINEL_PASSWORD|EXCHANGE_API_KEY|EXCHANGE_API_SECRET)$/.test(k) ? v : null;
      if (secret !== null && isPlaceholderSecret(secret)) fails.add(`${svc}: ${k}${k === 'REDIS_URL' ? ' password' : ''} is a placeholder`);
    }
  }
  if (fails.size) return { check: 'secrets', status: 'FAIL', detail: `${list([...fails])}: set the real values (Redis passwords: the ones given to p3 redis-acl)` };
  if (clear.size) return { check: 'secrets', status: 'WARN', detail: `REDIS_URL of ${list([...clear])} sends its password unencrypted to another host (redis://, not rediss://): anyone on the path can act as that user` };
  return { check: 'secrets', status: 'OK', detail: 'no placeholder password or exchange credential' };
}
