"""The message log: every message a phone sends or takes lands in the store, the outcome of ours
follows it (even when it comes before the first write ends), and a write that fails is said in
words with nothing stored."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from phone_fake import FakePhone

from softphone.phone import events as pe
from softphone.phone.book import Book, MessageRecord
from softphone.phone.message_log import MessageLog

WHEN = datetime(2024, 6, 1, 9, 30, tzinfo=UTC)


@pytest.fixture
def book(tmp_path: Path) -> Iterator[Book]:
    opened = Book.open(tmp_path / "softphone.db")
    yield opened
    opened.close()


async def test_sent_and_received_messages_and_their_outcomes_are_stored(book: Book) -> None:
    errors: list[str] = []
    stored: list[MessageRecord] = []
    # A second apart: the rows are written by concurrent threads, so their ids may come in any
    # order; the conversation is in the order of the times the log gave them.
    times = iter(WHEN + timedelta(seconds=i) for i in range(100))
    log = MessageLog(
        book.messages, on_error=errors.append, on_stored=stored.append, wall=lambda: next(times)
    )
    phone = FakePhone(accounts={"alice": "sip:alice@lab.test"})
    await phone.start()
    phone.drain()
    ok = await phone.send_message("bob", "hello bob")
    phone.fail_next_message(404)
    await phone.send_message("nobody", "anyone?")
    phone.settle()  # both outcomes are queued before any write has run
    phone.remote_message("sip:bob@lab.test", "hi alice", display_name="Bob")
    phone.remote_message("sip:bob@lab.test", b"\x89PNG", content_type="image/png", charset=None)
    for event in phone.drain():
        log.observe(event)
    assert await log.settle()
    assert errors == [] and log.idle
    bob = book.messages.conversation(["sip:bob@lab.test"])
    assert [(m.direction, m.text, m.state, m.read) for m in bob] == [
        ("out", "hello bob", "delivered", True),
        ("in", "hi alice", "received", False),
        ("in", None, "received", False),
    ]
    assert bob[0].message_id == ok and bob[1].peer_name == "Bob" and bob[2].body == b"\x89PNG"
    # Stamped when observed: "anyone?" (to nobody) took the second tick.
    assert [m.at for m in bob] == [WHEN + timedelta(seconds=s) for s in (0, 2, 3)]
    (nobody,) = book.messages.conversation(["sip:nobody@lab.test"])
    assert (nobody.state, nobody.status, nobody.reason) == ("failed", 404, "Not Found")
    assert len(stored) == 6  # four rows written, two outcomes recorded


async def test_a_message_the_store_refuses_is_reported_and_not_stored(book: Book) -> None:
    errors: list[str] = []
    log = MessageLog(book.messages, on_error=errors.append)
    log.observe(
        pe.MessageReceived(
            account="alice",
            remote="%%% not an address",
            display_name=None,
            local="sip:alice@lab.test",
            content_type="text/plain",
            charset=None,
            text="hi",
            note=None,
            body=b"hi",
            call_id=None,
        )
    )
    log.observe(
        pe.MessageStatusChanged(
            message_id="m1",
            state="failed",
            account="alice",
            remote="x",
            content_type="text/plain",
            text="t",
        )
    )
    assert await log.settle()
    assert len(errors) == 1 and errors[0].startswith("the message received could not be stored")
    assert book.messages.count() == 0
