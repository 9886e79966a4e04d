"""Voicemail left on the answering machine (phone/answering_machine.py): who called, when, for
how long, the WAV file, and whether it was heard.

A message is stored when its recording starts (:meth:`Voicemails.start`, with this process as
its owner, as calls in progress are in history.py) and completed with its length when the
recording ends (:meth:`Voicemails.finish`). Should the process die in between, the WAV file is
still good up to its last write (media/wav.py keeps its header valid after every write), and the
next process to open the database completes the row from that header
(:meth:`Voicemails.complete_orphans`). The store never deletes a file: :meth:`Voicemails.delete`
returns the record, whose file the caller removes.
"""

from __future__ import annotations

import builtins
import logging
import wave
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from softphone.store.db import Database, StoreError

__all__ = ["VoicemailRecord", "Voicemails", "wav_seconds"]

logger = logging.getLogger(__name__)

_COLUMNS = "id, received_at, account, caller_uri, caller_name, duration_s, path, heard, owner"


@dataclass(frozen=True, slots=True, kw_only=True)
class VoicemailRecord:
    """One message. ``id`` is None until stored; ``received_at`` is aware (UTC);
    ``recording``: its recording is still going on (in this or another live process)."""

    id: int | None = None
    received_at: datetime
    account: str
    caller_uri: str
    caller_name: str | None = None
    duration_s: float = 0.0
    path: str
    heard: bool = False
    recording: bool = False


def wav_seconds(path: str | Path) -> float:
    """How long the WAV at ``path`` plays (0 when it is missing or unreadable)."""
    try:
        with wave.open(str(path), "rb") as wav:
            rate = wav.getframerate()
            return round(wav.getnframes() / rate, 3) if rate else 0.0
    except (OSError, EOFError, wave.Error):
        return 0.0


def _from_row(row: tuple[object, ...]) -> VoicemailRecord:
    id_, at, account, uri, name, duration, path, heard, owner = row
    return VoicemailRecord(
        id=int(str(id_)),
        received_at=datetime.fromisoformat(str(at)),
        account=str(account),
        caller_uri=str(uri),
        caller_name=None if name is None else str(name),
        duration_s=float(str(duration)),
        path=str(path),
        heard=bool(heard),
        recording=owner is not None,
    )


class Voicemails:
    """The voicemail table of ``db``. Sync methods are thread-safe; ``*_async`` run in a thread."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def start(self, record: VoicemailRecord) -> VoicemailRecord:
        """Store a message whose recording begins now (owned by this process)."""
        at = record.received_at
        if at.tzinfo is None or at.utcoffset() is None:
            raise StoreError("received_at must be an aware datetime (UTC), not a naive one")
        if not record.caller_uri or not record.path:
            raise StoreError("a voicemail needs the caller's address and its file")
        with self._db.transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO voicemails (received_at, account, caller_uri, caller_name, "
                "duration_s, path, heard, owner) VALUES (?, ?, ?, ?, ?, ?, 0, ?)",
                (
                    at.astimezone(UTC).isoformat(timespec="microseconds"),
                    record.account,
                    record.caller_uri,
                    record.caller_name,
                    float(record.duration_s),
                    record.path,
                    self._db.live.token,
                ),
            )
        assert cursor.lastrowid is not None
        return replace(record, id=cursor.lastrowid, recording=True, received_at=at.astimezone(UTC))

    def finish(self, record_id: int, *, duration_s: float) -> VoicemailRecord | None:
        """The recording ended after ``duration_s``; None when the row is gone."""
        if duration_s < 0:
            raise StoreError(f"negative voicemail duration {duration_s}")
        with self._db.transaction() as conn:
            conn.execute(
                "UPDATE voicemails SET duration_s = ?, owner = NULL WHERE id = ?",
                (round(duration_s, 3), record_id),
            )
        return self.get(record_id)

    def complete_orphans(self) -> int:
        """Complete the messages whose recording process has died (killed, crashed), each with
        the length its WAV file has; returns how many."""
        with self._db.read() as conn:
            rows = conn.execute(
                "SELECT id, path, owner FROM voicemails WHERE owner IS NOT NULL"
            ).fetchall()
        dead = [(i, p) for i, p, o in rows if not self._db.live.owner_alive(str(o))]
        for record_id, path in dead:
            self.finish(int(record_id), duration_s=wav_seconds(str(path)))
        return len(dead)

    def list(self, limit: int = 200) -> builtins.list[VoicemailRecord]:
        """Newest first."""
        with self._db.read() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM voicemails ORDER BY received_at DESC, id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [_from_row(r) for r in rows]

    def get(self, record_id: int) -> VoicemailRecord | None:
        with self._db.read() as conn:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM voicemails WHERE id = ?", (record_id,)
            ).fetchone()
        return None if row is None else _from_row(row)

    def mark_heard(self, record_id: int, heard: bool = True) -> bool:
        with self._db.transaction() as conn:
            changed = conn.execute(
                "UPDATE voicemails SET heard = ? WHERE id = ?", (int(heard), record_id)
            ).rowcount
        return changed > 0

    def delete(self, record_id: int) -> VoicemailRecord | None:
        """Remove the row; returns it (its file is for the caller to remove), None if gone."""
        record = self.get(record_id)
        if record is not None:
            with self._db.transaction() as conn:
                conn.execute("DELETE FROM voicemails WHERE id = ?", (record_id,))
        return record

    def unheard(self) -> dict[str, int]:
        """Messages not heard yet, by account."""
        with self._db.read() as conn:
            rows = conn.execute(
                "SELECT account, count(*) FROM voicemails WHERE heard = 0 GROUP BY account"
            ).fetchall()
        return {str(a): int(n) for a, n in rows}

    async def start_async(self, record: VoicemailRecord) -> VoicemailRecord:
        import asyncio

        return await asyncio.to_thread(self.start, record)

    async def finish_async(self, record_id: int, *, duration_s: float) -> VoicemailRecord | None:
        import asyncio

        return await asyncio.to_thread(partial(self.finish, record_id, duration_s=duration_s))

    async def list_async(self, limit: int = 200) -> builtins.list[VoicemailRecord]:
        import asyncio

        return await asyncio.to_thread(self.list, limit)
