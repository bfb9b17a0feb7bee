/** CLI commands: status, hold, ledger, events. Not implemented yet. */
import type { Command } from 'commander';

/** Registers the commands of this file. */
export function registerReconcileCommands(_program: Command): void {}
