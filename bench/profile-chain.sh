#!/usr/bin/env bash
# Where the example chain's time goes: one Sluice with examples/sluice.toml's chain (as
# compare-postfix.sh derives it), smtp-source -> Sluice -> smtp-sink over loopback,
# sampled with `perf record -e cpu-clock` while N messages of SIZE bytes go through.
# The server is built with `--features perfmap`, so wasmtime writes /tmp/perf-PID.map
# and the plugins' compiled functions have names in the report.
#
# Prints the server's CPU time per message (user and system, from /proc: far steadier
# than wall-clock rates on a shared machine; system time is mostly the queue's writes
# and loopback TCP, and moves with the machine's I/O load) and the top entries of the flat profile
# (self time by symbol, every thread of the server). The raw data stays in OUT.data.
#
# Usage: bench/profile-chain.sh [--size BYTES] [--n N] [--sessions S] [--top K]
#                               [--no-plugins] [--out PATH] [--base-port P] [--bin PATH]
#   defaults: --size 102400 --n 1000 --sessions 20 --top 20 --out /tmp/sluice-profile
#   --bin      profile this server binary (built with --features perfmap) instead of
#              building one: to compare with an earlier build
# Needs root (smtp-sink -u postfix) and perf (linux-perf).
set -euo pipefail
cd "$(dirname "$0")/.."

size=102400 n=1000 sessions=20 top=20 out=/tmp/sluice-profile base_port=4525 variant=chain bin=""
while [ $# -gt 0 ]; do
  case $1 in
    --size) size=$2; shift 2 ;;
    --n) n=$2; shift 2 ;;
    --sessions) sessions=$2; shift 2 ;;
    --top) top=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --base-port) base_port=$2; shift 2 ;;
    --no-plugins) variant=no-plugins; shift ;;
    --bin) bin=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
done
command -v perf >/dev/null || { echo "perf is missing (apt-get install linux-perf)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-profile.XXXXXX")
chmod 755 "$work"
# shellcheck source=bench/lib.sh
source bench/lib.sh
sluice_bin=target/release/sluice-perfmap

perf_pid="" sink_pid=""
cleanup() {
  [ -z "$perf_pid" ] || kill -INT "$perf_pid" 2>/dev/null || true
  [ -z "$sink_pid" ] || kill "$sink_pid" 2>/dev/null || true
  stop_sluice
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -n "$bin" ]; then
  sluice_bin=$bin
else
  log "cargo build --release --features perfmap"
  cargo build --release -q --features perfmap
  cp target/release/sluice "$sluice_bin"
fi
build_plugins

read -r port sink_port < <(free_ports 2 "$base_port")
options=(cache="$work/plugin-cache")
[ "$variant" = no-plugins ] && options=(no-plugins)
derive_config "$work/sluice.toml" "$port" "$work/queue" "$sink_port" "${options[@]}"
start_sluice "$work/sluice.toml" "$port" "$work/sluice.log"

log "warm-up: 300 messages"
"$shared/relay-throughput.sh" warmup 300 5 "$size" "$port" "$sink_port" >&2 || true
sleep 1

cpu_ticks() { awk '{print $14, $15}' "/proc/$1/stat"; }
perf record -q -e cpu-clock -F 1999 -g -p "$sluice_pid" -o "$out.data" 2>"$work/perf.log" &
perf_pid=$!
sleep 0.5
read -r u0 s0 < <(cpu_ticks "$sluice_pid")
"$shared/relay-throughput.sh" "$variant" "$n" "$sessions" "$size" "$port" "$sink_port" >&2
read -r u1 s1 < <(cpu_ticks "$sluice_pid")
kill -INT "$perf_pid"
wait "$perf_pid" 2>/dev/null || true
perf_pid=

hz=$(getconf CLK_TCK)
python3 -c "
per = lambda a, b: (b - a) / $hz / $n * 1e6
print(f'$variant, $size bytes, $n messages: server CPU per message {per($u0 + $s0, $u1 + $s1):.0f} µs'
      f' (user {per($u0, $u1):.0f} µs, system {per($s0, $s1):.0f} µs)')"
echo
# Every plugin's main module is wasm[0]: name the plugin from the perf map, where each
# module's functions are contiguous. Modules are mapped top-down in the order the
# plugins load (the config's order), so the highest range is the first plugin.
python3 - "/tmp/perf-$sluice_pid.map" "$out.data" "$top" "$work/sluice.toml" <<'PY'
import collections, re, subprocess, sys, tomllib
perfmap, data, top, config = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
plugins = [p["name"] for p in tomllib.load(open(config, "rb")).get("plugin", [])]
blocks = []
try:
    lines = open(perfmap).read().splitlines()
except OSError:
    lines = []
for line in lines:
    addr, size, name = line.split(" ", 2)
    m = re.match(r"wasm\[0\]::function\[(\d+)\]", name)
    if not m:
        continue
    lo, hi, index = int(addr, 16), int(addr, 16) + int(size, 16), int(m.group(1))
    if not blocks or index < blocks[-1][2]:
        blocks.append([lo, hi, index])  # function indices start again: the next module
    block = blocks[-1]
    block[0], block[1], block[2] = min(block[0], lo), max(block[1], hi), index
modules = sorted({(lo, hi) for lo, hi, _ in blocks}, reverse=True)
label = {m: plugins[i] if len(modules) == len(plugins) else f"module {i}" for i, m in enumerate(modules)}
script = subprocess.run(["perf", "script", "-i", data, "-F", "ip,sym", "--hide-call-graph"],
                        capture_output=True, text=True).stdout.splitlines()
counts, owners, total = collections.Counter(), collections.Counter(), 0
for line in script:
    fields = line.split(None, 1)
    try:
        ip = int(fields[0], 16)
    except (ValueError, IndexError):
        continue
    total += 1
    symbol = fields[1] if len(fields) > 1 else "[unknown]"
    owner = next((label[m] for m in modules if m[0] <= ip < m[1]), None)
    counts[f"{owner}: {symbol}" if owner else symbol] += 1
    owners[owner or ("wasm, no module" if symbol.startswith("wasm[") else "host and kernel")] += 1
print("By plugin (self time): " + ", ".join(f"{o} {100 * n / max(total, 1):.1f} %" for o, n in owners.most_common()))
print()
print("| # | self % | symbol |")
print("|---|---|---|")
for i, (symbol, n) in enumerate(counts.most_common(top), 1):
    print(f"| {i} | {100 * n / max(total, 1):.2f}% | `{symbol[:110].replace('|', '/')}` |")
PY
