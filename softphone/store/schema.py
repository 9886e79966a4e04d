"""The database schema as a list of forward-only migrations (:data:`MIGRATIONS`).

Each :class:`Migration` runs once, in its own transaction, when a database older than it is
opened (db.py); ``schema_version`` records which ran. Never edit a shipped entry: append one.
A step that must read what rows hold (and cannot be said in SQL) gives ``apply``, a function run
after its statements inside the same transaction.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from softphone.sip.errors import ParseError
from softphone.store.errors import StoreError
from softphone.store.uris import parse_party, uri_match_key

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "Migration"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class Migration:
    """One forward-only schema step; ``statements`` run in order inside one transaction, then
    ``apply`` (when given) on the same connection."""

    version: int
    description: str
    statements: tuple[str, ...]
    apply: Callable[[sqlite3.Connection], None] | None = None


# The calls table from version 3 on. remote_uri is NULL for a party whose address could not be
# read back from an older row: its text is then the name, and it is never offered for redial.
# owner names the process writing a call still in progress (NULL once the call is over).
_CALLS_V3: Final = """CREATE TABLE calls_v3 (
    id INTEGER PRIMARY KEY,
    started_at TEXT NOT NULL,
    direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    remote_uri TEXT,
    remote_name TEXT,
    account TEXT NOT NULL,
    duration_s REAL NOT NULL DEFAULT 0,
    result TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    recording_path TEXT,
    owner TEXT
)"""


def _split_remote_parties(conn: sqlite3.Connection) -> None:
    """Copy every call into ``calls_v3`` with its remote party parsed into URI and name.

    Versions before 3 stored header text as the URI: ``"Bob" <sip:bob@x>``, or with the ``>``
    cut off (``bob <sip:bob@lab.test``), beside bare URIs. A row whose text holds no usable URI
    keeps that text as its name (after the name it had, if any) with no URI. No row is dropped:
    the counts are compared before the old table goes."""
    rows = conn.execute(
        "SELECT id, started_at, direction, remote_uri, remote_name, account, duration_s, "
        "result, reason, recording_path FROM calls"
    ).fetchall()
    unreadable = 0
    for row in rows:
        text = str(row[3] or "")
        old_name = None if row[4] is None else str(row[4])
        party = parse_party(text)
        if party is not None:
            uri: str | None = party.uri
            name = old_name or party.name
        else:
            unreadable += 1
            uri = None
            name = text if not old_name or old_name == text else f"{old_name} ({text})"
        conn.execute(
            "INSERT INTO calls_v3 (id, started_at, direction, remote_uri, remote_name, account, "
            "duration_s, result, reason, recording_path) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (row[0], row[1], row[2], uri, name or None, *row[5:]),
        )
    copied = conn.execute("SELECT count(*) FROM calls_v3").fetchone()[0]
    if copied != len(rows):  # pragma: no cover - the INSERTs above either all run or raise
        raise StoreError(f"history migration copied {copied} of {len(rows)} calls; nothing changed")
    conn.execute("DROP TABLE calls")
    conn.execute("ALTER TABLE calls_v3 RENAME TO calls")
    conn.execute("CREATE INDEX calls_started_at ON calls (started_at DESC, id DESC)")
    if unreadable:
        logger.warning("%d history rows hold no readable address; kept with their text", unreadable)


def _rekey_contact_uris(conn: sqlite3.Connection) -> None:
    """Telephone numbers match by their digits from version 3 on: recompute every match key."""
    rows = conn.execute("SELECT contact_id, position, uri FROM contact_uris").fetchall()
    for contact_id, position, uri in rows:
        try:
            key = uri_match_key(str(uri))
        except ParseError:  # validated when stored; should one be unreadable, leave its key
            continue
        conn.execute(
            "UPDATE contact_uris SET match_key = ? WHERE contact_id = ? AND position = ?",
            (key, contact_id, position),
        )


def _migrate_v3(conn: sqlite3.Connection) -> None:
    _split_remote_parties(conn)
    _rekey_contact_uris(conn)


# Instant messages (RFC 3428), both directions. peer_uri is the other party in canonical form
# (uris.py normalise_uri) and peer_key its match key, so a conversation gathers every message
# with one party however its URI was written. A text/plain message keeps its text, any other its
# raw bytes: exactly one of text and body is set. message_id is the phone's id of a message of
# ours, by which its outcome is recorded; state is 'received' for theirs.
_MESSAGES_V4: Final = """CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    peer_uri TEXT NOT NULL,
    peer_key TEXT NOT NULL,
    peer_name TEXT,
    account TEXT NOT NULL,
    content_type TEXT NOT NULL,
    text TEXT,
    body BLOB,
    note TEXT,
    state TEXT NOT NULL CHECK (state IN ('sending', 'delivered', 'failed', 'received')),
    status INTEGER NOT NULL DEFAULT 0,
    reason TEXT NOT NULL DEFAULT '',
    read INTEGER NOT NULL CHECK (read IN (0, 1)),
    message_id TEXT,
    call_id TEXT,
    CHECK ((text IS NULL) <> (body IS NULL))
)"""

# Messages left on the answering machine (store/voicemail.py). owner names the process still
# recording one (NULL once its length is known), as calls.owner does for calls in progress.
_VOICEMAILS_V5: Final = """CREATE TABLE voicemails (
    id INTEGER PRIMARY KEY,
    received_at TEXT NOT NULL,
    account TEXT NOT NULL,
    caller_uri TEXT NOT NULL,
    caller_name TEXT,
    duration_s REAL NOT NULL DEFAULT 0,
    path TEXT NOT NULL,
    heard INTEGER NOT NULL DEFAULT 0 CHECK (heard IN (0, 1)),
    owner TEXT
)"""

# Forward-only: never edit a shipped entry, append a new one.
MIGRATIONS: Final[tuple[Migration, ...]] = (
    Migration(
        version=1,
        description="call history and contacts",
        statements=(
            """CREATE TABLE calls (
                id INTEGER PRIMARY KEY,
                started_at TEXT NOT NULL,
                direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
                remote_uri TEXT NOT NULL,
                remote_name TEXT,
                account TEXT NOT NULL,
                duration_s REAL NOT NULL DEFAULT 0,
                result TEXT NOT NULL,
                reason TEXT NOT NULL DEFAULT '',
                recording_path TEXT
            )""",
            "CREATE INDEX calls_started_at ON calls (started_at DESC, id DESC)",
            """CREATE TABLE contacts (
                id INTEGER PRIMARY KEY,
                name TEXT NOT NULL,
                favourite INTEGER NOT NULL DEFAULT 0
            )""",
            """CREATE TABLE contact_uris (
                contact_id INTEGER NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
                position INTEGER NOT NULL,
                uri TEXT NOT NULL,
                match_key TEXT NOT NULL,
                PRIMARY KEY (contact_id, position)
            )""",
            "CREATE INDEX contact_uris_match_key ON contact_uris (match_key)",
        ),
    ),
    Migration(
        version=2,
        description="contacts carry an RTSP URL (door stations, cameras)",
        statements=("ALTER TABLE contacts ADD COLUMN rtsp_url TEXT",),
    ),
    Migration(
        version=3,
        description="the remote party as a URI and a name apart; calls in progress; numbers "
        "matched by their digits",
        statements=(_CALLS_V3,),
        apply=_migrate_v3,
    ),
    Migration(
        version=4,
        description="instant messages",
        statements=(
            _MESSAGES_V4,
            "CREATE INDEX messages_peer ON messages (peer_key, at, id)",
            "CREATE INDEX messages_at ON messages (at DESC, id DESC)",
            "CREATE INDEX messages_message_id ON messages (message_id)",
            "CREATE INDEX messages_unread ON messages (peer_key) WHERE read = 0",
        ),
    ),
    Migration(
        version=5,
        description="voicemail left on the answering machine",
        statements=(_VOICEMAILS_V5, "CREATE INDEX voicemails_at ON voicemails (received_at DESC)"),
    ),
)
SCHEMA_VERSION: Final = MIGRATIONS[-1].version
