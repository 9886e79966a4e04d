"""A tiny authoritative DNS server for tests: UDP on 127.0.0.1, a port of its own, answering
from records the test gives (SRV, NAPTR, A, AAAA) with dnspython's message API. Point
``DnspythonBackend(nameservers=["127.0.0.1"], port=server.port)`` at it: the real resolver
code path, no system resolver, nothing global.

    with DnsStub({("_sip._udp.lab.test", "SRV"): ["10 10 5060 k1.lab.test."],
                  ("k1.lab.test", "A"): ["127.0.0.1"]}) as dns:
        backend = DnspythonBackend(nameservers=["127.0.0.1"], port=dns.port)

Names it has no records of get NXDOMAIN; a name with records of another type gets an empty
answer (NOERROR). Every question is kept in ``questions`` as (name, type).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Mapping, Sequence
from types import TracebackType

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

Records = Mapping[tuple[str, str], Sequence[str]]


class DnsStub:
    def __init__(self, records: Records, *, host: str = "127.0.0.1", ttl: int = 60) -> None:
        self._records = {
            (name.rstrip(".").lower(), rtype.upper()): list(values)
            for (name, rtype), values in records.items()
        }
        self._ttl = ttl
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((host, 0))
        self._sock.settimeout(0.2)  # how often the loop checks whether it should stop
        self.port: int = self._sock.getsockname()[1]
        self.questions: list[tuple[str, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="dns-stub", daemon=True)

    def __enter__(self) -> DnsStub:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self._sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                query = dns.message.from_wire(data)
            except dns.exception.DNSException:
                continue
            self._sock.sendto(self._answer(query).to_wire(), peer)

    def _answer(self, query: dns.message.Message) -> dns.message.Message:
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        for question in query.question:
            name = question.name.to_text(omit_final_dot=True).lower()
            rtype = dns.rdatatype.to_text(question.rdtype)
            self.questions.append((name, rtype))
            values = self._records.get((name, rtype))
            if values:
                response.answer.append(
                    dns.rrset.from_text_list(
                        question.name, self._ttl, dns.rdataclass.IN, question.rdtype, values
                    )
                )
            elif not any(known == name for known, _ in self._records):
                response.set_rcode(dns.rcode.NXDOMAIN)
        return response
