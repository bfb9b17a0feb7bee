#!/usr/bin/env node
// Entry point of the `p3` command. Runs the compiled JavaScript of the current sources (dist/<hash>/, built
// by `npm ci`/`npm start`/`npm test` through bin/dist.mjs) when it exists; otherwise — sources edited since the
// last build, or no build at all — registers the tsx loader and runs the TypeScript sources as they are. Either
// way the code run is the code in src/: a build of other sources has another hash and is never run.
// `P3_NO_DIST=1` forces tsx; `P3_LOADER_TRACE=1` says on stderr which one runs.
import { setFlagsFromString } from 'node:v8';
import { currentEntry, harnessEntries } from './dist.mjs';

// WebAssembly stays on V8's baseline compiler (Liftoff). The only WebAssembly here is undici's HTTP parser
// (llhttp, loaded by ccxt for its first request): optimising it with TurboFan took ~35 MB for ~0.2 s in every
// process that talks to the exchange — most of its peak RSS (docs/performance.md) — to speed up parsing a
// few small answers a second. Read by V8 when a module is compiled, so setting it here, before any, suffices.
// `P3_WASM_TIERUP=1` keeps V8's default.
if (process.env.P3_WASM_TIERUP !== '1') setFlagsFromString('--liftoff-only');

const entry = currentEntry();
if (process.env.P3_LOADER_TRACE === '1') process.stderr.write(`p3: loader ${entry ? `dist ${entry}` : 'tsx src/cli/main.ts'}\n`);
// The production CLI (src/cli/main.ts) plus the harness's commands (harness/cli/index.ts) and `p3 bench`
// (bench/cli.ts): composed here, at
// the entry point, so that no production module imports the harness.
let cli, harness, bench;
if (entry) {
  // stack traces name the TypeScript lines, as they did under tsx
  process.setSourceMapsEnabled(true);
  const more = harnessEntries(entry);
  cli = await import(entry);
  harness = await import(more.harness);
  bench = await import(more.bench);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  cli = await import('../src/cli/main.ts');
  harness = await import('../harness/cli/index.ts');
  bench = await import('../bench/cli.ts');
}
await cli.runCli([...harness.HARNESS_COMMANDS, bench.registerBenchCommand]);
