"""Call history and contacts for front ends.

The TUI may import only from ``softphone.phone`` (import-linter contract), so the store's records
and errors are re-exported here, beside :class:`Book` (the open database with its two tables)
and :func:`record_for`, which turns a finished call into the history row people see.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from softphone.phone import events as pe
from softphone.phone.api import CallView
from softphone.store import (
    CallRecord,
    CallResult,
    Contact,
    ContactError,
    Contacts,
    Database,
    Direction,
    History,
    Recovered,
    StoreError,
    VCardProblem,
    call_result,
    default_db_path,
    normalise_uri,
    read_vcard,
)

__all__ = [
    "Book",
    "CallRecord",
    "CallResult",
    "Contact",
    "ContactError",
    "Contacts",
    "History",
    "Recovered",
    "StoreError",
    "VCardProblem",
    "default_db_path",
    "normalise_uri",
    "read_vcard",
    "record_for",
]


@dataclass(slots=True)
class Book:
    """The history/contacts database, open. ``recovered`` says when a corrupt file was moved
    aside at opening (tell the user once)."""

    db: Database
    history: History
    contacts: Contacts

    @property
    def recovered(self) -> Recovered | None:
        return self.db.recovered

    @property
    def path(self) -> Path:
        return self.db.path

    @classmethod
    def open(cls, path: Path | None = None) -> Book:
        """Open (creating or migrating) the database; raises StoreError when it cannot."""
        db = Database.open(path)
        return cls(db=db, history=History(db), contacts=Contacts(db))

    @classmethod
    async def open_async(cls, path: Path | None = None) -> Book:
        return await asyncio.to_thread(cls.open, path)

    def close(self) -> None:
        self.db.close()

    async def close_async(self) -> None:
        await self.db.close_async()


def record_for(
    call: CallView, ended: pe.CallEnded, *, now_mono: float, now_wall: datetime | None = None
) -> CallRecord:
    """The history record of a call that just ended. ``now_mono`` is the clock ``call.started_at``
    was taken on (the event loop's), so the start time is placed on the wall clock exactly."""
    wall = now_wall if now_wall is not None else datetime.now(UTC)
    started = wall - timedelta(seconds=max(0.0, now_mono - call.started_at))
    direction: Direction = "in" if call.direction == "incoming" else "out"
    return CallRecord(
        started_at=started.astimezone(UTC),
        direction=direction,
        remote_uri=call.remote.strip("<>"),
        remote_name=call.display_name,
        account=call.account,
        duration_s=round(max(0.0, ended.duration_s), 3),
        result=call_result(direction=direction, answered=ended.answered, status=ended.status),
        reason=ended.reason,
        recording_path=ended.recording,
    )
