"""DTLS-SRTP handshakes between two in-memory endpoints (no sockets): the keys cross over, the
fingerprint is checked, lost flights are resent on the timer, and a silent peer times out."""

from __future__ import annotations

import asyncio
import datetime
import stat
from pathlib import Path

import pytest

from softphone.sdp.crypto import Fingerprint
from softphone.srtp import DtlsCertificate, DtlsSrtp, DtlsState, SrtpContext, load_or_create
from softphone.srtp.certificate import CERTIFICATE_FILENAME
from softphone.srtp.dtls import HANDSHAKE_TIMEOUT_S, MAX_DATAGRAM


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> tuple[DtlsCertificate, DtlsCertificate]:
    return (
        load_or_create(tmp_path_factory.mktemp("a")),
        load_or_create(tmp_path_factory.mktemp("b")),
    )


def pair(
    certs: tuple[DtlsCertificate, DtlsCertificate], *, bad_fingerprint: bool = False
) -> tuple[DtlsSrtp, DtlsSrtp]:
    a, b = certs
    wrong = Fingerprint("sha-256", bytes(32))
    client = DtlsSrtp(a, role="client", remote_fingerprint=b.fingerprint)
    server = DtlsSrtp(
        b, role="server", remote_fingerprint=wrong if bad_fingerprint else a.fingerprint
    )
    return client, server


def run(
    client: DtlsSrtp, server: DtlsSrtp, *, drop: set[int] = frozenset(), now: float = 0.0
) -> float:
    """Shuttle datagrams until both are quiet; datagram number ``n`` in ``drop`` is lost. Time
    only moves to the next timer when nothing is in flight."""
    client.start(now)
    server.start(now)
    sent = 0
    for _ in range(200):
        moved = False
        for src, dst in ((client, server), (server, client)):
            for datagram in src.datagrams_to_send():
                assert len(datagram) <= MAX_DATAGRAM
                moved = True
                sent += 1
                if sent not in drop:
                    dst.receive_datagram(datagram, now)
        if moved:
            continue
        timers = [t for t in (client.get_timer(), server.get_timer()) if t is not None]
        if not timers:
            return now
        now = min(timers)
        client.handle_timer(now)
        server.handle_timer(now)
    raise AssertionError("the handshake never settled")


def test_handshake_exports_crossed_keys_that_work_for_srtp(
    certs: tuple[DtlsCertificate, DtlsCertificate],
) -> None:
    client, server = pair(certs)
    run(client, server)
    assert client.state is server.state is DtlsState.CONNECTED
    assert client.keys is not None and server.keys is not None
    assert client.keys.suite == server.keys.suite == "AEAD_AES_128_GCM"  # our first preference
    assert client.keys.local_key == server.keys.remote_key
    assert client.keys.remote_key == server.keys.local_key
    assert client.keys.local_key != client.keys.remote_key
    a = SrtpContext(
        client.keys.suite, local_key=client.keys.local_key, remote_key=client.keys.remote_key
    )
    b = SrtpContext(
        server.keys.suite, local_key=server.keys.local_key, remote_key=server.keys.remote_key
    )
    packet = b"\x80\x00\x00\x01" + b"\x00" * 8 + b"voice" * 20
    assert b.unprotect_rtp(a.protect_rtp(packet)) == packet
    assert a.unprotect_rtp(b.protect_rtp(packet)) == packet
    assert "local_key" not in repr(client.keys) or client.keys.local_key.hex() not in repr(
        client.keys
    )


def test_wrong_fingerprint_fails_the_handshake(
    certs: tuple[DtlsCertificate, DtlsCertificate],
) -> None:
    client, server = pair(certs, bad_fingerprint=True)
    run(client, server)
    assert server.state is DtlsState.FAILED and server.keys is None
    assert server.error is not None and "a=fingerprint" in server.error


@pytest.mark.parametrize("lost", [{1}, {2}])
async def test_lost_flights_are_resent_on_the_timer(
    certs: tuple[DtlsCertificate, DtlsCertificate], lost: set[int]
) -> None:
    """OpenSSL's retransmission timer reads the real clock, so this runs on the event loop's
    clock the way the phone does: each endpoint's deadline armed with ``call_at``."""
    client, server = pair(certs)
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    sent = 0
    handles: dict[int, asyncio.TimerHandle] = {}

    def pump() -> None:
        nonlocal sent
        moved = True
        while moved:
            moved = False
            for src, dst in ((client, server), (server, client)):
                for datagram in src.datagrams_to_send():
                    moved, sent = True, sent + 1
                    if sent not in lost:
                        dst.receive_datagram(datagram, loop.time())
        for endpoint in (client, server):
            if (old := handles.pop(id(endpoint), None)) is not None:
                old.cancel()
            if (at := endpoint.get_timer()) is not None:
                handles[id(endpoint)] = loop.call_at(at, fire, endpoint)
        if client.state is server.state is DtlsState.CONNECTED:
            done.set()

    def fire(endpoint: DtlsSrtp) -> None:
        endpoint.handle_timer(loop.time())
        pump()

    began = loop.time()
    client.start(began)
    server.start(began)
    pump()
    async with asyncio.timeout(5):
        await done.wait()
    assert loop.time() - began >= 0.9  # RFC 6347 §4.2.4.1: the first resend waits about 1 s
    assert client.keys is not None and server.keys is not None
    assert client.keys.local_key == server.keys.remote_key


def test_a_silent_peer_times_out(certs: tuple[DtlsCertificate, DtlsCertificate]) -> None:
    client, _ = pair(certs)
    client.start(0.0)
    now = 0.0
    while (at := client.get_timer()) is not None:
        client.datagrams_to_send()  # into the void
        now = at
        client.handle_timer(now)
    assert client.state is DtlsState.FAILED and now == pytest.approx(HANDSHAKE_TIMEOUT_S)
    assert client.error == "the DTLS handshake did not complete"


def test_close_sends_close_notify_and_the_peer_sees_it(
    certs: tuple[DtlsCertificate, DtlsCertificate],
) -> None:
    client, server = pair(certs)
    run(client, server)
    client.close()
    for datagram in client.datagrams_to_send():
        server.receive_datagram(datagram, 5.0)
    assert client.state is server.state is DtlsState.CLOSED


def test_certificate_is_made_once_with_mode_0600(tmp_path: Path) -> None:
    made = load_or_create(tmp_path)
    path = tmp_path / CERTIFICATE_FILENAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert b"PRIVATE KEY" in path.read_bytes()
    again = load_or_create(tmp_path)
    assert again.fingerprint == made.fingerprint
    assert made.fingerprint.algorithm == "sha-256" and len(made.fingerprint.value) == 32
    assert "PRIVATE" not in repr(made)
    path.chmod(0o644)
    load_or_create(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_expiring_or_broken_certificate_is_replaced(tmp_path: Path) -> None:
    made = load_or_create(tmp_path)
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=400)
    assert load_or_create(tmp_path, now=later).fingerprint != made.fingerprint
    (tmp_path / CERTIFICATE_FILENAME).write_bytes(b"garbage")
    replaced = load_or_create(tmp_path)
    assert stat.S_IMODE((tmp_path / CERTIFICATE_FILENAME).stat().st_mode) == 0o600
    assert replaced.fingerprint != made.fingerprint
