/**
 * The console's actions, validated with zod and carried out by the same functions as the CLI:
 * hold set/clear (`p3 hold`), ledger set with the snapshot refusal (`p3 ledger set`), trading state
 * (`p3 trading-state set`), flatten (`p3 flatten`). Every action names who (`X-P3-Operator` header or `operator` field) and why
 * (`reason`), and is recorded as an event with `by=console:<operator>` and `via=console`.
 *
 * Invariants:
 * - a bad body is a 400 with a sentence naming the field; nothing is written;
 * - a ledger amount that disagrees with the fresh snapshot is a 409 unless `force` is true AND `confirm`
 *   repeats the symbol (the page asks the operator to type it);
 * - a symbol outside the configured allowlist is refused (400), as every service would ignore it; with no
 *   allowlist, a symbol Redis knows nothing of is refused too (a typo);
 * - a reason with control characters is refused (400; src/domain/operator-text.ts).
 * - a flatten needs `P3_KEY_OPERATOR` where the console runs (it signs the FLATTEN plans) and `confirm`
 *   repeating what is flattened (the symbols joined by commas, or `ALL`).
 */
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { parseDecimal } from '../domain/decimal.js';
import { TRADING_STATES } from '../domain/governor.js';
import { MAX_OPERATOR_TEXT, operatorTextProblem } from '../domain/operator-text.js';
import { submitFlatten } from '../plans/flatten.js';
import { setTradingState } from '../services/governor/trading-state.js';
import { clearHold, LedgerRefusedError, setLedgerByOperator, setOperatorHold } from '../services/reconcile-engine/operator.js';
import type { ConsoleConfig } from './config.js';
import { consoleSymbols } from '../read-model/console.js';

/** What an action answers: HTTP status and JSON body. */
export interface ActionReply {
  status: number;
  body: Record<string, unknown>;
}

const SYMBOL = /^[A-Z0-9]{2,30}$/;
const operatorName = z.string().trim().regex(/^[A-Za-z0-9._@-]{1,64}$/, 'operator must be 1-64 of A-Z a-z 0-9 . _ @ -');
const reason = z
  .string()
  .trim()
  .min(1, 'reason is required (why, for the audit trail)')
  .max(MAX_OPERATOR_TEXT, `reason must be at most ${MAX_OPERATOR_TEXT} characters`)
  .superRefine((s, ctx) => {
    const problem = operatorTextProblem(s);
    if (problem) ctx.addIssue({ code: 'custom', message: `reason ${problem}` });
  });

/** `POST /api/holds/:symbol` body. */
export const HoldSetBody = z.strictObject({ reason, ttl_sec: z.number().int('ttl_sec must be an integer').min(1).max(86_400 * 7).optional(), operator: operatorName.optional() });
/** `DELETE /api/holds/:symbol` body. */
export const HoldClearBody = z.strictObject({ reason, operator: operatorName.optional() });
/** `POST /api/ledger/:symbol` body: `amount` is a signed decimal string (base asset; -0.002 is short). */
export const LedgerSetBody = z.strictObject({
  amount: z.string().refine((s) => parseDecimal(s) !== null, 'amount must be a signed decimal string like "0.007" or "-0.002"'),
  reason,
  force: z.boolean().optional(),
  confirm: z.string().optional(),
  operator: operatorName.optional(),
});
/** `POST /api/trading-state` body: `symbol` omitted = global. */
export const TradingStateBody = z.strictObject({
  state: z.enum(TRADING_STATES, { message: `state must be one of ${TRADING_STATES.join(', ')}` }),
  symbol: z.string().optional(),
  reason,
  operator: operatorName.optional(),
});

/** `POST /api/flatten` body: `symbols` or `all: true`; `confirm` repeats the symbols (comma-joined) or `ALL`. */
export const FlattenBody = z.strictObject({
  symbols: z.array(z.string()).min(1, 'symbols must name at least one symbol').max(100).optional(),
  all: z.boolean().optional(),
  reason,
  confirm: z.string(),
  operator: operatorName.optional(),
});

const bad = (message: string): ActionReply => ({ status: 400, body: { error: 'bad_request', message } });

/** Parses a body with `schema`; a 400 reply naming the first problem otherwise. */
export function parseBody<T>(schema: z.ZodType<T>, body: unknown): { ok: true; value: T } | { ok: false; reply: ActionReply } {
  if (body === undefined || body === null || typeof body !== 'object') return { ok: false, reply: bad('the body must be a JSON object (Content-Type: application/json)') };
  const r = schema.safeParse(body);
  if (r.success) return { ok: true, value: r.data };
  const issue = r.error.issues[0];
  const field = issue?.path.length ? `${issue.path.join('.')}: ` : '';
  return { ok: false, reply: bad(`${field}${issue?.message ?? 'invalid body'}`) };
}

/** Validates a symbol path parameter against the syntax and the allowlist. */
export function checkSymbol(raw: string, cfg: Pick<ConsoleConfig, 'symbols'>): { ok: true; symbol: string } | { ok: false; reply: ActionReply } {
  const symbol = raw.trim().toUpperCase();
  if (!SYMBOL.test(symbol)) return { ok: false, reply: bad(`bad symbol ${JSON.stringify(raw)}: upper-case letters and digits, like BTCUSDT`) };
  if (cfg.symbols.length > 0 && !cfg.symbols.includes(symbol)) return { ok: false, reply: bad(`${symbol} is not in the allowlist (${cfg.symbols.join(',')})`) };
  return { ok: true, symbol };
}

/**
 * With no allowlist configured, a symbol must at least be known in Redis (a state, snapshot, hold or
 * ledger): a typo (`BTCUSTD`) would otherwise be held or halted while the real symbol keeps trading.
 * With an allowlist, {@link checkSymbol} already decided.
 */
export async function checkKnownSymbol(redis: Redis, cfg: Pick<ConsoleConfig, 'symbols'>, symbol: string): Promise<ActionReply | null> {
  if (cfg.symbols.length > 0) return null;
  if ((await consoleSymbols(redis, [])).includes(symbol)) return null;
  return bad(`${symbol} is unknown here: no allowlist is configured (P3_ALLOWLIST) and Redis has no state, snapshot, hold or ledger of it; check the spelling`);
}

/** Who did it: the `X-P3-Operator` header, else the body's `operator`; a 400 when neither is valid. */
export function operatorOf(header: string | string[] | undefined, fromBody: string | undefined): { ok: true; by: string } | { ok: false; reply: ActionReply } {
  const raw = (Array.isArray(header) ? header[0] : header) ?? fromBody;
  if (raw === undefined || raw.trim() === '') return { ok: false, reply: bad('who is acting? send the header X-P3-Operator: <name> (or "operator" in the body)') };
  const r = operatorName.safeParse(raw);
  if (!r.success) return { ok: false, reply: bad(r.error.issues[0]?.message ?? 'bad operator') };
  return { ok: true, by: `console:${r.data}` };
}

const VIA = { via: 'console' };

/** Sets an operator hold. */
export async function holdSet(redis: Redis, cfg: ConsoleConfig, symbol: string, by: string, b: z.infer<typeof HoldSetBody>): Promise<ActionReply> {
  const ttlSec = b.ttl_sec ?? cfg.holdTtlSec;
  await setOperatorHold(redis, { symbol, ttlSec, reason: b.reason, by, extra: VIA });
  return { status: 200, body: { ok: true, symbol, hold: { owner: 'operator', reason: b.reason, ttl_sec: ttlSec }, by, message: `hold set on ${symbol} for ${ttlSec}s: every plan of ${symbol} is denied until it ends` } };
}

/** Clears a hold (engine's or operator's). */
export async function holdClear(redis: Redis, symbol: string, by: string, b: z.infer<typeof HoldClearBody>): Promise<ActionReply> {
  const out = await clearHold(redis, { symbol, by, reason: b.reason, extra: VIA });
  const note = out.engineHold ? `; the engine's last verdict is ${out.engineHold.status} ${out.engineHold.reason}: unless that is fixed it holds again within one cadence` : '';
  return { status: 200, body: { ok: true, symbol, existed: out.existed, by, message: `${out.existed ? `hold cleared on ${symbol}` : `no hold on ${symbol}`}${note}` } };
}

/** Sets the ledger, with `p3 ledger set`'s refusal and a typed confirmation for `force`. */
export async function ledgerSet(redis: Redis, symbol: string, by: string, b: z.infer<typeof LedgerSetBody>): Promise<ActionReply> {
  if (b.force && b.confirm !== symbol) return bad(`force needs confirm: "${symbol}" (type the symbol to confirm that ${b.amount} is what the system holds)`);
  try {
    const out = await setLedgerByOperator(redis, { symbol, amount: parseDecimal(b.amount)!, reason: b.reason, by, force: Boolean(b.force), extra: VIA });
    return {
      status: 200,
      body: { ok: true, symbol, old: out.old, amount: out.amount, version: out.version, by, ...(out.check.kind === 'agrees' ? {} : { warning: out.check.message }), message: `ledger ${symbol}: ${out.old} -> ${out.amount} (version ${out.version}, source operator)` },
    };
  } catch (err) {
    if (err instanceof LedgerRefusedError) {
      return { status: 409, body: { error: 'ledger_disagrees', message: err.message.replace('repeat with --force', 'force it (typing the symbol to confirm)'), needs_confirm: symbol } };
    }
    throw err;
  }
}

/** Sets the global or a symbol's trading state. */
export async function tradingStateSet(redis: Redis, cfg: ConsoleConfig, by: string, b: z.infer<typeof TradingStateBody>): Promise<ActionReply> {
  let symbol: string | undefined;
  if (b.symbol !== undefined && b.symbol !== '' && b.symbol.toLowerCase() !== 'global') {
    const s = checkSymbol(b.symbol, cfg);
    if (!s.ok) return s.reply;
    symbol = s.symbol;
    const unknown = await checkKnownSymbol(redis, cfg, symbol);
    if (unknown) return unknown;
  }
  await setTradingState(redis, { symbol, state: b.state, reason: b.reason, by });
  return { status: 200, body: { ok: true, scope: symbol ?? 'global', state: b.state, by, message: `${symbol ?? 'global'} trading state: ${b.state}` } };
}

/** Submits FLATTEN plans (closing whole positions now, in every trading state and under any hold). */
export async function flatten(redis: Redis, cfg: ConsoleConfig, by: string, b: z.infer<typeof FlattenBody>): Promise<ActionReply> {
  if (cfg.operatorKey === null) {
    return { status: 403, body: { error: 'flatten_unavailable', message: 'flatten needs P3_KEY_OPERATOR where `p3 console` runs (the key the apply layer verifies FLATTEN plans with)' } };
  }
  if (Boolean(b.all) === (b.symbols !== undefined)) return bad('give either symbols: ["BTCUSDT", ...] or all: true');
  const targets: string[] = [];
  for (const raw of b.all ? await consoleSymbols(redis, cfg.symbols) : (b.symbols ?? [])) {
    const s = checkSymbol(raw, cfg);
    if (!s.ok) return s.reply;
    const unknown = b.all ? null : await checkKnownSymbol(redis, cfg, s.symbol);
    if (unknown) return unknown;
    if (!targets.includes(s.symbol)) targets.push(s.symbol);
  }
  if (targets.length === 0) return bad('no symbols to flatten');
  const expected = b.all ? 'ALL' : targets.join(',');
  if (b.confirm.trim().toUpperCase() !== expected) return bad(`confirm must be "${expected}" (type what you flatten: every position named is closed at market now)`);
  const plans: Array<{ symbol: string; plan_id: string }> = [];
  for (const symbol of targets) {
    const { planId } = await submitFlatten(redis, { symbol, reason: b.reason, by, nowMs: Date.now() }, cfg.operatorKey);
    plans.push({ symbol, plan_id: planId });
  }
  return { status: 200, body: { ok: true, plans, by, message: `FLATTEN submitted for ${targets.join(', ')}: follow the results in the timeline or on each plan's page` } };
}
