/**
 * What the console shows, built from the same read functions as the CLI (`p3 status`, `p3 events`,
 * `p3 plan show`, `p3 trading-state show`): no second copy of how Redis is read. Read-only.
 *
 * Shapes (JSON of the API): amounts are signed decimal strings (base asset), ages in seconds, times in
 * epoch milliseconds.
 */
import type { Redis } from 'ioredis';
import { scanKeys } from '../adapters/redis/client.js';
import { STREAMS, patterns } from '../adapters/redis/keys.js';
import { readDlqCounts } from '../host/gauges.js';
import { recentEvents, type StreamEvent } from './events.js';
import { collectStatus, type StatusRow } from './symbol-status.js';
import { collectStatusExtras, tradingVerdict, type StatusExtras } from './status-extras.js';

/** The event streams the timeline shows, by short name. */
export const TIMELINE_STREAMS = {
  reconcile: STREAMS.reconcileEvents,
  result: STREAMS.applyResult,
  governor: STREAMS.governorEvents,
} as const;

/** Short name of a timeline stream. */
export type TimelineStream = keyof typeof TIMELINE_STREAMS;

/** One entry of the timeline (`GET /api/events`, SSE `event`). */
export interface TimelineEvent {
  /** Stream entry id `<ms>-<seq>`. */
  id: string;
  stream: TimelineStream;
  /** Epoch ms (the entry's `ts_ms`, else its id's time). */
  ts_ms: number;
  symbol: string;
  /** `event` field (HOLD_SET, AUTO_REPAIR, ...), or the result's `status` (EXECUTED, SKIP, ...). */
  kind: string;
  fields: Record<string, string>;
}

/** Turns a stream entry into a timeline event. */
export function toTimelineEvent(stream: TimelineStream, e: StreamEvent): TimelineEvent {
  const ts = Number(e.fields.ts_ms);
  return {
    id: e.id,
    stream,
    ts_ms: Number.isFinite(ts) && ts > 0 ? ts : Number(e.id.split('-')[0]),
    symbol: e.fields.symbol ?? '',
    kind: e.fields.event ?? e.fields.status ?? e.fields.decision ?? '?',
    fields: e.fields,
  };
}

/** One row of the symbols table: `p3 status`'s row plus the symbol's last reconcile event. */
export interface ConsoleSymbolRow extends StatusRow {
  last_event: { id: string; kind: string; reason: string; ts_ms: number } | null;
}

/** `GET /api/symbols`. */
export interface SymbolsView {
  ts_ms: number;
  symbols: ConsoleSymbolRow[];
}

/** Symbols to show: the configured allowlist, else every symbol found by SCAN (as `p3 status`). */
export async function consoleSymbols(redis: Redis, allowlist: string[]): Promise<string[]> {
  if (allowlist.length > 0) return allowlist;
  const found = new Set<string>();
  for (const p of [patterns.states, patterns.snapshots, patterns.holds, patterns.ledgers]) {
    const prefix = p.slice(0, -1);
    for (const k of await scanKeys(redis, p)) found.add(k.slice(prefix.length));
  }
  return [...found].filter((s) => /^[A-Z0-9]{2,30}$/.test(s)).sort();
}

/**
 * The symbols table. The last event of each symbol is looked up among the newest `scan` reconcile events.
 * @param nowMs epoch ms
 */
export async function readSymbols(redis: Redis, allowlist: string[], nowMs: number, scan = 1000): Promise<SymbolsView> {
  const symbols = await consoleSymbols(redis, allowlist);
  const [rows, recent] = await Promise.all([collectStatus(redis, symbols, nowMs), recentEvents(redis, STREAMS.reconcileEvents, { count: scan })]);
  const last = new Map<string, ConsoleSymbolRow['last_event']>();
  for (let i = recent.length - 1; i >= 0; i--) {
    const t = toTimelineEvent('reconcile', recent[i]!);
    if (t.symbol && !last.has(t.symbol)) last.set(t.symbol, { id: t.id, kind: t.kind, reason: t.fields.reason ?? '', ts_ms: t.ts_ms });
  }
  return { ts_ms: nowMs, symbols: rows.map((r) => ({ ...r, last_event: last.get(r.symbol) ?? null })) };
}

/** `GET /api/services`: heartbeats, trading state, dead-letter counts and `p3 status`'s verdict. */
export interface ServicesView extends StatusExtras {
  ts_ms: number;
  /** Dead-letter stream → entries (null = unreadable). */
  dead_letters: Record<string, number | null>;
  /** `p3 status`'s bottom line, without the `VERDICT: ` prefix. */
  verdict: string;
}

/** Reads the services view. @param nowMs epoch ms */
export async function readServices(redis: Redis, allowlist: string[], nowMs: number): Promise<ServicesView> {
  const symbols = await consoleSymbols(redis, allowlist);
  const [rows, extras, dead] = await Promise.all([collectStatus(redis, symbols, nowMs), collectStatusExtras(redis, nowMs), readDlqCounts(redis)]);
  return { ts_ms: nowMs, ...extras, dead_letters: dead, verdict: tradingVerdict(rows, extras).replace(/^VERDICT: /, '').trim() };
}

/** Query of {@link readEvents}. */
export interface EventsQuery {
  symbol?: string;
  /** Only entries after this stream id (`<ms>-<seq>`), or after this epoch ms. */
  since?: string;
  /** At most this many (the newest), over all streams. */
  limit: number;
}

/** Converts `since` (epoch ms or stream id) to an exclusive stream id bound. */
export function sinceToId(since: string | undefined): string | undefined {
  if (since === undefined) return undefined;
  if (/^\d+-\d+$/.test(since)) return since;
  if (/^\d+$/.test(since)) return `${Math.max(0, Number(since) - 1)}-18446744073709551615`;
  return undefined;
}

/** The timeline: reconcile events, apply results and governor events, merged, oldest first. */
export async function readEvents(redis: Redis, q: EventsQuery): Promise<TimelineEvent[]> {
  const afterId = sinceToId(q.since);
  const parts = await Promise.all(
    (Object.entries(TIMELINE_STREAMS) as Array<[TimelineStream, string]>).map(async ([name, stream]) =>
      (await recentEvents(redis, stream, { symbol: q.symbol, count: q.limit, afterId })).map((e) => toTimelineEvent(name, e)),
    ),
  );
  const cmp = (a: TimelineEvent, b: TimelineEvent) => {
    const [am, as] = a.id.split('-').map(Number) as [number, number];
    const [bm, bs] = b.id.split('-').map(Number) as [number, number];
    return am - bm || as - bs;
  };
  return parts.flat().sort(cmp).slice(-q.limit);
}
