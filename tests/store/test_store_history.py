"""Call history: round trips, newest-first order, search, pruning, concurrent async writers."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from softphone.store.db import Database, StoreError
from softphone.store.history import INTERRUPTED_REASON, CallRecord, History

T0 = datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    with Database.open(tmp_path / "softphone.db") as database:
        yield database


def call(n: int = 0, **changes: object) -> CallRecord:
    base = CallRecord(
        started_at=T0 + timedelta(minutes=n),
        direction="out",
        remote_uri=f"sip:user{n}@example.com",
        remote_name=None,
        account="work",
        duration_s=1.5 * n,
        result="answered",
        reason="BYE",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_round_trip_keeps_every_field(db: Database) -> None:
    history = History(db)
    record = call(
        3,
        direction="in",
        remote_name="Zoë",
        result="missed",
        reason="487 Request Terminated",
        recording_path="/rec/c.wav",
        started_at=datetime(2024, 3, 1, 14, 0, tzinfo=timezone(timedelta(hours=2))),
    )
    stored = history.add(record)
    assert stored.id is not None
    assert stored.started_at.tzinfo == UTC and stored.started_at == datetime(
        2024, 3, 1, 12, 0, tzinfo=UTC
    )
    assert history.get(stored.id) == stored
    assert history.list() == [stored]


def test_list_is_newest_first_with_paging(db: Database) -> None:
    history = History(db)
    for n in (2, 0, 4, 1, 3):
        history.add(call(n))
    same_time = history.add(call(4, remote_uri="sip:later-insert@example.com"))
    uris = [r.remote_uri for r in history.list()]
    assert uris[0] == same_time.remote_uri  # ties broken by insertion order, newest first
    assert uris[1:] == [f"sip:user{n}@example.com" for n in (4, 3, 2, 1, 0)]
    assert [r.remote_uri for r in history.list(limit=2, offset=2)] == uris[2:4]
    assert history.count() == 6


def test_search_matches_uri_name_and_result_ignoring_case(db: Database) -> None:
    history = History(db)
    history.add(call(1, remote_uri="sip:alice@example.com", remote_name="Alice"))
    history.add(call(2, remote_uri="sip:bob@example.com", remote_name="ÉMILE Zola", result="busy"))
    history.add(call(3, remote_uri="sip:carol@other.org", result="missed"))
    assert [r.remote_uri for r in history.search("ALICE")] == ["sip:alice@example.com"]
    assert [r.remote_name for r in history.search("émile")] == ["ÉMILE Zola"]  # not just ASCII
    assert [r.result for r in history.search("Missed")] == ["missed"]
    assert [r.remote_uri for r in history.search("example")] == [
        "sip:bob@example.com",
        "sip:alice@example.com",
    ]
    assert history.search("nobody") == []


def test_search_treats_like_wildcards_literally(db: Database) -> None:
    history = History(db)
    history.add(call(1, remote_uri="sip:100%25@example.com", remote_name="100% sure"))
    history.add(call(2, remote_uri="sip:a_b@example.com"))
    history.add(call(3, remote_uri="sip:axb@example.com", remote_name="back\\slash"))
    assert [r.remote_name for r in history.search("%")] == ["100% sure"]
    assert [r.remote_uri for r in history.search("a_b")] == ["sip:a_b@example.com"]
    assert [r.remote_name for r in history.search("\\")] == ["back\\slash"]


def test_delete_clear_and_count(db: Database) -> None:
    history = History(db)
    first, second = history.add(call(1)), history.add(call(2))
    assert first.id is not None and second.id is not None
    assert history.delete(first.id) is True
    assert history.delete(first.id) is False
    assert history.list() == [second]
    assert history.clear() == 1
    assert history.count() == 0


def test_history_is_bounded_keeping_the_newest(db: Database) -> None:
    history = History(db, max_records=5)
    for n in range(8):
        history.add(call(n))
    history.add(
        call(-1, remote_uri="sip:ancient@example.com", duration_s=0.0)
    )  # older than all: pruned at once
    assert history.count() == 5
    assert [r.remote_uri for r in history.list()] == [
        f"sip:user{n}@example.com" for n in (7, 6, 5, 4, 3)
    ]


def test_default_bound_is_ten_thousand(db: Database) -> None:
    history = History(db)
    assert history.max_records == 10_000
    with db.transaction() as conn:  # bulk-load 10 000 rows directly, then add through the API
        conn.executemany(
            "INSERT INTO calls (started_at, direction, remote_uri, account, result) VALUES (?, 'in', ?, 'a', 'missed')",
            [
                ((T0 + timedelta(seconds=i)).isoformat(timespec="microseconds"), f"sip:{i}@h")
                for i in range(10_000)
            ],
        )
    history.add(call(0, started_at=T0 + timedelta(days=1)))
    assert history.count() == 10_000
    assert history.search("sip:0@h") == []  # the oldest went
    assert history.list(limit=1)[0].started_at == T0 + timedelta(days=1)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"started_at": datetime(2024, 1, 1)}, "aware datetime"),
        ({"direction": "sideways"}, "direction must be"),
        ({"result": "exploded"}, "unknown call result"),
        ({"remote_uri": ""}, "is not a URI"),
        # header text is not a URI: the display name goes apart, in remote_name
        ({"remote_uri": "bob <sip:bob@lab.test>"}, "is not a URI"),
        ({"remote_uri": "http://example.com/"}, "not a SIP or tel URI"),
        ({"remote_uri": None, "remote_name": None}, "remote URI or at least a name"),
        ({"duration_s": -1.0}, "negative"),
    ],
)
def test_bad_records_are_refused_with_a_reason(
    db: Database, change: dict[str, object], message: str
) -> None:
    with pytest.raises(StoreError, match=message):
        History(db).add(call(1, **change))
    assert History(db).count() == 0


async def test_two_tasks_writing_concurrently_lose_nothing(db: Database) -> None:
    history = History(db)

    async def writer(prefix: str) -> list[int]:
        ids = []
        for n in range(40):
            stored = await history.add_async(call(n, remote_uri=f"sip:{prefix}{n}@example.com"))
            assert stored.id is not None
            ids.append(stored.id)
        return ids

    async with asyncio.timeout(30):
        a, b = await asyncio.gather(writer("a"), writer("b"))
    assert len(set(a) | set(b)) == 80
    assert await history.count_async() == 80
    assert len(await history.search_async("sip:a")) == 40
    assert len(await history.list_async(limit=1000)) == 80


async def test_async_wrappers_reach_the_same_rows(db: Database) -> None:
    history = History(db)
    stored = await history.add_async(call(1))
    assert stored.id is not None
    assert await history.get_async(stored.id) == stored
    assert await history.delete_async(stored.id) is True
    await history.add_async(call(2))
    assert await history.clear_async() == 1


async def test_two_connections_to_one_file_write_concurrently(tmp_path: Path) -> None:
    """Two softphones (two connections) on one file: WAL + busy_timeout serialise the writers."""
    path = tmp_path / "shared.db"
    with Database.open(path) as first, Database.open(path) as second:
        one, two = History(first), History(second)

        async def writer(history: History, prefix: str) -> None:
            for n in range(30):
                await history.add_async(call(n, remote_uri=f"sip:{prefix}{n}@example.com"))

        async with asyncio.timeout(30):
            await asyncio.gather(writer(one, "a"), writer(two, "b"))
        assert one.count() == two.count() == 60


def test_a_call_is_stored_when_it_starts_and_completed_when_it_ends(db: Database) -> None:
    history = History(db)
    started = history.start(call(1, result="answered", duration_s=0.0))
    assert started.id is not None and started.result == "in_progress"
    assert history.get(started.id) == started
    done = history.finish(
        started.id, result="answered", duration_s=12.25, reason="BYE", recording_path="/r.wav"
    )
    assert done == replace(
        started, result="answered", duration_s=12.25, reason="BYE", recording_path="/r.wav"
    )
    assert history.list() == [done]
    with pytest.raises(StoreError, match="cannot finish as 'in_progress'"):
        history.finish(started.id, result="in_progress", duration_s=0.0)
    assert history.finish(started.id + 1, result="missed", duration_s=0.0) is None


def test_calls_of_a_running_process_are_not_taken_for_interrupted(tmp_path: Path) -> None:
    """Two softphones on one file: the second opening it leaves the first one's call alone."""
    path = tmp_path / "shared.db"
    with Database.open(path) as first, Database.open(path) as second:
        ongoing = History(first).start(call(1))
        assert History(second).interrupt_orphans() == 0
        assert History(second).get(ongoing.id or 0) == ongoing
        # Closing the history while the call is on: nothing can finish it any more.
        assert History(first).interrupt_own() == 1
        (row,) = History(second).list()
        assert (row.result, row.reason) == ("interrupted", INTERRUPTED_REASON)


KILLED_WRITER = """
import os, signal, sys
from datetime import UTC, datetime
from pathlib import Path
from softphone.store.db import Database
from softphone.store.history import CallRecord, History

db = Database.open(Path(sys.argv[1]))
History(db).start(CallRecord(started_at=datetime.now(UTC), direction="in",
                             remote_uri="sip:bob@lab.test", remote_name="Bob", account="alice",
                             result="in_progress"))
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_call_whose_process_was_killed_is_marked_interrupted_at_the_next_start(
    tmp_path: Path,
) -> None:
    path = tmp_path / "softphone.db"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_WRITER, str(path)], env=env, timeout=30, check=False
    )
    assert killed.returncode == -signal.SIGKILL
    with Database.open(path) as db:
        history = History(db)
        (row,) = history.list()
        assert row.result == "in_progress"  # not lost: written before the kill
        assert history.interrupt_orphans() == 1
        (row,) = history.list()
        assert (row.result, row.remote_uri, row.remote_name) == (
            "interrupted",
            "sip:bob@lab.test",
            "Bob",
        )
        assert history.interrupt_orphans() == 0
