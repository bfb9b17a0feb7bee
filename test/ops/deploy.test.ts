/**
 * Deployment files: the systemd units carry every required key (explicit WorkingDirectory, EnvironmentFile,
 * dedicated User, Restart=always, hardening without MemoryDenyWriteExecute) and pass
 * `systemd-analyze verify`; the env examples document every variable the services read and are valid
 * configurations; ops/install.sh deploys to the WorkingDirectory read from the installed units (and
 * their drop-ins), never elsewhere, keeps existing env files, and refuses units without or with
 * disagreeing WorkingDirectory.
 */
import { createHash } from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SERVICE_NAMES } from '../../src/host/service-names.js';
import { freePort } from '../helpers/redis.js';
import type { CheckResult } from '../../src/cli/commands/doctor.js';

const root = join(import.meta.dirname, '../..');
const ops = join(root, 'ops');
const tmp = mkdtempSync(join(tmpdir(), 'p3-deploy-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** `[Section]` → key → values (a key may repeat). */
function parseUnit(text: string): Record<string, Record<string, string[]>> {
  const out: Record<string, Record<string, string[]>> = {};
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const sec = /^\[(.+)\]$/.exec(line);
    if (sec) {
      section = sec[1] as string;
      out[section] ??= {};
      continue;
    }
    const eq = line.indexOf('=');
    const k = line.slice(0, eq).trim();
    ((out[section] ??= {})[k] ??= []).push(line.slice(eq + 1).trim());
  }
  return out;
}

describe('systemd units', () => {
  for (const s of SERVICE_NAMES) {
    it(`quantum-${s}.service has the required keys`, () => {
      const u = parseUnit(readFileSync(join(ops, `systemd/quantum-${s}.service`), 'utf8'));
      const svc = u.Service ?? {};
      const one = (k: string) => svc[k]?.at(-1);
      expect(one('WorkingDirectory')).toBe('/opt/quantum-p3');
      expect(one('EnvironmentFile')).toBe(`/etc/quantum/${s}.env`);
      expect(one('User')).toBe('quantum');
      expect(one('ExecStart')).toBe(`/usr/bin/node bin/p3.mjs run ${s}`);
      expect(one('Restart')).toBe('always');
      expect(Number(one('RestartSec'))).toBeGreaterThanOrEqual(1);
      expect(Number(one('RestartSec'))).toBeLessThanOrEqual(10);
      expect(one('KillSignal')).toBe('SIGTERM');
      expect(Number(one('TimeoutStopSec'))).toBeGreaterThan(0);
      expect(one('RestartPreventExitStatus')).toBe('2');
      expect(one('NoNewPrivileges')).toBe('true');
      expect(one('ProtectSystem')).toBe('strict');
      expect(one('ProtectHome')).toBe('true');
      expect(one('PrivateTmp')).toBe('true');
      expect(one('RestrictAddressFamilies')?.split(/\s+/).sort()).toEqual(['AF_INET', 'AF_INET6', 'AF_UNIX']);
      expect(svc.MemoryDenyWriteExecute, 'V8 JIT needs W+X').toBeUndefined();
      expect(u.Install?.WantedBy).toEqual(['multi-user.target']);
    });
  }

  it.runIf(spawnSync('systemd-analyze', ['--version']).status === 0)('pass systemd-analyze verify', () => {
    const files = SERVICE_NAMES.map((s) => join(ops, `systemd/quantum-${s}.service`));
    const r = spawnSync('systemd-analyze', ['verify', '--man=no', ...files], { encoding: 'utf8' });
    expect(`${r.stdout}${r.stderr}`.trim()).toBe('');
    expect(r.status).toBe(0);
  });
});

/**
 * Variable names a TypeScript file reads: `env.NAME` / `process.env.NAME`, and the keys `NAME:` of zod
 * shapes in files that call `parseEnv`.
 */
function variablesIn(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const names = new Set<string>();
  if (text.includes('parseEnv(')) for (const m of text.matchAll(/^\s+([A-Z][A-Z0-9]*_[A-Z0-9_]+|EXCHANGE):\s/gm)) names.add(m[1] as string);
  for (const m of text.matchAll(/\benv\.([A-Z][A-Z0-9_]+)\b/g)) names.add(m[1] as string);
  return [...names];
}

function listTs(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? listTs(p) : p.endsWith('.ts') ? [p] : [];
  });
}

const envFile = (s: string) => readFileSync(join(ops, `env/${s}.env`), 'utf8');
const documented = (text: string, v: string) => new RegExp(`^# .+\\n#?${v}=`, 'm').test(text);

describe('env examples', () => {
  for (const s of SERVICE_NAMES) {
    it(`ops/env/${s}.env documents every variable of src/services/${s}`, () => {
      const text = envFile(s);
      const vars = new Set(readdirSync(join(root, 'src/services', s)).filter((f) => /config\.ts$/.test(f)).flatMap((f) => variablesIn(join(root, 'src/services', s, f))));
      expect(vars.size).toBeGreaterThan(3);
      const missing = [...vars].filter((v) => !documented(text, v));
      expect(missing).toEqual([]);
    });
  }

  it('the exchange variables are documented for the services that talk to the exchange', () => {
    const vars = variablesIn(join(root, 'src/adapters/exchange/factory.ts'));
    expect(vars).toContain('EXCHANGE_API_KEY');
    for (const s of ['position-state-brain', 'apply-layer']) expect(vars.filter((v) => !documented(envFile(s), v))).toEqual([]);
  });

  it('every variable read anywhere in src/ is documented in some env file', () => {
    const all = [...SERVICE_NAMES, 'console'].map(envFile).join('\n');
    const ignore = new Set(['USER', 'SUDO_USER', 'HOME', 'PATH', 'NODE_ENV', 'CI']);
    const vars = new Set(listTs(join(root, 'src')).flatMap(variablesIn));
    for (const m of readFileSync(join(root, 'src/config/env.ts'), 'utf8').matchAll(/'(P3_[A-Z_]+?)_?'/g)) vars.add(m[1] as string);
    const missing = [...vars].filter((v) => !ignore.has(v) && !/^P3_KEY_|^P3_QTY_TOLERANCE_ABS_/.test(v) && !documented(all, v));
    expect(missing).toEqual([]);
    expect(all).toMatch(/^P3_KEY_EXIT_BRAIN=/m);
    expect(all).toMatch(/^#P3_QTY_TOLERANCE_ABS_BTCUSDT=/m);
  });

  it('the examples, their placeholder secrets filled in, are valid configurations (p3 doctor --env-dir)', async () => {
    // as shipped they must not start (placeholder keys and passwords: test/cli/doctor-safety.test.ts); an
    // operator replaces each placeholder with its own secret, one per variable, the same in every file
    const filled = mkdtempSync(join(tmp, 'env-filled-'));
    const secret = (name: string) => createHash('sha256').update(name).digest('hex');
    for (const s of [...SERVICE_NAMES, 'console']) {
      const text = envFile(s)
        .replace(/^(P3_KEY_\w+|EXCHANGE_API_KEY|EXCHANGE_API_SECRET)=change-me.*$/gm, (_, v: string) => `${v}=${secret(v)}`)
        .replace(/^(REDIS_URL=redis:\/\/)([\w-]+):change-me@/gm, (_, pre: string, user: string) => `${pre}${user}:${secret(user)}@`);
      writeFileSync(join(filled, `${s}.env`), text);
    }
    const port = await freePort();
    const out = await new Promise<string>((resolve, reject) => {
      const p = spawn(process.execPath, ['bin/p3.mjs', 'doctor', '--json', '--env-dir', filled], { cwd: root, env: { PATH: process.env.PATH ?? '', REDIS_URL: `redis://127.0.0.1:${port}` } });
      let o = '';
      p.stdout.on('data', (d: Buffer) => (o += d.toString()));
      p.on('error', reject);
      p.on('exit', () => resolve(o));
    });
    // Only the config lines matter here; REDIS_URL is overridden so the test never touches 127.0.0.1:6379.
    const checks = (JSON.parse(out) as { checks: CheckResult[] }).checks.filter((c) => c.check.startsWith('config:'));
    expect(checks.map((c) => c.check).sort()).toEqual(SERVICE_NAMES.map((s) => `config:${s}`).sort());
    for (const c of checks) expect(c, c.detail).toMatchObject({ status: 'OK' });
  }, 60_000);
});

function install(env: Record<string, string>, args: string[]): { code: number | null; out: string } {
  const r = spawnSync('bash', [join(ops, 'install.sh'), ...args], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '', SYSTEMCTL: '/bin/false', ...env }, timeout: 120_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

function unitDirWith(workdir: string | null): string {
  const dir = mkdtempSync(join(tmp, 'units-'));
  for (const s of SERVICE_NAMES) {
    const text = readFileSync(join(ops, `systemd/quantum-${s}.service`), 'utf8');
    writeFileSync(join(dir, `quantum-${s}.service`), workdir === null ? text.replace(/^WorkingDirectory=.*\n/m, '') : text.replace(/^WorkingDirectory=.*$/m, `WorkingDirectory=${workdir}`));
  }
  return dir;
}

describe('ops/install.sh', () => {
  it('deploys to the WorkingDirectory of the installed units and keeps existing env files', () => {
    const deploy = join(tmp, 'home-qt-quantum');
    const units = unitDirWith(deploy);
    const etc = join(tmp, 'etc-quantum');
    mkdirSync(etc);
    writeFileSync(join(etc, 'governor.env'), 'REDIS_URL=redis://10.0.0.1:6379\n');
    const r = install({ SYSTEMD_UNIT_DIR: units, QUANTUM_ETC_DIR: etc }, ['--no-restart', '--skip-npm', '--skip-user']);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain(`deploying to ${deploy} (from the units)`);
    expect(r.out).toContain('kept the installed');
    expect(existsSync(join(deploy, 'bin/p3.mjs'))).toBe(true);
    expect(existsSync(join(deploy, 'src/host/heartbeat.ts'))).toBe(true);
    expect(existsSync(join(deploy, 'node_modules'))).toBe(false);
    // The installed (customised) units were kept, not replaced by ours.
    expect(readFileSync(join(units, 'quantum-apply-layer.service'), 'utf8')).toContain(`WorkingDirectory=${deploy}`);
    expect(readFileSync(join(etc, 'governor.env'), 'utf8')).toBe('REDIS_URL=redis://10.0.0.1:6379\n');
    for (const s of SERVICE_NAMES.filter((x) => x !== 'governor')) {
      expect(readFileSync(join(etc, `${s}.env`), 'utf8')).toBe(envFile(s));
      expect(statSync(join(etc, `${s}.env`)).mode & 0o777).toBe(0o640);
    }
  });

  it('follows a drop-in override, and refuses units that disagree', () => {
    const a = join(tmp, 'a');
    const units = unitDirWith(a);
    mkdirSync(join(units, 'quantum-governor.service.d'));
    writeFileSync(join(units, 'quantum-governor.service.d/override.conf'), `[Service]\nWorkingDirectory=${join(tmp, 'b')}\n`);
    const r = install({ SYSTEMD_UNIT_DIR: units, QUANTUM_ETC_DIR: join(tmp, 'etc2') }, ['--no-restart', '--skip-npm', '--skip-user']);
    expect(r.code).toBe(1);
    expect(r.out).toContain(`quantum-governor.service: WorkingDirectory=${join(tmp, 'b')}`);
    expect(r.out).toMatch(/units disagree on WorkingDirectory/);
    expect(existsSync(a)).toBe(false);
    // With the same override for every unit, the code goes to the override's directory.
    for (const s of SERVICE_NAMES.filter((x) => x !== 'governor')) {
      mkdirSync(join(units, `quantum-${s}.service.d`), { recursive: true });
      cpSync(join(units, 'quantum-governor.service.d/override.conf'), join(units, `quantum-${s}.service.d/override.conf`));
    }
    const ok = install({ SYSTEMD_UNIT_DIR: units, QUANTUM_ETC_DIR: join(tmp, 'etc2') }, ['--no-restart', '--skip-npm', '--skip-user']);
    expect(ok.code, ok.out).toBe(0);
    expect(existsSync(join(tmp, 'b/bin/p3.mjs'))).toBe(true);
    expect(existsSync(a)).toBe(false);
  });

  it('refuses a unit without WorkingDirectory', () => {
    const r = install({ SYSTEMD_UNIT_DIR: unitDirWith(null), QUANTUM_ETC_DIR: join(tmp, 'etc3') }, ['--no-restart', '--skip-npm', '--skip-user']);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/has no WorkingDirectory: set it explicitly/);
    expect(existsSync(join(tmp, 'etc3'))).toBe(false);
  });

  it('--dry-run on a fresh host changes nothing and names /opt/quantum-p3 from the shipped units', () => {
    const units = join(tmp, 'empty-units');
    const r = install({ SYSTEMD_UNIT_DIR: units, QUANTUM_ETC_DIR: join(tmp, 'etc4') }, ['--dry-run', '--skip-npm', '--no-restart']);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain('deploying to /opt/quantum-p3 (from the units), running as quantum');
    expect(r.out).toContain('[dry-run] install -m 0644');
    expect(existsSync(units)).toBe(false);
    expect(existsSync(join(tmp, 'etc4'))).toBe(false);
  });
});
