// The `custos` executable's entry point: hands the arguments to the CLI (cli.ts).
import { run } from './cli.js';

await run(process.argv.slice(2));
