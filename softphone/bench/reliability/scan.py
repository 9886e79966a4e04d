"""A scanner against a listening phone: sipvicious, and a probe of our own.

The phone (``softphone listen``) is registered at the lab's Kamailio as alice, the way a phone
on the internet is registered at its provider, and is then scanned directly at its own address:

- ``svmap`` finds it (it answers OPTIONS, as every SIP device does) and shows its User-Agent;
- ``svwar`` guesses users with INVITE, OPTIONS and REGISTER: the phone must not ring, and svwar
  must learn nothing: every guess is answered like the made-up extension svwar starts with;
- the probe sends each method for alice (ours) and for users that do not exist, to the phone's
  address with and without its port, and compares the answers with what echoes the request
  (Via, From, To, Call-ID, CSeq) and the random To tag left out: they must be identical. Only
  the registered Contact itself (alice at the phone's address and port, left out of the probe)
  and the address of record (which a proxy that does not rewrite the Request-URI sends) may
  ring; scanners know neither.
"""

from __future__ import annotations

import random
import re
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from softphone.bench.reliability.peers import SoftphoneListen
from softphone.lab.kamailio import Kamailio
from softphone.lab.pki import make_pki
from softphone.lab.process import HOST
from softphone.lab.sipvicious import ScanRow, svmap, svwar

__all__ = ["ScanFigures", "account_config", "probe", "scan"]

GUESSES: Final = ("alice", "bob", "100", "101", "1000", "admin", "test", "softphone", "operator")
PROBE_METHODS: Final = ("INVITE", "OPTIONS", "REGISTER", "MESSAGE", "SUBSCRIBE", "INFO")
_ECHOED: Final = re.compile(r"^(via|v|from|f|to|t|call-id|i|cseq|content-length|l):", re.I)


def account_config(kamailio: Kamailio, user: str = "alice", *, expires: int = 3600) -> str:
    """softphone's config for ``user`` registered at the lab's Kamailio over UDP."""
    hop = f"sip:{HOST}:{kamailio.udp_port}"
    return (
        "[[account]]\n"
        f'name = "{user}"\nuri = "sip:{user}@{kamailio.domain}"\n'
        f'password = "{user}pw"\nregistrar = "{hop}"\nproxy = "{hop}"\n'
        f'transport = "udp"\nexpires = {expires}\n'
    )


@dataclass(slots=True)
class ScanFigures:
    svmap_found: list[ScanRow] = field(default_factory=list)
    svwar: dict[str, list[ScanRow]] = field(default_factory=dict)  # method -> reported
    enumerated: dict[str, list[str]] = field(default_factory=dict)  # method -> users told apart
    rang: int = 0
    probe_differences: list[str] = field(default_factory=list)
    probes: int = 0


def told_apart(reported: list[ScanRow], guesses: tuple[str, ...]) -> list[str]:
    """The guesses svwar distinguished: reported while others (or its baseline) were not."""
    names = {row.name for row in reported}
    hits = [g for g in guesses if g in names]
    baseline_reported = any(row.name not in guesses for row in reported)
    if not hits or (len(hits) == len(guesses) and baseline_reported):
        return []  # nothing, or everything alike: no user stands out
    return hits


def _request(method: str, uri: str, port: int, n: int) -> bytes:
    return (
        f"{method} {uri} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {HOST}:{port};branch=z9hG4bKprobe{n};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:probe@{HOST}>;tag=probe{n}\r\nTo: <{uri}>\r\n"
        f"Call-ID: probe-{n}@{HOST}\r\nCSeq: 1 {method}\r\n"
        f"Contact: <sip:probe@{HOST}:{port}>\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def _normalised(response: bytes) -> str:
    """The answer without what echoes the request, and without the random To tag."""
    head = response.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace").split("\r\n")
    return "\n".join(line for line in head if not _ECHOED.match(line))


def _final_answer(sock: socket.socket, call_id: str, deadline: float) -> bytes | None:
    """The first final response for ``call_id`` (others, and provisional ones, are skipped)."""
    marker = f"\r\nCall-ID: {call_id}\r\n".encode()
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            data = sock.recv(65535)
        except TimeoutError:
            return None
        if marker in data and not data.startswith(b"SIP/2.0 1"):
            return data
    return None


def probe(port: int, users: tuple[str, ...], *, timeout_s: float = 2.0) -> tuple[int, list[str]]:
    """Send every method for every user, with and without the phone's port, and return how many
    requests went out and the differences between answers that should be alike. The first
    user's request with the port is left out: that URI is the registered Contact."""
    differences: list[str] = []
    sent = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        local = sock.getsockname()[1]
        for method in PROBE_METHODS:
            for with_port in (False, True):
                answers: dict[str, str] = {}
                for user in users[1:] if with_port else users:
                    uri = f"sip:{user}@{HOST}" + (f":{port}" if with_port else "")
                    sent += 1
                    sock.sendto(_request(method, uri, local, sent), (HOST, port))
                    answer = _final_answer(
                        sock, f"probe-{sent}@{HOST}", time.monotonic() + timeout_s
                    )
                    answers[user] = _normalised(answer) if answer is not None else "(no answer)"
                    if method == "INVITE":  # end the INVITE transaction: ACK the final answer
                        sock.sendto(_request("ACK", uri, local, sent), (HOST, port))
                first_user, first = next(iter(answers.items()))
                for user, text in answers.items():
                    if text != first:
                        where = "with port" if with_port else "without port"
                        differences.append(f"{method} {where}: {first_user!r} != {user!r}")
    return sent, differences


def scan(workdir: Path) -> ScanFigures:
    figures = ScanFigures()
    kamailio = Kamailio(workdir / "kamailio", make_pki(workdir / "pki")).start()
    try:
        phone = SoftphoneListen(
            workdir / "softphone", config=account_config(kamailio), args=("--no-audio",)
        ).start()
        try:
            phone.wait_event(lambda e: e.get("event") == "registered", 20, "registered")
            found, output = svmap(phone.sip_port)
            (workdir / "svmap.txt").write_text(output)  # the tables the figures were read from
            figures.svmap_found = found
            for method in ("INVITE", "OPTIONS", "REGISTER"):
                reported, output = svwar(phone.sip_port, GUESSES, workdir / "svwar", method=method)
                (workdir / "svwar" / f"{method}.txt").write_text(output)
                figures.svwar[method] = reported
                figures.enumerated[method] = told_apart(reported, GUESSES)
            nobody = tuple(f"u{random.Random(1).randrange(10**6, 10**7)}{i}" for i in range(2))
            figures.probes, figures.probe_differences = probe(
                phone.sip_port, ("alice", "bob", "100", *nobody)
            )
            time.sleep(1.0)  # a ring would have been reported by now; the events are read next
            figures.rang = phone.count(lambda e: e.get("event") == "incoming_call")
        finally:
            phone.stop()
    finally:
        kamailio.stop()
    return figures
