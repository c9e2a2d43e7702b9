"""A loopback DNS server for the benchmarks, answering from a records
file in the format of the test suite's (`NAME TYPE VALUE` a line). Needs dnspython
(in the dkimpy venv, target/dkimpy). Usage: zone-dns.py RECORDS PORT"""
import socket
import sys

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

records = {}
for line in open(sys.argv[1]):
    line = line.strip()
    if not line or line.startswith("#"):
        continue
    name, kind, value = line.split(None, 2)
    records.setdefault((name.lower().rstrip(".") + ".", kind.upper()), []).append(value)
names = {name for name, _ in records}

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", int(sys.argv[2])))
while True:
    data, peer = sock.recvfrom(4096)
    try:
        query = dns.message.from_wire(data)
    except Exception:
        continue
    response = dns.message.make_response(query)
    question = query.question[0]
    name, kind = question.name.to_text().lower(), dns.rdatatype.to_text(question.rdtype)
    values = records.get((name, kind), [])
    if values:
        if kind == "TXT":
            # Strings of at most 255 bytes each (RFC 1035 §3.3.14).
            values = [" ".join('"%s"' % v[i:i + 255] for i in range(0, len(v), 255)) for v in values]
        response.answer.append(dns.rrset.from_text_list(question.name, 300, "IN", kind, values))
    else:
        if name not in names:
            response.set_rcode(dns.rcode.NXDOMAIN)
        # An SOA with the negative answer, as an authoritative server sends it, so that
        # resolvers cache the answer (RFC 2308 §5).
        apex = name.rstrip(".").rsplit(".", 1)[-1] + "."
        soa = dns.rrset.from_text(apex, 300, "IN", "SOA", "ns.invalid. hostmaster.invalid. 1 3600 600 86400 300")
        response.authority.append(soa)
    sock.sendto(response.to_wire(), peer)
