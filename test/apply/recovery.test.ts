/**
 * Recovery of RECONCILE_CLOSE after a crash, against a real Redis, the paper exchange and
 * real processes:
 * - an apply layer process killed with SIGKILL while its close is at the exchange: another apply layer
 *   takes the entry over within seconds (lease, not the 60 s claim idle), resolves the order by client
 *   order id (no second order), and the dead consumer disappears from the group;
 * - killed while holding the per-symbol close lock before sending: the next apply layer executes the
 *   close within seconds (the lock is a renewed 3 s lease), not `FAILED close_in_progress`;
 * - a close that aged past APPLY_CLOSE_MAX_AGE_SEC on a dead consumer ends SKIPPED close_expired and
 *   finishes its dedupe claim (no `claimed|...` left for 24 h);
 * - closes of different symbols do not wait on each other.
 * The figures (kill → close result) are printed; no timing is asserted beyond generous bounds.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { STREAMS, keys } from '../../src/adapters/redis/keys.js';
import { groupConsumers } from '../../src/adapters/redis/consumer-liveness.js';
import { signPlan, type PlanInput } from '../../src/domain/plan.js';
import { APPLY_CLOSE_GROUP } from '../../src/services/apply-layer/index.js';
import { adminFaults, adminPositions, adminSetPosition, clearFaults } from '../helpers/paper.js';
import { waitFor } from '../helpers/redis.js';
import { P34_KEY, ordersOf, planId, resultsOf, settle, startRig, waitResult, type Rig } from './helpers.js';

const SIG = 'drift-sig-recovery';
const root = join(import.meta.dirname, '../..');
let rig: Rig;
let victim: ChildProcess | null = null;

beforeAll(async () => {
  rig = await startRig({ BTCUSDT: '0.007', ETHUSDT: '0.5' });
  await rig.redis.xgroup('CREATE', STREAMS.reconcileClose, APPLY_CLOSE_GROUP, '$', 'MKSTREAM');
});
afterAll(async () => {
  victim?.kill('SIGKILL');
  await rig.stop();
});
beforeEach(async () => {
  for (const [sym, amt] of [['BTCUSDT', '0.007'], ['ETHUSDT', '0.5']] as const) {
    await adminSetPosition(rig.paper.url, sym, amt);
    await rig.redis.multi().set(keys.hold(sym), '1', 'EX', 300).set(keys.holdReason(sym), 'qty_mismatch_no_evidence', 'EX', 300).set(keys.holdSig(sym), SIG, 'EX', 300).exec();
    await rig.redis.del(keys.closeSent(sym, SIG), keys.applyCloseLock(sym));
  }
});
afterEach(async () => {
  await clearFaults(rig.paper.url);
  victim?.kill('SIGKILL');
  victim = null;
  for (const s of rig.services.splice(0)) await s.stop();
});

async function publishClose(p: Partial<PlanInput> & Record<string, unknown> = {}): Promise<string> {
  const id = planId('recover');
  const plan = { plan_id: id, symbol: 'BTCUSDT', decision: 'RECONCILE_CLOSE', action: 'RECONCILE_CLOSE', side: 'SELL', qty: '0.007', type: 'MARKET', reduceOnly: true, reason: 'reconcile_drift', source: 'p3.4', ts_ms: Date.now(), drift_sig: SIG, ...p } as PlanInput;
  const f = signPlan(plan, P34_KEY);
  await rig.redis.xadd(STREAMS.reconcileClose, '*', 'plan', f.plan, 'mac', f.mac);
  return id;
}

/** Starts an apply layer as its own process (`p3 run apply-layer`), waits until its close consumer holds a lease. */
async function startVictim(name: string): Promise<ChildProcess> {
  const env = { ...process.env, ...rig.env, P3_INSTANCE_ID: name, APPLY_CLAIM_IDLE_MS: '60000', APPLY_LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn' };
  const child = spawn(process.execPath, ['bin/p3.mjs', 'run', 'apply-layer'], { cwd: root, env, stdio: ['ignore', 'ignore', 'inherit'] });
  await waitFor(async () => (await rig.redis.exists(keys.consumerLease(STREAMS.reconcileClose, APPLY_CLOSE_GROUP, name))) === 1, 60_000, 50, `${name} running`);
  return child;
}

/** kill -9, and the epoch ms it happened. */
function kill9(child: ChildProcess): number {
  child.kill('SIGKILL');
  return Date.now();
}

const figures: string[] = [];
afterAll(() => {
  if (figures.length) console.log(`recovery figures (kill -9 → close result):\n  ${figures.join('\n  ')}`);
});

describe('RECONCILE_CLOSE after kill -9 of the apply layer', () => {
  it('killed while its close is at the exchange: taken over within seconds, resolved by lookup, one order, dead consumer deleted', async () => {
    victim = await startVictim('apply-victim-1');
    await adminFaults(rig.paper.url, { kind: 'latency', latency_ms: 3000, endpoints: ['order'], methods: ['POST'], count: 1 });
    const id = await publishClose();
    await waitFor(async () => ((await rig.redis.get(keys.applyDedupe(id))) ?? '').startsWith('sending|'), 20_000, 10, 'victim sending');
    await rig.startApply({ APPLY_CLAIM_IDLE_MS: '60000' });
    const killedAt = kill9(victim);
    victim = null;
    const r = await waitResult(rig.redis, id, [], 30_000);
    const tookMs = Number(r.ts_ms) - killedAt;
    figures.push(`killed mid-send: ${tookMs} ms (${r.status} ${r.reason})`);
    expect(r).toMatchObject({ status: 'EXECUTED', reason: 'resolved_by_lookup', filled_qty: '0.007' });
    expect(tookMs).toBeLessThan(20_000); // generous: the claim idle is 60 s
    expect(await ordersOf(rig.paper, id)).toHaveLength(1);
    expect(await resultsOf(rig.redis, id)).toHaveLength(1);
    expect((await adminPositions(rig.paper.url)).BTCUSDT?.positionAmt).toBe('0');
    await waitFor(async () => !(await groupConsumers(rig.redis, STREAMS.reconcileClose, APPLY_CLOSE_GROUP)).some((c) => c.name === 'apply-victim-1'), 20_000, 100, 'dead consumer deleted');
  });

  it('killed holding the close lock before sending: the next apply layer executes the close within seconds (no close_in_progress)', async () => {
    victim = await startVictim('apply-victim-2');
    // the victim hangs reading the position, lock taken and claim made, nothing sent
    await adminFaults(rig.paper.url, { kind: 'latency', latency_ms: 20_000, endpoints: ['positionRisk'], count: 1 });
    const id = await publishClose();
    await waitFor(async () => (await rig.redis.get(keys.applyCloseLock('BTCUSDT'))) !== null && ((await rig.redis.get(keys.applyDedupe(id))) ?? '').startsWith('claimed|'), 20_000, 10, 'victim holds the lock');
    await rig.startApply({ APPLY_CLAIM_IDLE_MS: '60000' });
    const killedAt = kill9(victim);
    victim = null;
    const r = await waitResult(rig.redis, id, [], 40_000);
    const tookMs = Number(r.ts_ms) - killedAt;
    figures.push(`killed holding the close lock: ${tookMs} ms (${r.status} ${r.reason})`);
    expect(r).toMatchObject({ status: 'EXECUTED', filled_qty: '0.007' });
    expect(tookMs).toBeLessThan(30_000);
    expect(await ordersOf(rig.paper, id)).toHaveLength(1);
  });
});

describe('takeover details (an abandoned consumer stands for the killed process)', () => {
  it('a close aged past APPLY_CLOSE_MAX_AGE_SEC on a dead consumer ends SKIPPED close_expired and finishes its claim', async () => {
    const id = await publishClose({ ts_ms: Date.now() - 5000 });
    const res = (await rig.redis.call('XREADGROUP', 'GROUP', APPLY_CLOSE_GROUP, 'apply-dead', 'COUNT', 10, 'STREAMS', STREAMS.reconcileClose, '>')) as Array<[string, Array<[string, string[]]>]>;
    const entryId = res[0]![1].find(([, f]) => f[1]?.includes(id))![0];
    await rig.redis.set(keys.applyDedupe(id), `claimed|${entryId}|apply-dead:0000`, 'EX', 86400); // it had claimed the plan
    await rig.startApply({ APPLY_CLOSE_MAX_AGE_SEC: '2', APPLY_CLAIM_IDLE_MS: '60000' });
    const r = await waitResult(rig.redis, id, [], 20_000);
    expect(r).toMatchObject({ status: 'SKIPPED', reason: 'close_expired', executed: 'false' });
    expect(await rig.redis.get(keys.applyDedupe(id))).toMatch(/^done\|/);
    await settle(200);
    expect(await ordersOf(rig.paper, id)).toHaveLength(0);
  });

  it('a slow close of one symbol does not delay the close of another', async () => {
    await rig.startApply({ APPLY_CLAIM_IDLE_MS: '60000' });
    // another apply layer is busy with a BTCUSDT close: it holds (and keeps renewing) the symbol's lock
    await rig.redis.set(keys.applyCloseLock('BTCUSDT'), 'other-apply:busy', 'PX', 60_000);
    const btc = await publishClose();
    await settle(100);
    const eth = await publishClose({ symbol: 'ETHUSDT', qty: '0.5' });
    const r = await waitResult(rig.redis, eth, [], 15_000);
    expect(r).toMatchObject({ status: 'EXECUTED', filled_qty: '0.5' });
    expect(await resultsOf(rig.redis, btc)).toHaveLength(0); // still waiting for its lock
    await rig.redis.del(keys.applyCloseLock('BTCUSDT'));
    expect(await waitResult(rig.redis, btc, [], 15_000)).toMatchObject({ status: 'EXECUTED' });
  });
});
