/**
 * The `p3` command. Commands are thin: each parses its options and calls a service, domain or adapter
 * function. Exit codes: 0 ok, 1 failure, 2 bad configuration or usage.
 */
import { Command, CommanderError } from 'commander';
import { ConfigError } from '../config/errors.js';
import { OperatorTextError } from '../domain/operator-text.js';
import { COMMAND_REGISTRARS } from './commands/index.js';

const program = new Command('p3')
  .description('quantum-p3: fail-closed execution-safety layer for crypto-futures trading')
  .version('0.1.0')
  .showHelpAfterError()
  .exitOverride();

for (const register of COMMAND_REGISTRARS) register(program);

try {
  await program.parseAsync(process.argv);
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
