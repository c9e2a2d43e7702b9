#!/usr/bin/env bash
# Accept throughput of Sluice against Postfix, measured in one run on this machine:
# smtp-source sends N messages of SIZE bytes over SESSIONS parallel sessions and we
# time until every message got its 250. Both servers fsync their queues.
#
# Usage: bench/accept-throughput.sh [N] [SESSIONS] [SIZE]     (default 5000 20 4096)
# Needs root for the private Postfix instance (../shared/bench/postfix-relay.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-5000} sessions=${2:-20} size=${3:-4096}
shared=../shared/bench
work=$(mktemp -d)
pf_port=2525 pf_sink=2600 sl_port=3525

cargo build --release -q
cat > "$work/sluice.toml" <<CONF
[server]
hostname = "relay.bench.test"
listen = ["127.0.0.1:$sl_port"]
[limits]
max_connections_per_ip = 1000
[queue]
path = "$work/queue"
CONF

cleanup() {
  [ -n "${sluice_pid:-}" ] && kill "$sluice_pid" 2>/dev/null || true
  [ -n "${sink_pid:-}" ] && kill "$sink_pid" 2>/dev/null || true
  "$shared/postfix-relay.sh" stop || true
  rm -rf "$work"
}
trap cleanup EXIT

"$shared/postfix-relay.sh" "$pf_port" "$pf_sink"
smtp-sink -u postfix 127.0.0.1:"$pf_sink" 1000 >/dev/null 2>&1 & sink_pid=$!
RUST_LOG=warn target/release/sluice serve --config "$work/sluice.toml" 2>"$work/sluice.log" & sluice_pid=$!
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$sl_port) 2>/dev/null && break; sleep 0.1; done

rate() { # NAME PORT -> prints msgs/s
  local t0 t1
  t0=$(date +%s.%N)
  smtp-source -s "$sessions" -m "$n" -l "$size" -f sender@example.org -t rcpt@example.com 127.0.0.1:"$2" >/dev/null 2>&1
  t1=$(date +%s.%N)
  python3 -c "print(f'{$n/($t1-$t0):.0f}')"
}

# Warm up both (page cache, Postfix's processes), then measure alternately.
smtp-source -s 5 -m 200 -l "$size" -f s@example.org -t r@example.com 127.0.0.1:$pf_port >/dev/null 2>&1
smtp-source -s 5 -m 200 -l "$size" -f s@example.org -t r@example.com 127.0.0.1:$sl_port >/dev/null 2>&1
# Sluice first: Postfix keeps working (delivering to its sink) after it has accepted,
# which would slow down whatever runs after it.
sl=$(rate sluice $sl_port)
pf=$(rate postfix $pf_port)
queued=$(target/release/sluice queue list --config "$work/sluice.toml" --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
echo "accept throughput, n=$n sessions=$sessions size=$size, $(nproc) cores, $(date -u +%F)"
echo "  postfix: $pf msg/s"
echo "  sluice:  $sl msg/s   ($queued messages in its queue)"
python3 -c "print(f'  ratio sluice/postfix: {$sl/$pf:.2f}x')"
