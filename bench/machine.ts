/** The machine a bench ran on (recorded in results.json and docs/performance.md). */
import { readFileSync } from 'node:fs';
import { availableParallelism, loadavg, release, totalmem, type as osType } from 'node:os';
import type { Redis } from 'ioredis';

/** `machine` of results.json. */
export interface MachineInfo {
  nproc: number;
  cpu_model: string;
  mem_total_mb: number;
  os: string;
  node: string;
  redis: string;
  /** 1-minute load average when the bench started (other work on the machine skews the figures). */
  loadavg_1m_start: number;
  started_at: string;
  command: string;
  mode: 'full' | 'quick';
}

function cpuModel(): string {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    return m?.[1]?.trim() ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Collects the machine facts; the Redis version from `INFO server` of `redis`. */
export async function machineInfo(redis: Redis, mode: 'full' | 'quick', command: string): Promise<MachineInfo> {
  const info = await redis.info('server');
  return {
    nproc: availableParallelism(),
    cpu_model: cpuModel(),
    mem_total_mb: Math.round(totalmem() / 1024 / 1024),
    os: `${osType()} ${release()}`,
    node: process.version,
    redis: /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown',
    loadavg_1m_start: Math.round((loadavg()[0] ?? 0) * 100) / 100,
    started_at: new Date().toISOString(),
    command,
    mode,
  };
}
