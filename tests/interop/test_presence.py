"""Presence, busy lamps and message waiting with the real peers on 127.0.0.1: Kamailio with its
presence modules as the presence server (presence, presence_xml, presence_dialoginfo,
presence_mwi, pua, pua_dialoginfo), baresip 1.0 with its presence module.

- baresip publishes open/closed (all its presence module can) and our lamp follows it;
- we publish busy and baresip's contact list shows us busy;
- a call between two baresips through Kamailio (pua_dialoginfo publishes its dialog state)
  lights our busy lamps: ringing at the callee, busy at both, idle after;
- message waiting: a voicemail server's PUBLISH (presence_mwi), and a NOTIFY a PBX sends unasked
  through Kamailio, reach our phone; ``softphone listen --json`` prints the ``mwi`` line;
- after Kamailio restarts (it forgets every subscription and publication) they come back;
- on exit, every subscription and the publication are removed with Expires: 0.

Kamailio's log shows each PUBLISH and SUBSCRIBE it handled (``LAB PUBLISH ...``,
``LAB SUBSCRIBE ...``): both sides are asserted."""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from cli_support import make_env
from lab_support import BaresipFactory, KamailioFactory
from test_cli import background, free_ports
from test_cli import softphone as softphone_argv

from softphone import lab
from softphone.config import Account, Config, save_config
from softphone.phone import events as pe
from softphone.phone.audio import NullAudio
from softphone.phone.phone import Phone
from softphone.sip.uri import SipUri
from softphone.transport.resolver import StubBackend

pytestmark = pytest.mark.interop

STEP_S = 8.0  # bound for any one step; real steps take milliseconds
BOB = f"sip:bob@{lab.DOMAIN}"
CAROL = f"sip:carol@{lab.DOMAIN}"
ALICE = f"sip:alice@{lab.DOMAIN}"


def account(kamailio: lab.Kamailio, user: str, expires: int = 3600) -> Account:
    hop = SipUri.parse(f"sip:127.0.0.1:{kamailio.port_for('udp')}")
    return Account(
        name=user,
        uri=SipUri(user=user, host=lab.DOMAIN),
        password=lab.USERS[user],
        registrar=hop,
        proxy=hop,
        expires=expires,
    )


@pytest.fixture
def presence_server(kamailio_factory: KamailioFactory) -> lab.Kamailio:
    return kamailio_factory(presence=True)


@pytest.fixture
async def registered() -> AsyncIterator[Callable[..., Any]]:
    """``await registered(kamailio, user, expires=...)``: a started Phone registered as ``user``
    (presence on, as for any account with a registrar)."""
    phones: list[Phone] = []

    async def make(kamailio: lab.Kamailio, user: str, expires: int = 3600) -> Phone:
        phone = Phone(
            Config(accounts=(account(kamailio, user, expires),)),
            bind_host="127.0.0.1",
            sip_port=0,
            rng=random.Random(f"presence-{user}"),
            dns=StubBackend(),
            audio=NullAudio(),
        )
        await phone.start()
        phones.append(phone)
        assert await phone.wait_registered(STEP_S) == {user: True}
        return phone

    yield make
    for phone in phones:
        await phone.stop()


async def lamp_of(
    phone: Phone,
    uri: str,
    *,
    state: str | None = None,
    lamp: str | None = None,
    within: float = STEP_S,
) -> pe.PresenceChanged:
    """The first PresenceChanged of ``uri`` with that state and/or lamp (or what it is now)."""

    def fits(record: Any) -> bool:
        return (state is None or record.state == state) and (lamp is None or record.lamp == lamp)

    now = phone.watched.get(uri)
    if now is not None and fits(now):
        return pe.PresenceChanged(uri=uri, state=now.state, note=now.note, lamp=now.lamp)
    async with asyncio.timeout(within):
        while True:
            event = await phone.next_event()
            if isinstance(event, pe.PresenceChanged) and event.uri == uri and fits(event):
                return event


async def next_of(phone: Phone, kind: type[pe.PhoneEvent], within: float = STEP_S) -> Any:
    async with asyncio.timeout(within):
        while True:
            event = await phone.next_event()
            if isinstance(event, kind):
                return event


async def logged(
    kamailio: lab.Kamailio, pattern: str, since: int = 0, within: float = STEP_S
) -> str:
    found = await asyncio.to_thread(kamailio.wait_for, pattern, within, since)
    return found.group(0)


async def status_at(peer: lab.Baresip, uri: str, wanted: str) -> str | None:
    """baresip's contact status of ``uri`` once it is ``wanted`` (or the last one seen)."""
    status = None
    async with asyncio.timeout(STEP_S):
        while (status := await asyncio.to_thread(peer.contact_status, uri)) != wanted:
            await asyncio.sleep(0.1)  # baresip has no event for it: its list is polled
    return status


def sip_request(kamailio: lab.Kamailio, text: str, body: bytes = b"") -> str:
    """Send one request to Kamailio over UDP as another SIP element would, and return the first
    line of its final answer."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((lab.HOST, 0))
        sock.settimeout(STEP_S)
        port = sock.getsockname()[1]
        head = text.format(port=port, length=len(body)).replace("\n", "\r\n")
        sock.sendto(head.encode() + b"\r\n" + body, (lab.HOST, kamailio.port_for("udp")))
        while True:
            answer = sock.recv(65535).decode(errors="replace").split("\r\n", 1)[0]
            if not answer.startswith("SIP/2.0 1"):
                return answer


VOICEMAIL_PUBLISH = """PUBLISH sip:alice@lab.test SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKvm{port}
Max-Forwards: 70
From: <sip:voicemail@vm.test>;tag=vm
To: <sip:alice@lab.test>
Call-ID: vm-{port}@vm.test
CSeq: 1 PUBLISH
Event: message-summary
Expires: 3600
Content-Type: application/simple-message-summary
Content-Length: {length}
"""

CAROL_PUBLISH = """PUBLISH sip:carol@lab.test SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKcp{port}
Max-Forwards: 70
From: <sip:carol-phone@elsewhere.test>;tag=cp
To: <sip:carol@lab.test>
Call-ID: cp{port}@elsewhere.test
CSeq: 1 PUBLISH
Event: presence
Expires: 3600
Content-Type: application/pidf+xml
Content-Length: {length}
"""

PBX_NOTIFY = """NOTIFY sip:alice@lab.test SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKpbx{port}
Max-Forwards: 70
From: <sip:asterisk@pbx.test>;tag=pbx
To: <sip:alice@lab.test>
Call-ID: pbx-mwi-{port}@pbx.test
CSeq: 7 NOTIFY
Event: message-summary
Content-Type: application/simple-message-summary
Content-Length: {length}
"""


# --- presence both ways ----------------------------------------------------------------------------
async def test_we_publish_and_baresip_sees_it(
    presence_server: lab.Kamailio,
    baresip_factory: BaresipFactory,
    registered: Callable[..., Any],
) -> None:
    alice = await registered(presence_server, "alice")
    await logged(presence_server, r"LAB PUBLISH presence sip:alice@lab\.test expires=3600")
    bob = baresip_factory(user="bob", kamailio=presence_server, presence=True, contacts=(ALICE,))
    assert await status_at(bob, ALICE, "Online") == "Online"
    alice.set_presence("busy", "in a meeting")
    assert await status_at(bob, ALICE, "Busy") == "Busy"
    alice.set_presence("away")  # baresip 1.0 shows rpid:away as offline
    assert await status_at(bob, ALICE, "Offline") == "Offline"
    alice.set_presence("available")
    assert await status_at(bob, ALICE, "Online") == "Online"


async def test_a_call_through_kamailio_lights_the_busy_lamps(
    presence_server: lab.Kamailio,
    baresip_factory: BaresipFactory,
    registered: Callable[..., Any],
) -> None:
    bob = baresip_factory(user="bob", kamailio=presence_server)
    carol = baresip_factory(user="carol", kamailio=presence_server)
    alice = await registered(presence_server, "alice")
    alice.watch(BOB)
    alice.watch(CAROL)
    await lamp_of(alice, BOB, lamp="idle")
    await lamp_of(alice, CAROL, lamp="idle")
    mark = carol.mark()
    bob.dial(CAROL)
    carol.wait_event("CALL_INCOMING", STEP_S, since=mark)
    await lamp_of(alice, CAROL, lamp="ringing")  # early, as the callee
    await lamp_of(alice, BOB, lamp="busy")  # placing a call
    carol.accept()
    carol.wait_event("CALL_ESTABLISHED", STEP_S, since=mark)
    await lamp_of(alice, CAROL, lamp="busy")  # confirmed
    assert alice.watched[BOB].lamp == "busy"
    bob.hangup()
    carol.wait_event("CALL_CLOSED", STEP_S, since=mark)
    await lamp_of(alice, BOB, lamp="idle")
    await lamp_of(alice, CAROL, lamp="idle")


async def test_busy_by_itself_while_in_a_call(
    presence_server: lab.Kamailio,
    baresip_factory: BaresipFactory,
    registered: Callable[..., Any],
) -> None:
    bob = baresip_factory(
        user="bob", kamailio=presence_server, presence=True, contacts=(ALICE,), auto_answer=True
    )
    alice = await registered(presence_server, "alice")
    assert await status_at(bob, ALICE, "Online") == "Online"
    call_id = await alice.dial(BOB)
    busy = await next_of(alice, pe.OwnPresenceChanged)
    assert (busy.state, busy.shown, busy.on_the_phone) == ("available", "busy", True)
    assert await status_at(bob, ALICE, "Busy") == "Busy"  # <rpid:on-the-phone/>
    await alice.hangup(call_id)
    assert await status_at(bob, ALICE, "Online") == "Online"


async def test_rich_presence_another_phone_publishes_reaches_our_lamp(
    presence_server: lab.Kamailio, registered: Callable[..., Any]
) -> None:
    # What phones other than baresip 1.0 publish: RPID activities (Asterisk's older namespaces
    # here), aggregated by presence_xml with whatever else was published.
    data = Path(__file__).resolve().parent.parent / "data" / "presence"
    alice = await registered(presence_server, "alice")
    alice.watch(CAROL)
    await lamp_of(alice, CAROL, lamp="idle")
    on_the_phone = (
        (data / "asterisk_on_the_phone.pidf")
        .read_bytes()
        .replace(b"1000@192.0.2.10", b"carol@lab.test")
    )
    answer = await asyncio.to_thread(sip_request, presence_server, CAROL_PUBLISH, on_the_phone)
    assert answer.startswith("SIP/2.0 200")
    shown = await lamp_of(alice, CAROL, state="busy")
    # The lamp is the dialog package's: no call of carol's went through Kamailio.
    assert (shown.note, shown.lamp) == ("On the phone", "idle")
    away = (
        (data / "rfc4480_meeting.pidf")
        .read_bytes()
        .replace(b"pres:someone@example.com", b"sip:carol@lab.test")
    )
    answer = await asyncio.to_thread(
        sip_request, presence_server, CAROL_PUBLISH.replace("cp{port}", "cp2{port}"), away
    )
    assert answer.startswith("SIP/2.0 200")
    await lamp_of(alice, CAROL, state="busy")  # still: the two documents are aggregated


# --- message waiting -------------------------------------------------------------------------------
async def test_a_voicemail_servers_publish_reaches_us(
    presence_server: lab.Kamailio, registered: Callable[..., Any]
) -> None:
    alice = await registered(presence_server, "alice")
    await logged(presence_server, r"LAB SUBSCRIBE message-summary sip:alice@lab\.test")
    body = b"Messages-Waiting: yes\r\nMessage-Account: sip:alice@lab.test\r\nVoice-Message: 2/4 (1/0)\r\n"
    answer = await asyncio.to_thread(sip_request, presence_server, VOICEMAIL_PUBLISH, body)
    assert answer.startswith("SIP/2.0 200")
    waiting = await next_of(alice, pe.MessageWaiting)
    assert waiting == pe.MessageWaiting(
        account="alice", waiting=True, new=2, old=4, urgent_new=1, urgent_old=0
    )
    assert alice.voicemail["alice"].new == 2


async def test_a_pbx_notify_unasked_through_kamailio_reaches_us(
    presence_server: lab.Kamailio, registered: Callable[..., Any]
) -> None:
    alice = await registered(presence_server, "alice")
    body = b"Messages-Waiting: no\r\nVoice-Message: 0/7\r\n"
    answer = await asyncio.to_thread(sip_request, presence_server, PBX_NOTIFY, body)
    assert answer.startswith("SIP/2.0 200")  # relayed to our registered contact, answered by us
    waiting = await next_of(alice, pe.MessageWaiting)
    assert (waiting.waiting, waiting.new, waiting.old) == (False, 0, 7)


async def test_listen_json_prints_mwi_and_removes_everything_on_exit(
    presence_server: lab.Kamailio, tmp_path: Path
) -> None:
    env = make_env(tmp_path)
    config_path = Path(env["XDG_CONFIG_HOME"]) / "softphone" / "config.toml"
    save_config(Config(accounts=(account(presence_server, "alice"),)), config_path)
    (port,) = free_ports(1)
    argv = softphone_argv(
        tmp_path / "listen.log",
        *("listen", "--json", "--bind", lab.HOST, "--sip-port", str(port)),
        *("--duration", "60", "--presence", "busy", "--watch", BOB),
    )
    with background(argv, env, tmp_path) as listener:
        listener.wait_for(lambda e: e["event"] == "registered", STEP_S)
        await logged(presence_server, r"LAB SUBSCRIBE message-summary sip:alice@lab\.test")
        await logged(presence_server, r"LAB SUBSCRIBE dialog sip:bob@lab\.test")
        body = b"Messages-Waiting: yes\r\nVoice-Message: 1/0\r\n"
        answer = await asyncio.to_thread(sip_request, presence_server, VOICEMAIL_PUBLISH, body)
        assert answer.startswith("SIP/2.0 200")
        mwi = listener.wait_for(lambda e: e["event"] == "mwi", STEP_S)
        # Tools outside the project read these names.
        assert mwi == {
            "event": "mwi",
            "account": "alice",
            "waiting": True,
            "new": 1,
            "old": 0,
            "urgent_new": 0,
            "urgent_old": 0,
        }
        lamp = listener.wait_for(lambda e: e["event"] == "presence" and e["lamp"] == "idle", STEP_S)
        assert lamp["uri"] == BOB
        assert set(lamp) == {"event", "uri", "state", "note", "lamp"}
        own = listener.wait_for(lambda e: e["event"] == "own_presence", STEP_S)
        assert own == {
            "event": "own_presence",
            "state": "busy",
            "shown": "busy",
            "note": None,
            "on_the_phone": False,
        }
        published = await logged(presence_server, r"LAB PUBLISH presence sip:alice@lab\.test .*")
        assert "expires=3600" in published
        mark = presence_server.mark()
        listener.interrupt()
        assert listener.finish() == 0, listener.stderr
    assert "voicemail of alice: 1 new, 0 old" in listener.stderr
    # RFC 6665 §4.1.2.3 / RFC 3903 §4.5: removed on exit, in their dialogs / with the tag.
    for package in ("presence", "dialog", "message-summary"):
        await logged(
            presence_server,
            rf"LAB SUBSCRIBE {package} \S+ from=sip:alice@lab\.test expires=0 totag=\S+",
            mark,
        )
    await logged(
        presence_server, r"LAB PUBLISH presence sip:alice@lab\.test expires=0 etag=a\.", mark
    )


# --- a registrar that restarts ----------------------------------------------------------------------
async def test_subscriptions_and_publications_come_back_after_kamailio_restarts(
    presence_server: lab.Kamailio,
    baresip_factory: BaresipFactory,
    registered: Callable[..., Any],
) -> None:
    bob = baresip_factory(user="bob", kamailio=presence_server, presence=True, publish_s=20)
    alice = await registered(presence_server, "alice", expires=60)  # refreshes every 30 s
    alice.watch(BOB)
    await lamp_of(alice, BOB, state="available", lamp="idle")
    await asyncio.to_thread(presence_server.restart)  # everything it knew is gone
    # bob's next PUBLISH gets 412 and publishes afresh; our refreshes get 481 (SUBSCRIBE) and
    # 412 (PUBLISH): each starts again, with a new dialog or without a tag.
    await logged(
        presence_server,
        r"LAB SUBSCRIBE presence sip:bob@lab\.test from=sip:alice@lab\.test expires=60 totag=<null>",
        within=45,
    )
    await logged(
        presence_server,
        r"LAB PUBLISH presence sip:alice@lab\.test expires=60 etag=<null>",
        within=45,
    )
    await logged(
        presence_server,
        r"LAB PUBLISH presence sip:bob@lab\.test expires=\d+ etag=<null>",
        within=45,
    )
    bob.presence_offline()
    await lamp_of(alice, BOB, state="offline", within=45)
