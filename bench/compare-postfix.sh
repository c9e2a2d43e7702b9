#!/usr/bin/env bash
# Sluice against Postfix, measured in one run on this machine: smtp-source -> relay ->
# smtp-sink over loopback, for three relays:
#   - Postfix, a private instance from ../shared/bench/postfix-relay.sh (fsync on);
#   - Sluice with no plugins: examples/sluice.toml without its [[plugin]] tables;
#   - Sluice with the example chain: examples/sluice.toml as it is;
#   - with --mail-auth, also the chain with [mail_auth] on (SPF, DKIM, ARC, DMARC and
#     iprev for every message, check_trusted = true since smtp-source connects from
#     relay.networks), its [dns] pointed at a loopback DNS server (bench/zone-dns.py)
#     with SPF and DMARC records for example.org. smtp-source's messages carry no DKIM
#     signature: bench/mail-auth.sh measures verification of one.
# Both Sluice configs are derived from the example (bench/lib.sh, derive_config) with
# only the listen port, the queue path (a fresh directory per run) and the next hop of
# route "internal" (example.com, where sender@example.org -> rcpt@example.com goes)
# changed, the last one pointing at the sink. ../shared/bench/relay-throughput.sh times
# each run: "accepted" when smtp-source has its last 250, "delivered" when the sink has
# every message. 4 KB and 100 KB messages, SESSIONS parallel sessions.
#
# Prints a markdown table to stdout (progress goes to stderr): msgs/s per relay, the
# ratios Sluice/Postfix for both Sluice variants and chain/no plugins, the machine and
# the date. Each figure is the median of --repeat runs. Absolute figures vary with the
# machine's load: compare the ratios of one run, never figures of different runs.
#
# Usage: bench/compare-postfix.sh [--n4k N] [--n100k N] [--sessions S] [--repeat K]
#                                 [--warmup N] [--base-port P] [--mail-auth]
#   --n4k      messages per 4 KB run        (default 5000)
#   --n100k    messages per 100 KB run      (default 2000)
#   --sessions parallel smtp-source sessions (default 20)
#   --repeat   runs per figure, median kept (default 3; about 5 minutes in all on 2 cores)
#   --warmup   messages sent to each fresh Sluice before it is measured (default 500)
#   --base-port search free ports from here  (default 3525)
#   --mail-auth also measure the chain with [mail_auth] on (a fourth relay, "auth")
# Needs root: Postfix drops privileges itself, smtp-sink is run with -u postfix.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh

n4k=5000 n100k=2000 sessions=20 repeat=3 warmup=500 base_port=3525 mail_auth=no
while [ $# -gt 0 ]; do
  case $1 in
    --n4k) n4k=$2; shift 2 ;;
    --n100k) n100k=$2; shift 2 ;;
    --sessions) sessions=$2; shift 2 ;;
    --repeat) repeat=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --base-port) base_port=$2; shift 2 ;;
    --mail-auth) mail_auth=yes; shift ;;
    -h | --help) show_help ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
done
positive "$n4k" "$n100k" "$sessions" "$repeat" "$warmup" "$base_port"
need_root "a private Postfix instance; smtp-sink -u postfix"
need_tools "apt-get install postfix python3" smtp-source smtp-sink python3

# 755: Postfix's unprivileged processes and smtp-sink (-u postfix) live below it.
work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-compare.XXXXXX")
chmod 755 "$work"
# A Postfix instance of our own: the default base (/tmp/pfbench) may be another
# engineer's, and postfix-relay.sh wipes its base when it starts.
export PF_BASE="$work/postfix"

sink_pid="" dns_pid=""
cleanup() {
  [ -z "$dns_pid" ] || kill "$dns_pid" 2>/dev/null || true
  stop_measure
  [ -z "$sink_pid" ] || kill "$sink_pid" 2>/dev/null || true
  stop_sluice
  "$shared/postfix-relay.sh" stop || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

build_release
build_plugins

read -r pf_port pf_sink plain_port plain_sink chain_port chain_sink < <(free_ports 6 "$base_port")
mkdir -p "$work/plugin-cache"
derive_config "$work/plain.toml" "$plain_port" "$work/queue" "$plain_sink" no-plugins
derive_config "$work/chain.toml" "$chain_port" "$work/queue" "$chain_sink" cache="$work/plugin-cache"
declare -A port=([plain]=$plain_port [chain]=$chain_port [postfix]=$pf_port)
declare -A sink=([plain]=$plain_sink [chain]=$chain_sink [postfix]=$pf_sink)
relays="plain chain postfix"
if [ "$mail_auth" = yes ]; then
  read -r dns_port auth_port auth_sink < <(free_ports 3 "$((base_port + 40))")
  printf '%s\n' "example.org TXT v=spf1 ip4:127.0.0.1 -all" "_dmarc.example.org TXT v=DMARC1; p=none" \
    >"$work/records.txt"
  start_zone_dns "$work/records.txt" "$dns_port"
  derive_config "$work/auth.toml" "$auth_port" "$work/queue" "$auth_sink" cache="$work/plugin-cache"
  use_zone_dns "$work/auth.toml" "$dns_port"
  printf '\n[mail_auth]\ncheck_trusted = true\n' >>"$work/auth.toml"
  port[auth]=$auth_port sink[auth]=$auth_sink relays="plain chain auth postfix"
fi
declare -A count=([4096]=$n4k [102400]=$n100k)
log "ports: postfix $pf_port -> $pf_sink, sluice no plugins $plain_port -> $plain_sink, sluice chain $chain_port -> $chain_sink"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)


# A fresh Sluice for every run: smtp-sink -M N exits once it has the Nth message,
# before acknowledging it, so the relay rightly keeps that one and retries it later.
# A fresh server and queue keep such leftovers (and any "destination unreachable"
# back-off they cause) out of the next run, and a stopped server leaves the CPU to the
# next relay.
run_sluice() { # VARIANT SIZE; sets result as measure does
  local variant=$1 size=$2
  rm -rf "$work/queue"
  start_sluice "$work/$variant.toml" "${port[$variant]}" "$work/$variant.log"
  # Warm up: page cache, plugin instances, delivery connections.
  measure "warmup-$variant" "$warmup" 5 "$size" "${port[$variant]}" "${sink[$variant]}"
  [ "$result" != "fail fail" ] || log "  warm-up failed"
  sleep 1
  measure "$variant" "${count[$size]}" "$sessions" "$size" "${port[$variant]}" "${sink[$variant]}"
  stop_sluice
  if [ "$result" = "fail fail" ] && [ -s "$work/$variant.log" ]; then
    log "  last lines of the Sluice log:"; tail -n 20 "$work/$variant.log" >&2
  fi
  : >"$work/$variant.log"
}

log "checking the example chain"
# Does the chain really run? spam-score, the last plugin, adds X-Spam-Status; the
# checks add Authentication-Results.
probe_delivered chain "$chain_port" "$chain_sink" '^X-Spam-Status:'
chain_status=$found
log "  delivered with: $chain_status"
if [ "$mail_auth" = yes ]; then
  probe_delivered auth "$auth_port" "$auth_sink" '^Authentication-Results:'
  log "  with mail_auth: ${found:0:160}"
fi

log "starting Postfix"
"$shared/postfix-relay.sh" "$pf_port" "$pf_sink"
measure warmup-postfix "$warmup" 5 4096 "$pf_port" "$pf_sink"
postfix_rest

results="$work/results"
: >"$results"
for rep in $(seq "$repeat"); do
  for size in 4096 102400; do
    # Sluice first: Postfix goes on working after its run (postfix_rest waits for it).
    for relay in $relays; do
      log "run $rep/$repeat, $((size / 1024)) KB, $relay"
      if [ "$relay" = postfix ]; then
        measure postfix "${count[$size]}" "$sessions" "$size" "$pf_port" "$pf_sink"
        postfix_rest
      else
        run_sluice "$relay" "$size"
      fi
      echo "$relay $size $rep $result" >>"$results"
    done
  done
done

load_after=$(cut -d' ' -f1-3 /proc/loadavg)
python3 - "$results" <<PY
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    relay, size, rep, acc, dlv = line.split()
    runs.setdefault((relay, int(size)), []).append((acc, dlv))

def median(relay, size, i):
    values = [float(r[i]) for r in runs.get((relay, size), []) if r[i] != "fail"]
    return statistics.median(values) if values else None

def rate(v):
    return f"{v:.0f} msg/s" if v else "failed"

def ratio(a, b, bold=False, unit="x"):
    if not a or not b:
        return "—"
    text = f"{a / b:.2f}{unit}"
    return f"**{text}**" if bold else text

sizes = {4096: ("4 KB", $n4k), 102400: ("100 KB", $n100k)}
print(f"Sluice $(git rev-parse --short HEAD) against Postfix $(postconf -h mail_version 2>/dev/null || echo '?'), "
      f"smtp-source → relay → smtp-sink over loopback, $sessions sessions, both queues fsynced; "
      f"median of $repeat run(s) per figure.")
print(f"Machine: $(machine); load average before/after: $load_before / $load_after.")
print()
auth = "$mail_auth" == "yes"
print("| size | rate | Postfix | Sluice, no plugins | Sluice, example chain "
      + ("| chain + mail_auth " if auth else "")
      + "| no plugins / Postfix | chain / Postfix | chain / no plugins "
      + ("| chain + mail_auth / Postfix |" if auth else "|"))
print("|---|---|---|---|---|---|---|---|" + ("---|---|" if auth else ""))
for size, (label, n) in sizes.items():
    for i, what in ((0, "accepted"), (1, "delivered")):
        pf, plain, chain, checked = (median(r, size, i) for r in ("postfix", "plain", "chain", "auth"))
        print(f"| {label} (n={n}) | {what} | {rate(pf)} | {rate(plain)} | {rate(chain)} "
              + (f"| {rate(checked)} " if auth else "")
              + f"| {ratio(plain, pf, True)} | {ratio(chain, pf, True)} | {ratio(chain, plain, unit='')} "
              + (f"| {ratio(checked, pf, True)} |" if auth else "|"))
print()
cost = ", ".join(f"{label} **{ratio(median('chain', s, 0), median('plain', s, 0), unit='')}**"
                 for s, (label, _) in sizes.items())
print(f"Example chain / no plugins, accept throughput: {cost}")
print()
print("Example chain: the 7 plugins of examples/sluice.toml with their settings; the client "
      "is 127.0.0.1, which rate-limit, dnsbl, helo-checks and greylist allow-list (they run "
      "and decide to let it through: no DNS lookups, no kv counters); address-rewrite, "
      "attachment-guard and spam-score do their full work "
      "(delivered with \`$chain_status\`). smtp-source opens one connection per message; the "
      "example sets reuse_instances, so sessions take instances that earlier sessions used "
      "and the plugins' set-up is not paid per message.")
print()
print("Runs (accepted/delivered msg/s):")
names = {"postfix": "Postfix", "plain": "Sluice, no plugins", "chain": "Sluice, example chain",
         "auth": "Sluice, chain + mail_auth"}
for size, (label, _) in sizes.items():
    for relay in ("postfix", "plain", "chain") + (("auth",) if auth else ()):
        print(f"- {label}, {names[relay]}: " + ", ".join(f"{a}/{d}" for a, d in runs.get((relay, size), [])))
PY
