#!/usr/bin/env bash
# Builds the plugin, runs its unit tests, then runs it through `sluice plugin test` on
# the fixtures (test/runner.test.js). Set SLUICE to the server binary if it is not on
# PATH or in the repo's target/.
set -euo pipefail
cd "$(dirname "$0")"
./build.sh
node --test test/
