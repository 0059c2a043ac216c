"""A real DNS server on a loopback port that a test fills with records (dnslib's server).

`ZoneServer()` answers TXT (and A) queries from its `records` dict over UDP and TCP,
NXDOMAIN for anything else; the sender-authentication tests point [spam] resolver at
it, so SPF, DKIM and DMARC are looked up over the wire, never through a patched resolver.
"""

from __future__ import annotations

import pytest
from dnslib import QTYPE, RCODE, RR, TXT, A
from dnslib.server import BaseResolver, DNSLogger, DNSServer

from tests.conftest import free_port


class _Zone(BaseResolver):
    def __init__(self, records: dict[str, list[tuple[str, str]]]) -> None:
        self.records = records

    def resolve(self, request, handler):
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        qtype = QTYPE[request.q.qtype]
        found = [(t, v) for t, v in self.records.get(name, []) if t == qtype]
        if not self.records.get(name):
            reply.header.rcode = RCODE.NXDOMAIN
        for t, v in found:
            if t == "TXT":
                chunks = [v[i:i + 250] for i in range(0, len(v), 250)]  # one string is at most 255 bytes
                reply.add_answer(RR(request.q.qname, QTYPE.TXT, rdata=TXT(chunks), ttl=60))
            elif t == "A":
                reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A(v), ttl=60))
        return reply


class ZoneServer:
    def __init__(self) -> None:
        self.records: dict[str, list[tuple[str, str]]] = {}
        self.port = free_port()
        zone = _Zone(self.records)
        quiet = DNSLogger(log="-request,-reply,-truncated,-error", prefix=False)
        self.servers = [DNSServer(zone, address="127.0.0.1", port=self.port, logger=quiet),
                        DNSServer(zone, address="127.0.0.1", port=self.port, tcp=True, logger=quiet)]

    def add(self, name: str, rtype: str, value: str) -> None:
        self.records.setdefault(name.lower().rstrip("."), []).append((rtype, value))

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> "ZoneServer":
        for s in self.servers:
            s.start_thread()
        return self

    def stop(self) -> None:
        for s in self.servers:
            s.stop()


@pytest.fixture
def dns_zone():
    server = ZoneServer().start()
    yield server
    server.stop()
