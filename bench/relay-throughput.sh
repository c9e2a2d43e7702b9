#!/usr/bin/env bash
# Delivered throughput of Sluice against Postfix, measured in one run on this machine:
# smtp-source -> relay -> smtp-sink, with ../shared/bench/relay-throughput.sh timing
# until the sink has every message. Both relays fsync their queues; Sluice runs with
# one route, "*" -> the sink, and no plugins.
#
# Usage: bench/relay-throughput.sh [N] [SESSIONS]     (default 5000 20; sizes 4 KB and 100 KB)
# Needs root for the private Postfix instance (../shared/bench/postfix-relay.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-5000} sessions=${2:-20}
shared=../shared/bench
work=$(mktemp -d)
pf_port=2525 pf_sink=2600 sl_port=3525 sl_sink=3600

cargo build --release -q
cat > "$work/sluice.toml" <<CONF
[server]
hostname = "relay.bench.test"
listen = ["127.0.0.1:$sl_port"]
[limits]
max_connections_per_ip = 1000
[queue]
path = "$work/queue"
[[route]]
name = "sink"
domains = ["*"]
next_hop = "127.0.0.1:$sl_sink"
tls = "none"
CONF

cleanup() {
  stop_sluice
  "$shared/postfix-relay.sh" stop || true
  rm -rf "$work"
}
trap cleanup EXIT

# smtp-sink -M N exits as soon as the Nth message is in, before acknowledging it: the
# relay rightly keeps that message and retries it later, when no sink listens. Each
# Sluice measurement therefore starts from a fresh server and queue, so a leftover of
# the previous run cannot hit a closed port and mark the destination down meanwhile.
start_sluice() {
  rm -rf "$work/queue"
  RUST_LOG=warn target/release/sluice serve --config "$work/sluice.toml" 2>>"$work/sluice.log" & sluice_pid=$!
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$sl_port) 2>/dev/null && break; sleep 0.1; done
}
stop_sluice() {
  if [ -n "${sluice_pid:-}" ]; then kill "$sluice_pid" 2>/dev/null || true; wait "$sluice_pid" 2>/dev/null || true; fi
  sluice_pid=
}

# Prints the delivered rate from relay-throughput.sh's report line.
delivered() { sed -n 's/.*delivered \([0-9]*\) msg\/s.*/\1/p'; }

# Postfix keeps working after its sink has everything; wait until its active and
# incoming queues are empty so the next measurement starts from rest (its copy of the
# unacknowledged last message waits in deferred/ for minutes, out of the way).
postfix_drain() {
  for _ in $(seq 300); do
    [ -z "$(find "${TMPDIR:-/tmp}/pfbench/spool"/{incoming,active} -type f 2>/dev/null | head -1)" ] && return 0
    sleep 0.1
  done
}

"$shared/postfix-relay.sh" "$pf_port" "$pf_sink"
"$shared/relay-throughput.sh" warmup-postfix 500 5 4096 $pf_port $pf_sink >/dev/null
postfix_drain
declare -A sl pf
# Sluice first at each size: Postfix goes on working after its run.
for size in 4096 102400; do
  start_sluice
  "$shared/relay-throughput.sh" warmup-sluice 500 5 "$size" $sl_port $sl_sink >/dev/null
  sleep 1
  line=$("$shared/relay-throughput.sh" sluice "$n" "$sessions" "$size" $sl_port $sl_sink); echo "$line"
  sl[$size]=$(echo "$line" | delivered)
  stop_sluice
  line=$("$shared/relay-throughput.sh" postfix "$n" "$sessions" "$size" $pf_port $pf_sink); echo "$line"
  pf[$size]=$(echo "$line" | delivered)
  postfix_drain
done

echo
echo "delivered throughput, n=$n sessions=$sessions, fsync on, $(nproc) cores, $(date -u +%F)"
for size in 4096 102400; do
  python3 -c "s, p = ${sl[$size]:-0}, ${pf[$size]:-0}; print(f'  {$size // 1024:>3} KB: postfix {p} msg/s, sluice {s} msg/s, ratio {s / p if p else 0:.2f}x')"
done
