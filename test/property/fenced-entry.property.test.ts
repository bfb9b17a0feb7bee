/**
 * fencedEntryVerdict (src/domain/apply.ts) over generated dedupe values: a fenced consumer never
 * acknowledges an entry whose work another consumer holds unfinished for that entry (the seed-102 lost
 * plan), never leaves pending an entry whose work is over, and retries a vanished claim only when nothing
 * was sent under it.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { dedupeValue, fencedEntryVerdict } from '../../src/domain/apply.js';
import { params } from './runs.js';

const entry = fc.constantFrom('1-0', '2-0', '1795805741207-0', '1795805741207-1');
const token = fc.constantFrom('apply-1:aaaa1111', 'apply-2:bbbb2222', 'apply-1:cccc3333');
/** A dedupe value as Redis may hold it: a stage value, a legacy/garbage value, or missing. */
const current = fc.oneof(
  fc.tuple(fc.constantFrom('claimed', 'sending', 'done') as fc.Arbitrary<'claimed' | 'sending' | 'done'>, entry, token).map(([st, e, t]) => dedupeValue(st, e, st === 'done' ? 'EXECUTED' : t)),
  fc.constantFrom('1', '', 'claimed|', 'sending||x', 'garbage'),
  fc.constant(null),
);

describe('fencedEntryVerdict', () => {
  it('hands over exactly when another unfinished claim holds this very entry; retries a vanished claim only when nothing was sent', () => {
    fc.assert(
      fc.property(current, entry, fc.tuple(fc.constantFrom('claimed', 'sending') as fc.Arbitrary<'claimed' | 'sending'>, token), fc.boolean(), (cur, myEntry, [myStage, myToken], retryIfGone) => {
        const expected = dedupeValue(myStage, myEntry, myToken);
        const v = fencedEntryVerdict(cur, myEntry, expected, retryIfGone);
        const [stage, e, t] = (cur ?? '').split('|');
        const heldByOther = cur !== null && (stage === 'claimed' || stage === 'sending') && !!e && !!t && e === myEntry && cur !== expected;
        if (heldByOther) expect(v).toBe('handed_over');
        else if (cur === null) expect(v).toBe(retryIfGone ? 'retry' : 'acknowledge');
        else expect(v).toBe('acknowledge');
      }),
      params(2000),
    );
  });

  it('never acknowledges while the claim it held is still unfinished in the hands of another token of the same entry', () => {
    fc.assert(
      fc.property(entry, token, token, fc.constantFrom('claimed', 'sending') as fc.Arbitrary<'claimed' | 'sending'>, fc.boolean(), (e, mine, other, stage, retryIfGone) => {
        fc.pre(mine !== other);
        expect(fencedEntryVerdict(dedupeValue(stage, e, other), e, dedupeValue('claimed', e, mine), retryIfGone)).not.toBe('acknowledge');
      }),
      params(500),
    );
  });
});
