"""CallLog: the history row of a call is written when it starts and completed when it ends,
in that order however the writes are scheduled, and a failed write is said in words."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import pytest
from phone_fake import FakeCall

from softphone.phone import events as pe
from softphone.phone.api import CallView
from softphone.phone.book import Book
from softphone.phone.call_log import HISTORY_RESULT, CallLog, ended_record, started_record
from softphone.phone.outcome import OUTCOMES, call_outcome

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


@pytest.mark.parametrize(
    ("direction", "status", "result"),
    [
        ("outgoing", 486, "busy"),  # the callee was busy
        ("incoming", 486, "rejected"),  # we refused the call (our reject sends 486)
        ("incoming", 603, "rejected"),
        ("outgoing", 603, "rejected"),  # the callee declined
        ("incoming", 487, "missed"),  # the caller gave up
        ("outgoing", 487, "cancelled"),  # we gave up
        ("outgoing", 404, "failed"),
    ],
)
def test_the_history_says_how_the_call_ended_as_the_phone_does(
    direction: Literal["outgoing", "incoming"], status: int, result: str
) -> None:
    started = started_record(
        replace(incoming(), direction=direction), now_mono=100.0, now_wall=WALL
    )
    end = pe.CallEnded(
        call_id="c1",
        status=status,
        reason="",
        outcome=call_outcome(direction=direction, answered=False, status=status),
        duration_s=0.0,
        answered=False,
    )
    assert ended_record(started, end).result == result


def test_every_outcome_has_a_history_result() -> None:
    assert set(HISTORY_RESULT) == OUTCOMES
