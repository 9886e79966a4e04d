"""Pilot tests of instant messages in the app with the real phone (a ThreadedPhone around a
Phone on 127.0.0.1, as ``softphone`` runs it) and a second Phone peer-to-peer as the far end:
a message that comes in is a notice, kept unread in the book, opened with R and answered from
the conversation; during a call, both ways go in the call's dialog."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from phone_support import free_port
from tui_support import until

from softphone.config import Account, Config
from softphone.phone import events as pe
from softphone.phone.audio import NullAudio
from softphone.phone.book import Book
from softphone.phone.phone import Phone
from softphone.phone.threaded import ThreadedPhone
from softphone.sip.uri import SipUri
from softphone.transport.resolver import StubBackend
from softphone.tui.app import SoftphoneApp, make_app
from softphone.tui.screens.chat import ChatScreen
from softphone.tui.screens.incoming import IncomingScreen

HOST = "127.0.0.1"


def phone_at(port: int, config: Config, seed: str) -> Phone:
    return Phone(
        config,
        bind_host=HOST,
        sip_port=port,
        rng=random.Random(seed),
        dns=StubBackend(),
        audio=NullAudio(),
    )


class Far:
    """The far end: bob at its own port, named Bob; ``seen`` keeps its events."""

    def __init__(self, phone: Phone, uri: str) -> None:
        self.phone = phone
        self.uri = uri
        self.seen: list[pe.PhoneEvent] = []

    def had(self, kind: type[pe.PhoneEvent]) -> list[Any]:
        while (event := self.phone.next_event_nowait()) is not None:
            self.seen.append(event)
        return [e for e in self.seen if isinstance(e, kind)]


@pytest.fixture
async def bob() -> AsyncIterator[Far]:
    port = free_port()
    account = Account(name="far", uri=SipUri.parse(f"sip:bob@{HOST}:{port}"), display_name="Bob")
    phone = phone_at(port, Config(accounts=(account,)), "bob")
    await phone.start()
    yield Far(phone, str(account.uri))
    await phone.stop()


def our_app(book: Book, port: int) -> SoftphoneApp:
    phone = ThreadedPhone(phone_at(port, Config(), "ours"))
    return make_app(Config(), phone, book=book, player_factory=lambda *a: None)  # type: ignore[arg-type,return-value]


async def test_a_message_from_a_real_phone_is_a_notice_then_answered_from_the_conversation(
    tmp_path: Path, bob: Far
) -> None:
    book = Book.open(tmp_path / "t.db")
    port = free_port()
    app = our_app(book, port)
    us = f"sip:softphone@{HOST}:{port}"
    try:
        async with app.run_test(size=(120, 36)) as pilot:
            await until(pilot, lambda: "local" in app.main.status.text, what="the phone")
            await pilot.press("escape")
            await bob.phone.send_message(us, "hello from bob")
            await until(pilot, lambda: "✉ 1 unread" in app.main.status.text, what="unread")
            line = f"message from Bob <{bob.uri}>: hello from bob"
            await until(pilot, lambda: line in app.main.messages.texts, what="the notice")
            await until(pilot, lambda: book.messages.unread_total() == 1, what="kept unread")
            assert app.screen is app.main
            await pilot.press("R")
            await until(pilot, lambda: isinstance(app.screen, ChatScreen), what="the chat")
            chat = app.screen
            assert isinstance(chat, ChatScreen) and chat.party.target == bob.uri
            await until(pilot, lambda: len(chat.lines) == 1, what="the message in the chat")
            assert chat.shown[0].endswith("Bob: hello from bob")
            await pilot.press(*"hi bob", "enter")
            await until(
                pilot,
                lambda: [m.text for m in bob.had(pe.MessageReceived)] == ["hi bob"],
                what="bob has it",
            )
            await until(pilot, lambda: chat.lines[-1].state == "delivered", what="delivered")
            assert chat.shown[-1].endswith("me: hi bob  delivered ✓")
            assert "unread" not in app.main.status.text
            kept = book.messages.conversation([bob.uri])
            assert [(m.direction, m.text, m.state, m.read) for m in kept] == [
                ("in", "hello from bob", "received", True),
                ("out", "hi bob", "delivered", True),
            ]
            await app.main.inbox.settle()
    finally:
        await app.phone.stop()
        book.close()


async def test_during_a_call_both_ways_go_in_the_call(tmp_path: Path, bob: Far) -> None:
    book = Book.open(tmp_path / "t.db")
    port = free_port()
    app = our_app(book, port)
    us = f"sip:softphone@{HOST}:{port}"
    try:
        async with app.run_test(size=(120, 36)) as pilot:
            await until(pilot, lambda: "local" in app.main.status.text, what="the phone")
            bob_call = await bob.phone.dial(us)
            await until(pilot, lambda: isinstance(app.screen, IncomingScreen), what="ringing")
            await pilot.press("a")
            await until(
                pilot,
                lambda: [c.state for c in app.phone.calls] == ["established"],
                what="answered",
            )
            async with asyncio.timeout(5):
                while not any(e.state == "established" for e in bob.had(pe.CallStateChanged)):
                    await pilot.pause()
            await bob.phone.send_message(us, "in the call")
            line = f"message from Bob <{bob.uri}> (in the call): in the call"
            await until(pilot, lambda: line in app.main.messages.texts, what="the notice")
            assert [c.state for c in app.phone.calls] == ["established"]  # no modal, call on
            await pilot.press("escape", "R")  # out of the dial bar, where the focus came back
            await until(pilot, lambda: isinstance(app.screen, ChatScreen), what="the chat")
            chat = app.screen
            assert isinstance(chat, ChatScreen)
            await until(pilot, lambda: len(chat.lines) == 1, what="loaded")
            # Typed into the input at once: with a call up, each key press waits about 2 s for
            # the screen to settle (the meters repaint at 10 Hz), and typing is not what this
            # test is about (tests/tui/test_chat.py types against the fake phone).
            chat.input.value = "yes, in it"
            await pilot.press("enter")
            await until(pilot, lambda: bob.had(pe.MessageReceived) != [], what="bob has it")
            (got,) = bob.had(pe.MessageReceived)
            assert got.call_id == bob_call and got.text == "yes, in it"
            await until(pilot, lambda: chat.lines[-1].state == "delivered", what="delivered")
            assert chat.shown[-1].endswith("me (in the call): yes, in it  delivered ✓")
            await app.main.inbox.settle()
    finally:
        await app.phone.stop()
        book.close()
