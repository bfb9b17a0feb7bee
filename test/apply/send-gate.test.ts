/**
 * The send-time gate (docs/architecture.md#send-time-gate), end to end: exits of one symbol racing on one snapshot. A real governor and position
 * brain decide the permits, the apply layer sends through the real ccxt gateway to the paper exchange.
 * Two PARTIAL_50 back to back on a position of 5 must not both sell 2.5 (the position must end 2.5, not
 * 0); four permits released at once on one snapshot (a paused apply layer) give one order, and no exit
 * is ever rejected by the exchange for exceeding the position (-2022).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { keys } from '../../src/adapters/redis/keys.js';
import { submitPlan as submitExit, submitSignedPlan } from '../../src/plans/index.js';
import { adminOrders, adminPositions, adminSetPosition } from '../helpers/paper.js';
import { waitFor } from '../helpers/redis.js';
import { Decimal } from '../../src/domain/decimal.js';
import { setLedger, setSnapshot, startBrain, startGovernor, type Running } from '../permits/helpers.js';
import { EXIT_KEY, resultsOf, settle, startRig, waitResult, type Rig } from './helpers.js';

let rig: Rig;
let gov: Running;
let brain: Running;
const SYM = 'BTCUSDT';

beforeAll(async () => {
  rig = await startRig({ BTCUSDT: '5' });
  // the permits must be signed with the keys the rig's apply layer verifies them with
  const permitKeys = { P3_KEY_GOVERNOR: rig.env.P3_KEY_GOVERNOR!, P3_KEY_P33: rig.env.P3_KEY_P33! };
  gov = await startGovernor(rig.srv.url, 'gov-1', { ...permitKeys, P3_KEY_EXIT_BRAIN: EXIT_KEY, GOVERNOR_MODE: 'live', GOVERNOR_MAX_NOTIONAL_USD: '1000000', GOVERNOR_SYMBOL_RATE_BURST: '50', GOVERNOR_RATE_BURST: '50' });
  brain = await startBrain(rig.srv.url, 'p33-1', { ...permitKeys, P3_KEY_EXIT_BRAIN: EXIT_KEY });
});
afterAll(async () => {
  await gov?.stop();
  await brain?.stop();
  await rig?.stop();
});
afterEach(async () => {
  for (const s of rig.services.splice(0)) await s.stop();
});

/** Position 5 on the exchange, in a fresh snapshot and in the ledger; no fill recorded yet. */
async function position5(): Promise<void> {
  await adminSetPosition(rig.paper.url, SYM, '5');
  await setLedger(rig.redis, SYM, '5');
  await rig.redis.del(keys.lastFill(SYM), keys.applyInflight(SYM));
  await settle(5); // the snapshot is strictly newer than anything before
  await setSnapshot(rig.redis, SYM, '5', { mark: '100', step: '0.001' });
}

const exit = (action: 'FULL_CLOSE' | 'PARTIAL_75' | 'PARTIAL_50' | 'PARTIAL_25') => submitExit(rig.redis, { symbol: SYM, action }, EXIT_KEY);

async function finalOf(id: string): Promise<Record<string, string>> {
  return waitResult(rig.redis, id, ['EXECUTED', 'SKIPPED', 'FAILED', 'REJECTED_INVALID', 'RETRYABLE_RATE_LIMIT'], 30_000);
}

describe('exits of one symbol racing on one snapshot', () => {
  it('two PARTIAL_50 back to back on a position of 5: one order of 2.5, the position ends 2.5 (not 0)', async () => {
    await position5();
    await rig.startApply();
    const [a, b] = await Promise.all([exit('PARTIAL_50'), exit('PARTIAL_50')]); // microseconds apart
    const [ra, rb] = [await finalOf(a), await finalOf(b)];
    const statuses = [ra.status, rb.status];
    expect(statuses.filter((s) => s === 'EXECUTED')).toHaveLength(1);
    const other = ra.status === 'EXECUTED' ? rb : ra;
    expect(other.status).toBe('SKIPPED');
    // refused at send time (snapshot_superseded / order_in_flight), or already by the brain when the first
    // order was in flight or filled before it decided (p33 DENY order_in_flight / snapshot_older_than_fill)
    expect(['snapshot_superseded', 'order_in_flight', 'snapshot_older_than_fill']).toContain(other.reason);
    expect((ra.status === 'EXECUTED' ? ra : rb).filled_qty).toBe('2.5');
    expect((await adminPositions(rig.paper.url))[SYM]?.positionAmt).toBe('2.5');
    expect(await rig.redis.hget(keys.ledger(SYM), 'ledger_amt')).toBe('2.5');
  });

  it('four exits permitted on one snapshot and released at once (apply layer paused): one order, the rest SKIPPED, no -2022', async () => {
    await position5();
    const ordersBefore = (await adminOrders(rig.paper.url)).length;
    const ids = [await exit('PARTIAL_50'), await exit('PARTIAL_25'), await exit('FULL_CLOSE'), await exit('PARTIAL_75')];
    // every permit is decided on the same snapshot before any order can go out
    for (const id of ids) await waitFor(async () => (await rig.redis.exists(keys.permitP33(id), keys.permitGovernor(id))) === 2, 20_000, 25, `permits of ${id}`);
    const sized = await Promise.all(ids.map(async (id) => (await rig.redis.hget(keys.permitP33(id), 'qty')) ?? ''));
    expect(sized).toEqual(['2.5', '1.25', '5', '3.75']);
    await rig.startApply();
    const finals = await Promise.all(ids.map(finalOf));
    expect(finals.filter((f) => f.status === 'EXECUTED')).toHaveLength(1);
    for (const f of finals.filter((x) => x.status !== 'EXECUTED')) {
      expect(f).toMatchObject({ status: 'SKIPPED', executed: 'false' });
      expect(['snapshot_superseded', 'order_in_flight']).toContain(f.reason);
    }
    const sent = (await adminOrders(rig.paper.url)).slice(ordersBefore);
    expect(sent).toHaveLength(1);
    expect(sent.every((o) => o.status === 'FILLED')).toBe(true); // nothing rejected (-2022) by the exchange
    const done = finals.find((f) => f.status === 'EXECUTED')!;
    expect(new Decimal(5).sub(done.filled_qty!).toFixed()).toBe((await adminPositions(rig.paper.url))[SYM]?.positionAmt);
    for (const id of ids) expect(await resultsOf(rig.redis, id)).toHaveLength(1);
  });

  it('entries too: two OPEN BUY 1 sized on one flat snapshot give one order (the position ends 1, not 2)', async () => {
    await adminSetPosition(rig.paper.url, SYM, '0');
    await setLedger(rig.redis, SYM, '0');
    await rig.redis.del(keys.lastFill(SYM), keys.applyInflight(SYM));
    await settle(5);
    await setSnapshot(rig.redis, SYM, '0', { mark: '100', step: '0.001' });
    await rig.redis.hset(keys.snapshot(SYM), { min_qty: '0.001', min_notional: '5' }); // as the publisher writes them for entries
    await rig.startApply();
    const open = () => submitSignedPlan(rig.redis, { plan_id: `open-${process.pid}-${Math.random().toString(36).slice(2, 10)}`, symbol: SYM, decision: 'EXECUTE', action: 'OPEN', side: 'BUY', qty: '1', type: 'MARKET', reduceOnly: false, reason: 'entry', source: 'exit_brain', ts_ms: Date.now() }, EXIT_KEY);
    const [a, b] = await Promise.all([open(), open()]);
    const finals = [await finalOf(a.planId), await finalOf(b.planId)];
    expect(finals.filter((f) => f.status === 'EXECUTED')).toHaveLength(1);
    const other = finals.find((f) => f.status !== 'EXECUTED')!;
    expect(other.status).toBe('SKIPPED');
    expect(['snapshot_superseded', 'order_in_flight', 'snapshot_older_than_fill', 'position_not_flat', 'position_changed']).toContain(other.reason);
    expect((await adminPositions(rig.paper.url))[SYM]?.positionAmt).toBe('1');
  });

  it('a new exit after the fill, on a snapshot taken after it, is sized on the new position and executes', async () => {
    await position5();
    await rig.startApply();
    const a = await exit('PARTIAL_50');
    expect((await finalOf(a)).status).toBe('EXECUTED');
    await settle(5);
    await setSnapshot(rig.redis, SYM, '2.5', { mark: '100', step: '0.001' });
    const b = await exit('PARTIAL_50');
    expect(await finalOf(b)).toMatchObject({ status: 'EXECUTED', filled_qty: '1.25' });
    expect((await adminPositions(rig.paper.url))[SYM]?.positionAmt).toBe('1.25');
  });
});
