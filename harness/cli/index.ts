/**
 * The harness's `p3` commands: the paper exchange, the demo and the chaos tool. They are not production
 * code; bin/p3.mjs adds them, and `p3 bench` (bench/cli.ts), to the production CLI (src/cli/main.ts) at start.
 */
import type { CommandRegistrar } from '../../src/cli/commands/index.js';
import { registerPaperExchangeCommand } from './paper-exchange.js';
import { registerDemoCommand } from './demo.js';
import { registerChaosCommand } from './chaos.js';

/** The harness's registrars, in `p3 --help` order (after the production commands). */
export const HARNESS_COMMANDS: CommandRegistrar[] = [registerPaperExchangeCommand, registerDemoCommand, registerChaosCommand];
