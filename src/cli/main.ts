/**
 * The `p3` command. Commands are thin: each parses its options and calls a service, domain or adapter
 * function. Exit codes: 0 ok, 1 failure, 2 bad configuration or usage.
 *
 * This module runs nothing when imported: the entry point (bin/p3.mjs) calls {@link runCli} with the
 * harness's command registrars (harness/cli/index.ts), so production code never imports the harness.
 */
import { Command, CommanderError } from 'commander';
import { ConfigError } from '../config/errors.js';
import { OperatorTextError } from '../domain/operator-text.js';
import { COMMAND_REGISTRARS, type CommandRegistrar } from './commands/index.js';

/**
 * Parses `argv` and runs the command it names; sets `process.exitCode` (never throws, never exits).
 * @param extra registrars added after the production commands (the harness's: demo, chaos, bench, paper-exchange)
 * @param argv process.argv-shaped arguments
 */
export async function runCli(extra: readonly CommandRegistrar[] = [], argv: readonly string[] = process.argv): Promise<void> {
  const program = new Command('p3')
    .description('quantum-p3: fail-closed execution-safety layer for crypto-futures trading')
    .version('0.1.0')
    .showHelpAfterError()
    .exitOverride();
  
  for (const register of [...COMMAND_REGISTRARS, ...extra]) register(program);
  
  try {
    await program.parseAsync([...argv]);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode === 0 ? 0 : 2;
    } else if (err instanceof ConfigError) {
      // a bad option or argument is a usage error, a bad environment variable a configuration error
      const usage = err.variable.startsWith('-') || err.variable === 'argument' || err.variable === 'SYMBOL';
      process.stderr.write(`p3: ${usage ? err.message.replace(/^invalid configuration: /, 'invalid usage: ') : err.message}\n`);
      process.exitCode = 2;
    } else if (err instanceof OperatorTextError) {
      // operator text refused (control characters): a usage error, nothing was written
      process.stderr.write(`p3: invalid usage: ${err.field === 'reason' ? '--reason' : err.field}: ${err.message.slice(err.field.length + 2)}\n`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`p3: ${(err as Error).message ?? String(err)}\n`);
      process.exitCode = 1;
    }
  }
}
