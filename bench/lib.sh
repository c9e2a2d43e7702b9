# Shared helpers for the bench/ scripts; sourced, not run. The caller has cd'ed to the
# repository root and set `set -euo pipefail`, and creates $work (a private temp dir
# that its EXIT trap removes) before calling the functions that use it.
# shellcheck shell=bash

# shellcheck disable=SC2034 # used by the scripts that source this file
shared=../shared/bench
sluice_bin=target/release/sluice
example_config=examples/sluice.toml

# Progress goes to stderr so that stdout carries only the result (a table to paste).
log() { printf '%s %s\n' "$(date -u +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# The figures need an up-to-date optimised server and the example chain's plugins;
# a stale binary would measure old code.
build_release() {
  log "cargo build --release"
  cargo build --release -q
}
build_plugins() {
  local missing=0 wasm
  for wasm in $(example_plugin_paths); do [ -f "$wasm" ] || missing=1; done
  if [ "$missing" = 1 ]; then
    log "building the plugins (cd plugins && cargo build --release --target wasm32-wasip2)"
    (cd plugins && cargo build --release --target wasm32-wasip2 -q)
  fi
}

# The absolute paths of the plugins examples/sluice.toml loads.
example_plugin_paths() {
  python3 - "$example_config" <<'PY'
import os, sys, tomllib
path = sys.argv[1]
with open(path, "rb") as f:
    config = tomllib.load(f)
for plugin in config.get("plugin", []):
    print(os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(path)), plugin["path"])))
PY
}

# free_ports COUNT [FROM]: COUNT distinct TCP ports on 127.0.0.1 that nothing listens on,
# searched upwards from FROM. They stay below the ephemeral range (32768+ on Linux):
# smtp-source opens thousands of client connections, and one of them could otherwise
# hold a port when a sink, started anew for every measurement, wants to bind it. Other
# engineers' servers share the machine, hence the check rather than fixed ports.
free_ports() {
  python3 - "$1" "${2:-3525}" <<'PY'
import socket, sys
count, port, found = int(sys.argv[1]), int(sys.argv[2]), []
while len(found) < count:
    if port >= 32768:
        sys.exit("no free ports below 32768")
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers bind
        try:
            s.bind(("127.0.0.1", port))
            found.append(port)
        except OSError:
            pass
    port += 1
print(" ".join(map(str, found)))
PY
}

# port_open PORT: something accepts connections on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# derive_config OUT LISTEN_PORT QUEUE_DIR NEXT_HOP_PORT [OPTION...]
# Writes a copy of examples/sluice.toml that differs only where a benchmark must:
#   - [server] listen is 127.0.0.1:LISTEN_PORT;
#   - [queue] path is QUEUE_DIR (the caller keeps it fresh);
#   - the route that mail for rcpt@example.com takes (the first whose domains match,
#     "internal" in the example) has next_hop 127.0.0.1:NEXT_HOP_PORT (the sink);
#   - plugin paths are absolute, so the copy can live anywhere.
# Options:
#   no-plugins          drop every [[plugin]] table (with its config) and nothing else,
#                       so "no plugins" and "the chain" differ only by the plugins;
#   cache=DIR           [plugins] cache_dir = DIR: compiled plugins survive the fresh
#                       queue directory of each run (start-up time only);
#   metrics=PORT        [metrics] listen = 127.0.0.1:PORT.
# The text is edited line by line, keeping every other setting and comment as written,
# then parsed back and checked, so a change to the example that these edits miss fails
# here instead of benchmarking the wrong thing.
derive_config() {
  python3 - "$example_config" "$@" <<'PY'
import os, re, sys, tomllib

src, out, listen, queue, hop, *options = sys.argv[1:]
no_plugins = "no-plugins" in options
opts = dict(o.split("=", 1) for o in options if "=" in o)
base = os.path.dirname(os.path.abspath(src))
text = open(src, encoding="utf-8").read()
config = tomllib.loads(text)

def matches(pattern, domain):
    pattern = pattern.lower()
    if pattern == "*":
        return True
    if pattern.startswith("*."):
        return domain.endswith(pattern[1:])
    return domain == pattern

routes = config.get("route", [])
target = next((i for i, r in enumerate(routes) if any(matches(d, "example.com") for d in r.get("domains", []))), None)
if target is None:
    sys.exit(f"{src}: no route for example.com")

header = re.compile(r"^\s*\[\[?\s*([A-Za-z0-9_.-]+)\s*\]\]?")
key = lambda name: re.compile(rf"^\s*{name}\s*=")
lines, table, route_no, dropped = [], None, -1, 0
cache_done = metrics_done = False
for line in text.splitlines(keepends=True):
    m = header.match(line)
    if m:
        table = m.group(1)
        if table == "route":
            route_no += 1
    in_plugin = table == "plugin" or (table or "").startswith("plugin.")
    if no_plugins and in_plugin:
        dropped += 1
        continue
    if table == "server" and key("listen").match(line):
        line = f'listen = ["127.0.0.1:{listen}"]\n'
    elif table == "queue" and key("path").match(line):
        line = f'path = "{queue}"\n'
    elif table == "route" and route_no == target and (key("next_hop").match(line) or key("mx").match(line)):
        line = f'next_hop = "127.0.0.1:{hop}"\n'
    elif table == "plugin" and key("path").match(line):
        value = tomllib.loads(line)["path"]
        line = f'path = "{os.path.normpath(os.path.join(base, value))}"\n'
    elif table == "plugins" and "cache" in opts and key("cache_dir").match(line):
        line, cache_done = f'cache_dir = "{opts["cache"]}"\n', True
    elif table == "metrics" and "metrics" in opts and key("listen").match(line):
        line, metrics_done = f'listen = "127.0.0.1:{opts["metrics"]}"\n', True
    lines.append(line)
    if m and table == "plugins" and "cache" in opts and "cache_dir" not in config.get("plugins", {}):
        lines.append(f'cache_dir = "{opts["cache"]}"\n')
        cache_done = True
if "cache" in opts and not cache_done:
    lines.append(f'\n[plugins]\ncache_dir = "{opts["cache"]}"\n')
if "metrics" in opts and not metrics_done:
    lines.append(f'\n[metrics]\nlisten = "127.0.0.1:{opts["metrics"]}"\n')
result = "".join(lines)
with open(out, "w", encoding="utf-8") as f:
    f.write(result)

# Check that the copy says what we meant, and only that.
new = tomllib.loads(result)
assert new["server"]["listen"] == [f"127.0.0.1:{listen}"], new["server"]["listen"]
assert new["queue"]["path"] == queue
assert new["route"][target]["next_hop"] == f"127.0.0.1:{hop}"
assert "mx" not in new["route"][target]
plugins = new.get("plugin", [])
assert len(plugins) == (0 if no_plugins else len(config.get("plugin", []))), len(plugins)
for p in plugins:
    assert os.path.isfile(p["path"]), f"missing plugin {p['path']} (build the plugins)"
if "cache" in opts:
    assert new["plugins"]["cache_dir"] == opts["cache"]
if "metrics" in opts:
    assert new["metrics"]["listen"] == f"127.0.0.1:{opts['metrics']}"
for section in set(config) | set(new):
    if section in ("server", "queue", "route", "plugin", "plugins", "metrics"):
        continue
    assert config.get(section) == new.get(section), f"[{section}] changed"
PY
}

# start_sluice CONFIG PORT LOG: starts the server, waits until it listens (plugins are
# loaded, and compiled when not cached, before it binds) and sets sluice_pid.
start_sluice() {
  RUST_LOG=${RUST_LOG:-warn} "$sluice_bin" serve --config "$1" 2>>"$3" &
  sluice_pid=$!
  local _
  for _ in $(seq 1200); do
    port_open "$2" && return 0
    kill -0 "$sluice_pid" 2>/dev/null || { cat "$3" >&2; die "sluice exited at start ($1)"; }
    sleep 0.1
  done
  die "sluice did not listen on $2 within 120 s; see $3"
}

# stop_sluice: SIGTERM (graceful: idle sessions are told 421), then SIGKILL if it takes
# longer than 15 s, so the next measurement never shares the CPU with this one.
stop_sluice() {
  [ -n "${sluice_pid:-}" ] || return 0
  kill "$sluice_pid" 2>/dev/null || true
  local _
  for _ in $(seq 150); do kill -0 "$sluice_pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$sluice_pid" 2>/dev/null || true
  wait "$sluice_pid" 2>/dev/null || true
  sluice_pid=
}

# One line describing the machine and the date, for the tables.
machine() {
  local cpu
  cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
  printf '%s, %s cores, Linux %s, %s' "${cpu:-unknown CPU}" "$(nproc)" "$(uname -r)" "$(date -u '+%Y-%m-%d %H:%M UTC')"
}

# The loopback DNS server (bench/zone-dns.py, dnspython from the dkimpy venv) answering
# from RECORDS (`NAME TYPE VALUE` lines) on 127.0.0.1:PORT; sets dns_pid (the caller's
# EXIT trap stops it).
start_zone_dns() {
  [ -x target/dkimpy/bin/python ] || die "the loopback DNS server needs dnspython in target/dkimpy (scripts/test installs it)"
  target/dkimpy/bin/python bench/zone-dns.py "$1" "$2" &
  dns_pid=$!
}

# Points CONFIG's [dns] at the loopback DNS server on PORT.
use_zone_dns() {
  sed -i "s|^\[dns\].*|[dns]\nservers = [\"127.0.0.1:$2\"]|" "$1"
}

# The options of the scripts that measure one relay in several configurations:
# --n --sessions --repeat --warmup --base-port, and --help (the script's header). Sets
# n, sessions, repeat, warmup and base_port, which the caller set to its defaults.
parse_run_options() {
  while [ $# -gt 0 ]; do
    case $1 in
      --n) n=$2; shift 2 ;;
      --sessions) sessions=$2; shift 2 ;;
      --repeat) repeat=$2; shift 2 ;;
      --warmup) warmup=$2; shift 2 ;;
      --base-port) base_port=$2; shift 2 ;;
      -h | --help) show_help ;;
      *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
    esac
  done
  positive "$n" "$sessions" "$repeat" "$warmup" "$base_port"
}

# Prints the script's header comment (its usage) and exits.
show_help() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
  exit 0
}

# Exits 2 unless every argument is a positive whole number.
positive() {
  local v
  for v in "$@"; do
    [[ $v =~ ^[1-9][0-9]*$ ]] || { echo "not a positive number: $v" >&2; exit 2; }
  done
}

# need_root WHY / need_tools HINT TOOL...: exit 1 with a message when missing.
need_root() {
  [ "$(id -u)" = 0 ] || { echo "needs root ($1)" >&2; exit 1; }
}
need_tools() {
  local hint=$1 tool
  shift
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "$tool is missing ($hint)" >&2; exit 1; }
  done
}

# measure NAME N SESSIONS SIZE RELAY SINK: one relay-throughput.sh run; sets result to
# "ACCEPT DELIVERED" (msgs/s), or "fail fail" when the sink did not get every message.
# (Results go through globals, not $(...), so that the EXIT trap sees the pids:
# stop_measure stops a run that is under way.)
measure_pid=""
measure() {
  local out="$work/measure.out" line
  "$shared/relay-throughput.sh" "$@" >"$out" 2>&1 &
  measure_pid=$!
  wait "$measure_pid" || true
  measure_pid=
  line=$(cat "$out")
  log "  $line"
  if [[ $line =~ accept\ ([0-9]+)\ msg/s,\ delivered\ ([0-9]+)\ msg/s ]]; then
    result="${BASH_REMATCH[1]} ${BASH_REMATCH[2]}"
  else
    result="fail fail"
  fi
}
# relay-throughput.sh runs smtp-sink as its child: both go.
stop_measure() {
  [ -n "$measure_pid" ] || return 0
  pkill -P "$measure_pid" 2>/dev/null || true
  kill "$measure_pid" 2>/dev/null || true
}

# Postfix goes on working after its sink has everything (the unacknowledged last
# message is deferred). Waits until its incoming and active queues are empty, then
# deletes what is deferred so it cannot be retried into a later run's sink.
postfix_rest() {
  local _
  for _ in $(seq 600); do
    [ -z "$(find "$PF_BASE/spool/incoming" "$PF_BASE/spool/active" -type f 2>/dev/null | head -1)" ] && break
    sleep 0.1
  done
  postsuper -c "$PF_BASE/etc" -d ALL deferred >/dev/null 2>&1 || true
}

# probe_delivered VARIANT PORT SINK PATTERN [SMTP-SOURCE OPTION...]: one message
# (smtp-source's `-l 4096` unless options are given, e.g. -F FILE) through a fresh
# Sluice running $work/VARIANT.toml on PORT, to a sink on SINK that keeps it. Sets
# found to the message's first line matching the extended regex PATTERN (without its
# CR) and found_file to the message as delivered; dies with the server's log when no
# delivered message has such a line.
probe_delivered() {
  local variant=$1 port=$2 to=$3 pattern=$4 dump="$work/dump-$1" _
  shift 4
  [ $# -gt 0 ] || set -- -l 4096
  found="" found_file=""
  mkdir -p "$dump" && chown postfix "$dump"
  rm -rf "$work/queue"
  start_sluice "$work/$variant.toml" "$port" "$work/$variant.log"
  smtp-sink -u postfix -d "$dump/%H%M%S." 127.0.0.1:"$to" 100 >/dev/null 2>&1 &
  sink_pid=$!
  sleep 0.3
  smtp-source -m 1 "$@" -f sender@example.org -t rcpt@example.com 127.0.0.1:"$port" >/dev/null 2>&1 ||
    log "  smtp-source: $variant refused the message"
  for _ in $(seq 100); do
    found_file=$(find "$dump" -type f | head -1)
    [ -n "$found_file" ] && found=$(grep -m1 -E "$pattern" "$found_file" || true)
    [ -n "$found" ] && break
    sleep 0.1
  done
  kill "$sink_pid" 2>/dev/null || true
  wait "$sink_pid" 2>/dev/null || true
  sink_pid=
  stop_sluice
  [ -n "$found" ] || { cat "$work/$variant.log" >&2; die "$variant delivered no message with $pattern"; }
  : >"$work/$variant.log"
  found=${found%$'\r'}
}

