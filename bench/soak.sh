#!/usr/bin/env bash
# Soak test: the full example configuration (examples/sluice.toml, every plugin) under
# continuous smtp-source load for a while, delivering to an smtp-sink, to show that
# memory, file descriptors and the queue stay flat.
#
# The config is derived from the example (bench/lib.sh, derive_config) with only the
# listen port, a fresh queue, route "internal" pointed at the sink and [metrics] added
# (for the counters and the queue depth). Load: one smtp-source loop per entry of --mix,
# SIZE:SESSIONS each (default 4 KB x 6, 32 KB x 3, 100 KB x 1: 10 sessions), batch
# after batch until the time is up, sender@example.org -> rcpt@example.com.
#
# Every --interval it samples the server: VmRSS from /proc/PID/status, the number of
# /proc/PID/fd entries, and from /metrics the queue depth (sluice_queue_messages, all
# states), messages accepted (sluice_messages_total{stage="data",result="accepted"}),
# delivered (sluice_delivery_attempts_total{result="delivered"}) and refused (rejected
# or tempfailed at any stage). Samples go to a CSV: time,rss_kib,open_fds,queue_depth,
# accepted,delivered,refused (time in seconds since the load started).
#
# At the end it stops the load, lets the queue drain, and prints a summary: RSS after
# warm-up and at the end, its maximum and growth, fds, the queue's maximum, totals and
# rates, and a verdict: memory is "flat" when RSS at the end is within --max-growth
# percent of RSS after warm-up (each the median of three samples, against sampling
# noise). Exit status 1 when it is not flat, when messages were refused, or when the
# queue did not drain.
#
# Usage: bench/soak.sh [DURATION] [--duration D] [--interval D] [--warmup D]
#                      [--rate R] [--mix SIZE:SESSIONS,...] [--csv FILE]
#                      [--max-growth PCT] [--base-port P]
#   DURATION, --duration  how long the load runs: 600, 90s, 10m, 1h (default 10m)
#   --interval   sampling period (default 10s)
#   --warmup     samples before this are not the baseline (default: a fifth of the
#                duration; in a 10-minute run on 2 cores RSS climbed for about two
#                and a half minutes, then stayed level)
#   --rate       messages per second in all, spread over the mix by sessions;
#                0 sends as fast as the server takes them (default 0)
#   --csv        where the samples go (default ${TMPDIR:-/tmp}/sluice-soak-DATE.csv)
#   --max-growth RSS growth still called flat, percent (default 10)
#   --base-port  search free ports from here (default 3525)
# Needs root for smtp-sink (-u postfix).
set -euo pipefail
cd "$(dirname "$0")/.."

duration=10m interval=10s warmup="" rate=0 mix="4096:6,32768:3,102400:1" csv="" max_growth=10 base_port=3525
while [ $# -gt 0 ]; do
  case $1 in
    --duration) duration=$2; shift 2 ;;
    --interval) interval=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --mix) mix=$2; shift 2 ;;
    --csv) csv=$2; shift 2 ;;
    --max-growth) max_growth=$2; shift 2 ;;
    --base-port) base_port=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
    *) duration=$1; shift ;;
  esac
done

# seconds DURATION: "600", "90s", "10m", "1h" -> seconds.
seconds() {
  case $1 in
    *[0-9]h) echo $((${1%h} * 3600)) ;;
    *[0-9]m) echo $((${1%m} * 60)) ;;
    *[0-9]s) echo "${1%s}" ;;
    *[0-9]) echo "$1" ;;
    *) echo "not a duration: $1" >&2; return 1 ;;
  esac
}
duration=$(seconds "$duration")
interval=$(seconds "$interval")
if [ -n "$warmup" ]; then warmup=$(seconds "$warmup"); else warmup=$((duration / 5)); fi
[[ $rate =~ ^[0-9]+$ && $max_growth =~ ^[0-9]+([.][0-9]+)?$ ]] || { echo "bad --rate or --max-growth" >&2; exit 2; }
[[ $mix =~ ^[0-9]+:[0-9]+(,[0-9]+:[0-9]+)*$ ]] || { echo "bad --mix: $mix (SIZE:SESSIONS,...)" >&2; exit 2; }
((duration > 0 && interval > 0 && warmup < duration)) || { echo "need 0 <= warmup < duration, interval > 0" >&2; exit 2; }
# At least three samples after warm-up, or the baseline and the end overlap.
((duration - warmup >= 3 * interval)) || { echo "duration - warmup must cover three intervals" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "needs root (smtp-sink -u postfix)" >&2; exit 1; }
for tool in smtp-source smtp-sink curl python3; do
  command -v "$tool" >/dev/null || { echo "$tool is missing" >&2; exit 1; }
done
csv=${csv:-${TMPDIR:-/tmp}/sluice-soak-$(date -u +%Y%m%d-%H%M%S).csv}

work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-soak.XXXXXX")
chmod 755 "$work"
# shellcheck source=bench/lib.sh
source bench/lib.sh

sink_pid="" gen_pids=() nap_pid=""
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
  [ -z "$nap_pid" ] || kill "$nap_pid" 2>/dev/null || true
  for p in "${gen_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${gen_pids[@]}"; do wait "$p" 2>/dev/null || true; done
  [ -z "$sink_pid" ] || kill "$sink_pid" 2>/dev/null || true
  stop_sluice
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

build_release
build_plugins

read -r port sink_port metrics_port < <(free_ports 3 "$base_port")
derive_config "$work/sluice.toml" "$port" "$work/queue" "$sink_port" metrics="$metrics_port"
metrics_url="http://127.0.0.1:$metrics_port/metrics"

# A sink that takes everything, for as long as we run (no -M: it acknowledges every
# message, so nothing is left to retry).
smtp-sink -u postfix 127.0.0.1:"$sink_port" 1000 >/dev/null 2>&1 &
sink_pid=$!
# RUST_LOG=warn: the log shows trouble only (plugin failures, delivery errors).
start_sluice "$work/sluice.toml" "$port" "$work/sluice.log"
pid=$sluice_pid
log "sluice (pid $pid) on $port, metrics on $metrics_port, sink on $sink_port; load $mix for ${duration}s, rate ${rate:-0}/s (0: unthrottled)"

# generate SIZE SESSIONS RATE: smtp-source batches, back to back, until killed. With a
# rate, each batch holds about two seconds' worth and the loop waits out the rest of
# those seconds. A batch that fails (a refusal makes smtp-source give up) is counted;
# the summary reports it.
generate() {
  local size=$1 sessions=$2 rate=$3 batch child="" start
  trap '[ -z "$child" ] || kill "$child" 2>/dev/null; exit 0' TERM
  if ((rate > 0)); then batch=$((rate * 2 > 0 ? rate * 2 : 1)); else batch=$((sessions * 200)); fi
  while :; do
    start=$(date +%s%N)
    smtp-source -s "$sessions" -m "$batch" -l "$size" -f sender@example.org -t rcpt@example.com \
      127.0.0.1:"$port" >/dev/null 2>>"$work/source-$size.err" &
    child=$!
    wait "$child" || echo "$size" >>"$work/failed-batches"
    child=""
    if ((rate > 0)); then
      local left=$((start / 1000000 + batch * 1000 / rate - $(date +%s%N) / 1000000))
      if ((left > 0)); then
        # In the background, so that the TERM trap runs at once, not after the sleep.
        sleep "$(printf '%d.%03d' $((left / 1000)) $((left % 1000)))" &
        child=$!
        wait "$child" || true
        child=""
      fi
    fi
  done
}

# sample: one line "rss_kib open_fds queue_depth accepted delivered refused"; fails
# when the server or its metrics endpoint does not answer.
sample() {
  local rss fds metrics
  rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status") || return 1
  fds=$(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
  metrics=$(curl -fsS --max-time 5 "$metrics_url") || return 1
  awk -v rss="$rss" -v fds="$fds" '
    /^sluice_queue_messages\{/ { queue += $NF }
    /^sluice_messages_total\{/ && /stage="data"/ && /result="accepted"/ { accepted += $NF }
    /^sluice_messages_total\{/ && /result="(rejected|tempfailed)"/ { refused += $NF }
    /^sluice_delivery_attempts_total\{/ && /result="delivered"/ { delivered += $NF }
    END { printf "%d %d %d %d %d %d\n", rss, fds, queue, accepted, delivered, refused }' <<<"$metrics"
}

# The metrics endpoint starts just after the SMTP listener.
for _ in $(seq 50); do sample >/dev/null 2>&1 && break; sleep 0.1; done
sample >/dev/null || die "cannot read $metrics_url"
# Split the rate over the mix by sessions; every entry sends at least 1 msg/s when throttled.
total_sessions=0
IFS=, read -ra entries <<<"$mix"
for e in "${entries[@]}"; do total_sessions=$((total_sessions + ${e#*:})); done
for e in "${entries[@]}"; do
  share=$((rate * ${e#*:} / total_sessions))
  ((rate == 0 || share > 0)) || share=1
  generate "${e%:*}" "${e#*:}" "$share" &
  gen_pids+=($!)
done

echo "time,rss_kib,open_fds,queue_depth,accepted,delivered,refused" >"$csv"
t0=$(date +%s)
next=$t0
while :; do
  now=$(date +%s)
  elapsed=$((now - t0))
  kill -0 "$pid" 2>/dev/null || { tail -n 20 "$work/sluice.log" >&2; die "sluice died"; }
  # One retry: under load a scrape may time out once.
  line=$(sample) || line=$(sample) || die "cannot sample the server"
  read -r rss fds queue accepted delivered refused <<<"$line"
  echo "$elapsed,$rss,$fds,$queue,$accepted,$delivered,$refused" >>"$csv"
  log "t=${elapsed}s rss=${rss}KiB fds=$fds queue=$queue accepted=$accepted delivered=$delivered refused=$refused"
  ((elapsed < duration)) || break
  next=$((next + interval))
  ((next <= t0 + duration)) || next=$((t0 + duration))
  # In the background, so that an INT or TERM ends the run at once, not after the sleep.
  sleep $((next - $(date +%s) > 0 ? next - $(date +%s) : 0)) &
  nap_pid=$!
  wait "$nap_pid" || true
  nap_pid=""
done

# Stop the load, then give delivery up to a minute to empty the queue.
for p in "${gen_pids[@]}"; do kill "$p" 2>/dev/null || true; done
for p in "${gen_pids[@]}"; do wait "$p" 2>/dev/null || true; done
gen_pids=()
load_end=$(date +%s)
for _ in $(seq 120); do
  line=$(sample) || line=$(sample) || die "cannot sample the server"
  read -r d_rss d_fds d_queue d_accepted d_delivered d_refused <<<"$line"
  ((d_queue == 0)) && break
  sleep 0.5
done
drain=$(($(date +%s) - load_end))
failed=0
[ ! -f "$work/failed-batches" ] || failed=$(wc -l <"$work/failed-batches")
warnings=$(grep -c . "$work/sluice.log" || true)
# The log's kinds of lines, most frequent first: timestamps dropped, numbers as N.
log_kinds() {
  sed -E 's/^[^ ]+ +//; s/[0-9]+/N/g' "$work/sluice.log" | sort | uniq -c | sort -rn | head -n 5
}
failures=$(curl -fsS --max-time 5 "$metrics_url" | awk '/^sluice_plugin_failures_total\{/ { n += $NF } END { print n + 0 }')

status=0
python3 - "$csv" <<PY || status=$?
import csv, statistics, sys
rows = [{k: int(v) for k, v in r.items()} for r in csv.DictReader(open(sys.argv[1]))]
warm = [r for r in rows if r["time"] >= $warmup] or rows
base = statistics.median(r["rss_kib"] for r in warm[:3])
end = statistics.median(r["rss_kib"] for r in warm[-3:])
growth = (end - base) / base * 100
peak = max(r["rss_kib"] for r in rows)
# Least-squares slope of RSS after warm-up, per hour: a slow leak shows here first.
xs = [r["time"] for r in warm]; ys = [r["rss_kib"] for r in warm]
mx, my = statistics.mean(xs), statistics.mean(ys)
den = sum((x - mx) ** 2 for x in xs)
slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den * 3600 if den else 0.0
last = rows[-1]
span = max(last["time"], 1)
mib = lambda k: f"{k / 1024:.1f} MiB"
flat = growth <= $max_growth
print(f"soak: examples/sluice.toml (all plugins), load $mix (size:sessions), rate "
      f"{'unthrottled' if $rate == 0 else '$rate msg/s'}, {span}s, sampled every ${interval}s, warm-up ${warmup}s")
print(f"machine: $(machine)")
print(f"samples: $csv")
# The slope means little over a few minutes: shown for longer runs only.
trend = f" (slope after warm-up {slope / 1024:+.1f} MiB/h)" if xs[-1] - xs[0] >= 300 else ""
print(f"RSS: {mib(base)} after warm-up, {mib(end)} at the end, max {mib(peak)}; growth {growth:+.1f}%{trend}")
print(f"open fds: {warm[0]['open_fds']} after warm-up, {last['open_fds']} at the end, max {max(r['open_fds'] for r in rows)}")
print(f"queue depth: max {max(r['queue_depth'] for r in rows)}, {last['queue_depth']} at the end of the load, "
      f"$d_queue after a ${drain}s drain")
print(f"messages: {last['accepted']} accepted ({last['accepted'] / span:.0f}/s), "
      f"{last['delivered']} delivered ({last['delivered'] / span:.0f}/s) during the load; "
      f"$d_accepted accepted, $d_delivered delivered after the drain; "
      f"$d_refused refused; $failed smtp-source batch(es) failed; "
      f"$failures plugin failure(s); $warnings warning/error line(s) in the log")
print(f"after the drain: RSS {mib($d_rss)}, {$d_fds} open fds")
verdict = "flat" if flat else "NOT flat"
print(f"verdict: RSS growth {growth:+.1f}% (threshold {float($max_growth):g}%) — {verdict}")
ok = flat and $d_refused == 0 and $d_queue == 0 and $failed == 0
sys.exit(0 if ok else 1)
PY
if [ "$warnings" -gt 0 ]; then
  echo "server log (RUST_LOG=warn), by kind:"
  log_kinds
fi
exit "$status"
