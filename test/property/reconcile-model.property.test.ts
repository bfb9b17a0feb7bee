/**
 * Model-based test of the self-healing loop: random sequences of manual trades (both sides,
 * any size), our fills, lost ledger updates, delayed, duplicated and reordered snapshots, engine restarts,
 * operator holds, closes that fail or fill partly. After the last disturbance every symbol converges
 * (exchange = ledger, no engine hold) within a bounded number of passes, with at most one close (plus one
 * per failed or partial close), and no close ever grows or flips a position. Pointed at seed 003's formula
 * the same model finds the stepping-down behaviour.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fmt } from '../../src/domain/decimal.js';
import { HEAL_POLICIES, type HealPolicy } from '../../src/domain/heal-policy.js';
import { Model, type Cmd, type CloseFormula } from './reconcile-model.js';
import { params } from './runs.js';

const lots = fc.integer({ min: -300, max: 300 });
const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 3, arbitrary: lots.map((n) => ({ k: 'manual' as const, lots: n })) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('ourFill' as const), lots, lostLedger: fc.boolean() }) },
  { weight: 4, arbitrary: fc.constant({ k: 'observe' as const }) },
  { weight: 4, arbitrary: fc.record({ k: fc.constant('deliver' as const), which: fc.nat(), dup: fc.boolean() }) },
  { weight: 4, arbitrary: fc.integer({ min: 1, max: 6000 }).map((ms) => ({ k: 'tick' as const, ms })) },
  { weight: 5, arbitrary: fc.constant({ k: 'pass' as const }) },
  { weight: 4, arbitrary: fc.record({ k: fc.constant('apply' as const), which: fc.nat(), outcome: fc.constantFrom('fill' as const, 'fill' as const, 'partial' as const, 'fail' as const) }) },
  { weight: 1, arbitrary: fc.constant({ k: 'restart' as const }) },
  { weight: 1, arbitrary: fc.boolean().map((on) => ({ k: 'operatorHold' as const, on })) },
  { weight: 2, arbitrary: fc.constant({ k: 'undoClose' as const }) },
);
const startArb = fc.record({ exLots: fc.integer({ min: -200, max: 200 }), ledLots: fc.integer({ min: -200, max: 200 }) });

/**
 * Bound after the last disturbance: 8 passes 1 s apart (past the 3 s grace, one close, the heal); when a
 * close failed, its retry waits for the next 120 s cooldown bucket: 8 more passes 20 s apart.
 */
const FAST_ROUNDS = 8;
const MAX_ROUNDS = 16;

function modelProperty(policy: HealPolicy | fc.Arbitrary<HealPolicy>, formula: CloseFormula) {
  const policyArb = typeof policy === 'string' ? fc.constant(policy) : policy;
  return fc.property(startArb, fc.array(cmdArb, { maxLength: 40 }), policyArb, (start, cmds, pol) => {
    const m = new Model(start, pol, formula);
    for (const c of cmds) m.run(c);
    const rounds = m.converge(MAX_ROUNDS, FAST_ROUNDS);
    if (m.violations.length > 0) throw new Error(`unsafe close: ${m.violations.join('; ')}`);
    for (const s of m.sent) {
      const target = Model.target(s.exBefore, s.ledBefore);
      const after = s.side === 'BUY' ? s.exBefore.plus(s.filled) : s.exBefore.minus(s.filled);
      if (after.minus(target).abs().gt(s.exBefore.minus(target).abs())) throw new Error(`close ${s.planId} moved away from its target ${fmt(target)}: ${fmt(s.exBefore)} -> ${fmt(after)}`);
    }
    if (rounds !== null && rounds > FAST_ROUNDS && !m.hadFailure()) throw new Error(`converged only after ${rounds} passes although no close failed`);
    if (rounds === null) throw new Error(`did not converge in ${MAX_ROUNDS} passes: exchange ${fmt(m.ex)} ledger ${fmt(m.ledger.amt)} status ${m.status} hold ${m.hold?.reason ?? 'none'}`);
    const extra = m.excessConvergeCloses();
    if (extra > 0) {
      const conv = m.sent.filter((s) => s.phase === 'converge').map((s) => `${s.side} ${fmt(s.qty)} (ex ${fmt(s.exBefore)} led ${fmt(s.ledBefore)})`);
      throw new Error(`${extra} close(s) too many after the last disturbance: ${conv.join(', ')}`);
    }
  });
}

describe('model: the self-healing loop under random disturbances', () => {
  for (const policy of HEAL_POLICIES) {
    it(`converges with at most one close per drift, never an unsafe close (P34_HEAL_POLICY=${policy})`, () => {
      // the generated runs, plus the case a review found: the same manual trade made again right after our
      // close filled, before any pass saw the healed state (it must be a new episode, not wait out a marker)
      const repeat: [{ exLots: number; ledLots: number }, Cmd[], HealPolicy] = [{ exLots: 105, ledLots: 100 }, [{ k: 'observe' }, { k: 'deliver', which: 0, dup: false }, { k: 'tick', ms: 4000 }, { k: 'observe' }, { k: 'deliver', which: 0, dup: false }, { k: 'pass' }, { k: 'apply', which: 0, outcome: 'fill' }, { k: 'undoClose' }], policy];
      fc.assert(modelProperty(policy, 'current'), params(400, { examples: [repeat] }));
    });
  }

  it('finds the stepping-down behaviour of seed 003\'s min(|ex - led|, |ex|) (0.098 vs 0.1 sent six closes)', () => {
    const out = fc.check(modelProperty('flatten', 'seed003'), params(400, { seed: 1207 }));
    expect(out.failed).toBe(true);
    // it fails for the stepping-down, not for anything else: too many closes after the disturbances
    expect(String(out.errorInstance)).toMatch(/close\(s\) too many after the last disturbance/);
    // the seed and the shrunk counterexample, for the closing note and for replay
    console.info(`seed003 counterexample: seed=${out.seed} path=${out.counterexample ? out.counterexample.length : ''}`, JSON.stringify(out.counterexample), String(out.errorInstance).slice(0, 400));
  });
});
