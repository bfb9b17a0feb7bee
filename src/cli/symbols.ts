/**
 * The symbols an operator command acts on. A symbol outside the allowlist is a typo or a symbol no service
 * serves: `p3 hold set BTCUSTD` would report success while BTCUSDT keeps trading. So every command that
 * writes for a symbol (hold, ledger, trading state, flatten, plan submit) refuses a symbol that neither
 * `P3_ALLOWLIST` nor `P34_ALLOWLIST` names. When neither is set in the operator's environment the symbol
 * cannot be checked, and the command refuses too unless `--unlisted-symbol` says the operator knows.
 */
import { ConfigError } from '../config/errors.js';

/** The option that lets a symbol through that no allowlist of this environment names. */
export const UNLISTED_OPTION = '--unlisted-symbol';
/** Help text of {@link UNLISTED_OPTION}. */
export const UNLISTED_HELP = 'act on a symbol that neither P3_ALLOWLIST nor P34_ALLOWLIST names (a symbol no service serves, or no allowlist set here)';

const SYNTAX = /^[A-Z0-9]{2,30}$/;

/** Symbols of `P3_ALLOWLIST` and `P34_ALLOWLIST` together (upper-case). @throws ConfigError for a bad list */
export async function knownSymbols(env: Record<string, string | undefined> = process.env): Promise<string[]> {
  const { envz, parseEnv } = await import('../config/env.js');
  const e = parseEnv({ P3_ALLOWLIST: envz.symbols(), P34_ALLOWLIST: envz.symbols() }, env);
  return [...new Set([...e.P3_ALLOWLIST, ...e.P34_ALLOWLIST])];
}

/**
 * Validates the symbols a command writes for: syntax, then membership of {@link knownSymbols}.
 * @param raw symbols as typed (case-insensitive)
 * @param unlisted the operator passed {@link UNLISTED_OPTION}
 * @returns the symbols, upper-case, deduplicated, in order
 * @throws ConfigError (`SYMBOL`, exit 2) for a malformed symbol, one outside the allowlist, or any symbol
 *   when no allowlist is set and `unlisted` is false
 */
export async function operatorSymbols(raw: string[], unlisted: boolean, env: Record<string, string | undefined> = process.env): Promise<string[]> {
  const out: string[] = [];
  for (const r of raw) {
    const s = r.trim().toUpperCase();
    if (!SYNTAX.test(s)) throw new ConfigError('SYMBOL', `bad symbol ${JSON.stringify(r)}: upper-case letters and digits, like BTCUSDT`);
    if (!out.includes(s)) out.push(s);
  }
  if (unlisted) return out;
  const known = await knownSymbols(env);
  if (known.length === 0) {
    throw new ConfigError('SYMBOL', `${out.join(',')}: no P3_ALLOWLIST or P34_ALLOWLIST is set here, so the symbol cannot be checked (a typo would act on a symbol nobody trades); set P3_ALLOWLIST as in the services' env files, or pass ${UNLISTED_OPTION}`);
  }
  const outside = out.filter((s) => !known.includes(s));
  if (outside.length > 0) {
    throw new ConfigError('SYMBOL', `${outside.join(',')} is not in the allowlist (${known.join(',')}): no service trades it, so nothing would change; check the spelling (pass ${UNLISTED_OPTION} to act on it anyway)`);
  }
  return out;
}

/**
 * A symbol a read-only command was given (`p3 status --symbol`, `p3 events --symbol`): syntax only, upper-cased
 * (reading an unlisted symbol changes nothing). @throws ConfigError (`SYMBOL`, exit 2) for a malformed symbol
 */
export function symbolArg(raw: string): string {
  const s = raw.trim().toUpperCase();
  if (!SYNTAX.test(s)) throw new ConfigError('SYMBOL', `bad symbol ${JSON.stringify(raw)}`);
  return s;
}
