#!/usr/bin/env bash
# Builds external-tagger.wasm, a Sluice plugin written in JavaScript, with
# componentize-js (StarlingMonkey, a SpiderMonkey build for WASI, snapshotted with Wizer).
#
#   ./build.sh              # -> external-tagger.wasm (gitignored), imports log + config
#   ./build.sh --full-world # the same against ../../wit/plugin.wit world `plugin` as is:
#                           # imports dns and kv as well, so it needs all four grants
#
# Needs node >= 18 and npm. Versions are pinned in package-lock.json.
set -euo pipefail
cd "$(dirname "$0")"

# Install exactly what package-lock.json pins; skipped when node_modules is current.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund
fi

# The world: wit/tagger.wit (imports log and config only) with the server's contract,
# ../../wit/plugin.wit, as its dependency. Built against the full `plugin` world, the
# component would import dns and kv as well and need those grants too.
rm -rf build
mkdir -p build/wit/deps/sluice-plugin
cp wit/tagger.wit build/wit/
cp ../../wit/plugin.wit build/wit/deps/sluice-plugin/
world=(--wit build/wit --world-name tagger)
if [ "${1:-}" = "--full-world" ]; then
    world=(--wit ../../wit/plugin.wit --world-name plugin)
fi

# --disable stdio: console output links wasi:filesystem (through wasi-libc's stdio),
#   which Sluice refuses to load; the plugin logs through the `log` interface instead.
# --disable http fetch-event: no outbound HTTP (wasi:http), no incoming-handler export.
# What remains imported from WASI: io, cli/stderr, clocks and random, all allowed.
npx --no-install componentize-js src/plugin.js \
    "${world[@]}" \
    --disable stdio http fetch-event \
    -o external-tagger.wasm

echo "built $(pwd)/external-tagger.wasm ($(wc -c < external-tagger.wasm) bytes)"
