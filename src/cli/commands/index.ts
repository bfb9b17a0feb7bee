/**
 * Every production command group of the `p3` CLI, one registrar per file. The harness's commands (`p3 demo`,
 * `p3 chaos`, `p3 bench`, `p3 paper-exchange`) live in harness/cli/ and are added by the entry point
 * (bin/p3.mjs), so no production module imports the harness.
 */
import type { Command } from 'commander';
import { registerRunCommand } from './run.js';
import { registerStatusCommand } from './status.js';
import { registerHoldCommands } from './hold.js';
import { registerLedgerCommands } from './ledger.js';
import { registerEventsCommand } from './events.js';
import { registerPlanCommands } from './plan.js';
import { registerDoctorCommand } from './doctor.js';
import { registerConsoleCommand } from './console.js';
import { registerFlattenCommand } from './flatten.js';
import { registerRedisAclCommand } from './redis-acl.js';
import { registerExchangeBackoffCommand } from './exchange-backoff.js';
import { registerPlanStreamCommands } from './plan-stream.js';

/** Adds commands to the program. */
export type CommandRegistrar = (program: Command) => void;

/** The registrars, in `p3 --help` order. */
export const COMMAND_REGISTRARS: CommandRegistrar[] = [registerRunCommand, registerStatusCommand, registerHoldCommands, registerLedgerCommands, registerEventsCommand, registerPlanCommands, registerFlattenCommand, registerExchangeBackoffCommand, registerDoctorCommand, registerRedisAclCommand, registerPlanStreamCommands, registerConsoleCommand];
