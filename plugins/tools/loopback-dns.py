#!/usr/bin/env python3
"""A tiny authoritative DNS responder for plugin tests: UDP on loopback, answers from a
records file, Python standard library only.

    loopback-dns.py RECORDS.txt [--port 5353] [--bind 127.0.0.1]

RECORDS.txt has one record a line, `NAME TYPE VALUE`; lines starting with `#` are comments:

    1.2.0.192.zen.example.test   A     127.0.0.2
    1.2.0.192.zen.example.test   TXT   Listed for spam; see https://zen.example.test/
    1.2.0.192.in-addr.arpa       PTR   mail.example.org
    mail.example.org             AAAA  2001:db8::25
    example.org                  MX    10 mail.example.org
    slow.example.test            DROP      # never answered: the resolver times out
    broken.example.test          SERVFAIL  # answered with SERVFAIL

Types: A, AAAA, TXT, PTR, CNAME, NS, MX, plus DROP and SERVFAIL, which apply to the name
and every name under it. A name with no record of the asked type but some other record
gets an empty NOERROR answer; an unknown name gets NXDOMAIN. Each query is printed to
standard error. It serves until killed (or for --seconds), and prints `ready PORT` on
standard output once listening (with --port 0 the kernel picks the port).
"""

import argparse
import socket
import struct
import sys
import time

TYPES = {"A": 1, "NS": 2, "CNAME": 5, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28}
NAMES = {v: k for k, v in TYPES.items()}


def encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            raw = label.encode("idna") if not label.isascii() else label.encode()
            out += bytes([len(raw)]) + raw
    return out + b"\0"


def rdata(kind, value):
    if kind == "A":
        return socket.inet_pton(socket.AF_INET, value)
    if kind == "AAAA":
        return socket.inet_pton(socket.AF_INET6, value)
    if kind == "TXT":
        raw = value.encode()
        chunks = [raw[i:i + 255] for i in range(0, len(raw), 255)] or [b""]
        return b"".join(bytes([len(c)]) + c for c in chunks)
    if kind in ("PTR", "CNAME", "NS"):
        return encode_name(value)
    if kind == "MX":
        preference, exchange = value.split(None, 1)
        return struct.pack("!H", int(preference)) + encode_name(exchange)
    raise ValueError(f"unsupported type {kind}")


def load(path):
    records, special = {}, {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split(None, 2)
            if len(parts) < 2:
                sys.exit(f"{path}:{number}: expected NAME TYPE VALUE")
            name, kind = parts[0].lower().rstrip("."), parts[1].upper()
            value = parts[2].strip() if len(parts) > 2 else ""
            if kind in ("DROP", "SERVFAIL"):
                special[name] = kind
            elif kind in TYPES:
                rdata(kind, value)  # fail early on a bad value
                records.setdefault(name, []).append((kind, value))
            else:
                sys.exit(f"{path}:{number}: unknown type {kind}")
    return records, special


def parse_question(packet):
    labels, pos = [], 12
    while True:
        length = packet[pos]
        pos += 1
        if length == 0:
            break
        labels.append(packet[pos:pos + length].decode("ascii", "replace"))
        pos += length
    qtype, qclass = struct.unpack("!HH", packet[pos:pos + 4])
    return ".".join(labels).lower(), qtype, packet[12:pos + 4]


def special_for(name, special):
    parts = name.split(".")
    for i in range(len(parts)):
        kind = special.get(".".join(parts[i:]))
        if kind:
            return kind
    return None


def answer(packet, records, special):
    ident, flags = struct.unpack("!HH", packet[:4])
    name, qtype, question = parse_question(packet)
    kind = special_for(name, special)
    label = NAMES.get(qtype, str(qtype))
    if kind == "DROP":
        print(f"{label} {name}: dropped", file=sys.stderr, flush=True)
        return None
    rd = flags & 0x0100
    if kind == "SERVFAIL":
        rcode, answers = 2, []
    elif name not in records:
        rcode, answers = 3, []
    else:
        rcode = 0
        answers = [(k, v) for k, v in records[name] if TYPES[k] == qtype]
    print(f"{label} {name}: rcode {rcode}, {len(answers)} answer(s)", file=sys.stderr, flush=True)
    header = struct.pack("!HHHHHH", ident, 0x8400 | rd | rcode, 1, len(answers), 0, 0)
    body = b""
    for k, v in answers:
        data = rdata(k, v)
        body += struct.pack("!HHHIH", 0xC00C, TYPES[k], 1, 60, len(data)) + data
    return header + question + body


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("records")
    parser.add_argument("--port", type=int, default=5353)
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--seconds", type=float, default=0, help="stop after this long (0: never)")
    args = parser.parse_args()
    records, special = load(args.records)
    family = socket.AF_INET6 if ":" in args.bind else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.bind((args.bind, args.port))
    print(f"ready {sock.getsockname()[1]}", flush=True)
    deadline = time.monotonic() + args.seconds if args.seconds else None
    while deadline is None or time.monotonic() < deadline:
        sock.settimeout(max(0.1, deadline - time.monotonic()) if deadline else None)
        try:
            packet, peer = sock.recvfrom(4096)
        except socket.timeout:
            continue
        try:
            reply = answer(packet, records, special)
        except (IndexError, struct.error, ValueError) as e:
            print(f"malformed query from {peer}: {e}", file=sys.stderr, flush=True)
            continue
        if reply:
            sock.sendto(reply, peer)


if __name__ == "__main__":
    main()
