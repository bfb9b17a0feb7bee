/**
 * Damage to the plan stream that Redis ACLs cannot prevent, found and (for the ids) repaired.
 *
 * Whoever may `XADD` a stream may also use XADD's own arguments, and Redis ACLs cannot refuse them: with
 * the strategy's password alone, `XADD quantum:stream:apply.plan MAXLEN 0 * ...` (or `MINID`) deletes every
 * plan not yet read, and `XADD <id>` with an id far in the future (the largest one,
 * `18446744073709551615-18446744073709551615`, makes every later `XADD *` fail: "exhausted the last
 * possible ID") blocks every producer. Neither can make an order be sent (plans are signed; deleted plans
 * are simply never executed): the damage is lost or refused plans, so it is detected loudly instead:
 *
 * - `future_id` / `exhausted_id`: the stream's last generated id is more than {@link FUTURE_ID_TOLERANCE_MS}
 *   ahead of the checker's clock (an `XADD *` id is Redis's clock: never that far ahead);
 * - `unread_deleted`: an entry was deleted (trimmed) that a consumer group had not read yet (Redis >= 7.0
 *   counts every entry added and every entry each group read): plans lost for that group. The plan
 *   stream's own trimming (`MAXLEN ~ 100000`, src/plans/submit.ts) only reaches entries every group read,
 *   unless a group stopped reading for 100000 plans, which is a loss too. It stays reported until
 *   {@link repairPlanStream} acknowledges the loss;
 * - `pending_deleted`: an entry delivered to a consumer and not yet acknowledged was deleted;
 * - `not_a_stream`: the key holds another type (no producer can add plans).
 *
 * {@link planStreamDamage} is run by the apply layer every few seconds (error log, metric, a sticky marker
 * `quantum:apply:plan_stream_damage` for `p3 doctor`, and {@link removePlantedIds} of a planted id) and by
 * `p3 doctor`. {@link repairPlanStream} (an
 * administrator's connection, `p3 plan-stream repair`: XDEL, XSETID, XGROUP SETID) removes planted ids and
 * acknowledges lost plans; see docs/runbook.md.
 */
import type { Redis } from 'ioredis';
import { STREAMS } from './keys.js';
import { planStreamGroupReset, planStreamIds } from './scripts/index.js';

/** How far ahead of the checker's clock a stream id may be before it counts as planted, ms (clock skew allowance). */
export const FUTURE_ID_TOLERANCE_MS = 5 * 60_000;
/** The largest stream id: after it no `XADD *` succeeds. */
export const MAX_STREAM_ID = '18446744073709551615-18446744073709551615';

/** What is wrong (see the module comment). */
export type PlanStreamDamageKind = 'not_a_stream' | 'exhausted_id' | 'future_id' | 'unread_deleted' | 'pending_deleted';

/** One finding: its kind and a sentence for the log and `p3 doctor` (names the group and ids). */
export interface PlanStreamDamage {
  kind: PlanStreamDamageKind;
  detail: string;
}

/** A stream id as a comparable pair. */
type Sid = [bigint, bigint];

/** Parses `<ms>-<seq>` (`<ms>` alone: seq 0). */
export function parseStreamId(id: string): Sid {
  const [ms = '0', seq = '0'] = String(id).split('-');
  return [BigInt(ms), BigInt(seq)];
}

/** Compares two stream ids: negative, 0 or positive. */
export function compareStreamIds(a: string, b: string): number {
  const [am, as] = parseStreamId(a);
  const [bm, bs] = parseStreamId(b);
  return am !== bm ? (am < bm ? -1 : 1) : as === bs ? 0 : as < bs ? -1 : 1;
}

/** A flat `[k1, v1, k2, v2]` reply as an object (values kept raw). */
function flat(reply: unknown[]): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (let i = 0; i + 1 < reply.length; i += 2) o[String(reply[i])] = reply[i + 1];
  return o;
}

/** One consumer group as XINFO GROUPS reports it. */
interface GroupState {
  name: string;
  lastDelivered: string;
  /** Entries delivered to the group since the stream's first (Redis >= 7.0); null when Redis does not know. */
  entriesRead: number | null;
  pending: number;
}

/** The stream (XINFO STREAM) and its groups (XINFO GROUPS); null when the key does not exist. */
async function streamState(redis: Redis, stream: string): Promise<{ lastId: string; maxDeleted: string; entriesAdded: number; length: number; firstId: string | null; groups: GroupState[] } | null> {
  let info: Record<string, unknown>;
  try {
    info = flat((await redis.call('XINFO', 'STREAM', stream)) as unknown[]);
  } catch (err) {
    if (/no such key/i.test((err as Error).message)) return null;
    throw err;
  }
  const groups = ((await redis.call('XINFO', 'GROUPS', stream)) as unknown[][]).map((g) => {
    const f = flat(g);
    const read = f['entries-read'];
    return { name: String(f.name), lastDelivered: String(f['last-delivered-id']), entriesRead: read === null || read === undefined ? null : Number(read), pending: Number(f.pending ?? 0) };
  });
  const first = info['first-entry'] as [string, unknown] | null | undefined;
  return {
    lastId: String(info['last-generated-id']),
    maxDeleted: String(info['max-deleted-entry-id'] ?? '0-0'),
    entriesAdded: Number(info['entries-added'] ?? 0),
    length: Number(info.length ?? 0),
    firstId: Array.isArray(first) ? String(first[0]) : null,
    groups,
  };
}

/** The Redis server's clock, epoch ms (`TIME`). */
async function redisTimeMs(redis: Redis): Promise<number> {
  const [s, us] = (await redis.call('TIME')) as [string, string];
  return Number(s) * 1000 + Math.floor(Number(us) / 1000);
}

/** Most undelivered entries a group may have for the exact deleted-entry count (beyond it: a lower bound, without reading them back). */
export const MAX_JUDGED_LAG = 10_000;

/**
 * How many entries were deleted before `g` read them: of the `entries-added - entries-read` entries not
 * delivered to the group, those not in the stream any more. Without a read counter: 1 when the stream is
 * empty and the group's last delivered id is below the stream's last id, else 0 (not judged).
 */
async function lostBeforeRead(redis: Redis, stream: string, st: NonNullable<Awaited<ReturnType<typeof streamState>>>, g: GroupState): Promise<number> {
  // a group at 0-0 has read nothing, whatever Redis says of its counter (created at 0 on an empty stream: unknown)
  const entriesRead = g.entriesRead ?? (g.lastDelivered === '0-0' ? 0 : null);
  if (entriesRead === null) return st.length === 0 && compareStreamIds(g.lastDelivered, st.lastId) < 0 ? 1 : 0;
  const lag = st.entriesAdded - entriesRead;
  if (lag <= 0) return 0;
  // too many to read back: at most `length` of them can still be there, so at least the rest were deleted
  if (lag > MAX_JUDGED_LAG) return Math.max(0, lag - st.length);
  const present = (await redis.call('XRANGE', stream, `(${g.lastDelivered}`, '+', 'COUNT', lag + 1)) as unknown[];
  return lag - present.length;
}

/**
 * Checks the plan stream (see the module comment).
 *
 * Deleted entries: Redis counts every entry ever added (`entries-added`) and, per group, every entry
 * delivered to it (`entries-read`); the difference is what the group has not read yet, and every one of
 * those must still be in the stream after the group's last delivered id. Fewer there: deleted unread. A
 * group whose counter Redis does not know (never read since created at an explicit id) is judged only when
 * the stream is empty. A group's pending entry below the stream's first entry was deleted before it was
 * acknowledged. Reads only: XINFO STREAM/GROUPS, XPENDING, XRANGE.
 * @param nowMs the checker's clock, epoch ms
 * @returns the findings, empty when the stream is sound or absent
 * @throws on a Redis error other than a missing key or a wrong type
 */
export async function planStreamDamage(redis: Redis, nowMs: number, stream: string = STREAMS.applyPlan): Promise<PlanStreamDamage[]> {
  let st: Awaited<ReturnType<typeof streamState>>;
  try {
    st = await streamState(redis, stream);
  } catch (err) {
    if (/WRONGTYPE/.test((err as Error).message)) return [{ kind: 'not_a_stream', detail: `${stream} is not a stream: no plan can be added until it is deleted (docs/runbook.md, "Plan stream damaged")` }];
    throw err;
  }
  if (!st) return [];
  // ids are the Redis server's clock: judge them by it (TIME), not by this host's (a host behind would take real
  // ids for planted ones); `nowMs` only when this user may not ask
  nowMs = await redisTimeMs(redis).catch(() => nowMs);
  const out: PlanStreamDamage[] = [];
  if (st.lastId === MAX_STREAM_ID) out.push({ kind: 'exhausted_id', detail: `${stream} holds the largest possible id: every XADD fails ("exhausted the last possible ID"); the apply layer removes it once every group read it, else p3 plan-stream repair` });
  else if (parseStreamId(st.lastId)[0] > BigInt(nowMs + FUTURE_ID_TOLERANCE_MS)) out.push({ kind: 'future_id', detail: `${stream} last id ${st.lastId} is ${Math.round(Number(parseStreamId(st.lastId)[0] - BigInt(nowMs)) / 1000)} s in the future: planted with an explicit XADD id; the apply layer removes it once every group read it, else p3 plan-stream repair` });
  for (const g of st.groups) {
    const lost = await lostBeforeRead(redis, stream, st, g);
    if (lost > 0) out.push({ kind: 'unread_deleted', detail: `${stream}: ${g.entriesRead !== null ? `${lost} entr${lost === 1 ? 'y' : 'ies'}` : 'entries'} deleted before group ${g.name} read them (an XADD with MAXLEN/MINID or a trim): plans lost; after review, p3 plan-stream repair` });
    if (g.pending === 0) continue;
    const [, minPending] = (await redis.call('XPENDING', stream, g.name)) as [number, string | null, string | null, unknown];
    if (minPending && (st.firstId === null || compareStreamIds(minPending, st.firstId) < 0)) {
      out.push({ kind: 'pending_deleted', detail: `${stream}: entries pending in group ${g.name} (from ${minPending}) were deleted before they were acknowledged: plans lost` });
    }
  }
  return out;
}

/** What {@link repairPlanStream} did, or why it did nothing. */
export interface PlanStreamRepair {
  /** True when the stream was changed. */
  repaired: boolean;
  /** Ids of the planted (future) entries deleted. */
  deleted: string[];
  /** The stream's last id afterwards. */
  lastId: string;
  /** Groups whose position or read counter was reset. */
  groupsReset: string[];
  /** Why nothing was changed (nothing to repair, or unsafe now). */
  reason?: string;
}

/** What {@link removePlantedIds} did. */
export interface PlantedIdRemoval {
  /** True when the stream was changed. */
  removed: boolean;
  /** The planted entries deleted. */
  deleted: string[];
  /** The stream's last id afterwards (when removed). */
  lastId?: string;
  /** Why nothing changed: `no_stream`, `no_planted_id`, `groups_behind:<group,...>`. */
  reason?: string;
}

/**
 * Removes planted ids (more than {@link FUTURE_ID_TOLERANCE_MS} ahead of `nowMs`) in one atomic step
 * (`planStreamIds-1.lua`: XDEL, XSETID, XGROUP SETID, XACK), only when no group has an entry left to read
 * or a planted entry pending; safe to run from several processes at once. The apply layer runs it when its
 * check finds `exhausted_id`/`future_id`, so a blocked plan stream unblocks within seconds.
 * @throws on a Redis error (NOPERM without the rights)
 */
export async function removePlantedIds(redis: Redis, _nowMs: number, stream: string = STREAMS.applyPlan): Promise<PlantedIdRemoval> {
  // the limit is taken from the Redis server's clock inside the script
  const r = await planStreamIds(redis, stream, FUTURE_ID_TOLERANCE_MS);
  if (r.result === 'unchanged') return { removed: false, deleted: [], reason: r.reason };
  return { removed: true, lastId: r.lastId, deleted: r.deleted };
}

/**
 * Repairs what {@link planStreamDamage} reports, so producers and consumers go on and the check is clean
 * again (the lost plans stay lost: strategies resubmit them, docs/runbook.md):
 * - planted ids are removed ({@link removePlantedIds});
 * - every group is set to the stream's last id with its read counter equal to every entry added
 *   (`XGROUP SETID ... ENTRIESREAD`): the deleted entries are acknowledged as lost;
 * - pending entries that no longer exist are acknowledged (XACK).
 * Only when no group has a real entry left to read after its position: a group still reading may yet get a
 * real plan; then nothing is changed and `reason` says to wait.
 * @param redis a connection allowed XDEL, XSETID, XGROUP SETID and XACK on the stream (`p3-admin`)
 * @param nowMs the clock, epoch ms
 * @throws on a Redis error
 */
export async function repairPlanStream(redis: Redis, nowMs: number, stream: string = STREAMS.applyPlan): Promise<PlanStreamRepair> {
  const damage = (await planStreamDamage(redis, nowMs, stream)).filter((d) => d.kind !== 'not_a_stream');
  const st = await streamState(redis, stream);
  if (!st || damage.length === 0) return { repaired: false, deleted: [], lastId: st?.lastId ?? '0-0', groupsReset: [], reason: 'no damage: nothing to repair' };
  const waitFor = (names: string) => `groups ${names} have not read every entry yet: start their consumers, wait, then run again`;
  // a group is behind only while a real entry (not planted) lies after its position: an id deleted together with
  // everything before it (XADD MAXLEN 0 <id>) can never be read, and waiting for it would block producers for good
  const limit = `${(await redisTimeMs(redis).catch(() => nowMs)) + FUTURE_ID_TOLERANCE_MS + 1}-0`;
  const behind: string[] = [];
  for (const g of st.groups) {
    if (g.lastDelivered === MAX_STREAM_ID) continue; // nothing can lie after the largest id
    const next = (await redis.call('XRANGE', stream, `(${g.lastDelivered}`, `(${limit}`, 'COUNT', 1)) as unknown[];
    if (next.length > 0) behind.push(g.name);
  }
  if (behind.length) return { repaired: false, deleted: [], lastId: st.lastId, groupsReset: [], reason: waitFor(behind.join(', ')) };
  const ids = await removePlantedIds(redis, nowMs, stream);
  if (ids.reason?.startsWith('groups_behind:')) return { repaired: false, deleted: [], lastId: st.lastId, groupsReset: [], reason: waitFor(ids.reason.slice('groups_behind:'.length)) };
  const now = (await streamState(redis, stream))!;
  const groupsReset: string[] = [];
  const movedOn: string[] = [];
  for (const g of now.groups) {
    // one atomic step per group, only while it is still where it was seen (planStreamGroupReset-1.lua): pending
    // entries below the first remaining entry (gone) acknowledged, then its position and read counter set
    const ok = (await planStreamGroupReset(redis, stream, { group: g.name, expectedLastId: g.lastDelivered, lastId: now.lastId, firstId: now.firstId ?? null, entriesRead: now.entriesAdded })) === 'reset';
    (ok ? groupsReset : movedOn).push(g.name);
  }
  if (movedOn.length) return { repaired: groupsReset.length > 0, deleted: ids.deleted, lastId: now.lastId, groupsReset, reason: `groups ${movedOn.join(', ')} read on meanwhile: run again` };
  return { repaired: true, deleted: ids.deleted, lastId: now.lastId, groupsReset };
}
