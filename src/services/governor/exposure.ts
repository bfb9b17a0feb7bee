/**
 * The governor's exposure limits for entries (docs/architecture.md#risk-limits-and-trading-states): reads every allowlisted snapshot and the
 * outstanding reservations in one MULTI, decides with exact decimals (`checkExposure`), and reserves the
 * entry's notional with a compare-and-set (`exposureReserve-2.lua`), re-reading on a conflict. Reservations
 * that no longer count (final result seen and a snapshot newer than the symbol's newest fill) are released in
 * the same step; one whose permit expired before its entry was sent is released by `exposureExpire-3.lua`,
 * which checks atomically that the plan is still not being sent (src/domain/exposure.ts).
 */
import type { Redis } from 'ioredis';
import { keys } from '../../adapters/redis/keys.js';
import { exposureExpire, exposureReserve } from '../../adapters/redis/scripts/index.js';
import { Decimal } from '../../domain/decimal.js';
import { checkExposure, formatReservation, parseReservation, reservationReleased, type ExposureLimits, type ExposureVerdict, type Reservation, type SymbolExposure } from '../../domain/exposure.js';
import { readSnapshot } from '../../domain/position.js';

/** Compare-and-set attempts before giving up with DENY `exposure_contended` (fail closed). */
export const RESERVE_ATTEMPTS = 8;

/** What one entry asks for. */
export interface EntryRequest {
  planId: string;
  symbol: string;
  /** Base quantity the permit grants. */
  qty: Decimal;
  /** Mark price used for the notional, USD. */
  mark: Decimal;
  /** The symbol's signed position (base) from the snapshot the decision used. */
  position: Decimal;
  /** Reservation lifetime, ms (the permit's TTL). */
  ttlMs: number;
}

/** Outcome: the exposure verdict, or `exposure_contended` after {@link RESERVE_ATTEMPTS} conflicts. */
export type ReserveOutcome = ExposureVerdict | { ok: false; reason: 'exposure_contended'; context: Record<string, string> };

/**
 * Checks the limits and reserves the entry's notional atomically. With no limit set, nothing is read or
 * written (`ok`, reserve 0).
 * @param allowlist every symbol whose position counts toward the gross exposure
 * @throws Redis errors (the caller's consumer retries the entry)
 */
export async function reserveExposure(redis: Redis, req: EntryRequest, allowlist: readonly string[], limits: ExposureLimits, nowMs = Date.now()): Promise<ReserveOutcome> {
  if (limits.maxPositionUsd === null && limits.maxGrossUsd === null) return { ok: true, reserveUsd: new Decimal(0) };
  // fail closed: a gross limit over an unknown set of symbols (the config refuses it too)
  if (limits.maxGrossUsd !== null && allowlist.length === 0) return { ok: false, reason: 'exposure_unknown', context: { why: 'GOVERNOR_MAX_GROSS_USD without P3_ALLOWLIST' } };
  const symbols = [...new Set([...allowlist, req.symbol])];
  let expiredRounds = 0;
  for (let attempt = 0; attempt < RESERVE_ATTEMPTS; attempt++) {
    const m = redis.multi().hgetall(keys.governorReservations()).get(keys.governorReservationsVersion());
    for (const s of symbols) m.hgetall(keys.snapshot(s)).get(keys.lastFill(s));
    const res = await m.exec();
    if (!res) throw new Error('exposure read aborted');
    const err = res.find(([e]) => e)?.[0];
    if (err) throw err;
    const vals = res.map(([, v]) => v);
    const rawRes = (vals[0] ?? {}) as Record<string, string>;
    const version = (vals[1] as string | null) ?? '0';
    const book: SymbolExposure[] = [];
    const snapTs = new Map<string, number | null>();
    const lastFill = new Map<string, number | null>();
    symbols.forEach((s, i) => {
      const snap = readSnapshot(vals[2 + 2 * i] as Record<string, string>);
      const lf = vals[3 + 2 * i] as string | null;
      lastFill.set(s, lf !== null && /^\d+$/.test(lf) ? Number(lf) : null);
      if (snap.kind === 'ok') {
        snapTs.set(s, snap.snapshot.tsMs);
        if (allowlist.includes(s)) book.push({ symbol: s, amount: snap.snapshot.amount, mark: snap.snapshot.markPrice });
      } else {
        snapTs.set(s, null);
        if (allowlist.includes(s)) book.push({ symbol: s, amount: null, mark: null });
      }
    });
    // which reservations still count
    const parsed: Reservation[] = [];
    const release: string[] = [];
    for (const [planId, raw] of Object.entries(rawRes)) {
      const r = parseReservation(planId, raw);
      if (r === null) release.push(planId);
      else parsed.push(r);
    }
    const dedupe = parsed.length > 0 ? await redis.mget(...parsed.map((r) => keys.applyDedupe(r.planId))) : [];
    const live: Reservation[] = [];
    const expired: string[] = [];
    parsed.forEach((r, i) => {
      const v = dedupe[i];
      const stage = typeof v === 'string' && v.startsWith('done|') ? 'done' : typeof v === 'string' && v.startsWith('sending|') ? 'sending' : 'open';
      const verdict = reservationReleased(r, { stage, snapshotTsMs: snapTs.get(r.symbol) ?? null, lastFillMs: lastFill.get(r.symbol) ?? null }, nowMs);
      if (verdict === 'released') release.push(r.planId);
      else if (verdict === 'expired') expired.push(r.planId);
      else live.push(r);
    });
    if (expired.length > 0) {
      // permits that expired before their entry was sent: released only while still not sending (atomic check),
      // then everything is read again (the version moved)
      for (const planId of expired) await exposureExpire(redis, planId);
      attempt--;
      if (++expiredRounds > RESERVE_ATTEMPTS) return { ok: false, reason: 'exposure_contended', context: { attempts: String(expiredRounds) } };
      continue;
    }
    const verdict = checkExposure({ symbol: req.symbol, qty: req.qty, mark: req.mark, position: req.position, reservations: live.filter((r) => r.planId !== req.planId), book, limits });
    if (!verdict.ok && release.length === 0) return verdict;
    const add: [string, string] | null = verdict.ok ? [req.planId, formatReservation({ symbol: req.symbol, usd: verdict.reserveUsd, expiresMs: nowMs + req.ttlMs })] : null;
    if ((await exposureReserve(redis, version, add, release)) === 'written') return verdict;
  }
  return { ok: false, reason: 'exposure_contended', context: { attempts: String(RESERVE_ATTEMPTS) } };
}

/** Releases a reservation (an ALLOW that did not issue after all, e.g. the rate limit denied it). Best effort. */
export async function releaseReservation(redis: Redis, planId: string): Promise<void> {
  for (let attempt = 0; attempt < RESERVE_ATTEMPTS; attempt++) {
    const version = (await redis.get(keys.governorReservationsVersion())) ?? '0';
    if ((await exposureReserve(redis, version, null, [planId])) === 'written') return;
  }
}
