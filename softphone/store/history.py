"""Call history: one :class:`CallRecord` per call, newest first, bounded in size.

A call is written when it starts (:meth:`History.start`: result ``in_progress``, owned by this
process's mark, see liveness.py) and completed when it ends (:meth:`History.finish`), so a call
survives the program dying in the middle of it: the next start finds the row of a dead owner and
marks it ``interrupted`` (:meth:`History.interrupt_orphans`). A finished call can also be added
in one go (:meth:`History.add`).

The remote party is kept as a URI and a display name apart (``remote_uri``, ``remote_name``).
``remote_uri`` is None only for rows kept from older versions whose address could not be read;
their text is the name, and nothing offers to call them back.

Times are stored as UTC ISO 8601 text with a fixed width, so text order is time order. The
table keeps the newest :data:`MAX_RECORDS` calls; adding one more prunes the oldest in the same
transaction. The result of a finished call is the phone's word for how it ended, in the fewer
words of the history (phone/call_log.py).
"""

from __future__ import annotations

import asyncio
import builtins
import sqlite3
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from typing import Final, Literal, get_args

from softphone.sip.errors import ParseError
from softphone.sip.uri import SipUri, TelUri, parse_uri
from softphone.store.db import Database, StoreError, like_pattern

Direction = Literal["in", "out"]
CallResult = Literal[
    "answered",
    "missed",
    "rejected",
    "failed",
    "busy",
    "cancelled",
    "forwarded",  # we sent the caller elsewhere (call forwarding)
    "voicemail",  # the answering machine took the call
    "in_progress",  # the call has not ended yet
    "interrupted",  # the program ended (was killed, crashed) before the call did
]
DIRECTIONS: Final = frozenset(get_args(Direction))
CALL_RESULTS: Final = frozenset(get_args(CallResult))
_RESULT_BY_NAME: Final[dict[str, CallResult]] = {name: name for name in get_args(CallResult)}
MAX_RECORDS: Final = 10_000

INTERRUPTED_REASON: Final = "softphone ended during the call"
_COLUMNS: Final = (
    "id, started_at, direction, remote_uri, remote_name, account, duration_s, result, reason, "
    "recording_path"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class CallRecord:
    """One call. ``id`` is None until :meth:`History.add` stores it; ``started_at`` is aware.
    ``remote_uri`` is the address to call back (None: an old row with no readable address)."""

    id: int | None = None
    started_at: datetime
    direction: Direction
    remote_uri: str | None
    remote_name: str | None = None
    account: str
    duration_s: float = 0.0
    result: CallResult
    reason: str = ""
    recording_path: str | None = None


def _to_text(when: datetime) -> str:
    if when.tzinfo is None or when.utcoffset() is None:
        raise StoreError("started_at must be an aware datetime (UTC), not a naive one")
    return when.astimezone(UTC).isoformat(timespec="microseconds")


def _validate(record: CallRecord) -> None:
    if record.direction not in DIRECTIONS:
        raise StoreError(f"direction must be 'in' or 'out', not {record.direction!r}")
    if record.result not in CALL_RESULTS:
        raise StoreError(f"unknown call result {record.result!r} (one of {sorted(CALL_RESULTS)})")
    if record.remote_uri is not None:
        try:
            uri = parse_uri(record.remote_uri)
        except ParseError as exc:
            raise StoreError(
                f"the remote party {record.remote_uri!r} is not a URI (give the display name "
                f"apart): {exc}"
            ) from exc
        if not isinstance(uri, SipUri | TelUri):
            raise StoreError(f"the remote party {record.remote_uri!r} is not a SIP or tel URI")
    elif not record.remote_name:
        raise StoreError("a call record needs the remote URI or at least a name")
    if record.duration_s < 0:
        raise StoreError(f"negative call duration {record.duration_s}")


def _from_row(row: sqlite3.Row | tuple[object, ...]) -> CallRecord:
    (id_, started, direction, uri, name, account, duration, result, reason, recording) = row
    return CallRecord(
        id=int(str(id_)),
        started_at=datetime.fromisoformat(str(started)),
        direction="in" if direction == "in" else "out",
        remote_uri=None if uri is None else str(uri),
        remote_name=None if name is None else str(name),
        account=str(account),
        duration_s=float(str(duration)),
        result=_RESULT_BY_NAME.get(str(result), "failed"),
        reason=str(reason),
        recording_path=None if recording is None else str(recording),
    )


class History:
    """The call history in ``db``. Sync methods are thread-safe; ``*_async`` run in a thread."""

    def __init__(self, db: Database, *, max_records: int = MAX_RECORDS) -> None:
        if max_records < 1:
            raise ValueError("max_records must be at least 1")
        self._db = db
        self.max_records = max_records

    def add(self, record: CallRecord) -> CallRecord:
        """Store ``record`` (its id is ignored) and prune beyond :attr:`max_records`."""
        return self._insert(record, owner=None)

    def start(self, record: CallRecord) -> CallRecord:
        """Store a call that has just begun: its result is ``in_progress`` (whatever ``record``
        says) until :meth:`finish`; this process owns it meanwhile."""
        return self._insert(replace(record, result="in_progress"), owner=self._db.live.token)

    def finish(
        self,
        record_id: int,
        *,
        result: CallResult,
        duration_s: float,
        reason: str = "",
        recording_path: str | None = None,
    ) -> CallRecord | None:
        """Complete the call :meth:`start` stored; None when it is gone (deleted meanwhile)."""
        if result not in CALL_RESULTS or result == "in_progress":
            raise StoreError(f"a call cannot finish as {result!r}")
        if duration_s < 0:
            raise StoreError(f"negative call duration {duration_s}")
        with self._db.transaction() as conn:
            conn.execute(
                "UPDATE calls SET result = ?, duration_s = ?, reason = ?, recording_path = ?, "
                "owner = NULL WHERE id = ?",
                (result, float(duration_s), reason, recording_path, record_id),
            )
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM calls WHERE id = ?", (record_id,)
            ).fetchone()
        return None if row is None else _from_row(row)

    def interrupt_orphans(self) -> int:
        """Mark ``interrupted`` every call still in progress whose process has ended (killed,
        crashed); returns how many. Calls of processes still running are left alone."""
        with self._db.read() as conn:
            owners = [
                row[0]
                for row in conn.execute(
                    "SELECT DISTINCT owner FROM calls WHERE result = 'in_progress'"
                )
            ]
        dead = [o for o in owners if o is None or not self._db.live.owner_alive(str(o))]
        return self._interrupt(dead)

    def interrupt_own(self) -> int:
        """Mark ``interrupted`` this process's calls still in progress (it is closing the
        history while they are on, so nothing will finish them); returns how many."""
        return self._interrupt([self._db.live.token])

    def _interrupt(self, owners: builtins.list[str | None]) -> int:
        if not owners:
            return 0
        changed = 0
        with self._db.transaction() as conn:
            for owner in owners:
                changed += conn.execute(
                    "UPDATE calls SET result = 'interrupted', reason = ?, owner = NULL "
                    "WHERE result = 'in_progress' AND owner IS ?",
                    (INTERRUPTED_REASON, owner),
                ).rowcount
        return changed

    def _insert(self, record: CallRecord, *, owner: str | None) -> CallRecord:
        _validate(record)
        with self._db.transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO calls (started_at, direction, remote_uri, remote_name, account, "
                "duration_s, result, reason, recording_path, owner) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    _to_text(record.started_at),
                    record.direction,
                    record.remote_uri,
                    record.remote_name,
                    record.account,
                    float(record.duration_s),
                    record.result,
                    record.reason,
                    record.recording_path,
                    owner,
                ),
            )
            new_id = cursor.lastrowid
            conn.execute(
                "DELETE FROM calls WHERE id IN (SELECT id FROM calls "
                "ORDER BY started_at DESC, id DESC LIMIT -1 OFFSET ?)",
                (self.max_records,),
            )
        assert new_id is not None
        return replace(record, id=new_id, started_at=record.started_at.astimezone(UTC))

    def list(self, limit: int = 100, offset: int = 0) -> builtins.list[CallRecord]:
        """Newest first."""
        with self._db.read() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM calls ORDER BY started_at DESC, id DESC LIMIT ? OFFSET ?",
                (limit, offset),
            ).fetchall()
        return [_from_row(r) for r in rows]

    def get(self, record_id: int) -> CallRecord | None:
        with self._db.read() as conn:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM calls WHERE id = ?", (record_id,)
            ).fetchone()
        return None if row is None else _from_row(row)

    def search(self, text: str, limit: int = 100) -> builtins.list[CallRecord]:
        """Calls whose remote URI, remote name or result contains ``text`` (any case), newest
        first. ``%`` and ``_`` match themselves."""
        pattern = like_pattern(text.casefold())
        with self._db.read() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM calls WHERE casefold(remote_uri) LIKE ?1 ESCAPE '\\' "
                "OR casefold(remote_name) LIKE ?1 ESCAPE '\\' OR result LIKE ?1 ESCAPE '\\' "
                "ORDER BY started_at DESC, id DESC LIMIT ?2",
                (pattern, limit),
            ).fetchall()
        return [_from_row(r) for r in rows]

    def delete(self, record_id: int) -> bool:
        """Remove one call; False when there was none with that id."""
        with self._db.transaction() as conn:
            return conn.execute("DELETE FROM calls WHERE id = ?", (record_id,)).rowcount > 0

    def clear(self) -> int:
        """Remove every call; returns how many there were."""
        with self._db.transaction() as conn:
            return conn.execute("DELETE FROM calls").rowcount

    def count(self) -> int:
        with self._db.read() as conn:
            return int(conn.execute("SELECT count(*) FROM calls").fetchone()[0])

    # -- async wrappers (asyncio.to_thread) ---------------------------------------------------

    async def add_async(self, record: CallRecord) -> CallRecord:
        return await asyncio.to_thread(self.add, record)

    async def start_async(self, record: CallRecord) -> CallRecord:
        return await asyncio.to_thread(self.start, record)

    async def finish_async(
        self,
        record_id: int,
        *,
        result: CallResult,
        duration_s: float,
        reason: str = "",
        recording_path: str | None = None,
    ) -> CallRecord | None:
        return await asyncio.to_thread(
            partial(
                self.finish,
                record_id,
                result=result,
                duration_s=duration_s,
                reason=reason,
                recording_path=recording_path,
            )
        )

    async def list_async(self, limit: int = 100, offset: int = 0) -> builtins.list[CallRecord]:
        return await asyncio.to_thread(self.list, limit, offset)

    async def get_async(self, record_id: int) -> CallRecord | None:
        return await asyncio.to_thread(self.get, record_id)

    async def search_async(self, text: str, limit: int = 100) -> builtins.list[CallRecord]:
        return await asyncio.to_thread(self.search, text, limit)

    async def delete_async(self, record_id: int) -> bool:
        return await asyncio.to_thread(self.delete, record_id)

    async def clear_async(self) -> int:
        return await asyncio.to_thread(self.clear)

    async def count_async(self) -> int:
        return await asyncio.to_thread(self.count)
