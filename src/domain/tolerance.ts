/**
 * The one tolerance model shared by the position brain and the reconcile engine (docs/architecture.md#quantities), so the two
 * can never disagree about whether a symbol is in drift.
 */
import { Decimal } from './decimal.js';

/** Result of comparing two signed base-asset amounts. */
export interface Comparison {
  /** |a - b|, base-asset quantity. */
  diff: Decimal;
  /** |a - b| / max(|a|, |b|) * 100; 0 when both are 0. */
  diffPct: Decimal;
  /** true when |a - b| <= tolerance (inclusive: a diff exactly at tolerance matches). */
  match: boolean;
}

/**
 * Compares two signed amounts under an absolute tolerance (base-asset quantity, default one lot step).
 * Source: docs/architecture.md#quantities "Two amounts match when |a - b| <= qty_tolerance_abs".
 */
export function compareAmounts(a: Decimal, b: Decimal, toleranceAbs: Decimal): Comparison {
  const diff = a.minus(b).abs();
  const denom = Decimal.max(a.abs(), b.abs());
  const diffPct = denom.isZero() ? new Decimal(0) : diff.div(denom).mul(100);
  return { diff, diffPct, match: diff.lte(toleranceAbs) };
}

/** Tolerance settings (decimal strings, base-asset quantity); see `parseToleranceConfig` in src/config/env.ts. */
export interface ToleranceSettings {
  defaultAbs: string | null;
  perSymbol: Record<string, string>;
}

/**
 * The absolute tolerance of `symbol`: per-symbol setting, else the default setting, else the lot step
 * (`stepSize`, from the snapshot), else 0 (exact match: fail closed).
 */
export function toleranceFor(settings: ToleranceSettings, symbol: string, stepSize: Decimal | null): Decimal {
  const per = settings.perSymbol[symbol];
  if (per !== undefined) return new Decimal(per);
  if (settings.defaultAbs !== null) return new Decimal(settings.defaultAbs);
  if (stepSize !== null) return stepSize;
  return new Decimal(0);
}
