/**
 * The seeded random source of a chaos run (pure-rand's xoroshiro128+). Every random choice of the
 * fault injector and the strategy driver comes from here, so a seed names a schedule.
 *
 * Invariant: `int(min, max)` is uniform over the closed range; the same seed gives the same sequence.
 */
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import type { JumpableRandomGenerator } from 'pure-rand/types/JumpableRandomGenerator';

/** A mutable seeded generator with the few draws chaos needs. */
export class SeededRng {
  private readonly gen: JumpableRandomGenerator;

  /** @param seed 32-bit unsigned integer; `gen` (internal) continues another generator's stream */
  constructor(
    readonly seed: number,
    gen?: JumpableRandomGenerator,
  ) {
    this.gen = gen ?? xoroshiro128plus(seed | 0);
  }

  /** A uniform integer in [min, max] (both included). */
  int(min: number, max: number): number {
    return uniformInt(this.gen, min, max);
  }

  /** True with probability `p` (0..1, resolution 1e-6). */
  chance(p: number): boolean {
    return this.int(0, 999_999) < Math.round(p * 1_000_000);
  }

  /** One element of a non-empty array. @throws Error on an empty array */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from an empty list');
    return items[this.int(0, items.length - 1)] as T;
  }

  /** A new independent generator (this one's stream jumped 2^64 draws ahead), for a separate stream of choices. */
  fork(): SeededRng {
    const g = this.gen.clone() as JumpableRandomGenerator;
    g.jump();
    this.gen.next();
    return new SeededRng(this.seed, g);
  }
}
