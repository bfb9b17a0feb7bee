/**
 * `p3 redis-acl`: the ACL file has one line per user, passwords only as SHA-256, the default user off,
 * and refuses to run without a password (exit 2 naming the variable).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderAclFile, usersToWrite } from '../../src/acl/render.js';
import { aclUsers } from '../../src/acl/users.js';
import { STREAMS, keys } from '../../src/adapters/redis/keys.js';

const root = join(import.meta.dirname, '../..');
const passwords = Object.fromEntries(usersToWrite({ admin: true }).map((u) => [u.passwordEnv, `secret-${u.user}-0123456789`]));

describe('p3 redis-acl', () => {
  it('writes every user with its password hashed, never in clear, and the default user off', () => {
    const text = renderAclFile(passwords);
    const lines = text.trim().split('\n');
    expect(lines.map((l) => l.split(' ')[1])).toEqual(['p3-governor', 'p3-brain', 'p3-engine', 'p3-apply', 'p3-strategy', 'p3-operator', 'p3-console', 'default']);
    for (const u of aclUsers()) {
      const pw = passwords[u.passwordEnv]!;
      expect(text).not.toContain(pw);
      expect(lines.find((l) => l.startsWith(`user ${u.user} `))).toContain(`#${createHash('sha256').update(pw).digest('hex')}`);
    }
    expect(lines.at(-1)).toBe('user default reset off resetchannels -@all');
    expect(renderAclFile(passwords, { admin: true })).toMatch(/^user p3-admin reset on #[0-9a-f]{64} resetchannels \+@all ~\*$/m);
  });

  it("the governor's and the brain's lease patterns follow GOVERNOR_CONSUMER_GROUP / P33_CONSUMER_GROUP; a group that could match another's leases is refused", () => {
    const lease = (group: string) => keys.consumerLease(STREAMS.applyPlan, group, '*');
    const line = (text: string, user: string) => text.split('\n').find((l) => l.startsWith(`user ${user} `)) ?? '';
    const dflt = renderAclFile(passwords);
    expect(line(dflt, 'p3-governor')).toContain(`~${lease('governor')}`);
    expect(line(dflt, 'p3-brain')).toContain(`~${lease('p33')}`);
    const custom = renderAclFile({ ...passwords, GOVERNOR_CONSUMER_GROUP: 'gov-b', P33_CONSUMER_GROUP: 'brain-b' });
    expect(line(custom, 'p3-governor')).toContain(`~${lease('gov-b')}`);
    expect(line(custom, 'p3-governor')).not.toContain(`~${lease('governor')}`);
    expect(line(custom, 'p3-brain')).toContain(`~${lease('brain-b')}`);
    expect(() => renderAclFile({ ...passwords, P33_CONSUMER_GROUP: 'p33:x' })).toThrow(/P33_CONSUMER_GROUP/);
    expect(() => renderAclFile({ ...passwords, GOVERNOR_CONSUMER_GROUP: 'g*' })).toThrow(/GOVERNOR_CONSUMER_GROUP/);
    expect(() => renderAclFile({ ...passwords, GOVERNOR_CONSUMER_GROUP: 'apply' })).toThrow(/must differ/);
  });

  it('key patterns come from keys.ts: a symbol slot never matches another key family', () => {
    const text = renderAclFile(passwords);
    expect(text).toContain(`~${keys.legacyLedger004('[A-Z0-9]*')} `);
    // the legacy ledger pattern quantum:position:[A-Z0-9]* must not cover snapshots or canonical ledgers
    const glob = new RegExp(`^${keys.legacyLedger004('[A-Z0-9]*').replace(/\*/g, '.*')}$`);
    expect(glob.test(keys.legacyLedger004('BTCUSDT'))).toBe(true);
    expect(glob.test(keys.snapshot('BTCUSDT'))).toBe(false);
    expect(glob.test(keys.ledger('BTCUSDT'))).toBe(false);
  });

  it('refuses without a password, naming the variable (exit 2); --out writes mode 0640', () => {
    const bad = spawnSync(process.execPath, ['bin/p3.mjs', 'redis-acl'], { cwd: root, encoding: 'utf8', env: { PATH: process.env.PATH ?? '', ...passwords, P3_REDIS_PASSWORD_APPLY: '' } });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/P3_REDIS_PASSWORD_APPLY: must be set: the password of Redis user p3-apply/);
    const dir = mkdtempSync(join(tmpdir(), 'p3-aclout-'));
    try {
      const out = join(dir, 'users.acl');
      const ok = spawnSync(process.execPath, ['bin/p3.mjs', 'redis-acl', '--out', out], { cwd: root, encoding: 'utf8', env: { PATH: process.env.PATH ?? '', ...passwords } });
      expect(ok.status, ok.stderr).toBe(0);
      expect(readFileSync(out, 'utf8')).toBe(renderAclFile(passwords));
      expect(statSync(out).mode & 0o777).toBe(0o640);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
