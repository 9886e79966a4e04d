"""Two Phones on 127.0.0.1 calling each other over TLS: the callee's listener with a
self-signed certificate made on first use (and said so), the caller trusting that certificate
file; ``sips:`` end to end; verification on (an untrusted listener is refused, in words)."""

from __future__ import annotations

import random
import re
import socket
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from phone_support import expect

from softphone.config import Account, Config
from softphone.files import write_file
from softphone.keys import pem_certificate, pem_private_key, self_signed
from softphone.phone import events as pe
from softphone.phone.audio import NullAudio
from softphone.phone.errors import PhoneError
from softphone.phone.phone import Phone
from softphone.sip.uri import SipUri
from softphone.transport.resolver import StubBackend
from softphone.transport.tls import LISTENER_CERTIFICATE, LISTENER_KEY


@pytest.fixture
async def phones() -> AsyncIterator[list[Phone]]:
    made: list[Phone] = []
    yield made
    for phone in made:
        await phone.stop()


def tls_account(name: str, **keys: object) -> Account:
    uri = SipUri(user=name, host="127.0.0.1")
    return Account(name=name, uri=uri, transport="tls", **keys)  # type: ignore[arg-type]


async def start(
    phones: list[Phone], account: Account, data_dir: Path, **options: object
) -> tuple[Phone, list[pe.PhoneEvent]]:
    phone = Phone(
        Config(accounts=(account,)),
        bind_host="127.0.0.1",
        sip_port=0,
        rng=random.Random(account.name),
        dns=StubBackend(),
        audio=NullAudio(),
        data_dir=data_dir,
        **options,  # type: ignore[arg-type]
    )
    phones.append(phone)  # stopped by the fixture even when start() fails
    await phone.start()
    seen = []
    while (event := phone.next_event_nowait()) is not None:
        seen.append(event)
    return phone, seen


def tls_port(seen: list[pe.PhoneEvent]) -> int:
    return next(e.port for e in seen if isinstance(e, pe.Listening) and e.transport == "tls")


async def test_a_direct_sips_call_to_a_self_signed_listener_completes(
    phones: list[Phone], tmp_path: Path
) -> None:
    bob, bob_seen = await start(phones, tls_account("bob"), tmp_path / "bob", auto_answer=True)
    made = tmp_path / "bob" / LISTENER_CERTIFICATE
    (notice,) = [e for e in bob_seen if isinstance(e, pe.Notice) and "self-signed" in e.text]
    assert str(made) in notice.text and "tls_ca_file" in notice.text
    assert stat.S_IMODE((tmp_path / "bob" / LISTENER_KEY).stat().st_mode) == 0o600
    port = tls_port(bob_seen)
    assert port != 5061  # sip_port=0: an ephemeral TLS port too, no clash with a real phone

    # The caller trusts that one file (its key never leaves bob's data directory).
    alice_account = tls_account("alice", tls_ca_file=made)
    alice, _ = await start(phones, alice_account, tmp_path / "alice")
    call_id = await alice.dial(f"sips:bob@127.0.0.1:{port}")
    await expect(alice, lambda e: isinstance(e, pe.CallStateChanged) and e.state == "established")
    incoming = await expect(bob, lambda e: isinstance(e, pe.IncomingCall))
    assert isinstance(incoming, pe.IncomingCall)
    await expect(bob, lambda e: isinstance(e, pe.CallStateChanged) and e.state == "established")
    await alice.hangup(call_id)
    ended = await expect(bob, lambda e: isinstance(e, pe.CallEnded))
    assert isinstance(ended, pe.CallEnded) and ended.answered

    # What went over the wire: TLS both ways, SIPS Contacts both ways (RFC 5630).
    flow = bob.sip_flow(incoming.call_id)
    lines = [m.first_line for m in flow]
    assert lines[0] == f"INVITE sips:bob@127.0.0.1:{port} SIP/2.0"
    assert any(line.startswith("ACK sips:") for line in lines)
    assert any(line.startswith("BYE sips:") for line in lines)
    assert all(m.remote.startswith("tls:") for m in flow)
    contacts = [
        found.group(1) for m in flow if (found := re.search(r"(?m)^Contact: <([^>]*)>", m.text))
    ]
    assert contacts and all(c.startswith("sips:") and "transport" not in c for c in contacts)
    assert f"sips:bob@127.0.0.1:{port}" in contacts  # our answer's Contact: our TLS listener


async def test_an_account_on_tls_added_at_run_time_gets_a_listener_that_takes_calls(
    phones: list[Phone], tmp_path: Path
) -> None:
    udp = Account(name="bob", uri=SipUri(user="bob", host="127.0.0.1"))
    bob, bob_seen = await start(phones, udp, tmp_path / "bob", auto_answer=True)
    assert not any(isinstance(e, pe.Listening) and e.transport == "tls" for e in bob_seen)

    await bob.apply_accounts([tls_account("bob")])
    applied = []
    while (event := bob.next_event_nowait()) is not None:
        applied.append(event)
    port = tls_port(applied)  # listening now, with a certificate made and said so
    assert any(isinstance(e, pe.Notice) and "self-signed" in e.text for e in applied)
    await bob.apply_accounts([tls_account("bob")])  # the same again: no second listener
    assert not any(isinstance(e, pe.Listening) for e in iter(bob.next_event_nowait, None))

    alice_account = tls_account("alice", tls_ca_file=tmp_path / "bob" / LISTENER_CERTIFICATE)
    alice, _ = await start(phones, alice_account, tmp_path / "alice")
    call_id = await alice.dial(f"sips:bob@127.0.0.1:{port}")
    await expect(alice, lambda e: isinstance(e, pe.CallStateChanged) and e.state == "established")
    incoming = await expect(bob, lambda e: isinstance(e, pe.IncomingCall))
    assert isinstance(incoming, pe.IncomingCall)
    await alice.hangup(call_id)
    ended = await expect(bob, lambda e: isinstance(e, pe.CallEnded))
    assert isinstance(ended, pe.CallEnded) and ended.answered
    # Our answer's Contact names the new listener, not the UDP port TLS was advertised on.
    flow = bob.sip_flow(incoming.call_id)
    assert all(m.remote.startswith("tls:") for m in flow)
    assert any(f"Contact: <sips:bob@127.0.0.1:{port}>" in m.text for m in flow)


async def test_the_certificate_is_made_once_and_reused_without_a_notice(
    phones: list[Phone], tmp_path: Path
) -> None:
    _, first = await start(phones, tls_account("bob"), tmp_path)
    pem = (tmp_path / LISTENER_CERTIFICATE).read_bytes()
    await phones.pop().stop()
    _, again = await start(phones, tls_account("bob"), tmp_path)
    assert any(isinstance(e, pe.Notice) and "self-signed" in e.text for e in first)
    assert not any(isinstance(e, pe.Notice) and "self-signed" in e.text for e in again)
    assert (tmp_path / LISTENER_CERTIFICATE).read_bytes() == pem


async def test_an_untrusted_listener_is_refused_in_words(
    phones: list[Phone], tmp_path: Path
) -> None:
    _, bob_seen = await start(phones, tls_account("bob"), tmp_path / "bob", auto_answer=True)
    alice, _ = await start(phones, tls_account("alice"), tmp_path / "alice")
    await alice.dial(f"sips:bob@127.0.0.1:{tls_port(bob_seen)}")
    ended = await expect(alice, lambda e: isinstance(e, pe.CallEnded))
    assert isinstance(ended, pe.CallEnded) and not ended.answered
    assert "unknown certificate authority" in ended.reason
    assert "tls_ca_file" in ended.reason


async def test_the_users_certificate_is_presented_and_no_certificate_is_made(
    phones: list[Phone], tmp_path: Path
) -> None:
    import datetime

    certificate, key = self_signed(
        "bob.example", now=datetime.datetime.now(datetime.UTC), valid_days=30, names=["127.0.0.1"]
    )
    cert_path, key_path = tmp_path / "bob.crt", tmp_path / "bob.key"
    write_file(cert_path, pem_certificate(certificate))
    write_file(key_path, pem_private_key(key))
    own = tls_account("bob", tls_certificate=cert_path, tls_private_key=key_path)
    _, bob_seen = await start(phones, own, tmp_path / "bob", auto_answer=True)
    assert not (tmp_path / "bob" / LISTENER_CERTIFICATE).exists()
    assert not any(isinstance(e, pe.Notice) and "self-signed" in e.text for e in bob_seen)
    alice, _ = await start(phones, tls_account("alice", tls_ca_file=cert_path), tmp_path / "a")
    await alice.dial(f"sips:bob@127.0.0.1:{tls_port(bob_seen)}")
    await expect(alice, lambda e: isinstance(e, pe.CallStateChanged) and e.state == "established")


async def test_a_taken_tls_port_is_a_clear_error(phones: list[Phone], tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(PhoneError, match=f"port {port}/tls on 127.0.0.1 is in use"):
            await start(phones, tls_account("bob"), tmp_path, tls_port=port)
