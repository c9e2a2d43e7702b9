#!/usr/bin/env bash
# The cost of DKIM-signing outgoing mail, measured in one run on this machine:
# smtp-source -> Sluice -> smtp-sink over loopback, 4 KB messages, for three configs
# derived from examples/sluice.toml without its plugins (bench/lib.sh, derive_config):
#   - off:     no [[dkim_sign]];
#   - rsa:     [[dkim_sign]] for example.org (smtp-source's From domain), RSA-2048;
#   - ed25519: the same with an Ed25519 key.
# The keys come from `sluice dkim keygen`. The client is 127.0.0.1, in relay.networks,
# so every message is signed (checked once per config before measuring: the sink must
# receive a DKIM-Signature with the right a=). Each figure is the median of --repeat
# runs; prints a markdown table with signed/off ratios. Absolute figures vary with the
# machine's load: compare the ratios of one run only.
#
# Usage: bench/dkim-sign.sh [--n N] [--sessions S] [--repeat K] [--warmup N] [--base-port P]
#   --n        messages per run              (default 5000)
#   --sessions parallel smtp-source sessions (default 20)
#   --repeat   runs per figure, median kept  (default 3)
#   --warmup   messages before each measured run (default 500)
#   --base-port search free ports from here  (default 3625)
# Needs root (smtp-sink -u postfix).
set -euo pipefail
cd "$(dirname "$0")/.."

n=5000 sessions=20 repeat=3 warmup=500 base_port=3625
# shellcheck source=bench/lib.sh
source bench/lib.sh
parse_run_options "$@"
need_root "smtp-sink -u postfix"
need_tools "apt-get install postfix python3" smtp-source smtp-sink python3

work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-dkim.XXXXXX")
chmod 755 "$work"

sink_pid=""
cleanup() {
  stop_measure
  [ -z "$sink_pid" ] || kill "$sink_pid" 2>/dev/null || true
  stop_sluice
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

build_release

read -r port sink_port < <(free_ports 2 "$base_port")
derive_config "$work/off.toml" "$port" "$work/queue" "$sink_port" no-plugins
for algorithm in rsa ed25519; do
  "$sluice_bin" dkim keygen --domain example.org --selector bench --algorithm "$algorithm" \
    --out "$work/$algorithm.pem" >/dev/null 2>&1
  cp "$work/off.toml" "$work/$algorithm.toml"
  printf '\n[[dkim_sign]]\ndomain = "example.org"\nselector = "bench"\nkey = "%s"\n' "$work/$algorithm.pem" \
    >>"$work/$algorithm.toml"
done
load_before=$(cut -d' ' -f1-3 /proc/loadavg)


# Each config must deliver a message signed with its algorithm.
probe_delivered rsa "$port" "$sink_port" '^DKIM-Signature: v=1; a=rsa-sha256;'
probe_delivered ed25519 "$port" "$sink_port" '^DKIM-Signature: v=1; a=ed25519-sha256;'

results="$work/results"
: >"$results"
for rep in $(seq "$repeat"); do
  for variant in off rsa ed25519; do
    log "run $rep/$repeat, $variant"
    rm -rf "$work/queue"
    start_sluice "$work/$variant.toml" "$port" "$work/$variant.log"
    measure "warmup-$variant" "$warmup" 5 4096 "$port" "$sink_port"
    sleep 1
    measure "$variant" "$n" "$sessions" 4096 "$port" "$sink_port"
    stop_sluice
    : >"$work/$variant.log"
    echo "$variant $rep $result" >>"$results"
  done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

python3 - "$results" <<PY
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    variant, rep, acc, dlv = line.split()
    runs.setdefault(variant, []).append((acc, dlv))

def median(variant, i):
    values = [float(r[i]) for r in runs.get(variant, []) if r[i] != "fail"]
    return statistics.median(values) if values else None

def ratio(a, b):
    return f"**{a / b:.2f}**" if a and b else "—"

print(f"Sluice $(git rev-parse --short HEAD), DKIM signing of outgoing mail: smtp-source → Sluice → "
      f"smtp-sink over loopback, 4 KB messages (n=$n), $sessions sessions, no plugins; median of $repeat run(s).")
print(f"Machine: $(machine); load average before/after: $load_before / $load_after.")
print()
print("| rate | signing off | RSA-2048 | Ed25519 | RSA / off | Ed25519 / off |")
print("|---|---|---|---|---|---|")
for i, what in ((0, "accepted"), (1, "delivered")):
    off, rsa, ed = (median(v, i) for v in ("off", "rsa", "ed25519"))
    fmt = lambda v: f"{v:.0f} msg/s" if v else "failed"
    print(f"| {what} | {fmt(off)} | {fmt(rsa)} | {fmt(ed)} | {ratio(rsa, off)} | {ratio(ed, off)} |")
print()
print("Runs (accepted/delivered msg/s):")
for variant in ("off", "rsa", "ed25519"):
    print(f"- {variant}: " + ", ".join(f"{a}/{d}" for a, d in runs.get(variant, [])))
PY
