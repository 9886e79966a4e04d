"""The local SIP port: only the default falls back to a free port (and says so); a port the
user chose that is taken is an error naming it."""

from __future__ import annotations

import random
import socket
from collections.abc import Iterator

import pytest

from softphone.config import Config
from softphone.phone import events as pe
from softphone.phone.errors import PhoneError
from softphone.phone.phone import Phone
from softphone.transport.resolver import StubBackend


@pytest.fixture
def taken_port() -> Iterator[int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def make(port: int | None) -> Phone:
    return Phone(
        Config(), bind_host="127.0.0.1", sip_port=port, rng=random.Random(1), dns=StubBackend()
    )


async def test_an_explicit_port_that_is_taken_is_an_error(taken_port: int) -> None:
    phone = make(taken_port)
    with pytest.raises(PhoneError, match=f"{taken_port}"):
        await phone.start()
    await phone.stop()


async def test_the_default_port_falls_back_and_says_so(
    monkeypatch: pytest.MonkeyPatch, taken_port: int
) -> None:
    from softphone.sip import address

    monkeypatch.setitem(address.DEFAULT_PORTS, "udp", taken_port)  # pretend 5060 is this busy port
    phone = make(None)
    await phone.start()
    try:
        events = []
        while (event := phone.next_event_nowait()) is not None:
            events.append(event)
        udp = next(e for e in events if isinstance(e, pe.Listening) and e.transport == "udp")
        assert udp.fallback and udp.port != taken_port
        assert any(
            isinstance(e, pe.Notice) and f"port {taken_port}/udp is in use" in e.text
            for e in events
        )
    finally:
        await phone.stop()
