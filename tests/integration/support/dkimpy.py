"""Signs a message (stdin, CRLF) with dkimpy, the independent implementation the
mail-authentication tests check Sluice against; writes the signed message to stdout.

    dkimpy.py dkim KEY DOMAIN SELECTOR [--length]
    dkimpy.py arc KEY DOMAIN SELECTOR SRV_ID
"""
import sys

import dkim

mode, key, domain, selector = sys.argv[1:5]
message = sys.stdin.buffer.read()
privkey = open(key, "rb").read()
if mode == "dkim":
    length = "--length" in sys.argv[5:]
    headers = [b"From", b"To", b"Subject", b"Date", b"Message-ID"]
    signature = dkim.sign(message, selector.encode(), domain.encode(), privkey,
                          include_headers=headers, length=length)
    sys.stdout.buffer.write(signature + message)
elif mode == "arc":
    srv_id = sys.argv[5].encode()
    headers = dkim.arc_sign(message, selector.encode(), domain.encode(), privkey, srv_id,
                            include_headers=[b"From", b"To", b"Subject"])
    sys.stdout.buffer.write(b"".join(headers) + message)
else:
    sys.exit(f"unknown mode {mode}")
