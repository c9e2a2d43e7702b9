#!/usr/bin/env bash
# Containment of hostile plugins under load (issue 17). For each hostile behaviour of
# the test plugin (a loop to its 100 ms CPU budget, a 16 MB memory bomb, 200,000 header
# changes, a trap, a DNS lookup that never answers), 4 well-behaved sessions send mail
# beside 2 hostile sessions, and their throughput is printed against
#   - the honest baseline: the same load beside 2 sessions with the same connection
#     pattern whose transactions the plugin refuses at once (same stage), and
#   - no hostile clients (the same server, the well-behaved sessions alone).
# Each measurement lasts SECONDS (default 5), median of RUNS (default 3). Run by hand,
# not by CI; the figures are only as quiet as the machine.
#
# Usage: bench/plugin-abuse.sh [--no-build] [--bin PATH] [--seconds S] [--runs N]
#                              [--cases loop,trap,...] [--plugins-extra TOML]
#   --no-build       build nothing (the binary and plugins/.../testing.wasm must exist)
#   --bin PATH       the sluice binary (default target/release/sluice)
#   --plugins-extra  TOML added to [plugins], e.g. $'[plugins.penalty_box]\nenabled = false'
set -euo pipefail
cd "$(dirname "$0")/.."
build=1 bin=target/release/sluice args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --no-build) build=0 ;;
    --bin) bin=$2; shift ;;
    --seconds | --runs | --cases | --plugins-extra) args+=("$1" "$2"); shift ;;
    *) echo "unknown option $1 (see the usage at the top of $0)" >&2; exit 2 ;;
  esac
  shift
done
wasm=$PWD/plugins/target/wasm32-wasip2/release/testing.wasm
if [ "$build" = 1 ]; then
  cargo build --release -q
  (cd plugins && cargo build --release --target wasm32-wasip2 -q -p testing)
fi
[ -x "$bin" ] || { echo "no sluice binary at $bin" >&2; exit 1; }
[ -f "$wasm" ] || { echo "no test plugin at $wasm (build it or drop --no-build)" >&2; exit 1; }
# The driver starts the servers and load processes, and stops them all on exit.
exec python3 bench/plugin-abuse.py --bin "$(realpath "$bin")" --wasm "$wasm" "${args[@]}"
