"""CallLog: the history row of a call is written when it starts and completed when it ends,
in that order however the writes are scheduled, and a failed write is said in words."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from phone_fake import FakeCall

from softphone.phone import events as pe
from softphone.phone.api import CallView
from softphone.phone.book import Book
from softphone.phone.call_log import CallLog

WALL = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def incoming(call_id: str = "c1") -> FakeCall:
    return FakeCall(
        call_id=call_id,
        account="alice",
        direction="incoming",
        remote="sip:bob@lab.test",
        display_name="Bob",
        state="ringing",
        started_at=90.0,
    )


def ended(call_id: str = "c1", *, answered: bool = True) -> pe.CallEnded:
    return pe.CallEnded(
        call_id=call_id,
        status=200 if answered else 487,
        reason="remote hung up" if answered else "caller cancelled",
        outcome="answered" if answered else "missed",
        duration_s=12.5 if answered else 0.0,
        answered=answered,
    )


async def test_an_end_right_after_the_start_completes_the_row(tmp_path: Path) -> None:
    book = Book.open(tmp_path / "t.db")
    errors: list[str] = []
    log = CallLog(book.history, mono=lambda: 100.0, wall=lambda: WALL, on_error=errors.append)
    call = incoming()

    def call_of(call_id: str) -> CallView:
        return call

    # Both before either write has run: the end waits for the start's row.
    log.observe(
        pe.IncomingCall(
            call_id="c1", account="alice", remote=call.remote, display_name="Bob", waiting=False
        ),
        call_of,
    )
    log.observe(ended(), call_of)
    assert await log.settle(5.0)
    (row,) = book.history.list()
    assert (row.direction, row.remote_uri, row.remote_name, row.result) == (
        "in",
        "sip:bob@lab.test",
        "Bob",
        "answered",
    )
    assert row.duration_s == 12.5
    assert row.started_at == datetime(2026, 5, 1, 11, 59, 50, tzinfo=UTC)  # 10 s before "now"
    assert errors == []
    book.close()


async def test_a_write_that_fails_is_reported_and_the_call_goes_on(tmp_path: Path) -> None:
    book = Book.open(tmp_path / "t.db")
    book.db.close()  # the history is gone from under us
    errors: list[str] = []
    log = CallLog(book.history, mono=lambda: 100.0, on_error=errors.append)
    call = incoming()
    log.observe(
        pe.IncomingCall(
            call_id="c1", account="alice", remote=call.remote, display_name=None, waiting=False
        ),
        lambda _: call,
    )
    log.observe(ended(answered=False), lambda _: call)
    assert await log.settle(5.0)
    assert errors == ["the call could not be written to the history: the database is closed"]
