/**
 * The doctor's comparison of reported ACL rules with the generated ones (src/acl/compare.ts): Redis's own
 * rewriting of rules is no difference; any extra command, key pattern, channel, selector or `nopass` is.
 */
import { describe, expect, it } from 'vitest';
import { effectiveCommands, excessRights, hasFullRights, parseGetUser, type CommandTable } from '../../src/acl/compare.js';
import type { AclUserSpec } from '../../src/acl/users.js';

const table: CommandTable = {
  all: ['get', 'set', 'del', 'multi', 'exec', 'discard', 'watch', 'unwatch', 'client', 'client|setname', 'client|kill', 'flushall', 'xadd'],
  category: (c) => ({ transaction: ['multi', 'exec', 'discard', 'watch', 'unwatch'], read: ['get'], all: [] })[c] ?? [],
};
const spec: AclUserSpec = {
  user: 'p3-x',
  passwordEnv: 'P3_REDIS_PASSWORD_X',
  purpose: 'test',
  root: { rw: ['a:*'], read: ['b'], commands: ['get', 'multi', 'exec', 'discard', 'client|setname'] },
  selectors: [{ write: ['s'], commands: ['xadd'] }],
};
const reported = (over: Partial<{ commands: string; keys: string; channels: string; flags: string[]; selectors: Array<{ commands: string; keys: string; channels: string }> }> = {}) => ({
  commands: '-@all +@transaction -watch -unwatch +get +client|setname',
  keys: '~a:* %R~b',
  channels: '',
  flags: ['on'],
  selectors: [{ commands: '-@all +xadd', keys: '%W~s', channels: '' }],
  ...over,
});

describe('ACL comparison', () => {
  it("Redis's rewriting (+@transaction -watch -unwatch) equals the generated +multi +exec +discard", () => {
    expect([...effectiveCommands(['-@all', '+@transaction', '-watch', '-unwatch'], table)].sort()).toEqual(['discard', 'exec', 'multi']);
    expect(excessRights(spec, reported(), table)).toEqual([]);
  });

  it('names every excess: command, subcommand family, key, channel, selector, nopass', () => {
    expect(excessRights(spec, reported({ commands: '-@all +@transaction +get +client' }), table)).toEqual(['root: commands client client|kill unwatch watch']);
    expect(excessRights(spec, reported({ keys: '~a:* %R~b ~*' }), table)).toEqual(['root: keys ~*']);
    expect(excessRights(spec, reported({ channels: '&*' }), table)).toEqual(['root: channels &*']);
    expect(excessRights(spec, reported({ flags: ['on', 'nopass'] }), table)).toEqual(['nopass (no password needed)']);
    expect(excessRights(spec, reported({ selectors: [{ commands: '-@all +xadd +del', keys: '%W~s', channels: '' }] }), table)).toEqual(['selector 1: commands del']);
    expect(excessRights(spec, reported({ selectors: [{ commands: '+@all', keys: '~*', channels: '' }] }), table)[0]).toMatch(/^selector 1: not generated/);
  });

  it('full rights: on, every key, every command', () => {
    const full = parseGetUser(['flags', ['on', 'nopass'], 'passwords', [], 'commands', '+@all', 'keys', '~*', 'channels', '&*', 'selectors', []])!;
    expect(hasFullRights({ ...full }, { ...table, category: (c) => (c === 'all' ? table.all : []) })).toBe(true);
    expect(hasFullRights({ ...full, flags: ['off'] }, table)).toBe(false);
    expect(hasFullRights({ ...full, keys: '~quantum:*' }, table)).toBe(false);
    expect(parseGetUser(null)).toBeNull();
  });
});
