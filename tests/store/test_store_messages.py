"""Instant messages in the store: round trips of text and bytes, one conversation per party
however its URI is written, delivery outcomes, unread counts, pruning, the migration from
version 3, and nothing half stored when a record or a write fails."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from softphone.store.db import SCHEMA_VERSION, Database, StoreError
from softphone.store.history import CallRecord, History
from softphone.store.messages import MAX_MESSAGES, MessageRecord, Messages

T0 = datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    with Database.open(tmp_path / "softphone.db") as database:
        yield database


def theirs(n: int = 0, **changes: object) -> MessageRecord:
    base = MessageRecord(
        at=T0 + timedelta(minutes=n),
        direction="in",
        peer_uri="sip:bob@lab.test",
        peer_name="Bob",
        account="alice",
        content_type="text/plain",
        text=f"message {n}",
        state="received",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def ours(n: int = 0, **changes: object) -> MessageRecord:
    base = MessageRecord(
        at=T0 + timedelta(minutes=n),
        direction="out",
        peer_uri="sip:bob@lab.test",
        account="alice",
        content_type="text/plain",
        text=f"reply {n}",
        state="sending",
        read=True,
        message_id=f"msg-{n}",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_text_and_bytes_round_trip_with_every_field(db: Database) -> None:
    messages = Messages(db)
    png = b"\x89PNG\r\n\x1a\n\x00\xff"
    stored = [
        messages.add(theirs(1, note="unknown charset 'x': shown as UTF-8", call_id="c1")),
        messages.add(theirs(2, content_type="image/png", text=None, body=png)),
        messages.add(ours(3)),
    ]
    assert [m.id for m in stored] == [1, 2, 3]
    assert messages.conversation(["sip:bob@lab.test"]) == stored
    assert stored[1].body == png and stored[1].text is None
    assert stored[0].note == "unknown charset 'x': shown as UTF-8" and stored[0].call_id == "c1"


def test_one_conversation_per_party_however_its_uri_is_written(db: Database) -> None:
    messages = Messages(db)
    messages.add(theirs(1, peer_uri="sip:bob@LAB.test"))
    messages.add(ours(2, peer_uri="bob@lab.test"))
    messages.add(theirs(3, peer_uri="sip:bob@lab.test;transport=tcp"))
    messages.add(theirs(4, peer_uri="sip:carol@lab.test"))
    messages.add(theirs(5, peer_uri="sip:1002@pbx.test"))
    bob = messages.conversation(["sips:bob@lab.test"])
    assert [m.text for m in bob] == ["message 1", "reply 2", "message 3"]  # oldest first
    assert bob[1].peer_uri == "sip:bob@lab.test"  # canonical form
    # The extension 1002 at pbx.test however written; a bare tel:1002 names no host: another.
    assert [m.text for m in messages.conversation(["tel:1002"])] == []
    assert [m.text for m in messages.conversation(["sip:1002@pbx.test;user=phone"])] == [
        "message 5"
    ]
    assert [m.text for m in messages.conversation(["sip:bob@lab.test"], limit=2)] == [
        "reply 2",
        "message 3",
    ]
    summary = messages.conversations()
    assert [(c.last.text, c.total, c.unread) for c in summary] == [
        ("message 5", 1, 1),
        ("message 4", 1, 1),
        ("message 3", 3, 2),
    ]


def test_our_message_moves_to_its_outcome_by_the_phones_id(db: Database) -> None:
    messages = Messages(db)
    messages.add(ours(1))
    messages.add(ours(2))
    done = messages.set_state("msg-2", state="failed", status=404, reason="Not Found")
    assert done is not None and (done.state, done.status, done.reason) == (
        "failed",
        404,
        "Not Found",
    )
    ok = messages.set_state("msg-1", state="delivered", status=200, reason="OK")
    assert ok is not None and ok.state == "delivered"
    assert messages.set_state("msg-nope", state="delivered", status=200, reason="OK") is None
    with pytest.raises(StoreError, match="delivered or failed"):
        messages.set_state("msg-1", state="sending", status=0, reason="")
    assert [m.state for m in messages.conversation(["sip:bob@lab.test"])] == [
        "delivered",
        "failed",
    ]


def test_unread_counts_by_party_and_reading_a_conversation(db: Database) -> None:
    messages = Messages(db)
    for n in range(3):
        messages.add(theirs(n))
    messages.add(ours(3))
    messages.add(theirs(4, peer_uri="sip:carol@lab.test"))
    assert messages.unread_counts() == {"bob@lab.test": 3, "carol@lab.test": 1}
    assert messages.unread_total() == 4
    assert Messages.keys_of(["bob@lab.test", "sip:1002@pbx"]) == (
        "bob@lab.test",
        "1002@pbx",
        "tel:1002",
    )
    assert messages.mark_read(["sip:bob@lab.test;transport=udp"]) == 3
    assert messages.mark_read(["sip:bob@lab.test"]) == 0
    assert messages.unread_counts() == {"carol@lab.test": 1}
    assert messages.delete_conversation(["sip:carol@lab.test"]) == 1
    assert messages.unread_total() == 0 and messages.count() == 4


def test_the_table_is_bounded_keeping_the_newest(db: Database) -> None:
    messages = Messages(db, max_records=3)
    for n in range(5):
        messages.add(theirs(n))
    assert [m.text for m in messages.conversation(["sip:bob@lab.test"])] == [
        "message 2",
        "message 3",
        "message 4",
    ]
    assert Messages(db).max_records == MAX_MESSAGES == 10_000


@pytest.mark.parametrize(
    ("record", "why"),
    [
        (theirs(at=datetime(2024, 1, 1)), "aware datetime"),
        (theirs(body=b"x"), "exactly one of them"),
        (theirs(text=None), "exactly one of them"),
        (theirs(peer_uri="not an address"), "not a SIP address"),
        (theirs(peer_uri=""), "not a SIP address"),
        (theirs(state="delivered"), "cannot be 'delivered'"),
        (ours(state="received"), "cannot be 'received'"),
        (theirs(content_type="plain"), "not a content type"),
        (theirs(status=-1), "negative"),
    ],
    ids=[
        "naive",
        "both",
        "neither",
        "bad peer",
        "no peer",
        "in delivered",
        "out received",
        "bad type",
        "negative status",
    ],
)
def test_a_bad_record_is_refused_with_a_reason_and_nothing_is_stored(
    db: Database, record: MessageRecord, why: str
) -> None:
    messages = Messages(db)
    with pytest.raises(StoreError, match=why):
        messages.add(record)
    assert messages.count() == 0


def test_a_write_that_fails_leaves_no_row_behind(db: Database) -> None:
    """The insert and the pruning are one transaction: when the pruning fails, the message is
    not there either (not half stored)."""
    messages = Messages(db, max_records=1)
    messages.add(theirs(1))
    with db.transaction() as conn:
        conn.execute(
            "CREATE TRIGGER full BEFORE DELETE ON messages BEGIN "
            "SELECT RAISE(ABORT, 'database or disk is full'); END"
        )
    with pytest.raises(StoreError, match="disk is full"):
        messages.add(theirs(2))
    assert [m.text for m in messages.conversation(["sip:bob@lab.test"])] == ["message 1"]
    db.close()
    with pytest.raises(StoreError, match="closed"):
        messages.add(theirs(3))


async def test_async_wrappers_reach_the_same_rows(db: Database) -> None:
    messages = Messages(db)
    stored = await messages.add_async(ours(1))
    await messages.add_async(theirs(2))
    await messages.set_state_async("msg-1", state="delivered", status=200, reason="OK")
    assert await messages.unread_counts_async() == {"bob@lab.test": 1}
    assert await messages.unread_total_async() == 1
    assert await messages.mark_read_async(["sip:bob@lab.test"]) == 1
    got = await messages.conversation_async(["sip:bob@lab.test"])
    assert [m.id for m in got] == [stored.id, 2] and got[0].state == "delivered"
    assert [c.total for c in await messages.conversations_async()] == [2]
    assert await messages.delete_conversation_async(["sip:bob@lab.test"]) == 2


def test_a_version_3_database_gains_the_messages_table_keeping_its_calls(tmp_path: Path) -> None:
    path = tmp_path / "softphone.db"
    with Database.open(path) as db:  # today's schema, then taken back to version 3
        History(db).add(
            CallRecord(
                started_at=T0,
                direction="in",
                remote_uri="sip:bob@lab.test",
                account="alice",
                result="answered",
            )
        )
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE messages")
    conn.execute("DROP TABLE voicemails")  # version 5
    conn.execute("DELETE FROM schema_version WHERE version > 3")
    conn.commit()
    conn.close()
    with Database.open(path) as db:
        assert db.schema_version == SCHEMA_VERSION
        assert History(db).count() == 1
        assert Messages(db).add(theirs(1)).id == 1
