/** CLI commands: plan submit, trading-state. Not implemented yet. */
import type { Command } from 'commander';

/** Registers the commands of this file. */
export function registerPlanCommands(_program: Command): void {}
