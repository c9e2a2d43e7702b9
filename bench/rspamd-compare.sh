#!/usr/bin/env bash
# Sluice with the rspamd plugin against Postfix with rspamd's milter, both scanning
# every message with the same local rspamd, measured in one run: smtp-source -> relay ->
# smtp-sink over loopback, 4 KB messages.
#   - rspamd: the test tree's self-contained config (tests/fixtures/rspamd/: the core
#     and one test rule, no network checks, no Redis), one normal worker (HTTP, what
#     the plugin posts to) and one rspamd_proxy worker in milter mode with
#     self_scan = yes (what Postfix talks to), on ports of its own;
#   - Postfix: ../shared/bench/postfix-relay.sh with PF_MILTER pointing at the proxy
#     (fsync on);
#   - Sluice: examples/sluice.toml without its plugins (bench/lib.sh, derive_config),
#     plus the rspamd plugin with the examples' settings (on_error = "continue").
# Before measuring, one message through each relay must reach rspamd (its log counts
# the scans) and, for Sluice, arrive with X-Spamd-Result; after, rspamd must have
# scanned every message of every run, so neither side was measured without rspamd.
#
# Prints a markdown table to stdout (progress to stderr): msgs/s accepted and delivered
# per relay, the ratio Sluice/Postfix (the issue's target: >= 2x), the machine and the
# date. Each figure is the median of --repeat runs. The machine is shared: compare the
# ratio of one run, never absolute figures of different runs.
#
# Usage: bench/rspamd-compare.sh [--n N] [--sessions S] [--repeat K] [--warmup N] [--base-port P]
#   --n        messages per run                 (default 3000)
#   --sessions parallel smtp-source sessions    (default 20)
#   --repeat   runs per figure, median kept     (default 3)
#   --warmup   messages before each measurement (default 300)
#   --base-port search free ports from here     (default 4525)
# Needs root (Postfix; smtp-sink -u postfix) and rspamd (apt-get install rspamd).
set -euo pipefail
cd "$(dirname "$0")/.."

n=3000 sessions=20 repeat=3 warmup=300 base_port=4525
# shellcheck source=bench/lib.sh
source bench/lib.sh
parse_run_options "$@"
need_root "a private Postfix instance; smtp-sink -u postfix"
need_tools "apt-get install postfix python3 rspamd" smtp-source smtp-sink python3 rspamd

work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-rspamd.XXXXXX")
chmod 755 "$work"
export PF_BASE="$work/postfix"

sink_pid="" rspamd_pid=""
cleanup() {
  stop_measure
  [ -z "$sink_pid" ] || kill "$sink_pid" 2>/dev/null || true
  stop_sluice
  "$shared/postfix-relay.sh" stop || true
  if [ -n "$rspamd_pid" ]; then
    kill "$rspamd_pid" 2>/dev/null || true
    wait "$rspamd_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

build_release
log "building the rspamd plugin"
(cd plugins && cargo build --release --target wasm32-wasip2 -q -p rspamd)
wasm=$PWD/plugins/target/wasm32-wasip2/release/rspamd.wasm

read -r pf_port pf_sink sl_port sl_sink rs_normal rs_proxy < <(free_ports 6 "$base_port")
log "ports: postfix $pf_port -> $pf_sink, sluice $sl_port -> $sl_sink, rspamd $rs_normal (HTTP), $rs_proxy (milter)"

log "starting rspamd"
mkdir -p "$work/rspamd"
fixtures=$PWD/tests/fixtures/rspamd
rspamd -f -i -c "$fixtures/rspamd.conf" --var="RUNDIR=$work/rspamd" --var="RULES=$fixtures" \
  --var="NORMAL=$rs_normal" --var="PROXY=$rs_proxy" >"$work/rspamd.out" 2>&1 &
rspamd_pid=$!
for _ in $(seq 1800); do
  port_open "$rs_normal" && port_open "$rs_proxy" && break
  kill -0 "$rspamd_pid" 2>/dev/null || { cat "$work/rspamd.out" >&2; die "rspamd exited at start"; }
  sleep 0.1
done
port_open "$rs_proxy" || die "rspamd did not listen within 180 s"
scans() { grep -c 'rspamd_task_write_log' "$work/rspamd/rspamd.log" 2>/dev/null || true; }

mkdir -p "$work/plugin-cache"
derive_config "$work/sluice.toml" "$sl_port" "$work/queue" "$sl_sink" no-plugins cache="$work/plugin-cache"
cat >>"$work/sluice.toml" <<TOML

[[plugin]]
name = "rspamd"
path = "$wasm"
grants = ["http", "log", "config"]
on_error = "continue"
http = { allow = ["http://127.0.0.1:$rs_normal"], timeout = "5s", max_response = "1MB" }
[plugin.config]
url = "http://127.0.0.1:$rs_normal"
timeout = "5s"
TOML



# one_message RELAY_PORT SINK_PORT: sends one message, sets header to its X-Spamd-Result
# line at the sink (empty if none) and checks that rspamd scanned it.
one_message() {
  local dump="$work/dump" before f _
  rm -rf "$dump" && mkdir -p "$dump" && chown postfix "$dump"
  before=$(scans)
  smtp-sink -u postfix -d "$dump/%H%M%S." 127.0.0.1:"$2" 100 >/dev/null 2>&1 &
  sink_pid=$!
  sleep 0.3
  smtp-source -m 1 -l 4096 -f sender@example.org -t rcpt@example.com 127.0.0.1:"$1" >/dev/null 2>&1 ||
    log "  smtp-source: the message was refused"
  header=""
  for _ in $(seq 150); do
    f=$(find "$dump" -type f | head -1)
    [ -n "$f" ] && break
    sleep 0.1
  done
  [ -n "$f" ] && header=$(grep -m1 '^X-Spamd-Result:' "$f" || true)
  kill "$sink_pid" 2>/dev/null || true
  wait "$sink_pid" 2>/dev/null || true
  sink_pid=
  [ "$(scans)" -gt "$before" ] || die "rspamd did not scan the message sent to port $1"
  header=${header%$'\r'}
}

run_sluice() { # sets result as measure does
  rm -rf "$work/queue"
  start_sluice "$work/sluice.toml" "$sl_port" "$work/sluice.log"
  measure warmup-sluice "$warmup" 5 4096 "$sl_port" "$sl_sink"
  sleep 1
  measure sluice "$n" "$sessions" 4096 "$sl_port" "$sl_sink"
  stop_sluice
  if [ "$result" = "fail fail" ] && [ -s "$work/sluice.log" ]; then
    log "  last lines of the Sluice log:"; tail -n 20 "$work/sluice.log" >&2
  fi
  : >"$work/sluice.log"
}

log "checking Sluice's path"
rm -rf "$work/queue"
start_sluice "$work/sluice.toml" "$sl_port" "$work/sluice.log"
one_message "$sl_port" "$sl_sink"
stop_sluice
[ -n "$header" ] || { cat "$work/sluice.log" >&2; die "Sluice delivered the message without X-Spamd-Result"; }
log "  delivered with: $header"
sluice_header=$header

log "starting Postfix with rspamd's milter"
PF_MILTER="inet:127.0.0.1:$rs_proxy" "$shared/postfix-relay.sh" "$pf_port" "$pf_sink"
log "checking Postfix's path"
one_message "$pf_port" "$pf_sink"
postfix_rest
measure warmup-postfix "$warmup" 5 4096 "$pf_port" "$pf_sink"
postfix_rest

results="$work/results"
: >"$results"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
scans_before=$(scans)
for rep in $(seq "$repeat"); do
  for relay in sluice postfix; do
    log "run $rep/$repeat, $relay"
    if [ "$relay" = postfix ]; then
      measure postfix "$n" "$sessions" 4096 "$pf_port" "$pf_sink"
      postfix_rest
    else
      run_sluice
    fi
    echo "$relay $rep $result" >>"$results"
  done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
scanned=$(($(scans) - scans_before))
# Every measured message (and every warm-up of the fresh Sluice servers) was scanned.
expected=$((2 * repeat * n + repeat * warmup))
[ "$scanned" -ge "$expected" ] || log "warning: rspamd scanned $scanned messages, expected at least $expected"

python3 - "$results" <<PY
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    relay, rep, acc, dlv = line.split()
    runs.setdefault(relay, []).append((acc, dlv))

def median(relay, i):
    values = [float(r[i]) for r in runs.get(relay, []) if r[i] != "fail"]
    return statistics.median(values) if values else None

def rate(v):
    return f"{v:.0f} msg/s" if v else "failed"

print(f"Sluice $(git rev-parse --short HEAD) with the rspamd plugin against Postfix "
      f"$(postconf -h mail_version 2>/dev/null || echo '?') with rspamd's milter (rspamd_proxy, "
      f"milter mode, self_scan), the same rspamd $(rspamd --version | awk '{print $NF}') for both; "
      f"smtp-source → relay → smtp-sink over loopback, 4 KB, $sessions sessions, n=$n, both queues "
      f"fsynced; median of $repeat run(s).")
print(f"Machine: $(machine) (shared with other work); load average before/after: $load_before / $load_after. "
      f"rspamd scanned $scanned messages during the runs.")
print()
print("| rate | Postfix + rspamd milter | Sluice + rspamd plugin | Sluice / Postfix |")
print("|---|---|---|---|")
for i, what in ((0, "accepted"), (1, "delivered")):
    pf, sl = median("postfix", i), median("sluice", i)
    ratio = f"**{sl / pf:.2f}x**" if pf and sl else "—"
    print(f"| {what} | {rate(pf)} | {rate(sl)} | {ratio} |")
print()
print("Sluice delivered with \`$sluice_header\`.")
print()
print("Runs (accepted/delivered msg/s):")
for relay, name in (("postfix", "Postfix + milter"), ("sluice", "Sluice + plugin")):
    print(f"- {name}: " + ", ".join(f"{a}/{d}" for a, d in runs.get(relay, [])))
PY
