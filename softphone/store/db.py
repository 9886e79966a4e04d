"""The SQLite file behind history and contacts: opening, schema migrations, recovery.

The file lives at ``<XDG data dir>/softphone/softphone.db`` (:func:`default_db_path`) unless a
path is given. Opening it:

- creates the directory (0700) and file (0600) when missing, turns on WAL journaling, foreign
  keys and a busy timeout, then applies the forward-only migrations (schema.py) not yet recorded
  in the ``schema_version`` table, each in its own transaction;
- marks the file as in use by this process (liveness.py: :attr:`Database.live`), so that calls
  another process left in progress can be told from calls of a process that died;
- moves a corrupt file aside to ``softphone.db.corrupt-<UTC timestamp>`` (with its ``-wal`` and
  ``-shm`` companions) and starts a new one. Nothing is ever deleted; :attr:`Database.recovered`
  says what happened so the UI can tell the user;
- raises :class:`StoreError` with a readable message for everything else (a schema newer than
  this program, a SQLite file that is not ours, permissions, a lock held too long).

Errors (errors.py)::

    StoreError              the store cannot do what was asked; the message says why
    └── ContactError        a contact failed validation

Threading: one connection (``check_same_thread=False``) guarded by a lock, so the synchronous
methods may be called from any thread and the ``*_async`` wrappers run them in
``asyncio.to_thread``. Every write runs inside ``BEGIN IMMEDIATE`` … ``COMMIT``.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from softphone.store.errors import StoreError
from softphone.store.liveness import LiveMark
from softphone.store.schema import MIGRATIONS, SCHEMA_VERSION, Migration

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Database",
    "Migration",
    "Recovered",
    "StoreError",
    "casefold_sql",
    "default_db_path",
    "like_pattern",
    "sort_key_sql",
]

logger = logging.getLogger(__name__)

DB_FILENAME: Final = "softphone.db"
BUSY_TIMEOUT_MS: Final = 5000
# SQLite primary result codes (https://www.sqlite.org/rescode.html).
_SQLITE_CORRUPT: Final = 11
_SQLITE_NOTADB: Final = 26


@dataclass(frozen=True, slots=True, kw_only=True)
class Recovered:
    """A corrupt database was moved aside and a new, empty one created in its place."""

    moved_to: Path
    reason: str

    def __str__(self) -> str:
        return f"the history/contacts database was unreadable ({self.reason}); moved to {self.moved_to}"


def default_db_path() -> Path:
    from softphone.config import default_data_dir

    return default_data_dir() / DB_FILENAME


def _utcnow() -> datetime:
    return datetime.now(UTC)


def casefold_sql(value: object) -> str | None:
    """``casefold(x)`` in SQL: Unicode case folding (SQLite's own lower()/LIKE are ASCII only)."""
    return None if value is None else str(value).casefold()


def sort_key_sql(value: object) -> str | None:
    """``sort_key(x)`` in SQL: case folded with accents removed, so "Émile" sorts among the e's."""
    if value is None:
        return None
    decomposed = unicodedata.normalize("NFKD", str(value).casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def like_pattern(text: str) -> str:
    """A ``%text%`` LIKE pattern that matches ``text`` literally (use with ``ESCAPE '\\'``)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class _Corrupt(Exception):
    """Internal: the file is not a usable SQLite database."""


class Database:
    """An open softphone database. Build with :meth:`open`; close with :meth:`close`."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: Path,
        recovered: Recovered | None,
        live: LiveMark | None = None,
    ) -> None:
        self._conn: sqlite3.Connection | None = conn
        self._lock = threading.Lock()
        self.path = path
        self.recovered = recovered
        self.live = live if live is not None else LiveMark.take(path)

    # -- opening ----------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: Path | None = None,
        *,
        now: Callable[[], datetime] = _utcnow,
        busy_timeout_ms: int = BUSY_TIMEOUT_MS,
    ) -> Database:
        """Open (creating or migrating) the database at ``path`` (default: the XDG data dir)."""
        path = default_db_path() if path is None else Path(path)
        _prepare_file(path)
        recovered: Recovered | None = None
        try:
            conn = _connect(path, busy_timeout_ms)
        except _Corrupt as exc:
            moved_to = _move_aside(path, now())
            recovered = Recovered(moved_to=moved_to, reason=str(exc))
            logger.warning("database %s was corrupt (%s); moved to %s", path, exc, moved_to)
            _prepare_file(path)
            try:
                conn = _connect(path, busy_timeout_ms)
            except _Corrupt as again:  # pragma: no cover - a fresh file cannot be corrupt
                raise StoreError(f"cannot create a new database at {path}: {again}") from again
        return cls(conn, path, recovered)

    @classmethod
    async def open_async(
        cls, path: Path | None = None, *, now: Callable[[], datetime] = _utcnow
    ) -> Database:
        return await asyncio.to_thread(cls.open, path, now=now)

    @property
    def schema_version(self) -> int:
        with self.read() as conn:
            return _current_version(conn)

    # -- use --------------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT`` (``ROLLBACK`` on any exception), under the lock.
        SQLite errors come out as StoreError."""
        with self._lock:
            conn = self._checked()
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot write to {self.path}: {exc}") from exc
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise StoreError(f"cannot write to {self.path}: {exc}") from exc
                raise

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """The connection for queries (autocommit mode: each SELECT sees committed data).
        SQLite errors come out as StoreError."""
        with self._lock:
            conn = self._checked()
            try:
                yield conn
            except sqlite3.Error as exc:
                raise StoreError(f"cannot read {self.path}: {exc}") from exc

    @property
    def closed(self) -> bool:
        return self._conn is None

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
                self.live.release()

    async def close_async(self) -> None:
        await asyncio.to_thread(self.close)

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _checked(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError("the database is closed")
        return self._conn


def _prepare_file(path: Path) -> None:
    """The directory 0700 and the file 0600, made or tightened: call history is private (an
    older softphone, or a recording made first, may have left the directory 0755)."""
    from softphone.config import private_dir, private_file

    try:
        private_dir(path.parent)
        private_file(path)
    except OSError as exc:
        raise StoreError(f"cannot create the database {path}: {exc.strerror or exc}") from exc


def _is_corruption(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB)


def _connect(path: Path, busy_timeout_ms: int) -> sqlite3.Connection:
    """Connect, configure, check integrity and migrate. Raises _Corrupt or StoreError."""
    try:
        conn = sqlite3.connect(
            path, timeout=busy_timeout_ms / 1000, isolation_level=None, check_same_thread=False
        )
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open the database {path}: {exc}") from exc
    try:
        conn.create_function("casefold", 1, casefold_sql, deterministic=True)
        conn.create_function("sort_key", 1, sort_key_sql, deterministic=True)
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(
            "PRAGMA synchronous = NORMAL"
        )  # safe with WAL; a crash loses no committed data
        problems = [row[0] for row in conn.execute("PRAGMA quick_check")]
        if problems != ["ok"]:
            raise _Corrupt("integrity check failed: " + "; ".join(map(str, problems[:3])))
        _migrate(conn, path)
    except sqlite3.Error as exc:
        conn.close()
        if _is_corruption(exc):
            raise _Corrupt(str(exc)) from exc
        raise StoreError(f"cannot open the database {path}: {exc}") from exc
    except BaseException:
        conn.close()
        raise
    return conn


def _current_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "schema_version" not in tables:
        if tables:
            raise StoreError(
                f"{path} is a SQLite database but not softphone's (tables: {', '.join(sorted(tables))}); "
                "move it away or choose another path"
            )
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            "version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        conn.execute("COMMIT")
    current = _current_version(conn)
    if current > SCHEMA_VERSION:
        raise StoreError(
            f"{path} has schema version {current}, newer than this softphone understands "
            f"({SCHEMA_VERSION}); upgrade softphone or point it at another database"
        )
    for migration in MIGRATIONS:
        if migration.version <= current:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Re-read under the write lock: another process may have migrated meanwhile.
            if _current_version(conn) >= migration.version:
                conn.execute("ROLLBACK")
                continue
            for statement in migration.statements:
                conn.execute(statement)
            if migration.apply is not None:
                migration.apply(conn)
            conn.execute(
                "INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.description, _utcnow().isoformat()),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        logger.info("database %s migrated to version %d", path, migration.version)


def _move_aside(path: Path, when: datetime) -> Path:
    """Rename ``path`` (and its -wal/-shm files) to ``<name>.corrupt-<timestamp>``; never delete."""
    stamp = when.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while target.exists():
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
        n += 1
    try:
        path.rename(target)
        for suffix in ("-wal", "-shm"):
            companion = path.with_name(path.name + suffix)
            if companion.exists():
                companion.rename(target.with_name(target.name + suffix))
    except OSError as exc:
        raise StoreError(
            f"the database {path} is corrupt and could not be moved aside: {exc.strerror or exc}"
        ) from exc
    return target
