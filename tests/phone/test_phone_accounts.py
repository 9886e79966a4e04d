"""Accounts applied while the phone runs, and a registrar that never answers: real Phones on
127.0.0.1 with a small digest registrar on a real UDP socket (tests/sip_support.py's Registrar),
and the FakePhone held to the same event sequences."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import cast

import pytest
from phone_fake import FakePhone
from phone_support import expect, port_of, started
from sip_support import Registrar

from softphone.config import Account, Config
from softphone.phone import events as pe
from softphone.phone.audio import NullAudio
from softphone.phone.errors import PhoneError
from softphone.phone.phone import Phone
from softphone.sip.message import SipRequest
from softphone.sip.timers import TimerConfig
from softphone.sip.uri import SipUri
from softphone.transport.resolver import StubBackend


class UdpRegistrar(asyncio.DatagramProtocol):
    """``Registrar`` answering REGISTERs on a UDP port of 127.0.0.1."""

    def __init__(self, password: str = "alicepw") -> None:
        self.registrar = Registrar(password=password)
        self.transport: asyncio.DatagramTransport | None = None
        self.port = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        self.port = transport.get_extra_info("sockname")[1]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(self.registrar.respond(data), addr)

    @property
    def requests(self) -> list[SipRequest]:
        return self.registrar.requests


@pytest.fixture
async def registrar() -> AsyncIterator[UdpRegistrar]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        UdpRegistrar, local_addr=("127.0.0.1", 0)
    )
    yield protocol
    transport.close()


def home(port: int, *, password: str = "alicepw", name: str = "home") -> Account:
    hop = SipUri.parse(f"sip:127.0.0.1:{port}")
    return Account(
        name=name,
        uri=SipUri(user="alice", host="lab.test"),
        password=password,
        registrar=hop,
        proxy=hop,
    )


def kind(*kinds: type[pe.PhoneEvent]) -> Callable[[pe.PhoneEvent], bool]:
    return lambda e: isinstance(e, kinds)


async def drain(phone: Phone) -> list[pe.PhoneEvent]:
    out = []
    while (event := phone.next_event_nowait()) is not None:
        out.append(event)
    return out


async def test_accounts_apply_at_once_and_a_call_stays_up(registrar: UdpRegistrar) -> None:
    alice = await started(Config(), seed="alice", auto_answer=True)  # no account: peer to peer
    bob = await started(Config(), seed="bob")
    try:
        alice_port = port_of(alice)
        call_id = await bob.dial(f"sip:softphone@127.0.0.1:{alice_port}")
        await expect(bob, lambda e: isinstance(e, pe.CallStateChanged) and e.state == "established")
        assert alice.accounts == ["local"]

        # A new account registers, without a restart.
        await alice.apply_accounts([home(registrar.port)])
        assert alice.accounts == ["home"] and list(alice.registrations) == ["home"]
        assert alice.registrations["home"].server == f"127.0.0.1:{registrar.port}"
        seen = [await expect(alice, kind(pe.Registering))]
        seen.append(await expect(alice, kind(pe.Registered, pe.RegistrationFailed)))
        assert seen == [
            pe.Registering(account="home", server=f"127.0.0.1:{registrar.port}", transport="udp"),
            pe.Registered(account="home", expires=3600),
        ]
        assert alice.registrations["home"].state == "registered"
        first_call_id = registrar.requests[0].call_id

        # A wrong password, then the right one: each registers again at once.
        await alice.apply_accounts([home(registrar.port, password="typo")])
        failed = await expect(alice, kind(pe.Registered, pe.RegistrationFailed))
        assert isinstance(failed, pe.RegistrationFailed) and failed.status == 403
        await alice.apply_accounts([home(registrar.port)])
        assert await expect(alice, kind(pe.Registered, pe.RegistrationFailed)) == pe.Registered(
            account="home", expires=3600
        )
        assert {r.call_id for r in registrar.requests} == {first_call_id}  # one binding (§10.2.4)

        # Removed: Expires 0 goes to the registrar, Unregistered comes back.
        await alice.apply_accounts([])
        assert alice.accounts == ["local"] and list(alice.registrations) == ["local"]
        assert await expect(alice, kind(pe.Unregistered)) == pe.Unregistered(account="home")
        assert registrar.requests[-1].headers.get("Expires") == "0"

        # The call was never touched; it still hangs up cleanly.
        assert bob.call(call_id).state == "established"
        assert [c.state for c in alice.calls] == ["established"]
        await bob.hangup(call_id)
        ended = await expect(bob, kind(pe.CallEnded))
        assert isinstance(ended, pe.CallEnded) and ended.answered and ended.status == 200
    finally:
        await alice.stop()
        await bob.stop()


async def test_an_account_whose_server_cannot_be_found_fails_and_the_others_apply(
    registrar: UdpRegistrar,
) -> None:
    phone = Phone(
        Config(),
        bind_host="127.0.0.1",
        sip_port=0,
        rng=random.Random(1),
        dns=StubBackend(failing=["nowhere.lab.test"]),
        audio=NullAudio(),
    )
    await phone.start()
    try:
        lost = replace(
            home(registrar.port, name="lost"),
            registrar=SipUri(host="nowhere.lab.test"),
            proxy=None,
        )
        await phone.apply_accounts([lost, home(registrar.port)])
        assert phone.accounts == ["home"]  # the one that can be reached
        assert list(phone.registrations) == ["lost", "home"]  # both shown, in config order
        failure = await expect(phone, kind(pe.RegistrationFailed))
        assert isinstance(failure, pe.RegistrationFailed) and failure.account == "lost"
        assert "cannot find the server for sip:nowhere.lab.test" in failure.reason
        assert phone.registrations["lost"].state == "failed"
        assert await expect(phone, kind(pe.Registered)) == pe.Registered(
            account="home", expires=3600
        )
        with pytest.raises(PhoneError, match="no account named 'lost'"):
            await phone.dial("bob", account="lost")
    finally:
        await phone.stop()


async def test_a_silent_registrar_is_explained_while_it_happens() -> None:
    """Nothing listens on the port. With T1 = 10 ms every SIP timer is 50 times shorter than by
    default: told at 4*T1 (2 s by default), failed at 64*T1 (32 s by default)."""
    silent = asyncio.get_running_loop()
    closed, _ = await silent.create_datagram_endpoint(asyncio.DatagramProtocol, ("127.0.0.1", 0))
    port = closed.get_extra_info("sockname")[1]
    closed.close()  # a port nobody answers on
    phone = Phone(
        Config(accounts=(home(port),)),
        bind_host="127.0.0.1",
        sip_port=0,
        rng=random.Random(2),
        dns=StubBackend(),
        audio=NullAudio(),
        timers=TimerConfig(t1=0.01, t2=0.08, t4=0.1),
    )
    await phone.start()
    try:
        waiting = await expect(phone, kind(pe.NoAnswerYet))
        assert waiting == pe.NoAnswerYet(
            account="home",
            request="REGISTER",
            call_id=None,
            server=f"127.0.0.1:{port}",
            transport="udp",
            waited_s=pytest.approx(0.04, abs=0.03),  # type: ignore[arg-type]
            gives_up_in_s=pytest.approx(0.6, abs=0.03),  # type: ignore[arg-type]
        )
        record = phone.registrations["home"]
        assert (record.state, record.server, record.no_answer) == (
            "registering",
            f"127.0.0.1:{port}",
            True,
        )
        failed = await expect(phone, kind(pe.RegistrationFailed))
        assert failed == pe.RegistrationFailed(
            account="home",
            status=0,
            reason=f"no answer from 127.0.0.1:{port} over udp in 1 s",
            retry_in_s=30.0,
        )
    finally:
        await phone.stop()


async def test_the_fake_applies_accounts_as_the_real_phone_does(registrar: UdpRegistrar) -> None:
    real = await started(Config(), seed="real")
    fake = FakePhone()
    await fake.start()
    try:
        sequences: list[list[pe.PhoneEvent]] = []
        for phone in (real, fake):
            steps: list[pe.PhoneEvent] = []
            await drain(real) if phone is real else fake.drain()
            longer = replace(home(registrar.port), expires=600)
            for accounts in ([home(registrar.port)], [longer], []):
                await phone.apply_accounts(accounts)
                if phone is fake:
                    fake.settle()
                    steps += fake.drain()
                    continue
                want = kind(pe.Registered, pe.RegistrationFailed, pe.Unregistered)
                steps.append(await expect(real, kind(pe.Registering, pe.Unregistered)))
                if not isinstance(steps[-1], pe.Unregistered):
                    steps.append(await expect(real, want))
            sequences.append(steps)
            assert phone.accounts == ["local"] and list(phone.registrations) == ["local"]
        assert (
            sequences[0]
            == sequences[1]
            == [
                pe.Registering(
                    account="home", server=f"127.0.0.1:{registrar.port}", transport="udp"
                ),
                pe.Registered(account="home", expires=3600),
                pe.Registering(
                    account="home", server=f"127.0.0.1:{registrar.port}", transport="udp"
                ),
                pe.Registered(account="home", expires=600),
                pe.Unregistered(account="home"),
            ]
        )
    finally:
        await real.stop()
        await fake.stop()


async def test_an_unanswered_invite_is_explained_while_it_happens() -> None:
    """Peer to peer to a port nobody answers on, T1 = 10 ms: NoAnswerYet for the INVITE at
    4*T1, then the call fails at 64*T1 saying so."""
    phone = Phone(
        Config(),
        bind_host="127.0.0.1",
        sip_port=0,
        rng=random.Random(3),
        dns=StubBackend(),
        audio=NullAudio(),
        timers=TimerConfig(t1=0.01, t2=0.08, t4=0.1),
    )
    await phone.start()
    loop = asyncio.get_running_loop()
    closed, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, ("127.0.0.1", 0))
    port = closed.get_extra_info("sockname")[1]
    closed.close()
    try:
        call_id = await phone.dial(f"sip:bob@127.0.0.1:{port}")
        waiting = await expect(phone, kind(pe.NoAnswerYet))
        assert isinstance(waiting, pe.NoAnswerYet)
        assert (waiting.request, waiting.call_id, waiting.account, waiting.server) == (
            "INVITE",
            call_id,
            "local",
            f"127.0.0.1:{port}",
        )
        ended = await expect(phone, kind(pe.CallEnded))
        assert isinstance(ended, pe.CallEnded) and not ended.answered
        assert ended.reason == f"no answer from 127.0.0.1:{port} over udp in 1 s"
    finally:
        await phone.stop()
