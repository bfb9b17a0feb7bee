/** CLI commands: paper-exchange. Not implemented yet. */
import type { Command } from 'commander';

/** Registers the commands of this file. */
export function registerPaperExchangeCommand(_program: Command): void {}
