/**
 * The opt-in heal policies end to end (docs/architecture.md#heal-target): exchange 0.098 vs ledger 0.1 (a manual trim).
 * - `P34_HEAL_POLICY=hold`: no order, status MANUAL_REQUIRED, hold kept, event MANUAL_REQUIRED once.
 * - `P34_HEAL_POLICY=adopt`: no order, ledger := 0.098, event LEDGER_ADOPTED, hold cleared,
 *   p34_reconcile_adopted_total counted; long vs short is never adopted (it is flattened).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { keys } from '../../src/adapters/redis/keys.js';
import { adminPositions } from '../helpers/paper.js';
import { waitFor } from '../helpers/redis.js';
import { startStack, type Stack } from './stack.js';

let s: Stack | null = null;
afterEach(async () => {
  await s?.stop();
  s = null;
});

describe('P34_HEAL_POLICY', () => {
  it('hold: no order, MANUAL_REQUIRED with the drift reason kept', async () => {
    s = await startStack({ positions: { BTCUSDT: '0.098' }, ledgers: { BTCUSDT: '0.1' }, extraEnv: { P34_HEAL_POLICY: 'hold' } });
    await waitFor(async () => (await s!.redis.hget(keys.reconcileState('BTCUSDT'), 'status')) === 'MANUAL_REQUIRED', 20_000, 25, 'MANUAL_REQUIRED');
    expect(await s.redis.hgetall(keys.reconcileState('BTCUSDT'))).toMatchObject({ reason: 'qty_mismatch_no_evidence', manual_required: '1', hold_owner: 'engine' });
    await new Promise((r) => setTimeout(r, 1500));
    expect(await s.closeOrders('BTCUSDT')).toEqual([]);
    expect(await s.events('MANUAL_REQUIRED', 'BTCUSDT')).toHaveLength(1);
    expect(await s.redis.exists(keys.hold('BTCUSDT'))).toBe(1);
  });

  it('adopt: no order, ledger 0.098, LEDGER_ADOPTED, hold cleared; long vs short is flattened instead', async () => {
    s = await startStack({ positions: { BTCUSDT: '0.098', ETHUSDT: '-0.05' }, ledgers: { BTCUSDT: '0.1', ETHUSDT: '0.1' }, extraEnv: { P34_HEAL_POLICY: 'adopt' } });
    await waitFor(async () => (await s!.events('LEDGER_ADOPTED', 'BTCUSDT')).length === 1 && (await s!.healed('BTCUSDT')), 20_000, 25, 'adopted');
    expect(await s.redis.hgetall(keys.ledger('BTCUSDT'))).toMatchObject({ ledger_amt: '0.098', ledger_side: 'LONG', source: 'p34_adopt' });
    expect((await s.events('LEDGER_ADOPTED', 'BTCUSDT'))[0]).toMatchObject({ old_ledger_amt: '0.1', new_ledger_amt: '0.098', policy: 'adopt' });
    expect(await s.closeOrders('BTCUSDT')).toEqual([]);
    expect((await adminPositions(s.paper.url)).BTCUSDT?.positionAmt).toBe('0.098');
    // long vs short: never adopted, one close of |ex| (flatten), ledger then flat
    await waitFor(async () => (await s!.healed('ETHUSDT')) && (await s!.redis.hget(keys.ledger('ETHUSDT'), 'ledger_amt')) === '0', 20_000, 25, 'ETHUSDT flattened');
    expect((await s.closeOrders('ETHUSDT')).map((o) => `${o.side} ${o.qty}`)).toEqual(['BUY 0.05']);
    expect(await s.events('LEDGER_ADOPTED', 'ETHUSDT')).toEqual([]);
  });
});
