#!/usr/bin/env bash
# The cost of checking incoming mail: 4 KB relay throughput (smtp-source -> Sluice ->
# smtp-sink over loopback) with [mail_auth] on (SPF, DKIM, ARC, DMARC, iprev; every
# message carries one RSA-2048 DKIM signature made by dkimpy) as a ratio to the same
# run with every check off, measured in one run. The records come from a loopback DNS
# server (bench/zone-dns.py) the server's [dns] points at; its cache keeps the key.
# Both configs are examples/sluice.toml without its plugins (bench/lib.sh,
# derive_config), with [dns] servers pointed at the loopback server and a [mail_auth]
# table appended (check_trusted = true: smtp-source connects from relay.networks).
#
# Prints a markdown table to stdout (progress to stderr): msgs/s off and on, and the
# ratio. Each figure is the median of --repeat runs, off and on alternating. On a
# shared machine the absolute figures are noisy: compare the ratio of one run.
#
# Usage: bench/mail-auth.sh [--n N] [--sessions S] [--repeat K] [--warmup N] [--base-port P]
#   --n        messages per run              (default 3000)
#   --sessions parallel smtp-source sessions (default 20)
#   --repeat   runs per figure, median kept  (default 3)
#   --warmup   messages before each run      (default 300)
#   --base-port search free ports from here  (default 3625)
# Needs root (smtp-sink -u postfix), postfix's smtp-source/smtp-sink, openssl and
# dkimpy in target/dkimpy (scripts/test installs it).
set -euo pipefail
cd "$(dirname "$0")/.."

n=3000 sessions=20 repeat=3 warmup=300 base_port=3625
# shellcheck source=bench/lib.sh
source bench/lib.sh
parse_run_options "$@"
need_root "smtp-sink -u postfix"
python=target/dkimpy/bin/python
need_tools "postfix, openssl; scripts/test makes the dkimpy venv" smtp-source smtp-sink openssl "$python"

work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-mail-auth.XXXXXX")
chmod 755 "$work"

dns_pid="" sink_pid=""
cleanup() {
  [ -z "$sink_pid" ] || kill "$sink_pid" 2>/dev/null || true
  [ -z "$dns_pid" ] || kill "$dns_pid" 2>/dev/null || true
  stop_sluice
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

build_release
read -r dns_port off_port off_sink on_port on_sink < <(free_ports 5 "$base_port")

# The key, its record, and one signed 4 KB message (smtp-source -F sends it as is).
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$work/key.pem" 2>/dev/null
public=$(openssl pkey -in "$work/key.pem" -pubout | grep -v -- ----- | tr -d '\n')
cat >"$work/records.txt" <<RECORDS
s1._domainkey.example.org TXT v=DKIM1; k=rsa; p=$public
example.org TXT v=spf1 ip4:127.0.0.1 -all
_dmarc.example.org TXT v=DMARC1; p=reject
RECORDS
{
  printf 'From: <sender@example.org>\r\nTo: <rcpt@example.com>\r\nSubject: benchmark\r\n'
  printf 'Date: Thu, 03 Dec 2026 12:00:00 +0000\r\nMessage-ID: <bench@example.org>\r\n\r\n'
  for _ in $(seq 52); do printf '%s\r\n' "$(printf 'x%.0s' $(seq 76))"; done
} | "$python" tests/integration/support/dkimpy.py dkim "$work/key.pem" example.org s1 | tr -d '\r' >"$work/message.eml"
log "message: $(wc -c <"$work/message.eml") bytes, signed by dkimpy"

start_zone_dns "$work/records.txt" "$dns_port"

for variant in off on; do
  port_var="${variant}_port" sink_var="${variant}_sink"
  derive_config "$work/$variant.toml" "${!port_var}" "$work/queue" "${!sink_var}" no-plugins
  use_zone_dns "$work/$variant.toml" "$dns_port"
done
printf '\n[mail_auth]\ncheck_trusted = true\n' >>"$work/on.toml"
printf '\n[mail_auth]\nspf = false\ndkim = false\narc = false\ndmarc = false\n' >>"$work/off.toml"
declare -A port=([off]=$off_port [on]=$on_port) sink=([off]=$off_sink [on]=$on_sink)

# measure_signed COUNT SESSIONS RELAY SINK: delivered msgs/s (the sink has every message), or 0.
measure_signed() {
  local count=$1 sess=$2 relay=$3 to=$4 t0 t1 _
  smtp-sink -u postfix -M "$count" 127.0.0.1:"$to" 1000 >/dev/null 2>&1 &
  sink_pid=$!
  sleep 0.3
  t0=$(date +%s.%N)
  smtp-source -s "$sess" -m "$count" -F "$work/message.eml" -f sender@example.org -t rcpt@example.com \
    127.0.0.1:"$relay" >/dev/null 2>&1 || true
  for _ in $(seq 1200); do kill -0 "$sink_pid" 2>/dev/null || break; sleep 0.05; done
  t1=$(date +%s.%N)
  if kill -0 "$sink_pid" 2>/dev/null; then
    kill "$sink_pid"; wait "$sink_pid" 2>/dev/null || true; sink_pid=; result=0; return
  fi
  wait "$sink_pid" 2>/dev/null || true
  sink_pid=
  result=$(python3 -c "print(round($count / ($t1 - $t0)))")
}

# One message through the "on" server to a sink that keeps it: the checks really run.
log "checking that the checks run"
probe_delivered on "$on_port" "$on_sink" '^Authentication-Results:' -F "$work/message.eml"
found=$(tr -d '\r' <"$found_file" | sed -n '/^Authentication-Results:/,/^[^ \t]/p' | tr -d '\n\t')
[[ $found == *"dkim=pass"* && $found == *"spf=pass"* && $found == *"dmarc=pass"* ]] ||
  die "the checks did not pass: $found"
log "  delivered with: ${found:0:200}"

results="$work/results"
: >"$results"
for rep in $(seq "$repeat"); do
  for variant in off on; do
    log "run $rep/$repeat, mail_auth $variant"
    rm -rf "$work/queue"
    start_sluice "$work/$variant.toml" "${port[$variant]}" "$work/$variant.log"
    measure_signed "$warmup" 5 "${port[$variant]}" "${sink[$variant]}"
    sleep 1
    measure_signed "$n" "$sessions" "${port[$variant]}" "${sink[$variant]}"
    stop_sluice
    log "  $result msg/s"
    echo "$variant $result" >>"$results"
  done
done

python3 - "$results" "$(machine)" "$n" "$sessions" "$repeat" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    variant, rate = line.split()
    runs.setdefault(variant, []).append(int(rate))
off, on = statistics.median(runs["off"]), statistics.median(runs["on"])
print(f"| 4 KB, {sys.argv[3]} messages, {sys.argv[4]} sessions | msgs/s delivered (median of {sys.argv[5]}) |")
print("|---|---|")
print(f"| [mail_auth] off | {off:.0f} |")
print(f"| [mail_auth] on (SPF, DKIM RSA-2048, ARC, DMARC, iprev) | {on:.0f} |")
print(f"| ratio on/off | {on / off:.2f} |" if off else "| ratio on/off | n/a |")
print()
print(f"{sys.argv[2]}; runs: off {runs['off']}, on {runs['on']}")
PY
