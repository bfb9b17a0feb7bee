/**
 * Text an operator types (a hold, ledger, trading-state or flatten reason) is stored in Redis and printed
 * later by `p3 status`, `p3 events` and the console. A terminal escape sequence in it could rewrite what a
 * later reader sees (clear the screen, recolour or overwrite the verdict line), and a line break could add
 * a forged line. So operator text is refused at input when it holds a control character, and everything
 * read back from Redis (which `redis-cli` can write directly) is made printable before it is shown.
 */

/**
 * C0 controls (tab and line breaks included), DEL, C1 controls, and the Unicode bidirectional overrides
 * and isolates that reorder what a terminal shows ("Trojan Source", CVE-2021-42574).
 */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/gu;

/** Longest operator reason, characters (the console's limit). */
export const MAX_OPERATOR_TEXT = 300;

/** Thrown for operator text that must not be stored (see {@link checkOperatorText}). */
export class OperatorTextError extends Error {
  constructor(
    /** The field, e.g. `reason`. */
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = 'OperatorTextError';
  }
}

/**
 * Why `text` cannot be an operator reason, or null when it can: empty after trimming, longer than
 * {@link MAX_OPERATOR_TEXT}, or holding a control character (escape, newline, tab, bidi override).
 */
export function operatorTextProblem(text: string): string | null {
  if (text.trim() === '') return 'must not be empty';
  if (text.length > MAX_OPERATOR_TEXT) return `must be at most ${MAX_OPERATOR_TEXT} characters`;
  const bad = text.match(UNPRINTABLE);
  if (bad) return `must not contain control characters (found ${JSON.stringify(bad[0]).slice(1, -1)}): terminal escape codes and line breaks would be replayed to whoever reads p3 status or p3 events`;
  return null;
}

/**
 * Returns `text` trimmed when it is acceptable operator text.
 * @param field named in the error (`reason`, `--reason`)
 * @throws OperatorTextError naming `field` (see {@link operatorTextProblem})
 */
export function checkOperatorText(text: string, field = 'reason'): string {
  const problem = operatorTextProblem(text);
  if (problem) throw new OperatorTextError(field, problem);
  return text.trim();
}

/** `text` with every control character shown as an escape (`\x1b`, `\n`, `\u202e`): safe to print on a terminal. */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, (c) => {
    const code = c.codePointAt(0) ?? 0;
    if (c === '\n') return '\\n';
    if (c === '\r') return '\\r';
    if (c === '\t') return '\\t';
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/** A copy of `value` (JSON-like: objects, arrays, strings) with {@link printable} applied to every string, keys included. */
export function printableDeep<T>(value: T): T {
  if (typeof value === 'string') return printable(value) as T;
  if (Array.isArray(value)) return value.map((v) => printableDeep(v)) as T;
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [printable(k), printableDeep(v)])) as T;
  }
  return value;
}
