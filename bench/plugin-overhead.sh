#!/usr/bin/env bash
# Accept throughput with plugins against the same server without any, in one run:
# smtp-source sends N messages of SIZE bytes over SESSIONS sessions to two Sluice
# instances, one with no plugins and one with PLUGINS copies of plugins/noop hooked at
# every stage (connect, helo, mail-from, rcpt-to, data). Prints both rates and the ratio.
#
# Usage: bench/plugin-overhead.sh [N] [SESSIONS] [SIZE] [PLUGINS]   (default 5000 20 4096 3)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-5000} sessions=${2:-20} size=${3:-4096} count=${4:-3}
work=$(mktemp -d)
# shellcheck source=bench/lib.sh
source bench/lib.sh
build_release
(cd plugins && cargo build --release --target wasm32-wasip2 -q -p noop)
noop=$PWD/plugins/target/wasm32-wasip2/release/noop.wasm

config() { # NAME PORT PLUGINS
  {
    printf '[server]\nhostname = "relay.bench.test"\nlisten = ["127.0.0.1:%s"]\n' "$2"
    printf '[limits]\nmax_connections_per_ip = 1000\n[queue]\npath = "%s/%s-queue"\n' "$work" "$1"
    for i in $(seq 1 "$3"); do
      printf '[[plugin]]\nname = "noop%s"\npath = "%s"\n' "$i" "$noop"
    done
  } > "$work/$1.toml"
}

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

start() { # NAME PORT
  start_sluice "$work/$1.toml" "$2" "$work/$1.log"
  pids+=("$sluice_pid")
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# Prints "msgs/s cpu-µs-per-message" for a run against PORT served by PID. CPU time of
# the server per message is robust against other load on the machine; the rate is not.
rate() { # PORT PID
  local t0 t1 c0 c1
  c0=$(cpu_ticks "$2"); t0=$(date +%s.%N)
  smtp-source -s "$sessions" -m "$n" -l "$size" -f sender@example.org -t rcpt@example.com 127.0.0.1:"$1" >/dev/null 2>&1
  t1=$(date +%s.%N); c1=$(cpu_ticks "$2")
  python3 -c "import os; hz=os.sysconf('SC_CLK_TCK'); print(f'{$n/($t1-$t0):.0f} {($c1-$c0)/hz/$n*1e6:.0f}')"
}

read -r plain_port plugins_port < <(free_ports 2 3625)
config plain "$plain_port" 0
config plugins "$plugins_port" "$count"
start plain "$plain_port"; plain_pid=${pids[-1]}
start plugins "$plugins_port"; plugins_pid=${pids[-1]}
# Warm up both, then measure each twice, alternating, and keep the better run.
for port in "$plain_port" "$plugins_port"; do smtp-source -s 5 -m 300 -l "$size" -f s@example.org -t r@example.com 127.0.0.1:"$port" >/dev/null 2>&1; done
read -r p1 pc1 <<<"$(rate "$plain_port" "$plain_pid")"; read -r q1 qc1 <<<"$(rate "$plugins_port" "$plugins_pid")"
read -r p2 pc2 <<<"$(rate "$plain_port" "$plain_pid")"; read -r q2 qc2 <<<"$(rate "$plugins_port" "$plugins_pid")"
plain=$(( p1 > p2 ? p1 : p2 )); plugged=$(( q1 > q2 ? q1 : q2 ))
echo "accept throughput, n=$n sessions=$sessions size=$size, $(nproc) cores, $(date -u +%F)"
echo "  no plugins:               $plain msg/s   (runs: $p1, $p2; server CPU per message: ${pc1}, ${pc2} µs)"
echo "  $count plugins at 5 stages: $plugged msg/s   (runs: $q1, $q2; server CPU per message: ${qc1}, ${qc2} µs)"
python3 -c "print(f'  throughput ratio: {$plugged/$plain:.2f}   CPU ratio (plain/plugins): {($pc1+$pc2)/($qc1+$qc2):.2f}')"
