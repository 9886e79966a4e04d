"""softphone's SIP against real peers on 127.0.0.1: Kamailio (registrar + proxy, digest auth)
and baresip (the far-end phone). Both sides' views are asserted: our events, Kamailio's log of
what it challenged and relayed, and baresip's ctrl_tcp events."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from lab_support import BaresipFactory, KamailioFactory, in_ci

from softphone import lab
from softphone.config import Account, Config
from softphone.phone import events as pe
from softphone.phone.audio import NullAudio
from softphone.phone.phone import Phone
from softphone.sip.uri import SipUri
from softphone.transport.resolver import StubBackend

pytestmark = pytest.mark.interop

STEP_S = 8.0  # bound for any one step; real steps take milliseconds


def account(
    kamailio: lab.Kamailio,
    transport: lab.Transport = "udp",
    *,
    user: str = "alice",
    password: str | None = None,
    expires: int = 3600,
) -> Account:
    hop = SipUri.parse(f"sip:127.0.0.1:{kamailio.port_for(transport)}")
    return Account(
        name=user,
        uri=SipUri(user=user, host=lab.DOMAIN),
        password=password if password is not None else lab.USERS[user],
        registrar=hop,
        proxy=hop,
        transport=transport,
        tls_ca_file=kamailio.ca_file if transport == "tls" else None,  # type: ignore[arg-type]
        expires=expires,
    )


@pytest.fixture
async def make_phone(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    phones: list[Phone] = []

    async def make(*accounts: Account, auto_answer: bool = False) -> Phone:
        phone = Phone(
            Config(accounts=accounts),
            bind_host="127.0.0.1",
            sip_port=0,
            rng=random.Random(f"{len(phones)}-{id(phones)}"),
            dns=StubBackend(),  # never the system resolver: every hop here is an IP literal
            auto_answer=auto_answer,
            audio=NullAudio(),  # silence both ways: these tests are about signalling
            data_dir=tmp_path / f"data{len(phones)}",  # its TLS certificate, not the user's
        )
        await phone.start()
        phones.append(phone)
        return phone

    yield make
    for phone in phones:
        await phone.stop()


async def expect(
    phone: Phone,
    predicate: Callable[[pe.PhoneEvent], bool],
    timeout_s: float = STEP_S,
    seen: list[pe.PhoneEvent] | None = None,
) -> pe.PhoneEvent:
    """The first event matching ``predicate``; events on the way are kept in ``seen``."""
    async with asyncio.timeout(timeout_s):
        while True:
            event = await phone.next_event()
            if seen is not None:
                seen.append(event)
            if predicate(event):
                return event


def state(call_id: str | None, name: str) -> Callable[[pe.PhoneEvent], bool]:
    return lambda e: (
        isinstance(e, pe.CallStateChanged)
        and e.state == name
        and (call_id is None or e.call_id == call_id)
    )


def ended(call_id: str | None = None) -> Callable[[pe.PhoneEvent], bool]:
    return lambda e: isinstance(e, pe.CallEnded) and (call_id is None or e.call_id == call_id)


async def wait_peer(
    peer: lab.Baresip, event: str, since: int = 0, timeout_s: float = STEP_S
) -> dict[str, Any]:
    return await asyncio.to_thread(peer.wait_event, event, timeout_s, None, since)


async def wait_log(kamailio: lab.Kamailio, pattern: str, since: int = 0) -> str:
    match = await asyncio.to_thread(kamailio.wait_for, pattern, STEP_S, since)
    return match.group(0)


# --- registration --------------------------------------------------------------------------------
async def test_register_answers_kamailios_challenge(
    kamailio: lab.Kamailio, make_phone: Callable[..., Any]
) -> None:
    mark = kamailio.mark()
    phone = await make_phone(account(kamailio))
    event = await expect(phone, lambda e: isinstance(e, pe.Registered | pe.RegistrationFailed))
    assert event == pe.Registered(account="alice", expires=3600)
    await wait_log(kamailio, r"LAB CHALLENGE 401 REGISTER alice", mark)
    await wait_log(
        kamailio, r"LAB REGISTERED alice expires=(3600|3599) ", mark
    )  # whole seconds left: a tick may fall between
    # What the TUI's status line reads (the FakePhone gives the same for its scripted register).
    reg = phone.registrations["alice"]
    assert (reg.state, reg.transport, reg.aor, reg.reason) == (
        "registered",
        "udp",
        f"sip:alice@{lab.DOMAIN}",
        None,
    )
    assert reg.expires_at is not None and abs(reg.expires_at - (time.time() + 3600)) < 30
    assert phone.accounts == ["alice"]


async def test_wrong_password_is_reported_with_the_status(
    kamailio: lab.Kamailio, make_phone: Callable[..., Any]
) -> None:
    mark = kamailio.mark()
    phone = await make_phone(account(kamailio, password="not-the-password"))
    event = await expect(phone, lambda e: isinstance(e, pe.Registered | pe.RegistrationFailed))
    assert isinstance(event, pe.RegistrationFailed) and event.status == 403
    assert "403" in event.reason and event.retry_in_s
    reg = phone.registrations["alice"]
    assert (reg.state, reg.reason, reg.retry_in_s) == ("failed", event.reason, event.retry_in_s)
    await wait_log(kamailio, r"LAB REPLY 403 REGISTER alice", mark)


async def test_too_brief_expires_gets_423_then_registers_and_refreshes(
    kamailio: lab.Kamailio, make_phone: Callable[..., Any]
) -> None:
    """Kamailio's Min-Expires is 60: we ask 30, get 423, register for 60 and refresh at 30 s."""
    mark = kamailio.mark()
    phone = await make_phone(account(kamailio, user="dave", expires=30))
    event = await expect(phone, lambda e: isinstance(e, pe.Registered | pe.RegistrationFailed))
    assert event == pe.Registered(account="dave", expires=60)
    await wait_log(kamailio, r"LAB REPLY 423 REGISTER dave", mark)
    after_first = kamailio.mark()
    again = await expect(phone, lambda e: isinstance(e, pe.Registered), timeout_s=45.0)
    assert again == pe.Registered(account="dave", expires=60)
    await wait_log(kamailio, r"LAB REGISTERED dave expires=60", after_first)


# --- calls through Kamailio to and from baresip, over UDP, TCP and TLS ----------------------------
@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
async def test_softphone_calls_baresip_and_hangs_up(
    transport: lab.Transport,
    kamailio: lab.Kamailio,
    baresip_factory: BaresipFactory,
    make_phone: Callable[..., Any],
) -> None:
    bob = await asyncio.to_thread(baresip_factory, "bob", transport, True, True)
    phone = await make_phone(account(kamailio, transport))
    await expect(phone, lambda e: isinstance(e, pe.Registered))
    mark, peer_mark = kamailio.mark(), bob.mark()
    call_id = await phone.dial("sip:bob@lab.test")
    await expect(phone, state(call_id, "established"))
    incoming = await wait_peer(bob, "CALL_ESTABLISHED", peer_mark)
    assert "alice@lab.test" in str(incoming.get("peeruri"))
    await wait_log(kamailio, r"LAB CHALLENGE 407 INVITE alice", mark)
    await wait_log(kamailio, rf"LAB REQUEST INVITE alice->bob proto={transport}", mark)
    await phone.hangup(call_id)
    end = await expect(phone, ended(call_id))
    assert isinstance(end, pe.CallEnded) and end.answered and end.status == 200
    await wait_peer(bob, "CALL_CLOSED", peer_mark)


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
async def test_baresip_calls_softphone_and_hangs_up(
    transport: lab.Transport,
    kamailio: lab.Kamailio,
    baresip_factory: BaresipFactory,
    make_phone: Callable[..., Any],
) -> None:
    phone = await make_phone(account(kamailio, transport), auto_answer=True)
    await expect(phone, lambda e: isinstance(e, pe.Registered))
    bob = await asyncio.to_thread(baresip_factory, "bob", transport)
    peer_mark = bob.mark()
    await asyncio.to_thread(bob.dial, "sip:alice@lab.test")
    incoming = await expect(phone, lambda e: isinstance(e, pe.IncomingCall))
    assert isinstance(incoming, pe.IncomingCall) and "bob@lab.test" in incoming.remote
    await expect(phone, state(incoming.call_id, "established"))
    await wait_peer(bob, "CALL_ESTABLISHED", peer_mark)
    await asyncio.to_thread(bob.hangup)
    end = await expect(phone, ended(incoming.call_id))
    assert isinstance(end, pe.CallEnded) and end.answered and end.reason == "remote hung up"
    await wait_peer(bob, "CALL_CLOSED", peer_mark)
    # The dialog completed: our 200 was ACKed and the BYE reached us, on the account's transport.
    flow = phone.sip_flow(incoming.call_id)
    received = [m.first_line.split()[0] for m in flow if m.direction == "received"]
    assert received[0] == "INVITE" and "ACK" in received and "BYE" in received
    assert all(m.remote.startswith(f"{transport}:") for m in flow)


async def test_cancel_before_answer(
    kamailio: lab.Kamailio, baresip_factory: BaresipFactory, make_phone: Callable[..., Any]
) -> None:
    bob = await asyncio.to_thread(baresip_factory, "bob", "udp")  # rings, never answers
    phone = await make_phone(account(kamailio))
    await expect(phone, lambda e: isinstance(e, pe.Registered))
    peer_mark, mark = bob.mark(), kamailio.mark()
    call_id = await phone.dial("sip:bob@lab.test")
    await wait_peer(bob, "CALL_INCOMING", peer_mark)
    await expect(phone, state(call_id, "ringing"))
    await phone.hangup(call_id)
    end = await expect(phone, ended(call_id))
    assert isinstance(end, pe.CallEnded) and not end.answered and end.status == 487
    await wait_peer(bob, "CALL_CLOSED", peer_mark)
    await wait_log(kamailio, r"LAB REQUEST CANCEL", mark)


async def test_hold_and_resume_from_each_side(
    kamailio: lab.Kamailio, baresip_factory: BaresipFactory, make_phone: Callable[..., Any]
) -> None:
    bob = await asyncio.to_thread(baresip_factory, "bob", "udp", True, True)
    phone = await make_phone(account(kamailio))
    await expect(phone, lambda e: isinstance(e, pe.Registered))
    call_id = await phone.dial("sip:bob@lab.test")
    await expect(phone, state(call_id, "established"))
    mark = kamailio.mark()
    await phone.hold(call_id)
    await expect(phone, state(call_id, "held"))
    assert (
        phone.call(call_id).media is not None
        and phone.call(call_id).media.direction.value == "sendonly"
    )  # type: ignore[union-attr]
    await wait_log(kamailio, r"LAB RELAYED-REPLY 200 INVITE", mark)
    await phone.resume(call_id)
    await expect(phone, state(call_id, "established"))
    # now baresip holds us: we answer recvonly and show the call as held
    await asyncio.to_thread(bob.hold)
    await expect(phone, state(call_id, "held"))
    assert phone.call(call_id).remote_hold
    await asyncio.to_thread(bob.resume)
    await expect(phone, state(call_id, "established"))
    await phone.hangup(call_id)
    await expect(phone, ended(call_id))


async def test_blind_transfer_as_transferor(
    kamailio: lab.Kamailio, baresip_factory: BaresipFactory, make_phone: Callable[..., Any]
) -> None:
    await asyncio.to_thread(baresip_factory, "bob", "udp", True, True)
    carol = await asyncio.to_thread(baresip_factory, "carol", "udp", True, True)
    phone = await make_phone(account(kamailio))
    await expect(phone, lambda e: isinstance(e, pe.Registered))
    call_id = await phone.dial("sip:bob@lab.test")
    await expect(phone, state(call_id, "established"))
    carol_mark = carol.mark()
    await phone.transfer(call_id, "sip:carol@lab.test")
    done = await expect(
        phone, lambda e: isinstance(e, pe.TransferProgressed) and e.final, timeout_s=15.0
    )
    assert isinstance(done, pe.TransferProgressed) and done.status == 200
    established = await wait_peer(carol, "CALL_ESTABLISHED", carol_mark)
    assert "bob@lab.test" in str(established.get("peeruri"))
    await expect(phone, ended(call_id))  # we left the call once the transfer worked


async def test_blind_transfer_as_transferee(
    kamailio: lab.Kamailio, baresip_factory: BaresipFactory, make_phone: Callable[..., Any]
) -> None:
    bob = await asyncio.to_thread(baresip_factory, "bob", "udp", True, True)
    carol = await asyncio.to_thread(baresip_factory, "carol", "udp", True, True)
    phone = await make_phone(account(kamailio))
    await expect(phone, lambda e: isinstance(e, pe.Registered))
    call_id = await phone.dial("sip:bob@lab.test")
    await expect(phone, state(call_id, "established"))
    carol_mark = carol.mark()
    await asyncio.to_thread(bob.transfer, "sip:carol@lab.test")
    new_call = await expect(
        phone,
        lambda e: (
            isinstance(e, pe.CallStateChanged) and e.call_id != call_id and e.state == "established"
        ),
        timeout_s=15.0,
    )
    assert isinstance(new_call, pe.CallStateChanged) and "carol@lab.test" in new_call.remote
    await wait_peer(carol, "CALL_ESTABLISHED", carol_mark)
    await expect(phone, ended(call_id), timeout_s=15.0)  # bob hangs up after our NOTIFY 200
    await phone.hangup(new_call.call_id)
    await expect(phone, ended(new_call.call_id))


# --- TLS certificate problems are named -----------------------------------------------------------
@pytest.mark.parametrize(
    ("cert", "words"), [("expired", "expired"), ("wrong_name", "expected name")]
)
async def test_tls_certificate_problems_are_explained(
    cert: lab.CertKind,
    words: str,
    kamailio_factory: KamailioFactory,
    make_phone: Callable[..., Any],
) -> None:
    bad = await asyncio.to_thread(kamailio_factory, cert)
    phone = await make_phone(account(bad, "tls"))
    event = await expect(phone, lambda e: isinstance(e, pe.Registered | pe.RegistrationFailed))
    assert isinstance(event, pe.RegistrationFailed)
    assert words in event.reason and "tls_ca_file" in event.reason


async def test_a_registrar_that_demands_a_client_certificate_gets_ours(
    kamailio_factory: KamailioFactory, lab_pki: lab.LabPki, make_phone: Callable[..., Any]
) -> None:
    """Mutual TLS (RFC 3261 §26.3.2.2 leaves it to the servers; some providers require it): with
    ``tls_certificate``/``tls_private_key`` we register and call through it; without, the
    registration fails in words instead of hanging."""
    strict = await asyncio.to_thread(kamailio_factory, "good", client_certificates=True)
    plain = account(strict, "tls")
    refused = await make_phone(plain)
    event = await expect(refused, lambda e: isinstance(e, pe.Registered | pe.RegistrationFailed))
    assert isinstance(event, pe.RegistrationFailed) and "certificate" in event.reason

    mine = account(strict, "tls", user="carol")
    mutual = dataclasses.replace(
        mine, tls_certificate=lab_pki.good.cert, tls_private_key=lab_pki.good.key
    )
    phone = await make_phone(mutual, auto_answer=True)
    registered = await expect(phone, lambda e: isinstance(e, pe.Registered | pe.RegistrationFailed))
    assert isinstance(registered, pe.Registered), registered
    # A call over that connection, relayed by the strict server back to us, completes.
    caller = await make_phone(
        dataclasses.replace(
            plain, tls_certificate=lab_pki.good.cert, tls_private_key=lab_pki.good.key
        )
    )
    await expect(caller, lambda e: isinstance(e, pe.Registered))
    call_id = await caller.dial(f"sips:carol@{lab.DOMAIN}")
    await expect(caller, lambda e: isinstance(e, pe.CallStateChanged) and e.state == "established")
    await caller.hangup(call_id)
    await expect(phone, lambda e: isinstance(e, pe.CallEnded))


# --- several accounts, IPv6 ----------------------------------------------------------------------
async def test_several_accounts_register_at_once_and_unregister_on_stop(
    kamailio: lab.Kamailio, make_phone: Callable[..., Any]
) -> None:
    mark = kamailio.mark()
    phone = await make_phone(
        account(kamailio, user="alice"), account(kamailio, "tcp", user="carol")
    )
    seen: list[pe.PhoneEvent] = []
    await expect(phone, lambda e: sum(isinstance(x, pe.Registered) for x in seen) == 2, seen=seen)
    assert {e.account for e in seen if isinstance(e, pe.Registered)} == {"alice", "carol"}
    await wait_log(kamailio, r"LAB REGISTERED alice expires=(3600|3599) proto=udp", mark)
    await wait_log(kamailio, r"LAB REGISTERED carol expires=3600 proto=tcp", mark)
    await phone.stop()
    await wait_log(kamailio, r"LAB UNREGISTERED alice", mark)
    await wait_log(kamailio, r"LAB UNREGISTERED carol", mark)


async def test_register_over_ipv6(kamailio: lab.Kamailio) -> None:
    if kamailio.udp6_port is None:
        if in_ci():
            pytest.fail("Kamailio could not bind [::1] in CI")
        pytest.skip("no IPv6 loopback on this host")
    hop = SipUri.parse(f"sip:[::1]:{kamailio.udp6_port}")
    acct = Account(
        name="bob",
        uri=SipUri(user="bob", host=lab.DOMAIN),
        password="bobpw",
        registrar=hop,
        proxy=hop,
    )
    phone = Phone(
        Config(accounts=(acct,)),
        bind_host="::1",
        sip_port=0,
        rng=random.Random("v6"),
        dns=StubBackend(),
    )
    mark = kamailio.mark()
    await phone.start()
    try:
        event = await expect(phone, lambda e: isinstance(e, pe.Registered | pe.RegistrationFailed))
        assert event == pe.Registered(account="bob", expires=3600)
        await wait_log(
            kamailio, r"LAB REGISTERED bob expires=3600 proto=udp contact=sip:bob@\[::1\]", mark
        )
    finally:
        await phone.stop()


async def test_only_from_proxy_refuses_a_direct_call_and_rings_for_one_through_kamailio(
    kamailio: lab.Kamailio, baresip_factory: BaresipFactory, make_phone: Callable[..., Any]
) -> None:
    """alice has only_from_proxy: baresip calling her Contact directly (no proxy, same host as
    Kamailio) gets 403 and nothing rings; bob calling her through Kamailio rings."""
    from dataclasses import replace

    phone = await make_phone(replace(account(kamailio), only_from_proxy=True))
    seen: list[pe.PhoneEvent] = []
    await expect(phone, lambda e: isinstance(e, pe.Registered), seen=seen)
    port = next(e.port for e in seen if isinstance(e, pe.Listening) and e.transport == "udp")
    direct = await asyncio.to_thread(baresip_factory, "bob", "udp", kamailio=None)  # type: ignore[arg-type]
    mark = direct.mark()
    await asyncio.to_thread(direct.dial, f"sip:alice@127.0.0.1:{port}")
    closed = await wait_peer(direct, "CALL_CLOSED", mark)
    assert "403" in str(closed), closed
    bob = await asyncio.to_thread(baresip_factory, "bob", "udp")
    peer_mark = bob.mark()
    await asyncio.to_thread(bob.dial, "sip:alice@lab.test")
    incoming = await expect(phone, lambda e: isinstance(e, pe.IncomingCall), seen=seen)
    assert isinstance(incoming, pe.IncomingCall) and "bob@lab.test" in incoming.remote
    assert [e for e in seen if isinstance(e, pe.IncomingCall)] == [incoming]  # one rang
    await phone.reject(incoming.call_id)
    await wait_peer(bob, "CALL_CLOSED", peer_mark)
