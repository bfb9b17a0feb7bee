/**
 * The services of a chaos run as separate OS processes (`node bin/p3.mjs run <service>`, exactly as
 * production runs them), each with its own `P3_INSTANCE_ID` and log file, under a supervisor that knows
 * which deaths it caused: the fault injector kills (`kill -9`), pauses (SIGSTOP) and resumes (SIGCONT)
 * them; any other exit is recorded as an unexpected death (an invariant violation).
 *
 * Invariants: a killed process is restarted with the same instance id (its consumers first re-read their
 * own pending entries); `stop()` sends SIGCONT before SIGTERM (a stopped process cannot drain).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ServiceName } from '../../src/host/service-names.js';
import { fromRoot } from '../../src/lib/root.js';

const BIN = fromRoot('bin/p3.mjs');

/** Variables never inherited from the caller's environment (the run sets what the services need). */
const OWN_PREFIXES = /^(REDIS_URL|REDIS_SENTINEL|P3_|P33_|P34_|APPLY_|GOVERNOR_|EXCHANGE)/;

/** A process that ended without the supervisor asking. */
export interface UnexpectedDeath {
  instance: string;
  service: ServiceName;
  pid: number;
  code: number | null;
  signal: string | null;
  at_ms: number;
  /** Last lines of its log. */
  log_tail: string[];
}

/** One supervised service process. */
export class SupervisedService {
  private proc: ChildProcess | null = null;
  private expectingExit = false;
  private paused = false;
  /** Times this process was (re)started. */
  starts = 0;
  /** Exit code of the final, requested stop (null = not stopped yet or killed by signal). */
  finalExitCode: number | null = null;

  constructor(
    readonly service: ServiceName,
    /** `P3_INSTANCE_ID`, e.g. `apply-layer-1`. */
    readonly instance: string,
    private readonly env: Record<string, string>,
    readonly logFile: string,
    private readonly onDeath: (d: UnexpectedDeath) => void,
  ) {}

  /** pid of the running process, 0 when none. */
  get pid(): number {
    return this.proc && this.proc.exitCode === null && this.proc.signalCode === null ? (this.proc.pid ?? 0) : 0;
  }

  /** True while a process runs (paused or not). */
  get running(): boolean {
    return this.pid !== 0;
  }

  /** True while SIGSTOPped. */
  get isPaused(): boolean {
    return this.paused;
  }

  /** Starts the process (no-op when one runs). Does not wait for readiness. */
  start(): void {
    if (this.running) return;
    const base: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !OWN_PREFIXES.test(k)) base[k] = v;
    const fd = openSync(this.logFile, 'a');
    const p = spawn(process.execPath, [BIN, 'run', this.service], { env: { ...base, ...this.env, P3_INSTANCE_ID: this.instance }, stdio: ['ignore', fd, fd] });
    closeSync(fd);
    this.proc = p;
    this.expectingExit = false;
    this.paused = false;
    this.starts++;
    p.once('exit', (code, signal) => {
      if (this.proc === p) this.proc = null;
      if (this.expectingExit) return;
      this.onDeath({ instance: this.instance, service: this.service, pid: p.pid ?? 0, code, signal, at_ms: Date.now(), log_tail: tail(this.logFile, 20) });
    });
  }

  /** `kill -9` (a crash the supervisor asked for); resolves when the process is gone. */
  async kill9(): Promise<void> {
    const p = this.proc;
    if (!p || !this.running) return;
    this.expectingExit = true;
    this.paused = false;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill('SIGKILL');
    });
  }

  /** SIGSTOP. @returns false when no process runs */
  pause(): boolean {
    if (!this.proc || !this.running || this.paused) return false;
    this.paused = this.proc.kill('SIGSTOP');
    return this.paused;
  }

  /** SIGCONT (no-op unless paused). */
  resume(): void {
    if (this.proc && this.paused) this.proc.kill('SIGCONT');
    this.paused = false;
  }

  /** SIGCONT + SIGTERM (drain), SIGKILL after `graceMs`; records the exit code. Never throws. */
  async stop(graceMs = 15_000): Promise<void> {
    const p = this.proc;
    if (!p || !this.running) return;
    this.expectingExit = true;
    this.resume();
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => p.kill('SIGKILL'), graceMs);
      p.once('exit', (code) => {
        clearTimeout(t);
        this.finalExitCode = code;
        resolve();
      });
      p.kill('SIGTERM');
    });
  }

  /** Synchronous SIGKILL, for exit handlers. */
  killSync(): void {
    if (this.proc && this.running) {
      this.expectingExit = true;
      this.proc.kill('SIGCONT');
      this.proc.kill('SIGKILL');
    }
  }
}

/** The last `n` lines of a file (empty when unreadable). */
export function tail(file: string, n: number): string[] {
  try {
    const lines = readFileSync(file, 'utf8').split('\n').filter((l) => l !== '');
    return lines.slice(-n);
  } catch {
    return [];
  }
}

/** The processes of a chaos run: two apply layers, two reconcile engines, one governor, one position brain. */
export const CHAOS_TOPOLOGY: Array<{ service: ServiceName; instance: string }> = [
  { service: 'governor', instance: 'governor-1' },
  { service: 'position-state-brain', instance: 'brain-1' },
  { service: 'reconcile-engine', instance: 'engine-1' },
  { service: 'reconcile-engine', instance: 'engine-2' },
  { service: 'apply-layer', instance: 'apply-1' },
  { service: 'apply-layer', instance: 'apply-2' },
];

/** Builds the supervised processes of {@link CHAOS_TOPOLOGY} with logs in `logDir`. Nothing is started. */
export function buildProcesses(env: Record<string, string>, logDir: string, onDeath: (d: UnexpectedDeath) => void): SupervisedService[] {
  return CHAOS_TOPOLOGY.map((t) => new SupervisedService(t.service, t.instance, env, join(logDir, `${t.instance}.log`), onDeath));
}
