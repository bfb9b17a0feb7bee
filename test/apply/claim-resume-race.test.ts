/**
 * Hostile review of the seed-102 fix: two redeliveries of one plan entry race to resume its orphaned claim
 * (`claimed|<entry>|<dead token>`). One compare-and-set wins; the loser must leave the entry pending
 * (HandedOver: an XACK is group-wide and would drop it for the winner too), never acknowledge it. And a
 * redelivered entry whose claim vanished is retried (a plain error), not acknowledged without a result; one
 * whose claim is already `done` for this very entry publishes nothing (no DROPPED_DUPLICATE for itself).
 */
import { pino } from 'pino';
import { expect, it } from 'vitest';
import { STREAMS, keys } from '../../src/adapters/redis/keys.js';
import { HandedOver } from '../../src/adapters/redis/consumer.js';
import { dedupeValue } from '../../src/domain/apply.js';
import type { Plan } from '../../src/domain/plan.js';
import { claimOrResume } from '../../src/services/apply-layer/claim/claim.js';
import { throwIfHandedOver } from '../../src/services/apply-layer/record/record.js';
import type { ApplyDeps } from '../../src/services/apply-layer/deps.js';
import { useTestRedis } from '../helpers/redis.js';

const t = useTestRedis();

function deps(): ApplyDeps {
  // dry_run, no gateway: no pre-send query; nothing here sends
  return { redis: t.redis, logger: pino({ level: 'silent' }), gateway: null, cfg: { mode: 'dry_run' }, metrics: new Proxy({}, { get: () => ({ inc: () => undefined, observe: () => undefined, set: () => undefined }) }), instanceId: 'test', hooks: {}, signal: new AbortController().signal } as unknown as ApplyDeps;
}
const plan = (id: string) => ({ plan_id: id, symbol: 'BTCUSDT', decision: 'EXECUTE', ts_ms: Date.now() }) as unknown as Plan;

it('two redeliveries resuming one orphaned claim: one resumes, the other is HandedOver (never acknowledged)', async () => {
  const d = deps();
  const entry = { id: '1-0', fields: {} };
  await t.redis.set(keys.applyDedupe('race-1'), dedupeValue('claimed', '1-0', 'dead:0000'), 'EX', 600);
  // started in the same turn: both read the dead claim, both compare-and-set from it
  const outcomes = await Promise.allSettled([claimOrResume(d, plan('race-1'), entry, true, 'a:1111'), claimOrResume(d, plan('race-1'), entry, true, 'b:2222')]);
  const won = outcomes.filter((o) => o.status === 'fulfilled' && typeof o.value === 'string');
  const lost = outcomes.filter((o) => o.status === 'rejected');
  expect(won).toHaveLength(1);
  expect(lost).toHaveLength(1);
  expect((lost[0] as PromiseRejectedResult).reason).toBeInstanceOf(HandedOver);
  expect(await t.redis.get(keys.applyDedupe('race-1'))).toBe((won[0] as PromiseFulfilledResult<string>).value);
  expect(await t.redis.xlen(STREAMS.applyResult)).toBe(0);
});

it('a redelivered entry whose claim is done for itself publishes nothing; for another entry: DROPPED_DUPLICATE', async () => {
  const d = deps();
  await t.redis.set(keys.applyDedupe('done-1'), dedupeValue('done', '2-0', 'EXECUTED'), 'EX', 600);
  expect(await claimOrResume(d, plan('done-1'), { id: '2-0', fields: {} }, true, 'a:1')).toBeNull();
  expect(await t.redis.xlen(STREAMS.applyResult)).toBe(0);
  expect(await claimOrResume(d, plan('done-1'), { id: '3-0', fields: {} }, false, 'a:2')).toBeNull();
  const results = await t.redis.xrange(STREAMS.applyResult, '-', '+');
  expect(results).toHaveLength(1);
  expect(results[0]![1]).toContain('DROPPED_DUPLICATE');
});

it('after a fenced write: a vanished claim is retried when nothing was sent, left alone after an order; another token of the same entry is HandedOver', async () => {
  const d = deps();
  const mine = dedupeValue('claimed', '4-0', 'a:1');
  await expect(throwIfHandedOver(d, 'BTCUSDT', 'gone-1', '4-0', mine, 'x', { retryIfGone: true })).rejects.toThrow(/claim vanished/);
  await expect(throwIfHandedOver(d, 'BTCUSDT', 'gone-1', '4-0', mine, 'x', { retryIfGone: false })).resolves.toBeUndefined();
  await t.redis.set(keys.applyDedupe('gone-1'), dedupeValue('sending', '4-0', 'b:2'), 'EX', 600);
  await expect(throwIfHandedOver(d, 'BTCUSDT', 'gone-1', '4-0', mine, 'x', { retryIfGone: true })).rejects.toBeInstanceOf(HandedOver);
  await t.redis.set(keys.applyDedupe('gone-1'), dedupeValue('claimed', '5-0', 'b:2'), 'EX', 600); // another entry of the plan
  await expect(throwIfHandedOver(d, 'BTCUSDT', 'gone-1', '4-0', mine, 'x', { retryIfGone: true })).resolves.toBeUndefined();
});
