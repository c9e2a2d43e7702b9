#!/usr/bin/env bash
# What recipient verification costs at RCPT, measured in one run on this machine.
# Behind every relay is the same private Postfix as "the mail server": virtual
# mailboxes rcpt@example.com and u0..uN@example.com, everything it accepts discarded
# (virtual_transport = discard), so its own deliveries do not compete for the CPU.
#
#   warm:  smtp-source -> Sluice -> mail server, one recipient (rcpt@example.com),
#          verify = "none" against verify = "callout" with that recipient's answer in
#          the cache (a warm-up sends it first). Accept rate (msgs/s until the last 250)
#          and the ratio callout/none: the target is >= 0.9.
#   cold:  a Python client (bench/recipient-verify-client.py) sending every message to
#          a recipient never seen before (u0, u1, ...), over SESSIONS sessions: every
#          RCPT makes a callout. Against Sluice (verify = "callout", a fresh cache) and
#          Postfix as the front relay with reject_unverified_recipient (its defaults:
#          verify(8) probes, address_verify_poll_count 3, poll delay 3 s), both
#          relaying to the same mail server.
#
# Prints a markdown table to stdout (progress to stderr). Absolute figures vary with the
# machine's load: compare the figures of one run, never figures of different runs.
#
# Usage: bench/recipient-verify.sh [--n N] [--repeat K] [--cold N] [--sessions S] [--base-port P]
#   --n         messages per warm run          (default 2000)
#   --repeat    warm runs per variant, interleaved, median kept (default 3)
#   --cold      messages (= new recipients) per cold run (default 400)
#   --sessions  parallel sessions              (default 20)
#   --base-port search free ports from here    (default 3725)
# SLUICE_BIN=path uses that binary instead of building target/release/sluice;
# KEEP_WORK=1 keeps the work directory (configs, maillogs) for a look afterwards.
# Needs root: Postfix drops privileges itself.
set -euo pipefail
cd "$(dirname "$0")/.."

n=2000 repeat=3 cold=400 sessions=20 base_port=3725
while [ $# -gt 0 ]; do
  case $1 in
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    --n | --repeat | --cold | --sessions | --base-port)
      [ $# -ge 2 ] || { echo "$1 needs a value" >&2; exit 2; }
      name=${1#--}
      printf -v "${name//-/_}" '%s' "$2"
      shift 2 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
done
for v in "$n" "$repeat" "$cold" "$sessions" "$base_port"; do
  [[ $v =~ ^[1-9][0-9]*$ ]] || { echo "not a positive number: $v" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "needs root (private Postfix instances)" >&2; exit 1; }
for tool in postfix smtp-source python3; do
  command -v "$tool" >/dev/null || { echo "$tool is missing (apt-get install postfix python3)" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-rcptverify.XXXXXX")
chmod 755 "$work"
# shellcheck source=bench/lib.sh
source bench/lib.sh
sluice_bin=${SLUICE_BIN:-$sluice_bin}

cleanup() {
  stop_sluice
  for instance in mailstore front; do
    [ -d "$work/$instance/etc" ] && postfix -c "$work/$instance/etc" stop >/dev/null 2>&1 || true
  done
  if [ -n "${KEEP_WORK:-}" ]; then log "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ -n "${SLUICE_BIN:-}" ] || build_release

# postfix_instance NAME PORT: a private instance in $work/NAME listening on PORT, with
# main.cf lines from stdin appended to the shared base.
postfix_instance() {
  local name=$1 port=$2 base="$work/$1" _
  mkdir -p "$base/etc" "$base/spool" "$base/data"
  chown postfix "$base/data"
  cp /etc/postfix/master.cf /etc/postfix/postfix-files "$base/etc/"
  cp -r /etc/postfix/postfix-files.d /etc/postfix/dynamicmaps.cf* "$base/etc/" 2>/dev/null || true
  {
    cat <<CF
compatibility_level = 3.6
queue_directory = $base/spool
data_directory = $base/data
myhostname = $name.bench.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
smtp_tls_security_level = none
smtpd_tls_security_level = none
default_process_limit = 100
smtpd_hard_error_limit = 100000
smtpd_soft_error_limit = 100000
maillog_file_prefixes = /var, /dev/stdout, $work
maillog_file = $base/maillog
CF
    cat
  } >"$base/etc/main.cf"
  sed -i "s/^smtp      inet.*/127.0.0.1:$port inet n - n - - smtpd/" "$base/etc/master.cf"
  postconf -c "$base/etc" -F '*/*/chroot = n'
  postfix -c "$base/etc" start >/dev/null 2>&1
  for _ in $(seq 100); do port_open "$port" && return 0; sleep 0.1; done
  die "postfix $name did not start; see $base/maillog"
}

read -r store_port front_port sluice_port < <(free_ports 3 "$base_port")
log "ports: mail server $store_port, Postfix front $front_port, Sluice $sluice_port"

{
  echo "rcpt@example.com x"
  for i in $(seq 0 $((cold * 2))); do echo "u$i@example.com x"; done
} >"$work/vmailbox"
postfix_instance mailstore "$store_port" <<CF
relay_domains =
mynetworks = 127.0.0.0/8
virtual_mailbox_domains = example.com
virtual_mailbox_maps = texthash:$work/vmailbox
virtual_transport = discard
smtpd_relay_restrictions = permit_mynetworks, reject
CF

# sluice_config FILE VERIFY: no plugins, loopback clients are outsiders (verified).
sluice_config() {
  cat >"$1" <<TOML
[server]
hostname = "relay.bench.test"
listen = ["127.0.0.1:$sluice_port"]
[limits]
max_connections_per_ip = 1000
[relay]
networks = []
domains = ["example.com"]
[queue]
path = "$work/queue"
[delivery]
connections_per_destination = 20
[[route]]
name = "mailstore"
domains = ["example.com"]
next_hop = "127.0.0.1:$store_port"
tls = "none"
[route.recipients]
verify = "$2"
connections = 4
TOML
}
sluice_config "$work/none.toml" none
sluice_config "$work/callout.toml" callout

# accept_rate N SESSIONS: msgs/s until smtp-source has its last reply (it checks none).
accept_rate() {
  local t0 t1
  t0=$(date +%s.%N)
  smtp-source -s "$2" -m "$1" -l 4096 -f sender@example.org -t rcpt@example.com 127.0.0.1:"$sluice_port" >/dev/null 2>&1
  t1=$(date +%s.%N)
  python3 -c "print(round($1 / ($t1 - $t0)))"
}

# Queued messages of the server running now: every accepted message is in the queue
# or was delivered; a refusal would show as missing mail at the mail server.
delivered_count() { grep -c 'status=sent' "$work/mailstore/maillog" 2>/dev/null || echo 0; }

results="$work/results"
: >"$results"
for rep in $(seq "$repeat"); do for verify in none callout; do
  rm -rf "$work/queue"
  start_sluice "$work/$verify.toml" "$sluice_port" "$work/$verify.log"
  log "warm, verify = $verify: warm-up"
  accept_rate 200 5 >/dev/null
  sleep 1
  log "warm $rep/$repeat, verify = $verify: $n messages, $sessions sessions"
  rate=$(accept_rate "$n" "$sessions")
  log "  accept $rate msg/s"
  echo "warm $verify $rate" >>"$results"
  stop_sluice
done; done

client=bench/recipient-verify-client.py
cold_sluice() {
  rm -rf "$work/queue"
  start_sluice "$work/callout.toml" "$sluice_port" "$work/callout.log"
  log "cold, Sluice verify = callout: $cold new recipients"
  python3 "$client" 127.0.0.1:"$sluice_port" "$cold" "$sessions" u 0 | tee -a "$work/cold.sluice" >&2
  stop_sluice
}
cold_sluice
echo "cold sluice $(cut -d' ' -f1 "$work/cold.sluice") $(cut -d' ' -f2- "$work/cold.sluice")" >>"$results"

postfix_instance front "$front_port" <<CF
relay_domains = example.com
mynetworks =
relay_transport = relay:[127.0.0.1]:$store_port
smtpd_relay_restrictions = reject_unauth_destination
smtpd_recipient_restrictions = reject_unverified_recipient
unverified_recipient_reject_code = 550
CF
log "cold, Postfix reject_unverified_recipient: $cold new recipients"
# Other recipients (u$cold...) than Sluice's run, so the mail server has seen none.
python3 "$client" 127.0.0.1:"$front_port" "$cold" "$sessions" u "$cold" | tee "$work/cold.postfix" >&2
echo "cold postfix $(cat "$work/cold.postfix")" >>"$results"
log "mail server: $(delivered_count) messages delivered (discarded)"

python3 - "$results" "$n" "$cold" "$sessions" "$(machine)" <<'PY'
import statistics, sys
results, n, cold, sessions, machine = sys.argv[1:]
rows, warm = {}, {}
for line in open(results):
    kind, who, rate, *rest = line.split()
    rows[(kind, who)] = (rate, " ".join(rest))
    if kind == "warm":
        warm.setdefault(who, []).append(float(rate))
none = statistics.median(warm["none"])
callout = statistics.median(warm["callout"])
print(f"Recipient verification, {n} msgs (warm) / {cold} new recipients (cold), 4 KB, {sessions} sessions; {machine}\n")
print("| run | accept msg/s | note |")
print("|---|---|---|")
runs = lambda who: ", ".join(f"{r:.0f}" for r in warm[who])
print(f"| Sluice, verify = \"none\" | {none:.0f} | median of {runs('none')} |")
print(f"| Sluice, verify = \"callout\", warm cache | {callout:.0f} | median of {runs('callout')}; ratio to none: **{callout / none:.2f}** (target >= 0.9) |")
for who, label in (("sluice", "Sluice, verify = \"callout\", cold cache"), ("postfix", "Postfix, reject_unverified_recipient, cold")):
    rate, rest = rows[("cold", who)]
    print(f"| {label} | {rate} | {rest} |")
PY
