// The `custos` executable's entry point: hands the arguments to the CLI (cli.ts). No top-level await:
// the single executable bundles from this file into CommonJS (scripts/bundle.mjs), which cannot hold one;
// run() catches every failure itself and sets the exit code.
import { run } from './cli.js';

void run(process.argv.slice(2));
