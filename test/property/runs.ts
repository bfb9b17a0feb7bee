/**
 * Shared fast-check settings of the property tests. `P3_PROPERTY_RUNS_FACTOR` (default 1) multiplies every
 * test's number of runs for a longer search (e.g. `P3_PROPERTY_RUNS_FACTOR=50 npx vitest run test/property`);
 * `P3_PROPERTY_SEED` replays a failure (the seed and path are printed with every counterexample).
 */
import fc from 'fast-check';

const factor = Math.max(1, Number(process.env.P3_PROPERTY_RUNS_FACTOR ?? '1') || 1);
const seed = process.env.P3_PROPERTY_SEED !== undefined ? Number(process.env.P3_PROPERTY_SEED) : undefined;

/** fast-check parameters for `numRuns` runs (scaled by the factor; fixed seed when replaying). */
export function params<T>(numRuns: number, extra: fc.Parameters<T> = {}): fc.Parameters<T> {
  return { numRuns: numRuns * factor, ...(seed !== undefined && Number.isFinite(seed) ? { seed } : {}), ...extra };
}

/** Lot steps from 1 to 1e-8 (docs/architecture.md#quantities: exchanges' LOT_SIZE stepSize). */
export const STEPS = ['1', '0.1', '0.01', '0.001', '0.0001', '0.00001', '0.000001', '0.0000001', '0.00000001'] as const;
