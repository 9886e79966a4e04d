"""Pilot tests of instant messages in the TUI against FakePhone: writing from the picker (M) with
the delivery state of each message, replying (R) to a message that came in, one during a call
as a notice, unread counts in the status bar and the contacts list, the conversation opened from
the contacts and the history, attachments and text that could not be decoded, and what cannot be
sent."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from phone_fake import FakePhone
from textual.pilot import Pilot
from textual.widgets import Input
from tui_support import WALL, fake_app, until

from softphone.phone.book import Book, CallRecord, Contact, MessageRecord
from softphone.tui.app import SoftphoneApp
from softphone.tui.screens.chat import ChatPicker, ChatScreen
from softphone.tui.screens.contacts import ContactsScreen
from softphone.tui.screens.help import HelpScreen
from softphone.tui.screens.history import HistoryScreen

BOB = "sip:bob@example.test"
CAROL = "sip:carol@example.test"


def notes(app: SoftphoneApp) -> list[str]:
    return [f"{n.title}|{n.message}" for n in app._notifications]


async def started(pilot: Pilot[Any], app: SoftphoneApp) -> None:
    await until(pilot, lambda: "local" in app.main.status.text, what="the phone to start")
    await pilot.press("escape")  # leave the dial bar: the main screen's keys work


async def chat_with(pilot: Pilot[Any], app: SoftphoneApp, text: str) -> ChatScreen:
    await pilot.press("M")
    await until(pilot, lambda: isinstance(app.screen, ChatPicker), what="the picker")
    await pilot.press(*text, "enter")
    await until(pilot, lambda: isinstance(app.screen, ChatScreen), what="the conversation")
    assert isinstance(app.screen, ChatScreen)
    return app.screen


async def test_written_from_the_picker_each_message_shows_its_delivery_state(book: Book) -> None:
    phone = FakePhone()
    app = fake_app(phone, book)
    async with app.run_test(size=(100, 30)) as pilot:
        await started(pilot, app)
        chat = await chat_with(pilot, app, BOB)
        assert chat.party.target == BOB and isinstance(app.focused, Input)
        await pilot.press(*"hello bob", "enter")
        await until(pilot, lambda: len(chat.lines) == 1, what="the line")
        assert phone.messages_sent == [(BOB, "hello bob")]
        assert chat.shown[-1].endswith("me: hello bob  sending…")
        phone.settle()
        await until(pilot, lambda: chat.lines[-1].state == "delivered", what="delivered")
        assert chat.shown[-1].endswith("me: hello bob  delivered ✓")
        phone.fail_next_message(404)
        await pilot.press(*"still there?", "enter")
        await until(pilot, lambda: len(chat.lines) == 2, what="the second line")
        phone.settle()
        await until(pilot, lambda: chat.lines[-1].state == "failed", what="failed")
        assert chat.shown[-1].endswith("me: still there?  failed: 404 Not Found")
        # Shown where it was written: no warning in the main screen's messages area.
        assert not any("failed" in t for t in app.main.messages.texts)
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is app.main, what="back")
        assert app.main.inbox.chat is None
    # Both are in the book with their outcomes, read.
    kept = book.messages.conversation([BOB])
    assert [(m.text, m.state, m.status) for m in kept] == [
        ("hello bob", "delivered", 200),
        ("still there?", "failed", 404),
    ]


async def test_a_message_that_comes_in_is_a_notice_unread_until_r_opens_it(book: Book) -> None:
    phone = FakePhone()
    app = fake_app(phone, book)
    async with app.run_test(size=(120, 30)) as pilot:
        await started(pilot, app)
        phone.remote_message(CAROL, "are you free?", display_name="Carol")
        await until(pilot, lambda: "✉ 1 unread" in app.main.status.text, what="unread")
        line = "message from Carol <sip:carol@example.test>: are you free?"
        await until(pilot, lambda: line in app.main.messages.texts, what="the line")
        assert any("Message from Carol — R replies|are you free?" in n for n in notes(app))
        assert app.screen is app.main  # a notice, never a modal
        await until(pilot, lambda: book.messages.unread_total() == 1, what="stored unread")
        await pilot.press("R")
        await until(pilot, lambda: isinstance(app.screen, ChatScreen), what="the conversation")
        chat = app.screen
        assert isinstance(chat, ChatScreen) and chat.party.target == CAROL
        await until(pilot, lambda: chat.loaded and len(chat.lines) == 1, what="from the book")
        assert chat.shown[0].endswith("Carol: are you free?")  # the name the book kept
        assert "unread" not in app.main.status.text
        await until(pilot, lambda: book.messages.unread_total() == 0, what="read in the book")
        # While it is open, what comes is shown there and is read at once.
        phone.remote_message(CAROL, "ok?", display_name="Carol")
        await until(pilot, lambda: len(chat.lines) == 2, what="live line")
        await until(pilot, lambda: book.messages.count() == 2, what="stored")
        await until(pilot, lambda: book.messages.unread_total() == 0, what="read at once")
        assert "unread" not in app.main.status.text


async def test_a_message_during_a_call_is_a_notice_and_the_call_keeps_its_keys() -> None:
    phone = FakePhone()
    app = fake_app(phone)
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: "local" in app.main.status.text, what="start")
        await pilot.press(*BOB, "enter")
        phone.settle()
        call_id = phone.calls[0].call_id
        await until(pilot, lambda: app.main.calls_table.selected_call_id == call_id, what="call")
        phone.remote_message(BOB, "can you hear me?", call_id=call_id)
        line = f"message from {BOB} (in the call): can you hear me?"
        await until(pilot, lambda: line in app.main.messages.texts, what="notice")
        assert app.screen is app.main
        await pilot.press("m")  # the call's keys still work: mute
        await until(pilot, lambda: phone.call(call_id).muted, what="muted")
        # Replying from the chat goes to bob; the phone puts it in the call.
        await pilot.press("R")
        await until(pilot, lambda: isinstance(app.screen, ChatScreen), what="chat")
        chat = app.screen
        assert isinstance(chat, ChatScreen)
        assert chat.shown == [f"{_hhmm()} {BOB} (in the call): can you hear me?"]
        await pilot.press(*"yes", "enter")
        await until(pilot, lambda: len(chat.lines) == 2, what="sent")
        assert chat.shown[-1] == f"{_hhmm()} me (in the call): yes  sending…"


def _hhmm() -> str:
    return datetime.fromtimestamp(WALL).strftime("%H:%M")


async def test_contacts_show_unread_and_open_the_conversation(book: Book) -> None:
    book.contacts.add(Contact(name="Bob", uris=(BOB, "sip:1002@example.test")))
    book.messages.add(
        MessageRecord(
            at=datetime(2026, 1, 1, 9, 0, tzinfo=UTC),
            direction="in",
            peer_uri="sip:1002@example.test",
            account="local",
            content_type="image/png",
            body=b"\x89PNG" + bytes(2296),
            state="received",
        )
    )
    phone = FakePhone()
    app = fake_app(phone, book)
    async with app.run_test(size=(120, 30)) as pilot:
        await started(pilot, app)
        await until(pilot, lambda: "✉ 1 unread" in app.main.status.text, what="seeded")
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, ContactsScreen), what="contacts")
        contacts = app.screen
        assert isinstance(contacts, ContactsScreen)
        await until(pilot, lambda: contacts.loaded and contacts.rows != [], what="rows")
        assert contacts.cells(contacts.rows[0])[-1] == "✉1"
        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, ChatScreen), what="chat")
        chat = app.screen
        assert isinstance(chat, ChatScreen) and chat.party.name == "Bob"
        await until(pilot, lambda: len(chat.lines) == 1, what="the attachment")
        assert chat.shown[0].endswith("Bob: [image/png, 2.3 kB]")
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is contacts, what="back to contacts")
        await until(pilot, lambda: contacts.cells(contacts.rows[0])[-1] == "", what="read")
        assert "unread" not in app.main.status.text


async def test_r_after_a_restart_opens_the_latest_conversation_with_unread_messages(
    book: Book,
) -> None:
    for n, (peer, read) in enumerate([(CAROL, False), (BOB, True)]):
        book.messages.add(
            MessageRecord(
                at=datetime(2026, 1, 1, 9, n, tzinfo=UTC),
                direction="in",
                peer_uri=peer,
                account="local",
                content_type="text/plain",
                text=f"note {n}",
                state="received",
                read=read,
            )
        )
    phone = FakePhone()
    app = fake_app(phone, book)
    async with app.run_test(size=(120, 30)) as pilot:
        await started(pilot, app)
        await pilot.press("R")
        await until(pilot, lambda: isinstance(app.screen, ChatScreen), what="chat")
        chat = app.screen
        assert isinstance(chat, ChatScreen) and chat.party.target == CAROL  # bob's is read
        await until(pilot, lambda: book.messages.unread_total() == 0, what="read now")


async def test_the_history_opens_the_conversation_with_a_caller(book: Book) -> None:
    book.history.add(
        CallRecord(
            started_at=datetime(2026, 1, 1, 9, 0, tzinfo=UTC),
            direction="in",
            remote_uri=CAROL,
            remote_name="Carol",
            account="local",
            result="missed",
        )
    )
    phone = FakePhone()
    app = fake_app(phone, book)
    async with app.run_test(size=(120, 30)) as pilot:
        await started(pilot, app)
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, HistoryScreen), what="history")
        history = app.screen
        assert isinstance(history, HistoryScreen)
        await until(pilot, lambda: history.records != [], what="rows")
        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, ChatScreen), what="chat")
        chat = app.screen
        assert isinstance(chat, ChatScreen) and chat.party.title == f"Carol <{CAROL}>"


async def test_what_cannot_be_sent_or_read_is_said_and_nothing_breaks(book: Book) -> None:
    phone = FakePhone()
    app = fake_app(phone, book)
    async with app.run_test(size=(120, 30)) as pilot:
        await started(pilot, app)
        chat = await chat_with(pilot, app, BOB)
        phone.fail_next("send_message", "the phone is not started")
        await pilot.press(*"hi", "enter")
        await until(pilot, lambda: chat.lines != [], what="the refusal")
        assert chat.shown[-1].endswith("me: hi  failed: the phone is not started")
        assert chat.input.value == "hi"  # kept, to send again
        assert any("Cannot send the message" in n for n in notes(app))
        # A body in a charset nobody knows, and one that is not even valid in its own.
        phone.remote_message(BOB, b"caf\xc3\xa9", charset="x-klingon")
        phone.remote_message(BOB, b"caf\xe9\x1b[2J", charset="utf-8")
        await until(pilot, lambda: len(chat.lines) == 3, what="both")
        assert chat.shown[1].endswith("café  (unknown charset 'x-klingon': shown as UTF-8)")
        text, _, note = chat.shown[2].partition("  (")
        assert "\x1b" not in text and text.endswith("caf\ufffd\ufffd[2J")
        assert note == "not valid utf-8: undecodable bytes shown as \ufffd)"
        await pilot.press("escape")
        await pilot.press("M")
        await until(pilot, lambda: isinstance(app.screen, ChatPicker), what="picker")
        await pilot.press(*"sip:", "enter")  # not an address
        await until(
            pilot, lambda: any("Cannot write to 'sip:'" in n for n in notes(app)), what="refused"
        )
        assert app.screen is app.main


async def test_keys_are_in_the_footer_the_help_and_the_palette() -> None:
    phone = FakePhone()
    app = fake_app(phone)
    async with app.run_test(size=(160, 30)) as pilot:
        await started(pilot, app)
        keys = {b.binding.key for b in app.main.active_bindings.values() if b.binding.show}
        assert "M" in keys
        await pilot.press("f1")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), what="help")
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        titles = [title for title, _ in help_screen.sections]
        assert "Messages (a conversation)" in titles and "Write a message to" in titles
        main_keys = dict(help_screen.sections[0][1])
        assert "write an instant message" in main_keys["M"] and "wrote last" in main_keys["R"]
        await pilot.press("escape")
        await pilot.press("ctrl+p")
        await until(pilot, lambda: app.screen is not app.main, what="palette")
        await pilot.press(*"Reply", "enter")
        await until(
            pilot, lambda: any("No message to reply to" in n for n in notes(app)), what="reply"
        )
        chat = await chat_with(pilot, app, BOB)
        shown = {b.binding.description for b in chat.active_bindings.values() if b.binding.show}
        assert {"Back", "Older", "Newer"} <= shown
