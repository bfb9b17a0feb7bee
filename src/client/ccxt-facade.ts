/**
 * `P3Exchange`: the subset of ccxt's unified API a futures bot uses, over {@link P3Client}, so a bot written
 * for `new ccxt.binanceusdm({...})` trades through the gates by changing its exchange object
 * (`import { P3Exchange } from 'quantum-p3/ccxt'`). docs/plan-format.md#the-ccxt-facade has the mapping.
 *
 * What is supported: `loadMarkets`, `createOrder` for MARKET orders (`reduceOnly` param; `positionSide` only
 * `BOTH`: one-way mode; `clientOrderId` param = the plan id), `fetchOrder` (orders of the result stream),
 * `fetchOpenOrders` (always empty: MARKET orders are final when their result arrives), `fetchPositions`
 * (the net of the gates' executed fills, client.ts `positions`). Not supported, throwing ccxt's `NotSupported`:
 * LIMIT orders (no resting orders exist in the gates yet), `cancelOrder` (nothing rests), `fetchBalance`
 * (the strategy's Redis user reads no balance: the venue journal is not readable by it).
 *
 * Invariants:
 * - Amounts are passed on as exact decimal strings (`String(amount)` of the number a ccxt bot gives); the
 *   gates round down to the lot step. No float arithmetic on positions.
 * - A refused plan throws the ccxt error class of its reason ({@link ccxtErrorFor}), carrying the result as
 *   `p3Result`; nothing was sent then. A timeout throws `RequestTimeout` (the order may still be placed, as
 *   ccxt documents for that class).
 * - An order that would flip a position (a non-reduce-only order against the position, larger than it) is
 *   refused with `InvalidOrder` before any plan: no plan ever flips a position.
 */
import ccxt from 'ccxt';
import { Decimal, parseDecimal } from '../domain/decimal.js';
import { P3Client, type P3ClientOptions } from './client.js';
import { P3AbortError, P3TimeoutError } from './errors.js';
import { HOLD_REASONS, toP3Result, type ExecutedResult, type P3Result } from './result.js';
import type { PlanRequest } from './types.js';

/** A ccxt error class (constructor taking a message). */
type CcxtErrorClass = new (message?: string) => Error;

/** Our refusal reasons by the ccxt error class a bot catches (the documented mapping, docs/plan-format.md#the-ccxt-facade). */
export const CCXT_ERROR_MAPPING: ReadonlyArray<{ error: string; reasons: readonly string[] }> = [
  { error: 'InsufficientFunds', reasons: ['max_position_exceeded', 'max_gross_exceeded', 'max_notional_exceeded'] },
  { error: 'BadSymbol', reasons: ['symbol_not_allowed', 'restricted_symbol'] },
  {
    error: 'InvalidOrder',
    reasons: [
      'qty_below_lot',
      'qty_below_lot_step',
      'below_min_qty',
      'below_min_notional',
      'unresolvable_qty',
      'nothing_to_close',
      'already_flat',
      'side_not_reducing',
      'reduce_only_exceeds_position',
      'position_not_flat',
      'side_conflict',
      'exit_requires_reduce_only',
      'position_changed',
      'unsupported_type',
      'unsupported_decision',
      'invalid_schema',
      'stale_plan',
      'plan_too_old',
      'plan_from_future',
      'price_collar',
      'max_order_qty_exceeded',
      'fat_finger',
    ],
  },
  { error: 'RateLimitExceeded', reasons: ['rate_limit', 'rate_limited', 'rate_limited_global', 'rate_limited_symbol'] },
  { error: 'OperationRejected', reasons: [...HOLD_REASONS, 'trading_state_invalid', 'kill_switch', 'loss_limit', 'fill_throttle', 'reconcile_required_qty_mismatch', 'invalid_ledger', 'missing_ledger'] },
  {
    error: 'ExchangeNotAvailable',
    reasons: [
      'missing_exchange',
      'stale_exchange',
      'invalid_exchange',
      'exchange_unavailable',
      'mark_price_unknown',
      'stale_mark',
      'symbol_rules_unknown',
      'symbol_rules_unavailable',
      'lot_step_unknown',
      'snapshot_unknown',
      'snapshot_older_than_fill',
      'snapshot_superseded',
      'order_in_flight',
      'permit_timeout',
      'exposure_unknown',
      'exposure_contended',
    ],
  },
];

/**
 * The ccxt error for a refused result: by reason ({@link CCXT_ERROR_MAPPING}); `RETRYABLE_RATE_LIMIT` is
 * `RateLimitExceeded`; any other FAILED is `ExchangeError`; an unknown reason `ExchangeError`. The error has
 * `p3Result` set and a message `p3 <STATUS> <reason>: <detail>`.
 */
export function ccxtErrorFor(r: P3Result): Error {
  const table = ccxt as unknown as Record<string, CcxtErrorClass>;
  let name = CCXT_ERROR_MAPPING.find((m) => m.reasons.includes(r.reason))?.error;
  if (!name && r.status === 'FAILED' && r.retryable) name = 'RateLimitExceeded';
  if (!name && r.status === 'REJECTED') name = 'InvalidOrder';
  const Cls = table[name ?? 'ExchangeError'] ?? ccxt.ExchangeError;
  const err = new Cls(`p3 ${r.status} ${r.reason}${r.detail ? `: ${r.detail}` : ''}`);
  (err as Error & { p3Result: P3Result }).p3Result = r;
  return err;
}

/** A ccxt market of a linear USDT perpetual (`BTC/USDT:USDT`, id `BTCUSDT`). */
export interface P3Market {
  id: string;
  symbol: string;
  base: string;
  quote: string;
  settle: string;
  type: 'swap';
  spot: false;
  margin: false;
  swap: true;
  future: false;
  option: false;
  contract: true;
  linear: true;
  inverse: false;
  contractSize: 1;
  active: true;
  precision: Record<string, number | undefined>;
  limits: Record<string, { min?: number; max?: number }>;
  info: Record<string, string>;
}

/** A ccxt order structure (the fields a bot reads). */
export interface P3Order {
  id: string;
  clientOrderId: string;
  timestamp: number;
  datetime: string;
  lastTradeTimestamp: number;
  symbol: string;
  type: 'market';
  timeInForce: undefined;
  side: 'buy' | 'sell';
  reduceOnly: boolean;
  price: number | undefined;
  average: number | undefined;
  amount: number;
  filled: number;
  remaining: number;
  cost: number | undefined;
  status: 'closed';
  fee: undefined;
  trades: [];
  info: Record<string, string>;
}

/** A ccxt position structure (one-way mode). */
export interface P3Position {
  symbol: string;
  side: 'long' | 'short';
  contracts: number;
  contractSize: 1;
  marginMode: 'cross';
  hedged: false;
  timestamp: number;
  datetime: string;
  entryPrice: undefined;
  markPrice: undefined;
  notional: undefined;
  info: Record<string, string | number>;
}

/** Options of {@link P3Exchange}: a client, or the options to make one; the unified symbols it trades. */
export type P3ExchangeOptions = ({ client: P3Client } | P3ClientOptions) & {
  /** Exchange ids (`BTCUSDT`) or unified symbols (`BTC/USDT:USDT`) of the markets (default: from `P3_ALLOWLIST`). */
  symbols?: string[];
};

/** `BTCUSDT` → `BTC/USDT:USDT` (USDT- and USDC-margined linear perpetuals). */
export function unifiedSymbol(id: string): string {
  const m = /^([A-Z0-9]+?)(USDT|USDC)$/.exec(id.toUpperCase());
  if (!m) throw new ccxt.BadSymbol(`p3: ${id} is not a USDT/USDC perpetual id`);
  return `${m[1]}/${m[2]}:${m[2]}`;
}

/** `BTC/USDT:USDT` (or `BTCUSDT`) → `BTCUSDT`. */
export function exchangeId(symbol: string): string {
  const m = /^([A-Z0-9]+)\/([A-Z0-9]+):([A-Z0-9]+)$/.exec(symbol.toUpperCase());
  if (m) {
    if (m[2] !== m[3]) throw new ccxt.BadSymbol(`p3: ${symbol}: only linear perpetuals (quote = settle)`);
    return `${m[1]}${m[2]}`;
  }
  if (/^[A-Z0-9]{2,30}$/.test(symbol.toUpperCase()) && !symbol.includes('/')) return symbol.toUpperCase();
  throw new ccxt.BadSymbol(`p3: unknown symbol ${symbol}`);
}

/** The ccxt-shaped exchange over the gates (see the module comment). */
export class P3Exchange {
  readonly id = 'p3';
  /** The unified methods and whether they are implemented (ccxt's `has`). */
  readonly has: Record<string, boolean> = {
    loadMarkets: true,
    createOrder: true,
    createMarketOrder: true,
    createLimitOrder: false,
    fetchOrder: true,
    fetchOpenOrders: true,
    cancelOrder: false,
    fetchPositions: true,
    fetchBalance: false,
  };
  markets: Record<string, P3Market> = {};
  symbols: string[] = [];
  readonly client: P3Client;
  private readonly ownsClient: boolean;
  private readonly ids: string[];
  private readonly orders = new Map<string, P3Order>();

  constructor(o: P3ExchangeOptions) {
    this.ownsClient = !('client' in o);
    this.client = 'client' in o ? o.client : new P3Client(o);
    const list = o.symbols ?? (process.env.P3_ALLOWLIST ?? '').split(',').filter((s) => s.trim() !== '');
    this.ids = list.map((s) => exchangeId(s.trim()));
  }

  /** The markets of the configured symbols (no exchange request). */
  async loadMarkets(): Promise<Record<string, P3Market>> {
    this.markets = {};
    for (const id of this.ids) {
      const symbol = unifiedSymbol(id);
      const [base, rest] = symbol.split('/') as [string, string];
      const quote = rest.split(':')[0]!;
      this.markets[symbol] = { id, symbol, base, quote, settle: quote, type: 'swap', spot: false, margin: false, swap: true, future: false, option: false, contract: true, linear: true, inverse: false, contractSize: 1, active: true, precision: {}, limits: {}, info: { symbol: id } };
    }
    this.symbols = Object.keys(this.markets).sort();
    return this.markets;
  }

  /** The market of `symbol`. @throws BadSymbol */
  market(symbol: string): P3Market {
    const m = this.markets[symbol] ?? Object.values(this.markets).find((x) => x.id === symbol);
    if (!m) throw new ccxt.BadSymbol(`p3 does not have market symbol ${symbol}`);
    return m;
  }

  /**
   * A MARKET order through the gates, awaited until its result.
   * @param amount base-asset quantity (contracts of size 1)
   * @param params `reduceOnly` (boolean), `positionSide` (`BOTH` only), `clientOrderId` (the plan id)
   * @returns the ccxt order (status `closed`)
   * @throws NotSupported (LIMIT, hedge mode), InvalidOrder (a flip, a bad amount), the mapped error of a refusal, RequestTimeout
   */
  async createOrder(symbol: string, type: string, side: 'buy' | 'sell', amount: number | string, price?: number, params: Record<string, unknown> = {}): Promise<P3Order> {
    if (Object.keys(this.markets).length === 0) await this.loadMarkets();
    const m = this.market(symbol);
    if (type.toLowerCase() !== 'market') throw new ccxt.NotSupported(`p3 createOrder() supports MARKET orders only: ${type} orders need resting orders, which the gates do not support yet`);
    const ps = params.positionSide;
    if (ps !== undefined && String(ps).toUpperCase() !== 'BOTH') throw new ccxt.NotSupported('p3 createOrder() supports one-way mode only (positionSide BOTH)');
    const qty = parseDecimal(String(amount));
    if (qty === null || qty.lte(0)) throw new ccxt.InvalidOrder(`p3 createOrder() amount must be a positive number, got ${amount}`);
    const Side = side.toLowerCase() === 'buy' ? 'BUY' : side.toLowerCase() === 'sell' ? 'SELL' : null;
    if (!Side) throw new ccxt.InvalidOrder(`p3 createOrder() side must be buy or sell, got ${side}`);
    const reduceOnly = params.reduceOnly === true || params.reduceOnly === 'true';
    const planId = typeof params.clientOrderId === 'string' ? params.clientOrderId : undefined;
    const q = qty.toFixed();
    let req: PlanRequest;
    if (reduceOnly) req = { symbol: m.id, action: 'REDUCE', side: Side, qty: q, planId, reason: 'ccxt reduceOnly' };
    else {
      const pos = await this.netPosition(m.id);
      const against = (pos.gt(0) && Side === 'SELL') || (pos.lt(0) && Side === 'BUY');
      if (against && qty.gt(pos.abs())) throw new ccxt.InvalidOrder(`p3 createOrder() would flip the ${m.id} position ${pos.toFixed()}: close it (reduceOnly) and open again`);
      req = against ? { symbol: m.id, action: 'REDUCE', side: Side, qty: q, planId, reason: 'ccxt' } : { symbol: m.id, action: pos.isZero() ? 'OPEN' : 'INCREASE', side: Side, qty: q, planId, reason: 'ccxt' };
    }
    let r = await this.submit(req);
    // the position guess (from the executed fills) was wrong: the one other entry action, as a new plan
    if (r.status === 'DENY' && (r.reason === 'position_not_flat' || r.reason === 'side_conflict') && (req.action === 'OPEN' || req.action === 'INCREASE')) {
      r = await this.submit({ ...req, action: req.action === 'OPEN' ? 'INCREASE' : 'OPEN', planId: planId ? `${planId.slice(0, 60)}.alt` : undefined });
    }
    if (r.status !== 'EXECUTED') throw ccxtErrorFor(r);
    const order = orderOf(r, m.symbol, reduceOnly || req.action === 'REDUCE');
    this.orders.set(order.id, order);
    return order;
  }

  /** `createOrder(symbol, 'market', side, amount, undefined, params)`. */
  createMarketOrder(symbol: string, side: 'buy' | 'sell', amount: number | string, price?: number, params: Record<string, unknown> = {}): Promise<P3Order> {
    return this.createOrder(symbol, 'market', side, amount, price, params);
  }

  /** An order by exchange order id: one this object created, else an EXECUTED result of the result stream. @throws OrderNotFound */
  async fetchOrder(id: string, symbol?: string): Promise<P3Order> {
    const known = this.orders.get(id);
    if (known) return known;
    const found = await this.client.findResult((f) => f.order_id === id && f.status === 'EXECUTED');
    const r = found ? toP3Result(found.entryId, found.fields) : null;
    if (!r || r.status !== 'EXECUTED') throw new ccxt.OrderNotFound(`p3 order ${id} not found`);
    return orderOf(r, symbol ?? unifiedSymbol(r.symbol), r.raw.decision !== 'EXECUTE');
  }

  /** Always `[]`: MARKET orders are final when their result arrives, and the gates have no resting orders yet. */
  async fetchOpenOrders(symbol?: string): Promise<P3Order[]> {
    if (symbol !== undefined) this.market(symbol);
    return [];
  }

  /** @throws NotSupported: no order rests in the gates (MARKET only), so there is nothing to cancel. */
  async cancelOrder(id: string): Promise<never> {
    throw new ccxt.NotSupported(`p3 cancelOrder() is not supported: the gates place MARKET orders only, nothing rests (order ${id})`);
  }

  /** @throws NotSupported: the strategy's Redis user reads no balance (the venue journal is not readable by it). */
  async fetchBalance(): Promise<never> {
    throw new ccxt.NotSupported('p3 fetchBalance() is not supported: the strategy user cannot read the venue balance');
  }

  /** Open positions (one-way mode) from the gates' executed fills, of `symbols` or all. */
  async fetchPositions(symbols?: string[]): Promise<P3Position[]> {
    const want = symbols?.map((s) => exchangeId(s));
    const out: P3Position[] = [];
    for (const p of await this.client.positions()) {
      if (p.side === 'FLAT' || (want && !want.includes(p.symbol))) continue;
      const net = new Decimal(p.netQty);
      out.push({ symbol: unifiedSymbol(p.symbol), side: net.gt(0) ? 'long' : 'short', contracts: net.abs().toNumber(), contractSize: 1, marginMode: 'cross', hedged: false, timestamp: p.lastFillTsMs, datetime: new Date(p.lastFillTsMs).toISOString(), entryPrice: undefined, markPrice: undefined, notional: undefined, info: { ...p } });
    }
    return out;
  }

  /** Closes the client when this object made it. */
  async close(): Promise<void> {
    if (this.ownsClient) await this.client.close();
  }

  private async netPosition(id: string): Promise<Decimal> {
    const p = (await this.client.positions()).find((x) => x.symbol === id);
    return new Decimal(p?.netQty ?? '0');
  }

  private async submit(req: PlanRequest): Promise<P3Result> {
    try {
      return await this.client.submit(req);
    } catch (err) {
      if (err instanceof P3TimeoutError || err instanceof P3AbortError) throw new ccxt.RequestTimeout(`p3 ${err.message}`);
      throw err;
    }
  }
}

/** The ccxt order of an EXECUTED result. */
function orderOf(r: ExecutedResult, symbol: string, reduceOnly: boolean): P3Order {
  const amount = Number(r.qty || r.filledQty);
  const filled = Number(r.filledQty);
  const avg = r.avgPrice ? Number(r.avgPrice) : undefined;
  const cost = avg !== undefined ? new Decimal(r.filledQty).times(r.avgPrice).toNumber() : undefined;
  return {
    id: r.orderId,
    clientOrderId: r.clientOrderId,
    timestamp: r.tsMs,
    datetime: new Date(r.tsMs).toISOString(),
    lastTradeTimestamp: r.tsMs,
    symbol,
    type: 'market',
    timeInForce: undefined,
    side: r.side === 'BUY' ? 'buy' : 'sell',
    reduceOnly,
    price: avg,
    average: avg,
    amount,
    filled,
    remaining: new Decimal(r.qty || r.filledQty).minus(r.filledQty).toNumber(),
    cost,
    status: 'closed',
    fee: undefined,
    trades: [],
    info: r.raw,
  };
}
