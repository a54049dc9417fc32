// Bundles the compiled CLI and TUI (and their runtime dependencies) into one
// CommonJS file, BUILT/custos.cjs, that the single executable runs. Loading one
// file instead of about 300 modules, each resolved, read and linked on its own,
// is what the appliance's first screen waits for on a slow CPU (README, "Single executable").
// The files stay in the executable beside the bundle: worker threads, the
// native addon, the JSON Schemas and lazily required packages (ajv) are loaded
// from them at run time, by the same paths as in a checkout.
// Usage: node scripts/bundle.mjs [BUILT]   (default out)
import * as esbuild from 'esbuild';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const built = path.resolve(repo, process.argv[2] ?? 'out');
const outfile = path.join(built, 'custos.cjs');
/**
 * A path as the bundle sees it at run time: relative to the bundle's own file, in the executable's
 * layout, where BUILT is out/ beside node_modules/ whatever its depth here (the ISO builds from build/iso-ts).
 */
const atRunTime = (p) => (path.relative(built, p).startsWith('..') ? p : path.join(repo, 'out', path.relative(built, p)));
const fromBundle = (p) => JSON.stringify(`./${path.relative(path.join(repo, 'out'), atRunTime(p))}`);

// Each module keeps its own location: import.meta.url, __dirname and __filename name the file the
// code was written in (worker scripts, schema/, package.json and blessed's terminfo are found from there).
const ownPaths = {
  name: 'custos-own-paths',
  setup(build) {
    build.onLoad({ filter: /\.c?js$/ }, async (args) => {
      let src = await readFile(args.path, 'utf8');
      // blessed requires its widgets by computed name; a bundler sees only literal names.
      if (args.path.endsWith(`${path.sep}blessed${path.sep}lib${path.sep}widget.js`)) {
        const names = (await readdir(path.join(path.dirname(args.path), 'widgets'))).filter((f) => f.endsWith('.js')).sort();
        const table = names.map((f) => `${JSON.stringify(f.slice(0, -3))}: () => require('./widgets/${f}')`).join(', ');
        const call = "require('./widgets/' + file)";
        if (!src.includes(call)) throw new Error(`blessed's widget.js no longer says ${call}: check the bundle's widget table`);
        src = src.replace(call, `({ ${table} })[file]()`);
      }
      src = src.replaceAll('import.meta.url', `new URL(${fromBundle(args.path)}, __custosBundleUrl).href`);
      src = src.replace(/\b__dirname\b/g, `__custosPathOf(${fromBundle(path.dirname(args.path))})`);
      src = src.replace(/\b__filename\b/g, `__custosPathOf(${fromBundle(args.path)})`);
      return { contents: src, loader: 'js' };
    });
  },
};

await esbuild.build({
  absWorkingDir: repo,
  entryPoints: [path.join(built, 'appliance/main.js')],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node24',
  // blessed's terminal widget (not used) asks for optional packages that are not installed.
  external: ['term.js', 'pty.js'],
  banner: {
    js: [
      "const __custosBundleUrl = require('node:url').pathToFileURL(__filename);",
      "const __custosPathOf = (rel) => require('node:url').fileURLToPath(new URL(rel, __custosBundleUrl));",
    ].join('\n'),
  },
  legalComments: 'none',
  logLevel: 'warning',
  plugins: [ownPaths],
});
