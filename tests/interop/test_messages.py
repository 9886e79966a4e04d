"""Instant messages (RFC 3428) with the real peers on 127.0.0.1: Kamailio challenges our
MESSAGE with 407 and relays it to the registered user (lookup("location")), or answers 404 for
nobody; baresip 1.0 sends us one (its ``contact`` module's ``message`` command) and shows the
ones it receives on its console. Both sides are asserted: our events, the book, what the TUI and
``softphone listen --json`` show, Kamailio's log and baresip's console."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from cli_support import make_env
from lab_support import BaresipFactory
from test_cli import background, free_ports, json_events, of_kind, run
from test_cli import softphone as softphone_argv
from tui_support import until

from softphone import lab
from softphone.config import Account, Config, save_config
from softphone.phone import events as pe
from softphone.phone.audio import NullAudio
from softphone.phone.book import Book
from softphone.phone.message_log import MessageLog
from softphone.phone.phone import Phone
from softphone.phone.threaded import ThreadedPhone
from softphone.sip.uri import SipUri
from softphone.transport.resolver import StubBackend
from softphone.tui.app import make_app
from softphone.tui.screens.chat import ChatScreen

pytestmark = pytest.mark.interop

STEP_S = 8.0  # bound for any one step; real steps take milliseconds


def account(kamailio: lab.Kamailio, user: str) -> Account:
    hop = SipUri.parse(f"sip:127.0.0.1:{kamailio.port_for('udp')}")
    return Account(
        name=user,
        uri=SipUri(user=user, host=lab.DOMAIN),
        password=lab.USERS[user],
        registrar=hop,
        proxy=hop,
    )


def new_phone(config: Config, seed: str) -> Phone:
    return Phone(
        config,
        bind_host="127.0.0.1",
        sip_port=0,
        rng=random.Random(seed),
        dns=StubBackend(),  # every hop here is an IP literal
        audio=NullAudio(),
    )


@pytest.fixture
async def registered() -> AsyncIterator[Callable[..., Any]]:
    """``await registered(kamailio, user)``: a started Phone registered as ``user``."""
    phones: list[Phone] = []

    async def make(kamailio: lab.Kamailio, user: str) -> Phone:
        phone = new_phone(Config(accounts=(account(kamailio, user),)), f"msg-{user}")
        await phone.start()
        phones.append(phone)
        assert await phone.wait_registered(STEP_S) == {user: True}
        return phone

    yield make
    for phone in phones:
        await phone.stop()


async def expect(
    phone: Phone, predicate: Callable[[pe.PhoneEvent], bool], seen: list[pe.PhoneEvent]
) -> pe.PhoneEvent:
    async with asyncio.timeout(STEP_S):
        while True:
            event = await phone.next_event()
            seen.append(event)
            if predicate(event):
                return event


def outcome(e: pe.PhoneEvent) -> bool:
    return isinstance(e, pe.MessageStatusChanged) and e.state != "sending"


async def said(peer: lab.Baresip, pattern: str) -> str:
    found = await asyncio.to_thread(peer.console.wait_for, pattern, STEP_S)
    return found.group(0)


async def logged(kamailio: lab.Kamailio, pattern: str, since: int) -> str:
    found = await asyncio.to_thread(kamailio.wait_for, pattern, STEP_S, since)
    return found.group(0)


async def test_we_message_baresip_through_kamailio_short_and_over_tcp(
    kamailio: lab.Kamailio,
    baresip_factory: BaresipFactory,
    registered: Callable[..., Any],
    tmp_path: Path,
) -> None:
    bob = baresip_factory(user="bob", console=True)
    carol = await registered(kamailio, "carol")
    book = Book.open(tmp_path / "t.db")
    log = MessageLog(book.messages, on_error=pytest.fail)
    seen: list[pe.PhoneEvent] = []
    mark = kamailio.mark()
    message_id = await carol.send_message(bob.aor, "hi bob, it's carol")
    done = await expect(carol, outcome, seen)
    assert isinstance(done, pe.MessageStatusChanged)
    assert (done.message_id, done.state, done.status) == (message_id, "delivered", 200)
    assert done.call_id is None
    await said(bob, r'sip:carol@lab\.test: "hi bob, it\'s carol"')
    await logged(kamailio, r"LAB CHALLENGE 407 MESSAGE carol", mark)  # challenged like INVITE
    # Over 1300 bytes: not over UDP (RFC 3428 §4); the same proxy over TCP, challenged there too.
    long = "x" * 1500
    mark = kamailio.mark()
    await carol.send_message(bob.aor, long)
    done = await expect(carol, outcome, seen)
    # The 200 OK comes from baresip (Kamailio answers no MESSAGE itself); baresip 1.0 prints
    # nothing this long on its console (its output line is shorter), so the 200 is the proof.
    assert isinstance(done, pe.MessageStatusChanged)
    assert (done.state, done.status) == ("delivered", 200)
    await logged(kamailio, r"LAB REQUEST MESSAGE carol->bob proto=tcp", mark)
    for event in seen:
        log.observe(event)
    assert await log.settle()
    kept = book.messages.conversation([bob.aor])
    assert [(m.text, m.state) for m in kept] == [
        ("hi bob, it's carol", "delivered"),
        (long, "delivered"),
    ]
    book.close()


async def test_a_message_for_nobody_fails_with_kamailios_404(
    kamailio: lab.Kamailio, registered: Callable[..., Any]
) -> None:
    alice = await registered(kamailio, "alice")
    mark = kamailio.mark()
    await alice.send_message(f"sip:nobody@{lab.DOMAIN}", "anyone?")
    done = await expect(alice, outcome, [])
    assert isinstance(done, pe.MessageStatusChanged)
    assert (done.state, done.status, done.reason, done.no_response) == (
        "failed",
        404,
        "Not Found",
        False,
    )
    await logged(kamailio, r"LAB REPLY 404 MESSAGE alice", mark)


async def test_a_message_in_a_call_with_baresip_goes_in_the_call(
    kamailio: lab.Kamailio, baresip_factory: BaresipFactory, registered: Callable[..., Any]
) -> None:
    bob = baresip_factory(user="bob", auto_answer=True, console=True)
    dave = await registered(kamailio, "dave")
    seen: list[pe.PhoneEvent] = []
    call_id = await dave.dial(bob.aor)
    await expect(
        dave, lambda e: isinstance(e, pe.CallStateChanged) and e.state == "established", seen
    )
    mark = kamailio.mark()
    await dave.send_message(bob.aor, "in our call")
    done = await expect(dave, outcome, seen)
    assert isinstance(done, pe.MessageStatusChanged)
    assert (done.state, done.call_id) == ("delivered", call_id)
    # Inside the dialog: the call's Call-ID, along its route (Kamailio record-routed the INVITE).
    await logged(kamailio, rf"LAB REQUEST MESSAGE dave->\S+ proto=udp src=\S+ ci={call_id}", mark)
    await said(bob, r'sip:dave@lab\.test: "in our call"')
    await dave.hangup(call_id)
    await expect(dave, lambda e: isinstance(e, pe.CallEnded), seen)


async def test_baresip_messages_us_and_the_tui_shows_it_and_answers(
    kamailio: lab.Kamailio, baresip_factory: BaresipFactory, tmp_path: Path
) -> None:
    """baresip (bob) writes to alice: the app shows it (a notice, unread in the status bar),
    keeps it; R opens the conversation and the answer reaches baresip's console, delivered."""
    book = Book.open(tmp_path / "t.db")
    phone = ThreadedPhone(new_phone(Config(accounts=(account(kamailio, "alice"),)), "tui-alice"))
    app = make_app(Config(), phone, book=book, player_factory=lambda *a: None)  # type: ignore[arg-type,return-value]
    try:
        async with app.run_test(size=(120, 36)) as pilot:
            await until(
                pilot, lambda: "alice: registered" in app.main.status.text, STEP_S, "registered"
            )
            await pilot.press("escape")
            bob = baresip_factory(user="bob", contacts=(f"sip:alice@{lab.DOMAIN}",), console=True)
            mark = kamailio.mark()
            await asyncio.to_thread(bob.send_message, "hello alice, bob here")
            line = "message from sip:bob@lab.test: hello alice, bob here"
            await until(pilot, lambda: line in app.main.messages.texts, STEP_S, "the notice")
            await until(pilot, lambda: "✉ 1 unread" in app.main.status.text, STEP_S, "unread")
            await logged(kamailio, r"LAB CHALLENGE 407 MESSAGE bob", mark)
            await pilot.press("R")
            await until(pilot, lambda: isinstance(app.screen, ChatScreen), STEP_S, "the chat")
            chat = app.screen
            assert isinstance(chat, ChatScreen) and chat.party.target == "sip:bob@lab.test"
            await until(pilot, lambda: len(chat.lines) == 1, STEP_S, "kept and shown")
            await pilot.press(*"hi bob", "enter")
            await until(
                pilot,
                lambda: chat.lines[-1].state == "delivered",
                STEP_S,
                "delivered",
            )
            await said(bob, r'sip:alice@lab\.test: "hi bob"')
            await app.main.inbox.settle()
            kept = book.messages.conversation(["sip:bob@lab.test"])
            assert [(m.direction, m.text, m.state, m.read) for m in kept] == [
                ("in", "hello alice, bob here", "received", True),
                ("out", "hi bob", "delivered", True),
            ]
    finally:
        await phone.stop()
        book.close()


def test_listen_json_prints_baresips_message_and_message_exits_by_the_status(
    kamailio: lab.Kamailio, baresip_factory: BaresipFactory, tmp_path: Path
) -> None:
    """``softphone listen --json`` registered as carol prints baresip's message with exactly
    the names tools read; ``softphone message`` exits 0 once baresip has it, 5 for nobody."""
    config_path = save_config(Config(accounts=(account(kamailio, "carol"),)), tmp_path / "c.toml")
    listen_port, send_port = free_ports(2)
    argv = softphone_argv(
        tmp_path / "listen.log",
        "listen",
        "--json",
        "--config",
        str(config_path),
        "--bind",
        "127.0.0.1",
        "--sip-port",
        str(listen_port),
        "--duration",
        "20",
    )
    env = make_env(tmp_path / "listener")
    with background(argv, env, tmp_path) as listener:
        listener.wait_for(lambda e: e["event"] == "registered")
        bob = baresip_factory(user="bob", contacts=(f"sip:carol@{lab.DOMAIN}",), console=True)
        bob.send_message("ping from baresip")
        got = listener.wait_for(lambda e: e["event"] == "message")
        assert got == {
            "event": "message",
            "from": "sip:bob@lab.test",
            "to": "sip:carol@lab.test",
            "content_type": "text/plain",
            "text": "ping from baresip",
        }
        listener.interrupt()
        assert listener.finish() == 0, listener.stderr
    book = Book.open(Path(env["XDG_DATA_HOME"]) / "softphone" / "softphone.db")
    try:
        (kept,) = book.messages.conversation(["sip:bob@lab.test"])
        assert (kept.text, kept.state, kept.read) == ("ping from baresip", "received", False)
    finally:
        book.close()

    dave = save_config(Config(accounts=(account(kamailio, "dave"),)), tmp_path / "d.toml")

    def message(uri: str, text: str) -> Any:
        return run(
            softphone_argv(
                tmp_path / "message.log",
                "message",
                uri,
                text,
                "--json",
                "--config",
                str(dave),
                "--bind",
                "127.0.0.1",
                "--sip-port",
                str(send_port),
            ),
            make_env(tmp_path / "sender"),
            tmp_path,
        )

    sent = message("sip:bob@lab.test", "pong from the command line")
    assert sent.returncode == 0, sent.stderr
    bob.console.wait_for(r'sip:dave@lab\.test: "pong from the command line"', STEP_S)
    statuses = of_kind(json_events(sent.stdout), "message_status")
    assert [s["state"] for s in statuses] == ["sending", "delivered"]
    refused = message(f"sip:nobody@{lab.DOMAIN}", "hello?")
    assert refused.returncode == 5, refused.stderr
    assert "failed: 404 Not Found (no such user or number)" in refused.stderr
