#!/usr/bin/env python3
"""Writes the hand-made seed corpora into fuzz/corpus/<target>/seed-*.

Run from anywhere: `python3 fuzz/seeds.py`. The queue seeds are not made here: they
are real segment files written by the server (see fuzz/README.md) and committed as
they are. Seed files are named `seed-*` so that .gitignore can keep them while
ignoring what libFuzzer adds to the corpus directories.
"""

import os
import struct

ROOT = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(ROOT, "corpus")


def write(target, name, data):
    directory = os.path.join(CORPUS, target)
    os.makedirs(directory, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(os.path.join(directory, "seed-" + name), "wb") as f:
        f.write(data)


# ---- smtp_command: one command line, without its CRLF ----

COMMANDS = {
    "ehlo": "EHLO client.example.org",
    "helo": "HELO mail",
    "mail": "MAIL FROM:<alice@example.org> SIZE=1024 BODY=8BITMIME",
    "mail-null-dsn": "MAIL FROM:<> RET=HDRS ENVID=QQ+2B1",
    "mail-utf8": "MAIL FROM:<用户@例子.测试> SMTPUTF8",
    "mail-auth-literal": "mail from: <a.b+c@[192.0.2.1]> AUTH=<>",
    "rcpt-dsn": "RCPT TO:<bob@example.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob+40example.com",
    "rcpt-source-route": "RCPT TO:<@relay.test,@other.test:user@victim.test>",
    "rcpt-quoted-ipv6": 'RCPT TO:<"john doe"@[IPv6:2001:db8::1]>',
    "rcpt-postmaster": "RCPT TO:<Postmaster>",
    "rcpt-relay-tricks": 'RCPT TO:<"user@victim.test"@example.com>',
    "data": "DATA",
    "bdat": "BDAT 1000 LAST",
    "auth": "AUTH PLAIN dGVzdAB0ZXN0AHRlc3Q=",
    "starttls": "STARTTLS",
    "quit": "QUIT",
    "vrfy": "VRFY postmaster",
}
for name, line in COMMANDS.items():
    write("smtp_command", name, line)

# ---- data_reader: [flags, max_line_length (LE u16), chunk seed] + the client's bytes ----


def data_seed(body, chunked=False, max_line=1000, seed=7):
    return bytes([1 if chunked else 0]) + struct.pack("<H", max_line) + bytes([seed]) + body


PIPELINED = b"MAIL FROM:<evil@attacker.test>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\nsmuggled\r\n.\r\n"
MESSAGE = (
    b"Received: from client.example.org\r\n"
    b"From: alice@example.org\r\n"
    b"Subject: dots\r\n"
    b"\r\n"
    b"..leading dot, stuffed\r\n"
    b"...\r\n"
    b"mid.dle\r\n"
    b".\r\n"
)
write("data_reader", "message", data_seed(MESSAGE + b"QUIT\r\n"))
write("data_reader", "empty", data_seed(b".\r\n"))
for name, variant in [
    ("lf-dot-lf", b"\n.\n"),
    ("cr-dot-cr", b"\r.\r"),
    ("lf-dot-crlf", b"\n.\r\n"),
    ("crlf-dot-lf", b"\r\n.\n"),
    ("crlf-dot-crcrlf", b"\r\n.\r\r\n"),
    ("crlf-nul-dot", b"\r\n\x00.\r\n"),
]:
    body = b"Subject: smuggle\r\n\r\nfirst" + variant + PIPELINED
    write("data_reader", "smuggle-" + name, data_seed(body, seed=len(name)))
write("data_reader", "long-line", data_seed(b"x" * 999 + b"\r\n" + b"." * 999 + b"\r\n.\r\n"))
write("data_reader", "bdat", data_seed(b".\r\nline\r\n.\r\nlast\r", chunked=True))

# ---- config: TOML text ("~" + splice of examples/sluice.toml) ----

with open(os.path.join(ROOT, "..", "examples", "sluice.toml"), "rb") as f:
    write("config", "example.toml", f.read())
write(
    "config",
    "full.toml",
    """[server]
hostname = "mx1.example.net"
listen = ["0.0.0.0:25", { address = "[::]:465", tls = "implicit" }, { address = "127.0.0.1:2526", proxy_protocol = true, tls = "none" }]
greeting_delay = "3s"
proxy_networks = ["10.0.0.0/8"]
shutdown_timeout = "1m30s"

[limits]
max_message_size = "50MiB"
max_recipients = 500
bare_newlines = "reject"
max_line_length = 2000

[tls]
cert = "certs/mx1.pem"
key = "certs/mx1.key"

[relay]
networks = ["192.0.2.0/24", "2001:db8::/32", "203.0.113.7"]
domains = ["example.net", "*.example.net"]

[queue]
path = "/var/spool/sluice"
retry = ["30s", "5m", "1h"]
max_age = "3d"
delay_warning = "4h"

[dns]
servers = ["192.0.2.53:53"]
timeout = "2s"
attempts = 3

[kv]
backend = "redis"
url = "redis://127.0.0.1:6379/0"
timeout = "500ms"

[auth]
failure_delay = "2s"
[[auth.users]]
name = "submit"
password_hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"

[metrics]
listen = "127.0.0.1:9025"

[plugins]
max_instances = 8

[[plugin]]
name = "dnsbl"
path = "plugins/dnsbl.wasm"
grants = ["dns", "log"]
on_error = "continue"
cpu_time = "20ms"
memory = "16MB"
[plugin.config]
zones = ["zen.example"]

[[route]]
name = "internal"
domains = ["example.net"]
next_hop = ["10.0.0.5:25", "[2001:db8::25]:2525", "backup.example.net"]
tls = "verify"
max_connections = 4

[[route]]
name = "internet"
domains = ["*"]
mx = true

[delivery]
helo_name = "mx1.example.net"
connections_per_destination = 10
""",
)
write("config", "splice-limits", b"~" + struct.pack("<H", 400) + bytes([40]) + b'max_message_size = "99999999999999GB"\n')
write("config", "splice-route", b"~" + struct.pack("<H", 1900) + bytes([0]) + b'[[route]]\nname = "internet"\nnext_hop = "[::1"\n')

# ---- plugin_output: the byte layout read by fuzz_targets/plugin_output.rs ----


def s(text):
    """A string, raw mode: mode byte 0, u16 LE length, the bytes."""
    b = text.encode("utf-8") if isinstance(text, str) else text
    return bytes([0]) + struct.pack("<H", len(b)) + b


def reply(code, enhanced, text):
    return bytes([0]) + struct.pack("<H", code) + s(enhanced) + s(text)


def outcome(verdict, tags=(), score=0.0, annotations=()):
    out = verdict + bytes([len(tags)]) + b"".join(s(t) for t in tags)
    out += bytes([1]) + struct.pack("<d", score)
    out += bytes([len(annotations)]) + b"".join(s(k) + s(v) for k, v in annotations)
    return out


CONTINUE, ACCEPT = bytes([0]), bytes([1])


def reject(*r):
    return bytes([2]) + reply(*r)


def tempfail(*r):
    return bytes([3]) + reply(*r)


def disconnect(*r):
    return bytes([4]) + reply(*r)


def quarantine(reason):
    return bytes([6]) + s(reason)


def plugin_seed(out, address="", null_ok=False, action=None, added=(), route=None, changes=(), section=b""):
    data = out + bytes([1 if null_ok else 0]) + s(address)
    if action is None:
        data += bytes([0])
    elif action == "drop":
        data += bytes([1])
    else:
        data += bytes([2]) + s(action)
    data += bytes([len(added)]) + b"".join(s(a) for a in added)
    kind, value = route or ("next-hop", "")
    data += bytes([1 if kind == "named" else 0]) + s(value)
    data += bytes([len(changes)])
    for change in changes:
        if change[0] == "add":
            data += bytes([0]) + s(change[1]) + s(change[2])
        elif change[0] == "set":
            data += bytes([1]) + s(change[1]) + s(change[2])
        else:
            data += bytes([2]) + s(change[1])
    section = section.encode("utf-8") if isinstance(section, str) else section
    data += bytes([0]) + struct.pack("<H", len(section)) + section  # raw section
    return data


SECTION = "From: alice@example.org\r\nTo: bob@example.com\r\nSubject: hello\r\n there\r\nX-Mailer: foo\r\nx-mailer: bar\r\n\r\nbody\r\n"
write(
    "plugin_output",
    "continue-headers",
    plugin_seed(
        outcome(CONTINUE, tags=["scanned"], score=1.5, annotations=[("spam.score", "1.5")]),
        address="bob@example.com",
        route=("next-hop", "mx.example.net:2525"),
        changes=[("add", "X-Spam-Score", "1.5"), ("set", "Subject", "[SCANNED] hello"), ("remove", "X-Mailer")],
        section=SECTION,
    ),
)
write(
    "plugin_output",
    "reject-spam",
    plugin_seed(
        outcome(reject(550, "5.7.1", "Message rejected as spam"), tags=["spam", "dnsbl"], score=7.5),
        address="",
        null_ok=True,
        action='"john doe"@example.com',
        route=("named", "internal"),
        changes=[("add", "X-Long", " ".join(["word"] * 60)), ("set", "Subject", "café ünïcode déjà vu " * 4)],
        section="Subject: =?utf-8?q?caf=C3=A9?=\r\n\r\n",
    ),
)
write(
    "plugin_output",
    "tempfail-greylist",
    plugin_seed(
        outcome(tempfail(451, "4.7.1", "Greylisted, try again in 5 minutes")),
        address="postmaster",
        action="bob@[IPv6:2001:db8::1]",
        added=["archive@example.com", "postmaster"],
        route=("next-hop", "[2001:db8::1]:25"),
        changes=[("set", "X-Greylist", "delayed 300 seconds"), ("remove", "Received")],
        section="Received: from a\r\n\tby b\r\nReceived: from c\r\nSubject: x",
    ),
)
write(
    "plugin_output",
    "disconnect",
    plugin_seed(outcome(disconnect(421, "4.7.0", "Too many connections from your host")), action="drop"),
)
write(
    "plugin_output",
    "quarantine",
    plugin_seed(
        outcome(quarantine("suspicious attachment: invoice.exe")),
        changes=[("add", "X-Quarantine", "yes")],
        section=SECTION,
    ),
)
write(
    "plugin_output",
    "invalid",
    plugin_seed(
        outcome(reject(250, "2.0.0", "ok\r\n250 injected")),
        address="a@b.c>\r\nRCPT TO:<x@y.z",
        action="user",
        route=("next-hop", "bad host:99999"),
        changes=[("add", "Bad Name", "v"), ("set", "X-A", "v\r\nX-Injected: 1")],
        section="A: b\nC: d\r\n",
    ),
)

# ---- proxy_header: what a load balancer sends first ----

V2 = b"\r\n\r\n\x00\r\nQUIT\n"


def v2(command, family, payload):
    return V2 + bytes([0x20 | command, family]) + struct.pack(">H", len(payload)) + payload


write("proxy_header", "v1-tcp4", b"PROXY TCP4 192.0.2.7 198.51.100.1 56324 25\r\nEHLO x\r\n")
write("proxy_header", "v1-tcp6", b"PROXY TCP6 2001:db8::7 2001:db8::1 4000 25\r\n")
write("proxy_header", "v1-unknown", b"PROXY UNKNOWN\r\n")
ipv4 = bytes([192, 0, 2, 9, 198, 51, 100, 1]) + struct.pack(">HH", 4242, 25) + bytes([0x04, 0, 1, 0xFF])
write("proxy_header", "v2-tcp4-tlv", v2(1, 0x11, ipv4) + b"EHLO x\r\n")
ipv6 = bytes(range(16)) + bytes(range(16, 32)) + struct.pack(">HH", 7, 25)
write("proxy_header", "v2-tcp6", v2(1, 0x21, ipv6))
write("proxy_header", "v2-local", v2(0, 0x00, b""))
write("proxy_header", "v2-unix", v2(1, 0x31, bytes(216)))
