"""The driver of bench/plugin-abuse.sh: starts the servers, runs the load, prints the table.

For each hostile case, on one server running the test plugin with that behaviour for
transactions of hostile@..., three measurements of SECONDS each, repeated RUNS times
(median taken):
  - clean:  WELL well-behaved sessions alone;
  - hostile: the same beside HOSTILE sessions whose transactions trigger the behaviour;
  - honest: on a second server whose plugin refuses those transactions at once (at the
    same stage), the same well-behaved load beside the same hostile connection pattern.
Well-behaved sessions connect from 127.0.1.x, hostile ones from 127.0.2.x (different
/24 networks, as different clients on the Internet are).
"""

import argparse
import multiprocessing as mp
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

WELL, HOSTILE = 4, 2

CASES = [
    # name, [[plugin]] keys, stage, action config
    ("loop", 'cpu_time = "100ms"', "rcpt-to", 'action = "loop"'),
    ("memory-bomb", 'memory = "16MB"', "rcpt-to", 'action = "memory-bomb"'),
    ("huge-output", "", "data", 'action = "huge-headers"'),
    ("trap", "", "rcpt-to", 'action = "trap"'),
    ("slow-host-call", 'wall_time = "1s"', "mail-from", 'action = "slow-dns"\nvalue = "slow.example"'),
]


def log(*words):
    print(time.strftime("%H:%M:%S"), *words, file=sys.stderr, flush=True)


class Smtp:
    def __init__(self, port, source):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30, source_address=(source, 0))
        self.file = self.sock.makefile("rb")
        self.code = self.reply()

    def reply(self):
        while True:
            line = self.file.readline()
            if not line:
                return 0
            if line[3:4] != b"-":
                return int(line[:3])

    def cmd(self, line):
        self.sock.sendall(line.encode() + b"\r\n")
        return self.reply()

    def close(self):
        self.file.close()
        self.sock.close()


def well_behaved(port, source, seconds, start, out):
    """Sends messages for `seconds` after `start`; puts how many were accepted."""
    while time.time() < start:
        time.sleep(0.001)
    sent, end = 0, start + seconds
    while time.time() < end:
        c = Smtp(port, source)
        ok = c.code == 220
        for line in ["EHLO well.example", "MAIL FROM:<alice@example.org>", "RCPT TO:<bob@example.com>"]:
            ok = ok and c.cmd(line) == 250
        ok = ok and c.cmd("DATA") == 354
        ok = ok and c.cmd(f"Subject: well-behaved {source}/{sent}\r\n\r\nhello\r\n.") == 250
        if not ok:
            sys.exit(f"a well-behaved session from {source} failed")
        c.cmd("QUIT")
        c.close()
        sent += 1
    out.put(sent)


def hostile(port, source, stop, out):
    """Hostile transactions until `stop`: connect, envelope, DATA, and drop the
    connection (as tests/integration/abuse.rs does). Puts the final replies' codes."""
    codes = {}
    while not stop.is_set():
        try:
            c = Smtp(port, source)
        except OSError:
            time.sleep(0.01)
            continue
        code = c.code
        if code == 220:
            for line in ["EHLO hostile.example", "MAIL FROM:<hostile@example.org>", "RCPT TO:<hostile@example.com>", "DATA"]:
                code = c.cmd(line)
                if code >= 400:
                    break
            else:
                code = c.cmd("Subject: hostile\r\n\r\nx\r\n.")
        c.close()
        codes[code] = codes.get(code, 0) + 1
    out.put(codes)


def measure(port, seconds, with_hostile):
    """Well-behaved messages per second, and the hostile replies seen meanwhile."""
    out, stop = mp.Queue(), mp.Event()
    attackers = [
        mp.Process(target=hostile, args=(port, f"127.0.2.{i + 1}", stop, out)) for i in range(HOSTILE if with_hostile else 0)
    ]
    for a in attackers:
        a.start()
    start = time.time() + (0.5 if with_hostile else 0.1)
    workers = [mp.Process(target=well_behaved, args=(port, f"127.0.1.{i + 1}", seconds, start, out)) for i in range(WELL)]
    for w in workers:
        w.start()
    sent = sum(out.get(timeout=seconds + 120) for _ in workers)
    for w in workers:
        w.join()
        if w.exitcode != 0:
            sys.exit("a well-behaved session failed")
    stop.set()
    codes = {}
    for _ in attackers:
        for code, n in out.get(timeout=60).items():
            codes[code] = codes.get(code, 0) + n
    for a in attackers:
        a.join()
    return sent / seconds, codes


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, binary, work, name, plugin, dns, extra):
        self.port = free_port()
        self.dir = os.path.join(work, name)
        os.makedirs(self.dir)
        config = os.path.join(self.dir, "sluice.toml")
        with open(config, "w") as f:
            f.write(
                f'[server]\nhostname = "relay.bench.test"\nlisten = ["127.0.0.1:{self.port}"]\n'
                f'[limits]\nmax_connections_per_ip = 1000\n[queue]\npath = "{self.dir}/queue"\n'
                f'[relay]\ndomains = ["example.com"]\n'
                f'[dns]\nservers = ["{dns}"]\ntimeout = "30s"\nattempts = 1\n'
                f'[plugins]\ncache_dir = "{work}/plugin-cache"\n{extra}\n{plugin}'
            )
        self.log = open(os.path.join(self.dir, "log"), "w")
        env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "warn"))
        self.proc = subprocess.Popen([binary, "serve", "--config", config], stderr=self.log, env=env)
        for _ in range(1200):
            if self.proc.poll() is not None:
                sys.exit(f"sluice exited at start; see {self.log.name}:\n" + open(self.log.name).read())
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        sys.exit(f"sluice did not listen within 120 s; see {self.log.name}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def plugin(wasm, keys, stage, action):
    return (
        f'[[plugin]]\nname = "testing"\npath = "{wasm}"\ngrants = ["config", "log", "dns", "kv"]\n{keys}\n'
        f'[plugin.config]\nstage = "{stage}"\n{action}\nonly_for = "hostile"\n'
    )


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", required=True)
    p.add_argument("--wasm", required=True)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--cases", default=",".join(c[0] for c in CASES))
    p.add_argument("--plugins-extra", default="", help="TOML appended to [plugins] (e.g. penalty_box settings)")
    args = p.parse_args()
    wanted = args.cases.split(",")
    servers = []
    blackhole = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # a DNS server that never answers
    blackhole.bind(("127.0.0.1", 0))
    dns = "%s:%d" % blackhole.getsockname()

    def stop_all(*_):
        for s in servers:
            s.stop()
        sys.exit(130)

    signal.signal(signal.SIGTERM, stop_all)
    rows = []
    with tempfile.TemporaryDirectory() as work:
        try:
            for name, keys, stage, action in [c for c in CASES if c[0] in wanted]:
                case = Server(args.bin, work, name, plugin(args.wasm, keys, stage, action), dns, args.plugins_extra)
                honest = Server(
                    args.bin, work, name + "-honest", plugin(args.wasm, "", stage, 'action = "reject"'), dns, args.plugins_extra
                )
                servers += [case, honest]
                clean, attacked, baseline, codes = [], [], [], {}
                for run in range(args.runs):
                    baseline.append(measure(honest.port, args.seconds, True)[0])
                    clean.append(measure(case.port, args.seconds, False)[0])
                    rate, seen = measure(case.port, args.seconds, True)
                    attacked.append(rate)
                    for code, n in seen.items():
                        codes[code] = codes.get(code, 0) + n
                    log(f"{name} run {run + 1}: honest {baseline[-1]:.0f}, clean {clean[-1]:.0f}, hostile {rate:.0f} msg/s; hostile replies {seen}")
                case.stop()
                honest.stop()
                servers.clear()
                m = statistics.median
                rows.append((name, m(attacked), m(baseline), m(clean), codes))
        finally:
            for s in servers:
                s.stop()
    print(f"{WELL} well-behaved + {HOSTILE} hostile sessions, {args.seconds:g} s per measurement, median of {args.runs}")
    print("| hostile plugin | well-behaved msg/s | vs honest baseline | vs no hostile clients | hostile replies |")
    print("|---|---|---|---|---|")
    for name, attacked, baseline, clean, codes in rows:
        replies = ", ".join(f"{c}: {n}" for c, n in sorted(codes.items()))
        print(f"| {name} | {attacked:.0f} | {100 * attacked / baseline:.0f} % (of {baseline:.0f}) | {100 * attacked / clean:.0f} % (of {clean:.0f}) | {replies} |")


if __name__ == "__main__":
    main()
