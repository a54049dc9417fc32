// The entry point scripts/bundle.mjs bundles from: main.ts without its top-level await, which a
// CommonJS bundle cannot hold. run() catches every failure itself and sets the exit code.
import { run } from '../cli.js';

void run(process.argv.slice(2));
