/**
 * The HMAC keys of plans and permits (`P3_KEY_<SOURCE>`: `P3_KEY_GOVERNOR`, `P3_KEY_P33`, `P3_KEY_P3_4`,
 * `P3_KEY_OPERATOR`, `P3_KEY_EXIT_BRAIN`, ...). A key is what lets its issuer approve or order: the env
 * templates ship one placeholder value for all of them, and a deployment that keeps it (or gives two
 * issuers the same key) lets whoever holds one key sign as every other issuer. So a service refuses to
 * start on a known placeholder, and on two `P3_KEY_*` variables of its environment with the same value.
 */
import { ConfigError } from './errors.js';

/** Values (or parts of values) that the templates, docs and habit use instead of a real secret. */
const PLACEHOLDER = /change-?me|placeholder|example|replace-?me|fill-?me|your[-_ ]?(own[-_ ]?)?(key|secret)|random-hex|^(x+|0+|1234\d*|secret|password|passw0rd|key|test|todo|fixme|none|null|undefined)$/i;

/** True when `value` is a known placeholder rather than a secret (see the module comment). */
export function isPlaceholderSecret(value: string): boolean {
  return PLACEHOLDER.test(value.trim());
}

/** Every non-empty `P3_KEY_*` variable of `env`, sorted by name. */
export function keyVariables(env: Record<string, string | undefined>): [string, string][] {
  return Object.entries(env)
    .filter((e): e is [string, string] => /^P3_KEY_[A-Z0-9_]+$/.test(e[0]) && typeof e[1] === 'string' && e[1].trim() !== '')
    .sort(([a], [b]) => a.localeCompare(b));
}

/**
 * Refuses the keys of one process's environment: a placeholder, or two issuers sharing a value.
 * @throws ConfigError naming the variable (a placeholder) or the second of two variables with the same value
 */
export function checkKeyVariables(env: Record<string, string | undefined>): void {
  const seen = new Map<string, string>();
  for (const [name, value] of keyVariables(env)) {
    if (isPlaceholderSecret(value)) throw new ConfigError(name, 'is a placeholder, not a secret (the env templates ship one value for every key); generate one per issuer: openssl rand -hex 32');
    const other = seen.get(value.trim());
    if (other) throw new ConfigError(name, `has the same value as ${other}: every issuer needs its own key (one leaked key must not sign for another issuer); generate one per issuer: openssl rand -hex 32`);
    seen.set(value.trim(), name);
  }
}
