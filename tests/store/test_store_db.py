"""The database file: creation, pragmas, migrations, recovery from corruption, clear errors."""

from __future__ import annotations

import sqlite3
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from softphone.store.contacts import Contacts
from softphone.store.db import MIGRATIONS, SCHEMA_VERSION, Database, StoreError
from softphone.store.history import CallRecord, History

FIXED_NOW = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)

# The schema exactly as version 1 shipped it, written out by hand so that a later edit of
# MIGRATIONS[0] cannot quietly change what "an old database" means in this test.
V1_SCHEMA = """
CREATE TABLE schema_version (version INTEGER PRIMARY KEY, description TEXT NOT NULL,
                             applied_at TEXT NOT NULL);
CREATE TABLE calls (id INTEGER PRIMARY KEY, started_at TEXT NOT NULL,
    direction TEXT NOT NULL CHECK (direction IN ('in', 'out')), remote_uri TEXT NOT NULL,
    remote_name TEXT, account TEXT NOT NULL, duration_s REAL NOT NULL DEFAULT 0,
    result TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '', recording_path TEXT);
CREATE INDEX calls_started_at ON calls (started_at DESC, id DESC);
CREATE TABLE contacts (id INTEGER PRIMARY KEY, name TEXT NOT NULL,
                       favourite INTEGER NOT NULL DEFAULT 0);
CREATE TABLE contact_uris (contact_id INTEGER NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    position INTEGER NOT NULL, uri TEXT NOT NULL, match_key TEXT NOT NULL,
    PRIMARY KEY (contact_id, position));
CREATE INDEX contact_uris_match_key ON contact_uris (match_key);
INSERT INTO schema_version VALUES (1, 'call history and contacts', '2024-01-01T00:00:00+00:00');
INSERT INTO calls VALUES (1, '2024-01-02T03:04:05.000000+00:00', 'in', 'sip:bob@example.com',
                          'Bob', 'alice', 12.5, 'answered', 'BYE', NULL);
INSERT INTO contacts VALUES (7, 'Bob', 1);
INSERT INTO contact_uris VALUES (7, 0, 'sip:bob@example.com', 'bob@example.com');
"""


def make_v1(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.executescript(V1_SCHEMA)
    conn.commit()
    conn.close()


def test_new_database_is_created_private_with_wal_and_foreign_keys(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "softphone.db"
    with Database.open(path) as db:
        assert db.recovered is None
        assert db.schema_version == SCHEMA_VERSION == len(MIGRATIONS)
        with db.read() as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
            assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
            versions = [r[0] for r in conn.execute("SELECT version FROM schema_version ORDER BY 1")]
    assert versions == [m.version for m in MIGRATIONS]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_reopening_keeps_data_and_does_not_migrate_twice(tmp_path: Path) -> None:
    path = tmp_path / "softphone.db"
    with Database.open(path) as db:
        History(db).add(
            CallRecord(
                started_at=FIXED_NOW,
                direction="out",
                remote_uri="sip:a@b",
                account="x",
                result="failed",
            )
        )
    with Database.open(path) as db:
        assert History(db).count() == 1
        with db.read() as conn:
            assert conn.execute("SELECT count(*) FROM schema_version").fetchone()[0] == len(
                MIGRATIONS
            )


def test_v1_database_is_migrated_forward_keeping_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "softphone.db"
    make_v1(path)
    with Database.open(path) as db:
        assert db.schema_version == SCHEMA_VERSION
        contacts = Contacts(db)
        bob = contacts.get(7)
        assert bob is not None and bob.name == "Bob" and bob.favourite and bob.rtsp_url is None
        assert bob.uris == ("sip:bob@example.com",)
        # the column added by version 2 is usable
        updated = contacts.update(
            bob.__class__(id=7, name="Bob", uris=bob.uris, rtsp_url="rtsp://cam/1")
        )
        assert contacts.get(7) == updated
        (call,) = History(db).list()
        assert call.id == 1 and call.remote_name == "Bob" and call.duration_s == 12.5
        assert call.started_at == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_newer_schema_is_a_clear_error_and_the_file_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "softphone.db"
    Database.open(path).close()
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO schema_version VALUES (99, 'from the future', '2030-01-01')")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(
        StoreError, match=r"schema version 99, newer than this softphone understands"
    ):
        Database.open(path)
    assert path.read_bytes() == before
    assert list(tmp_path.glob("*.corrupt-*")) == []


def test_a_foreign_sqlite_file_is_refused_not_wiped(tmp_path: Path) -> None:
    path = tmp_path / "softphone.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE photos (id INTEGER)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match=r"not softphone's \(tables: photos\)"):
        Database.open(path)
    assert list(tmp_path.glob("*.corrupt-*")) == []


def test_garbage_file_is_moved_aside_and_a_new_database_created(tmp_path: Path) -> None:
    path = tmp_path / "softphone.db"
    junk = b"this is not a database at all\n" * 200
    path.write_bytes(junk)
    with Database.open(path, now=lambda: FIXED_NOW) as db:
        assert db.recovered is not None
        assert db.recovered.moved_to == tmp_path / "softphone.db.corrupt-20240506T070809Z"
        assert "not a database" in db.recovered.reason
        assert "moved to" in str(db.recovered)
        assert History(db).count() == 0 and db.schema_version == SCHEMA_VERSION
    assert (tmp_path / "softphone.db.corrupt-20240506T070809Z").read_bytes() == junk


def test_damaged_pages_are_detected_and_moved_aside_without_overwriting_earlier_ones(
    tmp_path: Path,
) -> None:
    path = tmp_path / "softphone.db"
    with Database.open(path) as db:
        history = History(db)
        for i in range(300):
            history.add(
                CallRecord(
                    started_at=FIXED_NOW,
                    direction="in",
                    remote_uri=f"sip:u{i}@h" + "x" * 200,
                    account="a",
                    result="missed",
                )
            )
        with db.read() as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(path.read_bytes())
    assert len(data) > 8 * 4096
    data[4096 * 2 : 4096 * 6] = b"\xff" * (4096 * 4)  # smash b-tree pages, keep the header
    path.write_bytes(bytes(data))
    earlier = tmp_path / "softphone.db.corrupt-20240506T070809Z"
    earlier.write_bytes(b"an earlier casualty")
    with Database.open(path, now=lambda: FIXED_NOW) as db:
        assert db.recovered is not None
        assert db.recovered.moved_to == tmp_path / "softphone.db.corrupt-20240506T070809Z-1"
        assert History(db).count() == 0
    assert earlier.read_bytes() == b"an earlier casualty"
    assert db.recovered.moved_to.read_bytes() == bytes(data)


def test_unwritable_location_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot create the database"):
        Database.open(blocker / "softphone.db")


def test_failed_transaction_rolls_back(tmp_path: Path) -> None:
    with Database.open(tmp_path / "s.db") as db:
        with pytest.raises(RuntimeError), db.transaction() as conn:
            conn.execute("INSERT INTO contacts (name, favourite) VALUES ('ghost', 0)")
            raise RuntimeError("boom")
        with db.read() as conn:
            assert conn.execute("SELECT count(*) FROM contacts").fetchone()[0] == 0


def test_closed_database_says_so(tmp_path: Path) -> None:
    db = Database.open(tmp_path / "s.db")
    db.close()
    with pytest.raises(StoreError, match="closed"):
        History(db).count()


def test_default_path_is_in_the_xdg_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    with Database.open() as db:
        assert db.path == tmp_path / "xdg" / "softphone" / "softphone.db"
        assert db.path.exists()


async def test_open_async(tmp_path: Path) -> None:
    db = await Database.open_async(tmp_path / "s.db")
    assert db.schema_version == SCHEMA_VERSION
    await db.close_async()


def test_sqlite_errors_inside_a_transaction_become_store_errors(tmp_path: Path) -> None:
    with Database.open(tmp_path / "s.db") as db:
        with pytest.raises(StoreError, match="cannot write"), db.transaction() as conn:
            conn.execute("INSERT INTO contacts (name) VALUES ('kept back')")
            conn.execute(
                "INSERT INTO contact_uris VALUES (999, 0, 'sip:a@b', 'a@b')"
            )  # no contact 999
        with pytest.raises(StoreError, match="cannot read"), db.read() as conn:
            conn.execute("SELECT nope FROM contacts")
        with db.read() as conn:
            assert conn.execute("SELECT count(*) FROM contacts").fetchone()[0] == 0


def test_store_imports_no_ui_or_media() -> None:
    import subprocess
    import sys

    code = (
        "import sys, softphone.store\n"
        "print(','.join(m for m in ('textual', 'sounddevice', 'av', 'numpy') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == ""


# Version 2 as it shipped, with the rows earlier softphones really wrote: the remote party as
# header text. An incoming call from baresip was stored as the From name-addr with its ">" cut
# off (the text went through .strip("<>")), a quoted display name likewise, an outgoing call as
# a bare URI; plus text that holds no address at all.
V2_ROWS = [
    # (id, remote_uri as stored, remote_name as stored)
    (1, "bob <sip:bob@lab.test", "bob"),
    (2, '"Bob Baresip" <sip:bob@lab.test', "Bob Baresip"),
    (3, '"Liddell, Alice" <sip:alice@example.com;transport=tcp>', None),
    (4, "sip:1002@lab.test;user=phone", None),
    (5, "sip:carol@lab.test", None),
    (6, "tel:+49-30-123", None),
    (7, "%%% not an address", None),
    (8, "door station", "Door"),
]
V2_EXPECTED = {
    # id: (remote_uri, remote_name) after the migration
    1: ("sip:bob@lab.test", "bob"),
    2: ("sip:bob@lab.test", "Bob Baresip"),
    3: ("sip:alice@example.com;transport=tcp", "Liddell, Alice"),
    4: ("sip:1002@lab.test;user=phone", None),
    5: ("sip:carol@lab.test", None),
    6: ("tel:+49-30-123", None),
    7: (None, "%%% not an address"),  # no address: the text is the name, nothing to redial
    8: (None, "Door (door station)"),
}


def make_v2(path: Path) -> None:
    make_v1(path)
    conn = sqlite3.connect(path)
    conn.execute("ALTER TABLE contacts ADD COLUMN rtsp_url TEXT")
    conn.execute("INSERT INTO schema_version VALUES (2, 'rtsp', '2024-02-01T00:00:00+00:00')")
    conn.execute("DELETE FROM calls")
    for n, remote, name in V2_ROWS:
        conn.execute(
            "INSERT INTO calls VALUES (?, ?, 'in', ?, ?, 'alice', 3.5, 'answered', 'BYE', NULL)",
            (n, f"2024-01-0{n}T03:04:05.000000+00:00", remote, name),
        )
    # A number stored before numbers matched by their digits: its key was user@host.
    conn.execute("INSERT INTO contacts VALUES (8, 'Office', 0, NULL)")
    conn.execute(
        "INSERT INTO contact_uris VALUES (8, 0, 'sip:+4930123@gw.example.com;user=phone', "
        "'+4930123@gw.example.com')"
    )
    conn.commit()
    conn.close()


def test_v2_history_is_migrated_to_name_and_uri_apart_keeping_every_row(tmp_path: Path) -> None:
    from softphone.phone.target import normalize_target
    from softphone.sip.uri import SipUri

    path = tmp_path / "softphone.db"
    make_v2(path)
    with Database.open(path) as db:
        assert db.schema_version == SCHEMA_VERSION
        calls = {c.id: c for c in History(db).list()}
        assert {n: (c.remote_uri, c.remote_name) for n, c in calls.items()} == V2_EXPECTED
        for call in calls.values():  # the rest of each row is as it was
            assert (call.direction, call.account, call.duration_s, call.result, call.reason) == (
                "in",
                "alice",
                3.5,
                "answered",
                "BYE",
            )
        aor = SipUri.parse("sip:me@lab.test")
        for call in calls.values():
            if call.remote_uri is not None:  # each address can be dialled as it is
                assert normalize_target(call.remote_uri, aor)
        # numbers are found by their digits now, whatever spelling the caller uses
        office = Contacts(db).find_by_uri("tel:+49 30 123")
        assert office is not None and office.name == "Office"


def test_migration_that_fails_leaves_the_old_database_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from softphone.store import schema

    path = tmp_path / "softphone.db"
    make_v2(path)

    def broken(conn: sqlite3.Connection) -> None:
        raise StoreError("the disk fell off")

    monkeypatch.setattr(schema, "_rekey_contact_uris", broken)
    with pytest.raises(StoreError, match="the disk fell off"):
        Database.open(path)
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT max(version) FROM schema_version").fetchone()[0] == 2
    stored = conn.execute("SELECT id, remote_uri, remote_name FROM calls ORDER BY id").fetchall()
    conn.close()
    assert stored == V2_ROWS
