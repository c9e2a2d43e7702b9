#!/usr/bin/env python3
"""Sends COUNT 4 KB messages over SESSIONS parallel SMTP sessions, each message to a
recipient of its own (PREFIX{FIRST}@example.com, PREFIX{FIRST+1}@example.com, ...), so
that a verifying relay meets every recipient for the first time.

Usage: recipient-verify-client.py HOST:PORT COUNT SESSIONS PREFIX FIRST
Prints: "RATE accepted=A refused=R tempfailed=T seconds=S", RATE being accepted
messages per second until the last reply.
"""

import smtplib
import sys
import threading
import time

BODY = "Subject: bench\r\n\r\n" + ("x" * 76 + "\r\n") * 52


def session(addr, numbers, counts, lock):
    host, port = addr.rsplit(":", 1)
    smtp = smtplib.SMTP(host, int(port), timeout=120)
    smtp.ehlo("bench.example")
    mine = {"accepted": 0, "refused": 0, "tempfailed": 0}
    for number in numbers:
        code, _ = smtp.mail("sender@example.org")
        if code != 250:
            mine["tempfailed" if code < 500 else "refused"] += 1
            smtp.rset()
            continue
        code, text = smtp.rcpt(f"{PREFIX}{number}@example.com")
        if code >= 400:
            with lock:
                if not FIRST_ERROR:
                    FIRST_ERROR.append(f"{code} {text.decode(errors='replace')}")
            mine["tempfailed" if code < 500 else "refused"] += 1
            smtp.rset()
            continue
        code, _ = smtp.data(BODY)
        mine["accepted" if code == 250 else ("tempfailed" if code < 500 else "refused")] += 1
    smtp.quit()
    with lock:
        for key, value in mine.items():
            counts[key] += value


addr, count, sessions, PREFIX, first = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
numbers = list(range(first, first + count))
FIRST_ERROR = []
counts = {"accepted": 0, "refused": 0, "tempfailed": 0}
lock = threading.Lock()
threads = [
    threading.Thread(target=session, args=(addr, numbers[i::sessions], counts, lock)) for i in range(sessions)
]
start = time.monotonic()
for t in threads:
    t.start()
for t in threads:
    t.join()
seconds = time.monotonic() - start
print(
    f"{counts['accepted'] / seconds:.0f} accepted={counts['accepted']} refused={counts['refused']} "
    f"tempfailed={counts['tempfailed']} seconds={seconds:.1f}"
)
if FIRST_ERROR:
    print(f"first refusal: {FIRST_ERROR[0]}", file=sys.stderr)
