#!/usr/bin/env node
// Entry point of the `p3` command: registers the tsx loader so the TypeScript sources run as they are
// (no build step after `npm ci`), then hands over to the CLI.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
