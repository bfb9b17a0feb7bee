/**
 * `p3 doctor [--json] [--env-dir DIR] [--services a,b]`: checks a deployment and prints one line per check,
 * `OK`, `WARN` or `FAIL` with a detail; exits 1 when any check fails. The checks are listed in
 * src/cli/doctor/checks.ts.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { Env } from '../../config/env.js';
import type { SentinelConfig } from '../../config/redis.js';
import { SERVICE_NAMES, resolveServiceNames, type ServiceName } from '../../host/service-names.js';
import { parseEnvFile } from '../doctor/env-file.js';

export { parseEnvFile } from '../doctor/env-file.js';
export type { CheckResult, CheckStatus, DoctorOptions } from '../doctor/checks.js';

/** Registers `p3 doctor`. */
export function registerDoctorCommand(program: Command): void {
  program
    .command('doctor')
    .description('check Redis, configuration, exchange and clock, schema, holds, dead letters and heartbeats; exit 1 on any FAIL')
    .option('--json', 'print the checks as JSON')
    .option('--env-dir <dir>', 'check each service against <dir>/<service>.env (e.g. /etc/quantum) instead of this environment')
    .option('--services <list>', `services expected to run (comma list or all)`, 'all')
    .action(async (o: { json?: boolean; envDir?: string; services: string }) => {
      const services = resolveServiceNames(o.services.split(',').map((s) => s.trim()).filter(Boolean));
      const envs: Partial<Record<ServiceName, Env>> = {};
      for (const s of services) {
        if (!o.envDir) envs[s] = process.env;
        else {
          try {
            envs[s] = parseEnvFile(readFileSync(`${o.envDir}/${s}.env`, 'utf8'));
          } catch (err) {
            envs[s] = {};
            process.stderr.write(`p3 doctor: cannot read ${o.envDir}/${s}.env: ${(err as Error)?.message ?? String(err)}\n`);
          }
        }
      }
      const redisUrl = process.env.REDIS_URL || (envs[services[0] ?? SERVICE_NAMES[0]]?.REDIS_URL ?? 'redis://127.0.0.1:6379');
      // the checks (ioredis, zod, the services' config modules) load only when the command runs
      const { runDoctor } = await import('../doctor/checks.js');
      const { parseRedisTarget } = await import('../../config/redis.js');
      let sentinel: SentinelConfig | null = null;
      try {
        sentinel = parseRedisTarget(process.env.REDIS_URL || process.env.REDIS_SENTINELS ? process.env : (envs[services[0] ?? SERVICE_NAMES[0]] ?? {})).sentinel;
      } catch {
        sentinel = null; // a bad Sentinel variable is reported by the config checks
      }
      const results = await runDoctor({ redisUrl, sentinel, envs, services, envFiles: Boolean(o.envDir) });
      if (o.json) process.stdout.write(`${JSON.stringify({ ok: !results.some((r) => r.status === 'FAIL'), checks: results }, null, 2)}\n`);
      else for (const r of results) process.stdout.write(`${r.status.padEnd(4)}  ${r.check.padEnd(28)} ${r.detail}\n`);
      if (results.some((r) => r.status === 'FAIL')) process.exitCode = 1;
      // without --env-dir the configuration checks read this shell, which is rarely what the services run with
      if (!o.envDir && results.some((r) => r.status === 'FAIL' && /^(config:|keys$|endpoints$|secrets$)/.test(r.check))) {
        process.stderr.write('p3 doctor: the configuration was checked against this shell\'s environment; to check the services as deployed use --env-dir /etc/quantum (the demo prints its own --env-dir)\n');
      }
    });
}
