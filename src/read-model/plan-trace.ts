/**
 * What happened to one plan, for `p3 plan show`: its stream entry, both permits (while their 60 s TTL
 * lasts), its apply results and any dead-letter copies. Read-only; streams are read newest first up to
 * `scan` entries each (XREVRANGE, never a full scan of a long stream).
 */
import type { Redis } from 'ioredis';
import { fieldsToObject } from '../adapters/redis/consumer.js';
import { STREAMS, dlq, keys } from '../adapters/redis/keys.js';
import { planDigest } from '../domain/plan.js';
import { printableDeep } from '../domain/operator-text.js';

/** One stream entry that mentions the plan. */
export interface TracedEntry {
  stream: string;
  id: string;
  fields: Record<string, string>;
}

/** Everything found about a plan. */
export interface PlanTrace {
  planId: string;
  /** Entries of `quantum:stream:apply.plan` / `reconcile.close` / `apply.flatten` carrying the plan (their `plan` JSON contains the id). */
  submitted: TracedEntry[];
  /** Permit hashes (empty object = absent or expired). */
  permits: { governor: Record<string, string>; p33: Record<string, string> };
  /** Entries of `quantum:stream:apply.result` of the plan, oldest first. */
  results: TracedEntry[];
  /** Copies in the dead-letter streams. */
  deadLetters: TracedEntry[];
  /** `quantum:apply:dedupe:<plan_id>` (the apply layer's stage), null when absent. */
  dedupe: string | null;
}

async function find(redis: Redis, stream: string, scan: number, match: (f: Record<string, string>) => boolean): Promise<TracedEntry[]> {
  const raw = (await redis.xrevrange(stream, '+', '-', 'COUNT', scan)) as Array<[string, string[]]>;
  return raw
    .map(([id, f]) => ({ stream, id, fields: fieldsToObject(f) }))
    .filter((e) => match(e.fields))
    .reverse();
}

/**
 * Collects the trace of `planId`.
 * @param scan how many recent entries of each stream to look at (default 5000)
 */
export async function tracePlan(redis: Redis, planId: string, scan = 5000): Promise<PlanTrace> {
  const inPlan = (f: Record<string, string>) => {
    if (f.plan_id === planId) return true;
    if (!f.plan) return false;
    try {
      return (JSON.parse(f.plan) as { plan_id?: unknown }).plan_id === planId;
    } catch {
      return false;
    }
  };
  // an operator's FLATTEN plans have their own stream (they pass every hold and trading state)
  const [submittedA, submittedC, submittedF, results, dlqA, dlqC, dlqF, governor, p33, dedupe] = await Promise.all([
    find(redis, STREAMS.applyPlan, scan, inPlan),
    find(redis, STREAMS.reconcileClose, scan, inPlan),
    find(redis, STREAMS.applyFlatten, scan, inPlan),
    find(redis, STREAMS.applyResult, scan, (f) => f.plan_id === planId),
    find(redis, dlq(STREAMS.applyPlan), scan, inPlan),
    find(redis, dlq(STREAMS.reconcileClose), scan, inPlan),
    find(redis, dlq(STREAMS.applyFlatten), scan, inPlan),
    redis.hgetall(keys.permitGovernor(planId)),
    redis.hgetall(keys.permitP33(planId)),
    redis.get(keys.applyDedupe(planId)),
  ]);
  return { planId, submitted: [...submittedA, ...submittedC, ...submittedF], permits: { governor, p33 }, results, deadLetters: [...dlqA, ...dlqC, ...dlqF], dedupe };
}

/**
 * How a permit compares with the plan entry it names (`entry_id`): ` payload=same` when its `plan_digest`
 * is the digest of that entry's `plan` string, ` payload=DIFFERENT` when not (the apply layer refuses it:
 * `permit_plan_mismatch`), ` payload=unbound` without a digest (refused too); '' when it names no traced entry.
 */
function payloadNote(p: Record<string, string>, submitted: TracedEntry[]): string {
  if (!p.plan_digest) return ' payload=unbound';
  const e = submitted.find((x) => x.id === p.entry_id && x.stream === STREAMS.applyPlan);
  if (!e || e.fields.plan === undefined) return '';
  return planDigest(e.fields.plan) === p.plan_digest ? ' payload=same' : ' payload=DIFFERENT';
}

/** Renders a trace for a person: one line per fact, oldest first (control characters in fields shown escaped). */
export function renderTrace(trace: PlanTrace): string {
  const t = printableDeep(trace);
  const out: string[] = [`plan ${t.planId}`];
  if (t.submitted.length === 0) out.push('  submitted: not found in the recent plan streams');
  for (const e of t.submitted) out.push(`  submitted  ${e.stream} ${e.id}`);
  for (const [name, p] of [['governor', t.permits.governor], ['p33', t.permits.p33]] as const) {
    out.push(
      Object.keys(p).length === 0
        ? `  permit ${name.padEnd(8)} none (never issued, or expired after its 60 s TTL)`
        : `  permit ${name.padEnd(8)} ${p.decision} reason=${p.reason}${p.qty ? ` qty=${p.qty}` : ''}${p.side ? ` side=${p.side}` : ''}${p.context && p.context !== '{}' ? ` context=${p.context}` : ''}${p.entry_id ? ` entry=${p.entry_id}` : ''}${payloadNote(p, t.submitted)}`,
    );
  }
  if (t.dedupe) out.push(`  apply stage ${t.dedupe.split('|')[0]}`);
  if (t.results.length === 0) out.push('  result: none yet');
  for (const r of t.results) {
    const f = r.fields;
    out.push(`  result     ${f.status}${f.reason ? ` reason=${f.reason}` : ''}${f.side ? ` ${f.side}` : ''}${f.filled_qty ? ` filled=${f.filled_qty}` : f.qty ? ` qty=${f.qty}` : ''}${f.order_id ? ` order_id=${f.order_id}` : ''}${f.error ? ` error=${f.error}` : ''}`);
  }
  for (const d of t.deadLetters) out.push(`  DEAD-LETTER ${d.stream} reason=${d.fields.dlq_reason} ${d.fields.dlq_detail ?? ''}`.trimEnd());
  return `${out.join('\n')}\n`;
}
