/**
 * Compares a user's rules as Redis reports them (`ACL GETUSER`) with the rules `p3 redis-acl` generates
 * (docs/architecture.md#least-privilege-and-signed-permits), so `p3 doctor` can tell when a user has MORE rights than generated. Pure: category
 * membership is passed in (read from the server with `COMMAND LIST FILTERBY ACLCAT`), so both sides are
 * evaluated against the same Redis and Redis's own rewriting of rules (`+multi +exec +discard` shown as
 * `+@transaction -watch -unwatch`) never reads as a difference.
 */
import type { AclGrant, AclUserSpec } from './users.js';
import { grantTokens } from './render.js';

/** Command universe and categories of the server: every command name (`client|setname` for subcommands). */
export interface CommandTable {
  all: readonly string[];
  /** Commands of an ACL category (`read`, `transaction`, ...), subcommands included. */
  category: (cat: string) => readonly string[];
}

/**
 * The set of commands a list of command rules allows (`-@all`, `+@read`, `+get`, `-watch`,
 * `+client|setname`, `allcommands`, `nocommands`), applied in order from nothing.
 */
export function effectiveCommands(rules: readonly string[], table: CommandTable): Set<string> {
  const out = new Set<string>();
  const family = (name: string) => [name, ...table.all.filter((c) => c.startsWith(`${name}|`))];
  for (const raw of rules) {
    const r = raw.toLowerCase();
    if (r === 'allcommands' || r === '+@all') table.all.forEach((c) => out.add(c));
    else if (r === 'nocommands' || r === '-@all') out.clear();
    else if (r.startsWith('+@')) table.category(r.slice(2)).forEach((c) => out.add(c));
    else if (r.startsWith('-@')) table.category(r.slice(2)).forEach((c) => out.delete(c));
    else if (r.startsWith('+')) family(r.slice(1)).forEach((c) => out.add(c));
    else if (r.startsWith('-')) family(r.slice(1)).forEach((c) => out.delete(c));
  }
  return out;
}

/** Rules of one selector (or the root) as `ACL GETUSER` reports them. */
export interface ReportedRules {
  /** Space-separated command rules, e.g. `-@all +@transaction +get`. */
  commands: string;
  /** Space-separated key patterns, e.g. `~a %R~b`. */
  keys: string;
  /** Space-separated channel patterns (`&chan`), empty when none. */
  channels: string;
}

/** A user as `ACL GETUSER` reports it. */
export interface ReportedUser extends ReportedRules {
  flags: string[];
  selectors: ReportedRules[];
}

/** Parses the RESP2 reply of `ACL GETUSER` (flat key/value arrays); null when the user does not exist. */
export function parseGetUser(reply: unknown): ReportedUser | null {
  if (!Array.isArray(reply)) return null;
  const kv = (arr: unknown[]): Record<string, unknown> => {
    const o: Record<string, unknown> = {};
    for (let i = 0; i + 1 < arr.length; i += 2) o[String(arr[i])] = arr[i + 1];
    return o;
  };
  const rules = (o: Record<string, unknown>): ReportedRules => ({ commands: String(o.commands ?? ''), keys: String(o.keys ?? ''), channels: String(o.channels ?? '') });
  const o = kv(reply);
  const selectors = Array.isArray(o.selectors) ? (o.selectors as unknown[]).map((s) => rules(kv(Array.isArray(s) ? s : []))) : [];
  return { ...rules(o), flags: Array.isArray(o.flags) ? (o.flags as unknown[]).map(String) : [], selectors };
}

const tokens = (s: string): string[] => s.split(/\s+/).filter(Boolean);

function grantKeys(g: AclGrant): Set<string> {
  return new Set(grantTokens({ ...g, commands: [], channels: [] }));
}

function grantChannels(g: AclGrant): Set<string> {
  return new Set(grantTokens({ commands: [], channels: g.channels ?? [] }));
}

/** What one side grants beyond the other, as readable strings. */
function extraRights(reported: ReportedRules, expectedCmds: Set<string>, expectedKeys: Set<string>, table: CommandTable, expectedChannels: Set<string> = new Set()): string[] {
  const out: string[] = [];
  const cmds = effectiveCommands(tokens(reported.commands), table);
  const extraCmds = [...cmds].filter((c) => !expectedCmds.has(c) && !(c.includes('|') && expectedCmds.has(c.split('|')[0]!)));
  if (extraCmds.length) out.push(`commands ${extraCmds.sort().slice(0, 12).join(' ')}${extraCmds.length > 12 ? ` (+${extraCmds.length - 12} more)` : ''}`);
  const extraKeys = tokens(reported.keys).filter((k) => !expectedKeys.has(k));
  if (extraKeys.length) out.push(`keys ${extraKeys.join(' ')}`);
  const chans = tokens(reported.channels).filter((c) => !expectedChannels.has(c));
  if (chans.length) out.push(`channels ${chans.join(' ')}`);
  return out;
}

/**
 * Rights a user has beyond its generated rules: its root and every selector must be covered by the
 * generated root / a generated selector with the same key patterns.
 * @returns human-readable excesses (empty = no more rights than generated); `nopass` and `allkeys`-like
 *   patterns show up as excesses too
 */
export function excessRights(spec: AclUserSpec, reported: ReportedUser, table: CommandTable): string[] {
  const out: string[] = [];
  if (reported.flags.includes('nopass')) out.push('nopass (no password needed)');
  const rootCmds = effectiveCommands(['-@all', ...spec.root.commands.map((c) => `+${c}`)], table);
  out.push(...extraRights(reported, rootCmds, grantKeys(spec.root), table, grantChannels(spec.root)).map((e) => `root: ${e}`));
  const specSelectors = spec.selectors.map((s) => ({ keys: grantKeys(s), channels: grantChannels(s), cmds: effectiveCommands(['-@all', ...s.commands.map((c) => `+${c}`)], table) }));
  reported.selectors.forEach((sel, i) => {
    const keysOf = new Set(tokens(sel.keys));
    // several generated selectors may have the same keys (different commands): the reported one is covered
    // when any of them covers it
    const matches = specSelectors.filter((s) => s.keys.size === keysOf.size && [...keysOf].every((k) => s.keys.has(k)));
    if (!matches.length) return void out.push(`selector ${i + 1}: not generated (${sel.commands} ${sel.keys})`);
    const excess = matches.map((m) => extraRights(sel, m.cmds, m.keys, table, m.channels));
    if (excess.some((e) => e.length === 0)) return;
    out.push(...excess[0]!.map((e) => `selector ${i + 1}: ${e}`));
  });
  return out;
}

/** True when a reported user is enabled with every command on every key (the unconfigured `default`). */
export function hasFullRights(u: ReportedUser, table: CommandTable): boolean {
  if (!u.flags.includes('on')) return false;
  const allKeys = tokens(u.keys).some((k) => k === '~*' || k === '%RW~*' || k === 'allkeys');
  return allKeys && effectiveCommands(tokens(u.commands), table).size >= table.all.length;
}
