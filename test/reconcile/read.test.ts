/**
 * `readPass` (one `reconcileRead-10.lua` call per symbol inside the pass's MULTI) reads exactly
 * what the ten commands per symbol it replaced read: property test against that reference over random
 * states — every key missing, well-formed, or of the wrong type (a corrupt key stays that symbol's error) —
 * and a script cache flushed under the open connection.
 */
import fc from 'fast-check';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedis } from '../../src/adapters/redis/client.js';
import { STREAMS, keys } from '../../src/adapters/redis/keys.js';
import { fieldsToObject } from '../../src/adapters/redis/consumer.js';
import { EVIDENCE_LOOKBACK } from '../../src/domain/reconcile-evidence.js';
import { readPass, type PassReads, type SymbolReads } from '../../src/services/reconcile-engine/store.js';
import { startTestRedis, type TestRedis } from '../helpers/redis.js';

let srv: TestRedis;
let redis: Redis;
beforeAll(async () => {
  srv = await startTestRedis();
  redis = createRedis(srv.url, { name: 'read-test' });
});
afterAll(async () => {
  redis.disconnect();
  await srv.stop();
});

/** The read as it was before reconcileRead-10.lua: ten commands per symbol in one MULTI (the reference). */
async function referenceRead(symbols: string[]): Promise<PassReads> {
  const m = redis.multi();
  for (const s of symbols) {
    m.hgetall(keys.snapshot(s)).hgetall(keys.ledger(s)).hgetall(keys.legacyLedger004(s)).get(keys.hold(s)).get(keys.holdReason(s)).get(keys.holdSig(s)).hgetall(keys.applyInflight(s)).hget(keys.reconcileState(s), 'last_fix_ts_ms').get(keys.lastFill(s)).hgetall(keys.tradingState(s));
  }
  m.xrevrange(STREAMS.applyResult, '+', '-', 'COUNT', EVIDENCE_LOOKBACK);
  m.hgetall(keys.tradingState());
  const res = (await m.exec()) ?? [];
  const soft = <T>(i: number, fallback: T): { v: T; err: string | null } => {
    const [err, v] = res[i] as [Error | null, unknown];
    return err ? { v: fallback, err: err.message } : { v: v as T, err: null };
  };
  const out: SymbolReads[] = symbols.map((symbol, k) => {
    const b = k * 10;
    const snap = soft<Record<string, string>>(b, {});
    const led = soft<Record<string, string>>(b + 1, {});
    const leg = soft<Record<string, string>>(b + 2, {});
    const hold = soft<string | null>(b + 3, null);
    const reason = soft<string | null>(b + 4, null);
    const sig = soft<string | null>(b + 5, null);
    const fix = soft<string | null>(b + 7, null).v;
    const lastFill = soft<string | null>(b + 8, null).v;
    const ts = soft<Record<string, string> | null>(b + 9, null);
    return {
      symbol,
      snapshotRaw: snap.v,
      ledgerRaw: led.v,
      legacyRaw: leg.v,
      hold: hold.v,
      holdReason: reason.v,
      holdSig: sig.v,
      inflight: soft<Record<string, string>>(b + 6, {}).v,
      lastFixTsMs: fix !== null && /^\d+$/.test(fix) ? Number(fix) : null,
      snapshotError: snap.err,
      ledgerError: led.err ?? leg.err,
      holdError: hold.err ?? reason.err ?? sig.err,
      lastFillTsMs: lastFill !== null && /^\d+$/.test(lastFill) ? Number(lastFill) : null,
      lastFillRaw: lastFill ?? '',
      tradingStateRaw: ts.err ? null : ts.v,
    };
  });
  const [, results] = res[symbols.length * 10] as [Error | null, Array<[string, string[]]>];
  const [gErr, g] = res[symbols.length * 10 + 1] as [Error | null, Record<string, string>];
  return { symbols: out, results: results.map(([id, f]) => ({ id, fields: fieldsToObject(f) })), globalTradingStateRaw: gErr ? null : g };
}

/** What a key holds in a generated state: nothing, a value of its own type, or a value of the wrong type. */
type Slot = { kind: 'missing' } | { kind: 'hash'; fields: Record<string, string> } | { kind: 'string'; value: string } | { kind: 'list' };

const text = fc.oneof(fc.constantFrom('', '0', '0.007', '-1', '1795796160123', 'LONG', 'x y', 'é'), fc.string({ maxLength: 8 }));
const hashSlot = fc.dictionary(fc.constantFrom('position_amt', 'side', 'ts_ms', 'ts_epoch', 'ledger_amt', 'version', 'last_fix_ts_ms', 'state', 'cid1', 'other'), text, { minKeys: 1, maxKeys: 4 });
const slotFor = (own: 'hash' | 'string'): fc.Arbitrary<Slot> =>
  fc.oneof(
    { weight: 2, arbitrary: fc.constant<Slot>({ kind: 'missing' }) },
    { weight: 4, arbitrary: own === 'hash' ? hashSlot.map((fields): Slot => ({ kind: 'hash', fields })) : text.map((value): Slot => ({ kind: 'string', value })) },
    { weight: 1, arbitrary: own === 'hash' ? text.map((value): Slot => ({ kind: 'string', value })) : hashSlot.map((fields): Slot => ({ kind: 'hash', fields })) },
    { weight: 1, arbitrary: fc.constant<Slot>({ kind: 'list' }) },
  );
/** The ten keys in reconcileRead-10.lua's order, with the type each should have. */
const KEY_TYPES = ['hash', 'hash', 'hash', 'string', 'string', 'string', 'hash', 'hash', 'string', 'hash'] as const;
const keysOf = (s: string) => [keys.snapshot(s), keys.ledger(s), keys.legacyLedger004(s), keys.hold(s), keys.holdReason(s), keys.holdSig(s), keys.applyInflight(s), keys.reconcileState(s), keys.lastFill(s), keys.tradingState(s)];
const symbolState = fc.tuple(...KEY_TYPES.map((t) => slotFor(t)));

async function write(key: string, slot: Slot): Promise<void> {
  if (slot.kind === 'hash') await redis.hset(key, slot.fields);
  else if (slot.kind === 'string') await redis.set(key, slot.value);
  else if (slot.kind === 'list') await redis.rpush(key, 'a');
}

describe('readPass (reconcileRead-10.lua)', () => {
  it('reads what the ten commands per symbol read, wrong types included', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(symbolState, { minLength: 1, maxLength: 4 }), fc.boolean(), async (states, withGlobal) => {
        await redis.flushall();
        const symbols = states.map((_, i) => `RD${i}USDT`);
        for (const [i, st] of states.entries()) for (const [k, key] of keysOf(symbols[i] as string).entries()) await write(key, st[k] as Slot);
        await redis.xadd(STREAMS.applyResult, '*', 'plan_id', 'p1', 'symbol', 'RD0USDT', 'status', 'EXECUTED');
        if (withGlobal) await redis.hset(keys.tradingState(), { state: 'REDUCING', reason: 'test' });
        expect(await readPass(redis, symbols)).toEqual(await referenceRead(symbols));
      }),
      { numRuns: 60 },
    );
  });

  it('a script cache flushed under the open connection is reloaded, the read made again', async () => {
    await redis.flushall();
    await redis.hset(keys.snapshot('RD0USDT'), { position_amt: '0.1', side: 'LONG', ts_ms: '1', ts_epoch: '0' });
    const before = await readPass(redis, ['RD0USDT']);
    await redis.script('FLUSH');
    expect(await readPass(redis, ['RD0USDT'])).toEqual(before);
    expect(before.symbols[0]?.snapshotRaw.position_amt).toBe('0.1');
  });
});
