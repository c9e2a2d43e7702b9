#!/usr/bin/env bash
# Builds external-tagger.wasm, a Sluice plugin written in JavaScript, with
# componentize-js (StarlingMonkey, a SpiderMonkey build for WASI, snapshotted with Wizer).
#
#   ./build.sh              # -> external-tagger.wasm (gitignored), imports log + config
#   ./build.sh --full-world # -> external-tagger-full-world.wasm, against ../../wit/v0.2.0/plugin.wit
#                           # world `plugin` as is:
#                           # imports dns and kv as well, so it needs all four grants
#
# Needs node >= 18 and npm. Versions are pinned in package-lock.json.
set -euo pipefail
cd "$(dirname "$0")"

# Nothing to do when the component is newer than everything it is built from.
if [ "${1:-}" != "--full-world" ] && [ -f external-tagger.wasm ] &&
    [ -z "$(find src wit ../../wit/v0.2.0/plugin.wit package.json package-lock.json build.sh -newer external-tagger.wasm 2>/dev/null)" ]; then
    echo "up to date: $(pwd)/external-tagger.wasm"
    exit 0
fi

# package.json pins @bytecodealliance/preview2-shim itself: componentize-js 0.23.0 imports
# it without declaring it, and from 0.26 on its WASI preopens no longer let the splicer
# read the WIT directory ("reading file .../build/wit ... os error 44").
# Install what package-lock.json pins; skipped when node_modules is current. (Not
# `npm ci`: registry mirrors without some other platforms' optional binaries make npm
# leave those out of the lock file, which `npm ci` then refuses as out of sync.)
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm install --no-audit --no-fund
fi

# The world: wit/tagger.wit (imports log and config only) with the server's contract,
# ../../wit/v0.2.0/plugin.wit, as its dependency. Built against the full `plugin` world, the
# component would import dns and kv as well and need those grants too.
rm -rf build
mkdir -p build/wit/deps/sluice-plugin
cp wit/tagger.wit build/wit/
cp ../../wit/v0.2.0/plugin.wit build/wit/deps/sluice-plugin/
world=(--wit build/wit --world-name tagger)
out=external-tagger.wasm
if [ "${1:-}" = "--full-world" ]; then
    world=(--wit ../../wit/v0.2.0/plugin.wit --world-name plugin)
    out=external-tagger-full-world.wasm
fi

# --disable stdio: console output links wasi:filesystem (through wasi-libc's stdio),
#   which Sluice refuses to load; the plugin logs through the `log` interface instead.
# --disable http fetch-event: no outbound HTTP (wasi:http), no incoming-handler export.
# What remains imported from WASI: io, cli/stderr, clocks and random, all allowed.
npx --no-install componentize-js src/plugin.js \
    "${world[@]}" \
    --disable stdio http fetch-event \
    -o "$out"

echo "built $(pwd)/$out ($(wc -c < "$out") bytes)"
