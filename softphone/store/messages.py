"""Instant messages: one :class:`MessageRecord` per message, ours and theirs, bounded in size.

A conversation is every message with one party, however its URI was written: the other party
is kept as a URI in canonical form (``peer_uri``, uris.py ``normalise_uri``) beside its match
key (``peer_key``), the key contacts are recognised by (``sip:bob@X`` and ``sip:bob@x;
transport=tcp`` are one party; so are a number's spellings).

A text/plain message keeps its text (decoded when it came, with a ``note`` when that was not
clean); any other keeps its bytes as they came, for the UI to show as an attachment. Ours start
``sending`` and move to ``delivered`` or ``failed`` (with the SIP status and reason) by the
phone's message id; theirs are ``received`` and unread until the conversation is read.

Every write is one transaction: a record that fails validation, or a write that fails, leaves
nothing behind. Times are UTC ISO 8601 text with a fixed width, so text order is time order.
The table keeps the newest :data:`MAX_MESSAGES`; adding one more prunes the oldest in the same
transaction.
"""

from __future__ import annotations

import asyncio
import builtins
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from typing import Final, Literal, get_args

from softphone.sip.errors import ParseError
from softphone.store.db import Database, StoreError
from softphone.store.errors import ContactError
from softphone.store.uris import match_keys, normalise_uri, uri_match_key

__all__ = [
    "MAX_MESSAGES",
    "Conversation",
    "DeliveryState",
    "MessageDirection",
    "MessageRecord",
    "Messages",
]

MessageDirection = Literal["in", "out"]
DeliveryState = Literal["sending", "delivered", "failed", "received"]
MAX_MESSAGES: Final = 10_000
_STATES: Final = frozenset(get_args(DeliveryState))
_OUTCOMES: Final = frozenset({"delivered", "failed"})
_BY_NAME: Final[dict[str, DeliveryState]] = {name: name for name in get_args(DeliveryState)}
_COLUMNS: Final = (
    "id, at, direction, peer_uri, peer_name, account, content_type, text, body, note, state, "
    "status, reason, read, message_id, call_id"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageRecord:
    """One message. ``id`` is None until stored; ``at`` is aware. Exactly one of ``text``
    (text/plain) and ``body`` (any other type) is set. ``message_id`` is the phone's id of a
    message of ours; ``call_id`` the call it went in, if any."""

    id: int | None = None
    at: datetime
    direction: MessageDirection
    peer_uri: str
    peer_name: str | None = None
    account: str
    content_type: str
    text: str | None = None
    body: bytes | None = None
    note: str | None = None
    state: DeliveryState
    status: int = 0
    reason: str = ""
    read: bool = False
    message_id: str | None = None
    call_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Conversation:
    """One party's messages at a glance: the latest message, how many, how many unread."""

    peer_key: str
    last: MessageRecord
    total: int
    unread: int


def peer_keys(uri: str) -> tuple[str, ...]:
    """The keys a conversation with ``uri`` is found by, best first; StoreError when ``uri`` is
    not a SIP or tel URI."""
    try:
        return match_keys(normalise_uri(uri))
    except (ContactError, ParseError) as exc:
        raise StoreError(f"{uri!r} is not a SIP address: {exc}") from None


def _to_text(when: datetime) -> str:
    if when.tzinfo is None or when.utcoffset() is None:
        raise StoreError("a message's time must be an aware datetime (UTC), not a naive one")
    return when.astimezone(UTC).isoformat(timespec="microseconds")


def _checked(record: MessageRecord) -> tuple[str, str]:
    """(canonical peer URI, its key), or StoreError saying what is wrong with ``record``."""
    if record.direction not in ("in", "out"):
        raise StoreError(f"direction must be 'in' or 'out', not {record.direction!r}")
    if record.state not in _STATES:
        raise StoreError(f"unknown delivery state {record.state!r} (one of {sorted(_STATES)})")
    if (record.direction == "in") != (record.state == "received"):
        raise StoreError(f"a message {record.direction} cannot be {record.state!r}")
    if (record.text is None) == (record.body is None):
        raise StoreError("a message keeps either its text or its bytes, exactly one of them")
    if not record.content_type or "/" not in record.content_type:
        raise StoreError(f"{record.content_type!r} is not a content type")
    if record.status < 0:
        raise StoreError(f"negative SIP status {record.status}")
    try:
        uri = normalise_uri(record.peer_uri)
    except ContactError as exc:
        raise StoreError(f"the peer {record.peer_uri!r} is not a SIP address: {exc}") from None
    return uri, uri_match_key(uri)


def _from_row(row: sqlite3.Row | tuple[object, ...]) -> MessageRecord:
    id_, at, direction, uri, name, account, ctype, text, body, note, state = row[:11]
    status, reason, read, message_id, call_id = row[11:16]
    return MessageRecord(
        id=int(str(id_)),
        at=datetime.fromisoformat(str(at)),
        direction="in" if direction == "in" else "out",
        peer_uri=str(uri),
        peer_name=None if name is None else str(name),
        account=str(account),
        content_type=str(ctype),
        text=None if text is None else str(text),
        body=body if isinstance(body, bytes) or body is None else str(body).encode(),
        note=None if note is None else str(note),
        state=_BY_NAME.get(str(state), "failed"),
        status=int(str(status)),
        reason=str(reason),
        read=bool(read),
        message_id=None if message_id is None else str(message_id),
        call_id=None if call_id is None else str(call_id),
    )


def _in(keys: Sequence[str]) -> str:
    return f"({', '.join('?' * len(keys))})"


class Messages:
    """The messages in ``db``. Sync methods are thread-safe; ``*_async`` run in a thread."""

    def __init__(self, db: Database, *, max_records: int = MAX_MESSAGES) -> None:
        if max_records < 1:
            raise ValueError("max_records must be at least 1")
        self._db = db
        self.max_records = max_records

    def add(self, record: MessageRecord) -> MessageRecord:
        """Store ``record`` (its id is ignored; its peer URI is stored in canonical form) and
        prune beyond :attr:`max_records`; StoreError when it is not a valid message."""
        uri, key = _checked(record)
        with self._db.transaction() as conn:
            cursor = conn.execute(
                f"INSERT INTO messages ({_COLUMNS.removeprefix('id, ')}, peer_key) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    _to_text(record.at),
                    record.direction,
                    uri,
                    record.peer_name,
                    record.account,
                    record.content_type,
                    record.text,
                    record.body,
                    record.note,
                    record.state,
                    int(record.status),
                    record.reason,
                    int(record.read),
                    record.message_id,
                    record.call_id,
                    key,
                ),
            )
            new_id = cursor.lastrowid
            conn.execute(
                "DELETE FROM messages WHERE id IN (SELECT id FROM messages "
                "ORDER BY at DESC, id DESC LIMIT -1 OFFSET ?)",
                (self.max_records,),
            )
        assert new_id is not None
        return replace(record, id=new_id, peer_uri=uri, at=record.at.astimezone(UTC))

    def set_state(
        self, message_id: str, *, state: DeliveryState, status: int, reason: str
    ) -> MessageRecord | None:
        """Record the outcome of our message ``message_id``; None when no such message is
        kept (never stored, or pruned)."""
        if state not in _OUTCOMES:
            raise StoreError(f"a message of ours ends delivered or failed, not {state!r}")
        with self._db.transaction() as conn:
            conn.execute(
                "UPDATE messages SET state = ?, status = ?, reason = ? "
                "WHERE message_id = ? AND direction = 'out'",
                (state, int(status), reason, message_id),
            )
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM messages WHERE message_id = ? AND direction = 'out' "
                "ORDER BY id DESC LIMIT 1",
                (message_id,),
            ).fetchone()
        return None if row is None else _from_row(row)

    def conversation(self, uris: Iterable[str], limit: int = 200) -> builtins.list[MessageRecord]:
        """The last ``limit`` messages with the party of ``uris`` (a contact's URIs, or one),
        oldest first."""
        keys = self.keys_of(uris)
        if not keys:
            return []
        with self._db.read() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM messages WHERE peer_key IN {_in(keys)} "
                "ORDER BY at DESC, id DESC LIMIT ?",
                (*keys, limit),
            ).fetchall()
        return [_from_row(r) for r in reversed(rows)]

    def conversations(self, limit: int = 100) -> builtins.list[Conversation]:
        """One line per party, the latest conversation first."""
        with self._db.read() as conn:
            rows = conn.execute(
                f"SELECT {', '.join('m.' + c for c in _COLUMNS.split(', '))}, "
                "g.peer_key, g.total, g.unread FROM messages AS m JOIN (SELECT peer_key, "
                "max(id) AS last_id, count(*) AS total, sum(read = 0) AS unread FROM messages "
                "GROUP BY peer_key) AS g ON m.id = g.last_id ORDER BY m.at DESC, m.id DESC "
                "LIMIT ?",
                (limit,),
            ).fetchall()
        return [
            Conversation(
                peer_key=str(row[16]), last=_from_row(row), total=int(row[17]), unread=int(row[18])
            )
            for row in rows
        ]

    def unread_counts(self) -> dict[str, int]:
        """Unread messages by party (its match key: :func:`peer_keys`'s first)."""
        with self._db.read() as conn:
            rows = conn.execute(
                "SELECT peer_key, count(*) FROM messages WHERE read = 0 GROUP BY peer_key"
            ).fetchall()
        return {str(key): int(count) for key, count in rows}

    def unread_total(self) -> int:
        with self._db.read() as conn:
            return int(conn.execute("SELECT count(*) FROM messages WHERE read = 0").fetchone()[0])

    def mark_read(self, uris: Iterable[str]) -> int:
        """Every message from the party of ``uris`` is read now; returns how many were not."""
        keys = self.keys_of(uris)
        if not keys:
            return 0
        with self._db.transaction() as conn:
            return conn.execute(
                f"UPDATE messages SET read = 1 WHERE read = 0 AND peer_key IN {_in(keys)}", keys
            ).rowcount

    def delete_conversation(self, uris: Iterable[str]) -> int:
        keys = self.keys_of(uris)
        if not keys:
            return 0
        with self._db.transaction() as conn:
            return conn.execute(
                f"DELETE FROM messages WHERE peer_key IN {_in(keys)}", keys
            ).rowcount

    def count(self) -> int:
        with self._db.read() as conn:
            return int(conn.execute("SELECT count(*) FROM messages").fetchone()[0])

    @staticmethod
    def keys_of(uris: Iterable[str]) -> tuple[str, ...]:
        """Every key the party of ``uris`` is found by (for :meth:`unread_counts`); StoreError
        for a text that is not a SIP or tel URI."""
        keys: list[str] = []
        for uri in uris:
            for key in peer_keys(uri):
                if key not in keys:
                    keys.append(key)
        return tuple(keys)

    # -- async wrappers (asyncio.to_thread) ---------------------------------------------------

    async def add_async(self, record: MessageRecord) -> MessageRecord:
        return await asyncio.to_thread(self.add, record)

    async def set_state_async(
        self, message_id: str, *, state: DeliveryState, status: int, reason: str
    ) -> MessageRecord | None:
        return await asyncio.to_thread(
            partial(self.set_state, message_id, state=state, status=status, reason=reason)
        )

    async def conversation_async(
        self, uris: Iterable[str], limit: int = 200
    ) -> builtins.list[MessageRecord]:
        return await asyncio.to_thread(self.conversation, tuple(uris), limit)

    async def conversations_async(self, limit: int = 100) -> builtins.list[Conversation]:
        return await asyncio.to_thread(self.conversations, limit)

    async def unread_counts_async(self) -> dict[str, int]:
        return await asyncio.to_thread(self.unread_counts)

    async def unread_total_async(self) -> int:
        return await asyncio.to_thread(self.unread_total)

    async def mark_read_async(self, uris: Iterable[str]) -> int:
        return await asyncio.to_thread(self.mark_read, tuple(uris))

    async def delete_conversation_async(self, uris: Iterable[str]) -> int:
        return await asyncio.to_thread(self.delete_conversation, tuple(uris))
