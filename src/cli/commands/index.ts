/** Every command group of the `p3` CLI, one registrar per file. */
import type { Command } from 'commander';
import { registerRunCommand } from './run.js';
import { registerReconcileCommands } from './reconcile.js';
import { registerPlanCommands } from './plan.js';
import { registerPaperExchangeCommand } from './paper-exchange.js';
import { registerDoctorCommand } from './doctor.js';
import { registerDemoCommand } from './demo.js';
import { registerBenchCommand } from './bench.js';
import { registerConsoleCommand } from './console.js';
import { registerFlattenCommand } from './flatten.js';
import { registerChaosCommand } from './chaos.js';
import { registerRedisAclCommand } from './redis-acl.js';
import { registerExchangeBackoffCommand } from './exchange-backoff.js';
import { registerPlanStreamCommands } from './plan-stream.js';

/** Adds commands to the program. */
export type CommandRegistrar = (program: Command) => void;

/** The registrars, in `p3 --help` order. */
export const COMMAND_REGISTRARS: CommandRegistrar[] = [registerRunCommand, registerReconcileCommands, registerPlanCommands, registerFlattenCommand, registerExchangeBackoffCommand, registerPaperExchangeCommand, registerDoctorCommand, registerRedisAclCommand, registerPlanStreamCommands, registerConsoleCommand, registerDemoCommand, registerChaosCommand, registerBenchCommand];
