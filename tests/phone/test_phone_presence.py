"""Presence, busy lamps and message waiting in the real Phone, against a registrar and presence
server on a real UDP socket of 127.0.0.1 (tests/presence_support.py's PresenceServer beside
tests/sip_support.py's Registrar): what is published and when, the watched parties' events,
message waiting, busy by itself during a call, do-not-disturb, starting again after a failed
registration, removal at stop; and the FakePhone held to the same behaviour."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import cast

import pytest
from phone_fake import FakePhone
from phone_support import expect, started
from presence_support import PresenceServer
from sip_support import Registrar

from softphone.config import Account, Config
from softphone.phone import events as pe
from softphone.phone.api import ContactPresence, OwnPresence, Voicemail
from softphone.phone.audio import NullAudio
from softphone.phone.errors import AddressError, PhoneError
from softphone.phone.phone import Phone
from softphone.sip.address import Address
from softphone.sip.message import SipRequest, parse_message
from softphone.sip.pidf import PresenceDocument
from softphone.sip.uri import SipUri
from softphone.transport.resolver import StubBackend

DATA = Path(__file__).resolve().parent.parent / "data" / "presence"
PIDF = "application/pidf+xml"


class Server(asyncio.DatagramProtocol):
    """A registrar and presence server on one UDP port: REGISTER to the Registrar, the rest to
    the PresenceServer; NOTIFYs go to where the subscription's Contact says."""

    def __init__(self) -> None:
        self.registrar = Registrar()
        self.presence = PresenceServer()
        self.transport: asyncio.DatagramTransport | None = None
        self.port = 0
        self.changed = asyncio.Condition()
        self.down = False  # answers nothing (a registrar that died)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        self.port = transport.get_extra_info("sockname")[1]
        self.presence.address = Address("udp", "127.0.0.1", self.port)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        if self.down:
            return
        msg = parse_message(data)
        if isinstance(msg, SipRequest) and msg.method == "REGISTER":
            self.transport.sendto(self.registrar.respond(data), addr)
        else:
            self.presence.receive(data)
            self.flush(addr)
        asyncio.get_running_loop().create_task(self._tell())

    def flush(self, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        out, self.presence.outbox = self.presence.outbox, []
        for data in out:
            self.transport.sendto(data, addr)

    async def _tell(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    def requests(self, method: str, **headers: str) -> list[SipRequest]:
        return [
            r
            for r in self.presence.requests
            if r.method == method
            and all(r.headers.get(k.replace("_", "-")) == v for k, v in headers.items())
        ]

    async def until(self, cond: Callable[[], bool], timeout_s: float = 5.0) -> None:
        async with asyncio.timeout(timeout_s), self.changed:
            await self.changed.wait_for(cond)


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(Server, local_addr=("127.0.0.1", 0))
    yield protocol
    transport.close()


def account(port: int, **kw: object) -> Account:
    hop = SipUri.parse(f"sip:127.0.0.1:{port}")
    return Account(
        name="home",
        uri=SipUri(user="alice", host="lab.test"),
        password="alicepw",
        registrar=hop,
        proxy=hop,
        expires=60,
        **kw,  # type: ignore[arg-type]
    )


async def registered(server: Server, *, auto_answer: bool = False, **kw: object) -> Phone:
    phone = Phone(
        Config(accounts=(account(server.port, **kw),)),
        bind_host="127.0.0.1",
        sip_port=0,
        rng=random.Random("presence"),
        dns=StubBackend(),
        audio=NullAudio(),
        auto_answer=auto_answer,
    )
    await phone.start()
    await expect(phone, lambda e: isinstance(e, pe.Registered))
    return phone


def sip_port(phone: Phone) -> int:
    """Where the phone listens (its Listening event was read by ``registered``)."""
    running = phone._running
    assert running is not None
    return next(a.port for a in running.transport.listeners() if a.transport == "udp")


def published(server: Server) -> list[PresenceDocument]:
    return [PresenceDocument.parse(r.body) for r in server.requests("PUBLISH") if r.body]


async def test_presence_starts_with_the_registration(server: Server) -> None:
    phone = await registered(server, presence_state="away")
    try:
        await server.until(lambda: bool(server.requests("PUBLISH")))
        await server.until(lambda: bool(server.requests("SUBSCRIBE", event="message-summary")))
        (doc,) = published(server)
        assert doc.summary() == "away" and doc.entity == "sip:alice@lab.test"
        (mwi,) = server.requests("SUBSCRIBE", event="message-summary")
        assert mwi.uri == SipUri(user="alice", host="lab.test")  # our own address
        assert phone.presence == OwnPresence(state="away", shown="away", accounts=("home",))
    finally:
        await phone.stop()


async def test_presence_off_sends_nothing(server: Server) -> None:
    phone = await registered(server, presence=False)
    try:
        phone.watch("sip:bob@lab.test")
        phone.set_presence("busy")
        assert await expect(phone, lambda e: isinstance(e, pe.OwnPresenceChanged))
        assert server.presence.requests == [] and phone.presence.accounts == ()
    finally:
        await phone.stop()


async def test_set_presence_publishes_and_tells(server: Server) -> None:
    phone = await registered(server)
    try:
        await server.until(lambda: len(published(server)) == 1)
        phone.set_presence("busy", "in a meeting")
        assert await expect(phone, lambda e: isinstance(e, pe.OwnPresenceChanged)) == (
            pe.OwnPresenceChanged(
                state="busy", shown="busy", note="in a meeting", on_the_phone=False
            )
        )
        await server.until(lambda: len(published(server)) == 2)
        doc = published(server)[-1]
        assert (doc.summary(), doc.note) == ("busy", "in a meeting")
        assert server.requests("PUBLISH")[-1].headers.get("SIP-If-Match") == "etag1"
        with pytest.raises(PhoneError, match="no presence state 'asleep'"):
            phone.set_presence("asleep")
    finally:
        await phone.stop()


async def test_watched_parties_and_message_waiting(server: Server) -> None:
    phone = await registered(server)
    try:
        phone.watch("bob")  # on the account's domain
        assert phone.watched == {"bob": ContactPresence(uri="bob")}
        await server.until(lambda: len(server.requests("SUBSCRIBE")) == 3)
        packages = {r.headers.get("Event"): r.uri for r in server.requests("SUBSCRIBE")}
        bob = SipUri(user="bob", host="lab.test")
        assert packages == {
            "message-summary": SipUri(user="alice", host="lab.test"),
            "presence": bob,
            "dialog": bob,
        }
        contact = server.presence.dialog(0).contact
        addr = (contact.host, contact.port or 5060)
        by_event = {d.event: d for d in server.presence.dialogs.values()}
        server.presence.notify(
            by_event["presence"], "active", (DATA / "asterisk_on_the_phone.pidf").read_bytes(), PIDF
        )
        server.flush(addr)
        assert await expect(phone, lambda e: isinstance(e, pe.PresenceChanged)) == (
            pe.PresenceChanged(uri="bob", state="busy", note="On the phone", lamp="busy")
        )
        server.presence.notify(
            by_event["dialog"],
            "active",
            (DATA / "kamailio_early_callee.dialog").read_bytes(),
            "application/dialog-info+xml",
        )
        server.flush(addr)
        changed = await expect(phone, lambda e: isinstance(e, pe.PresenceChanged))
        assert changed == pe.PresenceChanged(
            uri="bob", state="busy", note="On the phone", lamp="ringing"
        )
        server.presence.notify(
            by_event["message-summary"],
            "active",
            (DATA / "rfc3842_example.summary").read_bytes(),
            "application/simple-message-summary",
        )
        server.flush(addr)
        assert await expect(phone, lambda e: isinstance(e, pe.MessageWaiting)) == (
            pe.MessageWaiting(
                account="home", waiting=True, new=2, old=8, urgent_new=0, urgent_old=2
            )
        )
        assert phone.voicemail == {
            "home": Voicemail(account="home", waiting=True, new=2, old=8, urgent_old=2)
        }
        with pytest.raises(AddressError):
            phone.watch("sip:")
        phone.unwatch("bob")
        await server.until(lambda: len(server.requests("SUBSCRIBE", expires="0")) == 2)
        assert phone.watched == {}
    finally:
        await phone.stop()


async def test_stop_removes_subscriptions_and_the_publication(server: Server) -> None:
    phone = await registered(server)
    phone.watch("sip:bob@lab.test")
    await server.until(lambda: len(server.requests("SUBSCRIBE")) == 3)
    for dialog in list(server.presence.dialogs.values()):
        server.presence.notify(dialog, "active;expires=600")
    contact = server.presence.dialog(0).contact
    server.flush((contact.host, contact.port or 5060))
    await expect(phone, lambda e: isinstance(e, pe.PresenceChanged))  # the dialog's idle lamp
    await phone.stop()
    removals = server.requests("SUBSCRIBE", expires="0")
    assert sorted(r.headers.get("Event") or "" for r in removals) == [
        "dialog",
        "message-summary",
        "presence",
    ]
    assert all(r.to.tag for r in removals)  # in their dialogs
    removal = server.requests("PUBLISH")[-1]
    assert removal.headers.get("Expires") == "0" and removal.headers.get("SIP-If-Match")


async def test_busy_by_itself_during_a_call(server: Server) -> None:
    phone = await registered(server, auto_answer=True)
    bob = await started(Config(), seed="bob")
    try:
        await server.until(lambda: len(published(server)) == 1)
        call_id = await bob.dial(f"sip:alice@127.0.0.1:{sip_port(phone)}")
        busy = await expect(phone, lambda e: isinstance(e, pe.OwnPresenceChanged))
        assert busy == pe.OwnPresenceChanged(
            state="available", shown="busy", note=None, on_the_phone=True
        )
        await server.until(lambda: len(published(server)) == 2)
        assert published(server)[-1].activities == ("on-the-phone",)
        await bob.hangup(call_id)
        back = await expect(phone, lambda e: isinstance(e, pe.OwnPresenceChanged))
        assert (back.shown, back.on_the_phone) == ("available", False)  # type: ignore[attr-defined]
        await server.until(lambda: len(published(server)) == 3)
        assert published(server)[-1].summary() == "available"
    finally:
        await bob.stop()
        await phone.stop()


async def test_do_not_disturb_refuses_calls(server: Server) -> None:
    phone = await registered(server)
    caller = await started(Config(), seed="caller")
    try:
        phone.set_presence("dnd")
        call_id = await caller.dial(f"sip:alice@127.0.0.1:{sip_port(phone)}")
        ended = await expect(caller, lambda e: isinstance(e, pe.CallEnded))
        assert isinstance(ended, pe.CallEnded) and ended.status == 480
        assert caller.call(call_id).state == "ended"
        await server.until(lambda: published(server)[-1].summary() == "dnd")
    finally:
        await caller.stop()
        await phone.stop()


async def test_a_registration_after_a_failure_starts_presence_again(server: Server) -> None:
    phone = await registered(server)
    try:
        await server.until(lambda: len(server.requests("SUBSCRIBE")) == 1)
        first = server.requests("SUBSCRIBE")[0].call_id
        # The registrar restarts: the next REGISTER fails, the one after succeeds.
        server.registrar.password = "changed"
        running = phone._running
        assert running is not None
        running.ua.register("home", asyncio.get_running_loop().time())
        running.transport.pump()
        await expect(phone, lambda e: isinstance(e, pe.RegistrationFailed))
        server.registrar.password = "alicepw"
        running.ua.register("home", asyncio.get_running_loop().time())
        running.transport.pump()
        await expect(phone, lambda e: isinstance(e, pe.Registered))
        await server.until(lambda: len(server.requests("SUBSCRIBE")) == 2)
        again = server.requests("SUBSCRIBE")[1]
        assert again.call_id != first and not again.to.tag  # a new subscription
        await server.until(lambda: len(server.requests("PUBLISH")) >= 2)
        assert "SIP-If-Match" not in server.requests("PUBLISH")[-1].headers  # published afresh
    finally:
        await phone.stop()


# --------------------------------------------------------------------------- the fake, the same
async def test_the_fake_follows_the_real_phones_presence_rules() -> None:
    phone = FakePhone(accounts={"home": "sip:alice@lab.test"}, registrars=["home"], autoplay=True)
    await phone.start()
    phone.drain()
    phone.set_presence("busy", "in a meeting")
    assert phone.drain() == [
        pe.OwnPresenceChanged(state="busy", shown="busy", note="in a meeting", on_the_phone=False)
    ]
    phone.set_presence("busy", "in a meeting")
    assert phone.drain() == []  # no change, no event
    with pytest.raises(PhoneError, match="no presence state 'asleep'"):
        phone.set_presence("asleep")
    phone.watch("bob")
    assert phone.watched == {"bob": ContactPresence(uri="bob")}
    phone.remote_presence("bob", "away", "lunch", "idle")
    assert phone.drain() == [pe.PresenceChanged(uri="bob", state="away", note="lunch", lamp="idle")]
    phone.set_presence("available")
    phone.drain()
    await phone.dial("carol")
    events = phone.drain()
    assert events[-1] == pe.OwnPresenceChanged(
        state="available", shown="busy", note=None, on_the_phone=True
    )
    phone.message_waiting("home", 1, 3)
    assert phone.drain() == [
        pe.MessageWaiting(account="home", waiting=True, new=1, old=3, urgent_new=0, urgent_old=0)
    ]
    with pytest.raises(AddressError):
        phone.watch("sip:")
