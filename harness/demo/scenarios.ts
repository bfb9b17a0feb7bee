/**
 * The seeds' real incidents (docs/architecture.md#the-demo), as state injected exactly as the seeds show it, legacy field
 * names included. Each scenario runs on its own symbol so they can play side by side.
 */
import type { Redis } from 'ioredis';
import { STREAMS, keys } from '../../src/adapters/redis/keys.js';

/** What a scenario phase may use to inject its state. */
export interface InjectContext {
  redis: Redis;
  /** Manual trade on the paper exchange (as a person in the exchange's UI); returns the order id. */
  manualTrade(symbol: string, side: 'BUY' | 'SELL', qty: string): Promise<string>;
}

/** A close order the heal is expected to send. */
export interface ExpectedClose {
  side: 'BUY' | 'SELL';
  qty: string;
}

/** One injection and what should follow it. */
export interface ScenarioPhase {
  label: string;
  inject(ctx: InjectContext, symbol: string): Promise<void>;
  /** The RECONCILE_CLOSE order this phase's heal sends, if any. */
  expectedClose: ExpectedClose | null;
  /** How the phase heals: by our close clearing a hold, or by a ledger repair from evidence without a hold. */
  healsBy: 'close' | 'evidence';
}

/** A scenario: its symbol, the exchange position it starts from, and its phases in order. */
export interface ScenarioDef {
  name: string;
  symbol: string;
  title: string;
  /** Signed position the paper exchange starts with (the engine initialises the ledger from it). */
  initialPosition: string;
  phases: ScenarioPhase[];
}

const nowSec = () => Math.floor(Date.now() / 1000);

/** Seed 000: legacy ledger `SELL 0.002` (last_known_amt/last_side) vs exchange `LONG 0.007`, fifty SKIP results. */
export const seed000: ScenarioDef = {
  name: 'seed000',
  symbol: 'BTCUSDT',
  title: 'seed 000: legacy ledger SELL 0.002 vs exchange LONG 0.007 (side mismatch), 50 SKIP results',
  initialPosition: '0.007',
  phases: [
    {
      label: 'legacy ledger last_known_amt=0.002 last_side=SELL; 50 SKIP results',
      expectedClose: { side: 'SELL', qty: '0.007' },
      healsBy: 'close',
      inject: async ({ redis }, sym) => {
        const m = redis.multi().del(keys.ledger(sym));
        m.hset(keys.ledger(sym), { last_known_amt: '0.002', last_side: 'SELL', last_executed_qty: '0.0', updated_at: String(nowSec()) });
        for (let i = 0; i < 50; i++) {
          m.xadd(STREAMS.applyResult, '*', 'plan_id', `seed000-skip-${i}`, 'symbol', sym, 'decision', 'EXECUTE', 'status', 'SKIPPED', 'executed', 'false', 'would_execute', 'false', 'reason', 'seed000_replay', 'dedupe_hit', 'false', 'ts_ms', String(Date.now()));
        }
        await m.exec();
      },
    },
  ],
};

/** Seed 004: legacy ledger `quantum:position:<SYM> ledger_amount 0.002` vs exchange 0.046, then a manual +0.016. */
export const seed004: ScenarioDef = {
  name: 'seed004',
  symbol: 'ETHUSDT',
  title: 'seed 004: legacy ledger_amount 0.002 vs exchange 0.046, then a manual +0.016',
  initialPosition: '0.046',
  phases: [
    {
      label: 'legacy quantum:position:<SYM> ledger_amount=0.002',
      expectedClose: { side: 'SELL', qty: '0.044' },
      healsBy: 'close',
      inject: async ({ redis }, sym) => {
        await redis.multi().del(keys.ledger(sym)).hset(keys.legacyLedger004(sym), 'ledger_amount', '0.002').exec();
      },
    },
    {
      label: 'manual trade BUY 0.016 on the exchange',
      expectedClose: { side: 'SELL', qty: '0.016' },
      healsBy: 'close',
      inject: async (ctx, sym) => {
        await ctx.manualTrade(sym, 'BUY', '0.016');
      },
    },
  ],
};

/** A fill whose ledger update was lost: the exchange moved by our own order, the result stream has the evidence. */
export const lostLedgerUpdate: ScenarioDef = {
  name: 'lost_ledger_update',
  symbol: 'BNBUSDT',
  title: 'a fill whose ledger update was lost: repaired from the apply.result evidence',
  initialPosition: '0.010',
  phases: [
    {
      label: 'our SELL 0.004 filled, result recorded, ledger update lost',
      expectedClose: null,
      healsBy: 'evidence',
      inject: async (ctx, sym) => {
        const orderId = await ctx.manualTrade(sym, 'SELL', '0.004');
        await ctx.redis.xadd(
          STREAMS.applyResult,
          '*',
          ...['plan_id', `lost-ledger-${Date.now()}`, 'symbol', sym, 'decision', 'EXECUTE', 'status', 'EXECUTED', 'executed', 'true', 'would_execute', 'true'],
          ...['side', 'SELL', 'qty', '0.004', 'filled_qty', '0.004', 'avg_price', '', 'order_id', orderId, 'client_order_id', '', 'error', ''],
          ...['dedupe_hit', 'false', 'reason', 'demo_lost_ledger_update', 'ts_ms', String(Date.now())],
        );
      },
    },
  ],
};

/** Every scenario the demo replays, side by side. */
export const SCENARIOS: ScenarioDef[] = [seed000, seed004, lostLedgerUpdate];
