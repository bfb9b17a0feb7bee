/**
 * The last-moment check of an order (src/domain/last-moment.ts), over generated states: its invariants hold for
 * every combination of trading states, breaker, hold, permit age and in-flight age.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { lastMomentVerdict, type LastMomentInput, type StateRead } from '../../src/domain/last-moment.js';

const state = fc.constantFrom<StateRead>('ACTIVE', 'REDUCING', 'HALTED', 'INVALID', null);
const input: fc.Arbitrary<LastMomentInput> = fc.record({
  mode: fc.constantFrom('entry' as const, 'exit' as const, 'close' as const, 'flatten' as const),
  globalState: state,
  symbolState: state,
  breakerOpen: fc.boolean(),
  holdActive: fc.boolean(),
  holdSig: fc.option(fc.constantFrom('sig-a', 'sig-b'), { nil: null }),
  driftSig: fc.constantFrom('sig-a', 'sig-b'),
  permitTsMs: fc.option(fc.integer({ min: 0, max: 200_000 }), { nil: null }),
  permitMaxAgeMs: fc.constant(55_000),
  inflightTsMs: fc.integer({ min: 0, max: 200_000 }),
  maxSendDelayMs: fc.constant(5_000),
  nowMs: fc.constant(200_000),
});

describe('lastMomentVerdict', () => {
  it('HALTED, an unreadable state or the breaker stop every order but FLATTEN; REDUCING stops every entry', () => {
    fc.assert(
      fc.property(input, (i) => {
        const v = lastMomentVerdict(i);
        const halted = [i.globalState, i.symbolState].some((s) => s === 'HALTED' || s === 'INVALID');
        if (i.mode !== 'flatten' && (halted || i.breakerOpen)) expect(v.ok).toBe(false);
        if (i.mode === 'entry' && [i.globalState, i.symbolState].includes('REDUCING')) expect(v.ok).toBe(false);
        if (i.mode === 'close' && i.breakerOpen) expect(v).toMatchObject({ ok: false });
      }),
      { numRuns: 2000 },
    );
  });

  it('an ALLOW implies: permits within their validity (EXECUTE), no hold (EXECUTE) or the same hold (close), sent within the delay bound', () => {
    fc.assert(
      fc.property(input, (i) => {
        const v = lastMomentVerdict(i);
        if (!v.ok) return;
        expect(i.nowMs - i.inflightTsMs).toBeLessThanOrEqual(i.maxSendDelayMs);
        if (i.mode === 'entry' || i.mode === 'exit') {
          expect(i.permitTsMs).not.toBeNull();
          expect(i.nowMs - (i.permitTsMs as number)).toBeLessThanOrEqual(i.permitMaxAgeMs);
          expect(i.holdActive).toBe(false);
        }
        if (i.mode === 'close') expect(i.holdActive && i.holdSig === i.driftSig).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('FLATTEN is refused only for an order held too long before sending', () => {
    fc.assert(
      fc.property(input, (i) => {
        const v = lastMomentVerdict({ ...i, mode: 'flatten' });
        expect(v.ok).toBe(i.nowMs - i.inflightTsMs <= i.maxSendDelayMs);
      }),
      { numRuns: 1000 },
    );
  });
});
