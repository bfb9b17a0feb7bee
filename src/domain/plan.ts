/**
 * Plans (docs/architecture.md#plans): the zod schema, canonical JSON and the HMAC-SHA256 `mac` of the producer's key.
 *
 * A stream entry carries `plan` (canonical JSON) and `mac` (hex HMAC-SHA256 of that exact string).
 * Verification is over the string as received, never over a re-serialisation. Keys come from
 * `P3_KEY_<SOURCE>` (docs/architecture.md#interfaces): the plan's `source` upper-cased with every other character as `_`.
 */
import { createHash, createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';
import { z } from 'zod';
import { BASIS_BOUNDS, NOTIONAL_BOUNDS, PLAN_MAX_TS_MS, QTY_BOUNDS, REF_PRICE_BOUNDS, checkPlanDecimal, killScoreProblem, type PlanDecimalBounds } from './plan-numbers.js';

/**
 * Plan actions (docs/architecture.md#plans): the exits of a strategy (a fraction of the current position, or `REDUCE`
 * by a quantity), the entries (`OPEN` from flat, `INCREASE` on the same side) and the engine's
 * RECONCILE_CLOSE. FLATTEN is an operator's plan on its own stream (src/domain/flatten.ts).
 */
export const PLAN_ACTIONS = ['FULL_CLOSE', 'PARTIAL_75', 'PARTIAL_50', 'PARTIAL_25', 'REDUCE', 'OPEN', 'INCREASE', 'RECONCILE_CLOSE'] as const;
/** One of {@link PLAN_ACTIONS}. */
export type PlanAction = (typeof PLAN_ACTIONS)[number];

/** Exit actions sized as a fraction of the current position. */
export type FractionAction = 'FULL_CLOSE' | 'PARTIAL_75' | 'PARTIAL_50' | 'PARTIAL_25';

/** Fraction of the current position each exit action closes (exact decimal strings). */
export const ACTION_FRACTION: Record<FractionAction, string> = {
  FULL_CLOSE: '1',
  PARTIAL_75: '0.75',
  PARTIAL_50: '0.5',
  PARTIAL_25: '0.25',
};

/** Entry actions: orders that open or grow a position, sent with `reduceOnly=false` (docs/architecture.md#plans). */
export const ENTRY_ACTIONS = ['OPEN', 'INCREASE'] as const;
/** One of {@link ENTRY_ACTIONS}. */
export type EntryAction = (typeof ENTRY_ACTIONS)[number];

/** True for OPEN and INCREASE. */
export function isEntryAction(action: string): action is EntryAction {
  return (ENTRY_ACTIONS as readonly string[]).includes(action);
}

/**
 * A bounded plan decimal (src/domain/plan-numbers.ts): a plain-notation string or a finite number, within
 * the field's bounds; carried on as its plain-notation string. Anything else is an issue with the reason.
 */
const boundedDecimal = (b: PlanDecimalBounds) =>
  z.union([z.string(), z.number()]).transform((v, ctx) => {
    const c = checkPlanDecimal(v, b);
    if (!c.ok) {
      ctx.addIssue({ code: 'custom', message: c.reason });
      return z.NEVER;
    }
    return c.value;
  });

/**
 * A plan. `qty` is a base-asset quantity as a decimal string; for EXECUTE exits it may be absent (the
 * permits resolve it from the fresh snapshot). `reduceOnly` is kept as sent (boolean or string) so the
 * RECONCILE_CLOSE guardrails can reject anything but `true` by rule rather than by parse.
 */
const PlanObject = z.object({
  plan_id: z.string().regex(/^[A-Za-z0-9:._-]{1,64}$/, 'plan_id must be 1-64 of [A-Za-z0-9:._-]'),
  symbol: z.string().regex(/^[A-Z0-9]{2,30}$/, 'symbol must be upper-case alphanumerics'),
  /** `FLATTEN`: an operator's plan on `quantum:stream:apply.flatten` (src/domain/flatten.ts). */
  decision: z.enum(['EXECUTE', 'RECONCILE_CLOSE', 'FLATTEN']),
  action: z.string().min(1).max(40),
  side: z.enum(['BUY', 'SELL']).nullable().optional(),
  /** Base-asset quantity: 0 < qty <= 1e9, at most 18 decimals (plan-numbers.ts). */
  qty: boundedDecimal(QTY_BOUNDS).nullable().optional(),
  /** Entries: the size in USD notional (quote), instead of `qty`; the permit sizes qty = notional / mark, rounded down. */
  notional_usd: boundedDecimal(NOTIONAL_BOUNDS).nullable().optional(),
  /**
   * The price the strategy saw when it decided (USD per base unit), for the price collar: an entry is
   * denied `price_collar` when the mark is further from it than `GOVERNOR_PRICE_COLLAR_BPS`
   * (docs/risk-controls.md). Part of the signed payload, so the plan's MAC and every permit's digest cover it.
   */
  ref_price: boundedDecimal(REF_PRICE_BOUNDS).nullable().optional(),
  type: z.string().min(1).max(40).default('MARKET'),
  reduceOnly: z.union([z.boolean(), z.string()]).default(true),
  reason: z.string().max(200).default(''),
  source: z.string().min(1).max(64),
  /** The strategy's score, informational: finite, |score| <= 1e6. */
  kill_score: z
    .number()
    .superRefine((v, ctx) => {
      const problem = killScoreProblem(v);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    })
    .nullable()
    .optional(),
  /** Plan time, epoch ms: an integer in [0, 253402300799999] (up to the year 9999). */
  ts_ms: z.number().int().nonnegative().max(PLAN_MAX_TS_MS, `ts_ms must be <= ${PLAN_MAX_TS_MS}`),
  drift_sig: z.string().max(128).optional(),
  /**
   * RECONCILE_CLOSE: the signed exchange position (base asset) the close was sized from. The apply layer
   * sends the close only while the fresh position is still exactly this one (else SKIPPED close_superseded:
   * the drift changed, a newer close will be sized on the new position).
   */
  basis_amt: z
    .string()
    .transform((v, ctx) => {
      const c = checkPlanDecimal(v, BASIS_BOUNDS);
      if (!c.ok) {
        ctx.addIssue({ code: 'custom', message: c.reason });
        return z.NEVER;
      }
      return c.value;
    })
    .optional(),
});

/** A flag the apply layer reads as reduce-only: exactly the boolean `true` or the string `"true"` (see {@link isReduceOnlyFlag}). */
const flagTrue = (v: unknown) => v === true || v === 'true';
/** The only values that mean "not reduce-only" on an entry: the boolean `false` or the string `"false"`. */
const flagFalse = (v: unknown) => v === false || v === 'false';
const given = (v: unknown) => v !== null && v !== undefined;

/**
 * The action rules of docs/architecture.md#plans for EXECUTE plans (a plan breaking them is invalid: dead-lettered with the
 * reason, never decided): exits (FULL_CLOSE, PARTIAL_*) and REDUCE are reduce-only; REDUCE needs `qty`;
 * OPEN/INCREASE are `reduceOnly` false, need `side`, and exactly one of `qty` or `notional_usd`; only entries
 * may carry `notional_usd`. The action must be one of {@link PLAN_ACTIONS} (RECONCILE_CLOSE only with its decision).
 */
export const PlanSchema = PlanObject.superRefine((p, ctx) => {
  const issue = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
  if (p.decision !== 'EXECUTE') return;
  if (!(PLAN_ACTIONS as readonly string[]).includes(p.action)) return issue('action', `unknown action ${p.action} (one of ${PLAN_ACTIONS.join(', ')})`);
  // RECONCILE_CLOSE under the wrong decision is left to the close guardrails (rule `decision`) and the
  // permits (DENY unsupported), which name it; it is never an entry
  if (p.action === 'RECONCILE_CLOSE') return;
  if (isEntryAction(p.action)) {
    if (!flagFalse(p.reduceOnly)) return issue('reduceOnly', `${p.action} is an entry: reduceOnly must be false`);
    if (!p.side) return issue('side', `${p.action} needs side BUY or SELL`);
    if (given(p.qty) === given(p.notional_usd)) return issue('qty', `${p.action} needs exactly one of qty or notional_usd`);
    return;
  }
  if (!flagTrue(p.reduceOnly)) return issue('reduceOnly', `${p.action} is an exit: reduceOnly must be true`);
  if (given(p.notional_usd)) return issue('notional_usd', `notional_usd is for entries only (OPEN, INCREASE), not ${p.action}`);
  if (p.action === 'REDUCE' && !given(p.qty)) return issue('qty', 'REDUCE needs qty');
});
/** A validated plan (output of {@link PlanSchema}). */
export type Plan = z.infer<typeof PlanSchema>;
/** Input shape of a plan before defaults are applied. */
export type PlanInput = z.input<typeof PlanSchema>;

/**
 * The ONE reading of a plan's `reduceOnly` flag, shared by the governor, the position brain and the apply
 * layer (so a permit can never be sized as reduce-only for an order sent without the flag): only the
 * boolean `true` or the exact string `"true"` mean reduce-only; anything else (`"TRUE"`, `" true"`, `1`) does not.
 */
export function isReduceOnlyFlag(v: unknown): boolean {
  return v === true || v === 'true';
}

/** JSON with object keys sorted recursively and no whitespace: the exact string that is signed. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const parts = Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`);
  return `{${parts.join(',')}}`;
}

/** Environment variable holding the key of `source`: `exit_brain` → `P3_KEY_EXIT_BRAIN`, `p3.4` → `P3_KEY_P3_4`. */
export function keyEnvName(source: string): string {
  return `P3_KEY_${source.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
}

/** Secret-key objects of the keys in use (a handful: one per source and issuer), made once each. */
const keyObjects = new Map<string, KeyObject>();

/** Hex HMAC-SHA256 of `payload` with `key` (the key's secret-key object is made once and reused). */
export function hmacHex(key: string, payload: string): string {
  let k = keyObjects.get(key);
  if (!k) {
    if (keyObjects.size >= 64) keyObjects.clear();
    keyObjects.set(key, (k = createSecretKey(Buffer.from(key, 'utf8'))));
  }
  return createHmac('sha256', k).update(payload).digest('hex');
}

/**
 * Digest of a plan's payload, signed into every permit so a permit authorises exactly one plan content:
 * lower-case hex SHA-256 of the UTF-8 bytes of `planJson`, the stream entry's exact `plan` field (the same
 * string the producer's `mac` covers, never a re-serialisation: any byte of difference, key order and
 * whitespace included, is another payload). 64 hex characters.
 * @param planJson the entry's `plan` field as received
 */
export function planDigest(planJson: string): string {
  return createHash('sha256').update(planJson, 'utf8').digest('hex');
}

/** Stream entry fields of a signed plan: `{plan, mac}`. */
export interface SignedPlanFields {
  plan: string;
  mac: string;
}

/**
 * Validates and signs a plan for a stream entry.
 * @throws ZodError when the plan is malformed
 */
export function signPlan(plan: PlanInput, key: string): SignedPlanFields {
  const parsed = PlanSchema.parse(plan);
  const payload = canonicalJson(parsed);
  return { plan: payload, mac: hmacHex(key, payload) };
}

/** Why a plan entry was refused (the DLQ reason). */
export type PlanRejectReason = 'malformed' | 'too_large' | 'unknown_source' | 'bad_mac' | 'invalid_schema';

/**
 * Largest plan entry accepted, bytes: the `plan` field's UTF-8 length plus every other field's name and value.
 * A plan is a few hundred bytes; anything near this is not one of ours, and is refused before it is parsed
 * (an unbounded JSON.parse of writer-chosen input would let any writer of the stream stall a consumer).
 */
export const MAX_PLAN_ENTRY_BYTES = 8192;

/** True when an entry's fields are larger than {@link MAX_PLAN_ENTRY_BYTES} (checked before anything parses them). */
export function planEntryTooLarge(fields: Record<string, string>): boolean {
  let n = 0;
  for (const [k, v] of Object.entries(fields)) {
    n += Buffer.byteLength(k) + Buffer.byteLength(typeof v === 'string' ? v : '');
    if (n > MAX_PLAN_ENTRY_BYTES) return true;
  }
  return false;
}

/**
 * Outcome of {@link verifyPlanEntry}. A refusal carries `planId` only when the MAC verified (reason
 * `invalid_schema`): only an authentic plan may ever get a result under its plan id, so an entry anyone could
 * have written never makes the apply layer publish a result for a plan id (and symbol) its writer chose.
 */
export type PlanVerification = { ok: true; plan: Plan; raw: Record<string, unknown> } | { ok: false; reason: PlanRejectReason; detail: string; planId?: string };

/**
 * Verifies a stream entry: JSON, known source, MAC over the exact string, schema.
 * @param fields the entry's fields (`plan`, `mac`)
 * @param keyFor returns the key of a source, or undefined when the source is unknown
 */
export function verifyPlanEntry(fields: Record<string, string>, keyFor: (source: string) => string | undefined): PlanVerification {
  const payload = fields.plan;
  const mac = fields.mac;
  if (typeof payload !== 'string' || payload === '') return { ok: false, reason: 'malformed', detail: 'no plan field' };
  if (planEntryTooLarge(fields)) return { ok: false, reason: 'too_large', detail: `entry larger than ${MAX_PLAN_ENTRY_BYTES} bytes` };
  let raw: unknown;
  try {
    raw = JSON.parse(payload);
  } catch {
    return { ok: false, reason: 'malformed', detail: 'plan is not JSON' };
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return { ok: false, reason: 'malformed', detail: 'plan is not an object' };
  const obj = raw as Record<string, unknown>;
  const planId = typeof obj.plan_id === 'string' ? obj.plan_id : undefined;
  const source = obj.source;
  if (typeof source !== 'string' || source === '') return { ok: false, reason: 'unknown_source', detail: 'no source' };
  const key = keyFor(source);
  if (!key) return { ok: false, reason: 'unknown_source', detail: `no key for source ${source} (${keyEnvName(source)})` };
  if (typeof mac !== 'string' || !/^[0-9a-f]{64}$/i.test(mac)) return { ok: false, reason: 'bad_mac', detail: 'mac missing or not hex' };
  const expected = Buffer.from(hmacHex(key, payload), 'hex');
  const given = Buffer.from(mac.toLowerCase(), 'hex');
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) return { ok: false, reason: 'bad_mac', detail: 'mac does not verify' };
  const parsed = PlanSchema.safeParse(obj);
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    return { ok: false, reason: 'invalid_schema', detail: `${i?.path.join('.')}: ${i?.message}`, planId };
  }
  return { ok: true, plan: parsed.data, raw: obj };
}

/**
 * Partition of a plan entry (the plan stream, the RECONCILE_CLOSE stream) for a partitioned `StreamConsumer`:
 * its plan's symbol as written (`?` when unreadable: such entries are only dead-lettered or rejected). Entries
 * of one symbol are handled one at a time in stream order, different symbols concurrently.
 */
export function planPartition(entry: { fields: Record<string, string> }): string {
  try {
    const o = JSON.parse(entry.fields.plan ?? '') as { symbol?: unknown };
    return typeof o?.symbol === 'string' ? o.symbol : '?';
  } catch {
    return '?';
  }
}

/**
 * Keys that sign permits, never plans (docs/architecture.md#least-privilege-and-signed-permits): a plan whose source maps to one of these variables
 * (`governor`, `p33`) is from an unknown source, so a permit key can never approve a plan it signed itself.
 */
export const PERMIT_KEY_ENVS: readonly string[] = ['P3_KEY_GOVERNOR', 'P3_KEY_P33'];

/** Key lookup from the environment: `P3_KEY_<SOURCE>` (never a permit key, see {@link PERMIT_KEY_ENVS}). */
export function envKeyLookup(env: Record<string, string | undefined>): (source: string) => string | undefined {
  return (source) => {
    const name = keyEnvName(source);
    if (PERMIT_KEY_ENVS.includes(name)) return undefined;
    const v = env[name];
    return v && v.length > 0 ? v : undefined;
  };
}
