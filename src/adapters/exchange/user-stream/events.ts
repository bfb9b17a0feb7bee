/**
 * Parsing of Binance USDⓈ-M user data stream messages (pure, no I/O).
 *
 * Shapes (Binance "User Data Streams", developers.binance.com/docs/derivatives/usds-margined-futures/user-data-streams):
 * - `ACCOUNT_UPDATE` ("Event: Balance and Position Update"): `{e, E, T, a: {m, B: [...], P: [{s, pa, ep, bep,
 *   cr, up, mt, iw, ps}]}}`; `P` holds only the positions that changed; in one-way mode the leg is `ps: "BOTH"`
 *   and a full close arrives as `pa: "0"`.
 * - `ORDER_TRADE_UPDATE` ("Event: Order Update"): `{e, E, T, o: {s, c, S, o, q, ap, x, X, i, l, z, L, T, R, ps, ...}}`.
 * - `listenKeyExpired` ("Event: User Data Stream Expired"): `{e, E, listenKey?}`, `E` a number or a numeric string.
 * Any other event name (`MARGIN_CALL`, `ACCOUNT_CONFIG_UPDATE`, `TRADE_LITE`, ...) is `other`.
 *
 * Invariants:
 * - Fail closed: a message that is not JSON, lacks a required field, or carries an unparseable decimal or
 *   time is `{ok: false}` — never a position, never "flat". Amounts are exact decimals (never floats).
 * - The position side is reported as sent; deciding whether it is served (only `BOTH`) is the caller's job.
 */
import { z } from 'zod';
import { parseDecimal, type Decimal } from '../../../domain/decimal.js';

/** One position leg of an ACCOUNT_UPDATE. */
export interface StreamPosition {
  symbol: string;
  /** Signed base-asset amount (`pa`). */
  amount: Decimal;
  /** Entry price (`ep`), null when unparseable or absent. */
  entryPrice: Decimal | null;
  /** `ps`: `BOTH` in one-way mode, `LONG`/`SHORT` in hedge mode. */
  positionSide: string;
}

/** An order change of an ORDER_TRADE_UPDATE. */
export interface StreamOrder {
  symbol: string;
  clientOrderId: string;
  orderId: string;
  side: string;
  /** Execution type `x` (NEW, TRADE, CANCELED, EXPIRED, CALCULATED, AMENDMENT). */
  execType: string;
  /** Order status `X` (NEW, PARTIALLY_FILLED, FILLED, ...). */
  status: string;
  /** Last filled quantity `l`, base asset. */
  lastQty: Decimal;
  /** Accumulated filled quantity `z`, base asset. */
  filledQty: Decimal;
  reduceOnly: boolean;
  positionSide: string;
  /** Trade time `o.T`, exchange clock, epoch ms. */
  tradeTimeMs: number | null;
  /** Trade id `t` ('' when absent or 0: not a trade). */
  tradeId: string;
  /** Last filled price `L` (null when absent or unparseable). */
  lastPrice: Decimal | null;
  /** Realized profit of the trade `rp`, quote asset (null when absent). */
  realizedPnl: Decimal | null;
  /** Commission `n` (null when absent) and its asset `N` ('' when absent). */
  commission: Decimal | null;
  commissionAsset: string;
  /** Order type `o` (MARKET, LIMIT, LIQUIDATION, ...), '' when absent. */
  orderType: string;
}

/** A parsed user data stream event. Times are the EXCHANGE's clock, epoch ms. */
export type UserStreamEvent =
  | { type: 'ACCOUNT_UPDATE'; eventTimeMs: number; txTimeMs: number; reason: string; positions: StreamPosition[] }
  | { type: 'ORDER_TRADE_UPDATE'; eventTimeMs: number; txTimeMs: number; order: StreamOrder }
  | { type: 'listenKeyExpired'; eventTimeMs: number; listenKey: string | null }
  | { type: 'other'; name: string; eventTimeMs: number | null };

/** Result of {@link parseUserStreamMessage}. */
export type ParsedMessage = { ok: true; event: UserStreamEvent } | { ok: false; error: string };

const time = z.union([z.number().int().nonnegative(), z.string().regex(/^\d{1,16}$/).transform(Number)]);
const dec = z.string().refine((s) => parseDecimal(s) !== null, 'not a decimal');
const id = z.union([z.string(), z.number()]).transform(String);

const AccountUpdate = z.object({
  e: z.literal('ACCOUNT_UPDATE'),
  E: time,
  T: time,
  a: z.object({
    m: z.string(),
    P: z.array(z.object({ s: z.string().min(1), pa: dec, ep: z.string().optional(), ps: z.string().min(1) }).passthrough()),
  }).passthrough(),
}).passthrough();

const OrderUpdate = z.object({
  e: z.literal('ORDER_TRADE_UPDATE'),
  E: time,
  T: time,
  o: z.object({
    s: z.string().min(1),
    c: z.string(),
    S: z.string(),
    x: z.string(),
    X: z.string(),
    i: id,
    l: dec,
    z: dec,
    T: time.optional(),
    R: z.boolean().optional(),
    ps: z.string().optional(),
    t: id.optional(),
    L: z.string().optional(),
    rp: z.string().optional(),
    n: z.string().optional(),
    N: z.string().nullable().optional(),
    o: z.string().optional(),
  }).passthrough(),
}).passthrough();

/** An optional decimal field: null when absent or unparseable (informational fields never fail a message). */
const optDec = (v: string | undefined): Decimal | null => (v === undefined ? null : parseDecimal(v));

const Expired = z.object({ e: z.literal('listenKeyExpired'), E: time, listenKey: z.string().optional() }).passthrough();

/**
 * Parses one text frame of the user data stream.
 * @returns the typed event, or `{ok: false, error}` for anything unparseable (never throws)
 */
export function parseUserStreamMessage(text: string): ParsedMessage {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { ok: false, error: `not JSON: ${text.slice(0, 120)}` };
  }
  const name = (raw as { e?: unknown } | null)?.e;
  if (typeof name !== 'string') return { ok: false, error: `no event type: ${text.slice(0, 120)}` };
  const issues = (err: z.ZodError) => `${name}: ${err.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`;
  if (name === 'ACCOUNT_UPDATE') {
    const r = AccountUpdate.safeParse(raw);
    if (!r.success) return { ok: false, error: issues(r.error) };
    const positions = r.data.a.P.map((p) => ({ symbol: p.s.toUpperCase(), amount: parseDecimal(p.pa) as Decimal, entryPrice: p.ep === undefined ? null : parseDecimal(p.ep), positionSide: p.ps }));
    return { ok: true, event: { type: 'ACCOUNT_UPDATE', eventTimeMs: r.data.E, txTimeMs: r.data.T, reason: r.data.a.m, positions } };
  }
  if (name === 'ORDER_TRADE_UPDATE') {
    const r = OrderUpdate.safeParse(raw);
    if (!r.success) return { ok: false, error: issues(r.error) };
    const o = r.data.o;
    return {
      ok: true,
      event: {
        type: 'ORDER_TRADE_UPDATE',
        eventTimeMs: r.data.E,
        txTimeMs: r.data.T,
        order: { symbol: o.s.toUpperCase(), clientOrderId: o.c, orderId: o.i, side: o.S, execType: o.x, status: o.X, lastQty: parseDecimal(o.l) as Decimal, filledQty: parseDecimal(o.z) as Decimal, reduceOnly: o.R === true, positionSide: o.ps ?? 'BOTH', tradeTimeMs: o.T ?? null,
          tradeId: o.t === undefined || o.t === '0' ? '' : o.t, lastPrice: optDec(o.L), realizedPnl: optDec(o.rp), commission: optDec(o.n), commissionAsset: o.N ?? '', orderType: o.o ?? '' },
      },
    };
  }
  if (name === 'listenKeyExpired') {
    const r = Expired.safeParse(raw);
    if (!r.success) return { ok: false, error: issues(r.error) };
    return { ok: true, event: { type: 'listenKeyExpired', eventTimeMs: r.data.E, listenKey: r.data.listenKey ?? null } };
  }
  const E = time.safeParse((raw as { E?: unknown }).E);
  return { ok: true, event: { type: 'other', name, eventTimeMs: E.success ? E.data : null } };
}
