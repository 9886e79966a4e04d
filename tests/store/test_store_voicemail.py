"""Voicemail in the store: a message is stored as its recording starts and completed with its
length; heard, unheard counts, delete; and a message whose recorder was killed (kill -9) keeps
what it had recorded: its row is completed from the WAV file at the next opening."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from softphone.phone.book import Book
from softphone.phone.voicemail_log import delete_message
from softphone.store.db import SCHEMA_VERSION, Database, StoreError
from softphone.store.voicemail import VoicemailRecord, Voicemails, wav_seconds

T0 = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)


def message(path: Path, account: str = "alice") -> VoicemailRecord:
    return VoicemailRecord(
        received_at=T0,
        account=account,
        caller_uri="sip:bob@lab.test",
        caller_name="Bob",
        path=str(path),
    )


def test_start_finish_heard_and_delete(tmp_path: Path) -> None:
    with Database.open(tmp_path / "softphone.db") as db:
        voicemails = Voicemails(db)
        first = voicemails.start(message(tmp_path / "1.wav"))
        second = voicemails.start(message(tmp_path / "2.wav", account="work"))
        assert first.id is not None and second.id is not None
        assert first.recording and voicemails.get(first.id) == first
        done = voicemails.finish(first.id, duration_s=12.3456)
        assert done is not None and (done.recording, done.duration_s) == (False, 12.346)
        assert voicemails.unheard() == {"alice": 1, "work": 1}
        assert voicemails.mark_heard(first.id) and voicemails.unheard() == {"work": 1}
        assert [r.id for r in voicemails.list()] == [second.id, first.id]  # newest first (by id)
        (tmp_path / "2.wav").write_bytes(b"RIFF")
        gone = delete_message(voicemails, second.id)
        assert gone is not None and gone.path == str(tmp_path / "2.wav")
        assert voicemails.get(second.id) is None and not (tmp_path / "2.wav").exists()
        assert delete_message(voicemails, second.id) is None  # twice: nothing
        assert not voicemails.mark_heard(999)


def test_bad_messages_are_refused(tmp_path: Path) -> None:
    with Database.open(tmp_path / "softphone.db") as db:
        voicemails = Voicemails(db)
        naive = VoicemailRecord(
            received_at=datetime(2026, 12, 7), account="a", caller_uri="sip:b@x", path="p"
        )
        with pytest.raises(StoreError, match="aware datetime"):
            voicemails.start(naive)
        with pytest.raises(StoreError, match="needs the caller's address and its file"):
            voicemails.start(VoicemailRecord(received_at=T0, account="a", caller_uri="", path="p"))
        record = voicemails.start(message(tmp_path / "x.wav"))
        assert record.id is not None
        with pytest.raises(StoreError, match="negative voicemail duration"):
            voicemails.finish(record.id, duration_s=-1)
        assert voicemails.get(record.id) == record  # nothing half stored


def test_a_version_4_database_gains_voicemail_keeping_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "softphone.db"
    with Database.open(path):
        pass
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE voicemails")
    conn.execute("DELETE FROM schema_version WHERE version > 4")
    conn.commit()
    conn.close()
    with Database.open(path) as db:
        assert db.schema_version == SCHEMA_VERSION == 5
        assert Voicemails(db).list() == []


KILLED_RECORDER = """
import os, signal, sys
import numpy as np
from datetime import UTC, datetime
from pathlib import Path
from softphone.media.wav import StereoRecorder
from softphone.store.db import Database
from softphone.store.voicemail import VoicemailRecord, Voicemails

db = Database.open(Path(sys.argv[1]))
wav = Path(sys.argv[2])
Voicemails(db).start(VoicemailRecord(received_at=datetime.now(UTC), account="alice",
                                     caller_uri="sip:bob@lab.test", path=str(wav)))
recorder = StereoRecorder(wav, 8000)
tone = np.full((160, 1), 0.25, np.float32)
for frame in range(150):  # three seconds of the caller, 20 ms at a time as the call writes
    recorder.write_local(np.zeros_like(tone))
    recorder.write_remote(tone)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_message_whose_recorder_was_killed_keeps_its_seconds(tmp_path: Path) -> None:
    path, wav = tmp_path / "softphone.db", tmp_path / "message.wav"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_RECORDER, str(path), str(wav)],
        env=env,
        timeout=30,
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL
    assert wav_seconds(wav) == 3.0  # the file plays up to its last write
    book = Book.open(path)  # completes what the dead process was recording
    (row,) = book.voicemails.list()
    assert (row.recording, row.duration_s, row.caller_uri) == (False, 3.0, "sip:bob@lab.test")
    assert book.voicemails.complete_orphans() == 0
    book.close()


def test_wav_seconds_of_a_missing_or_broken_file_is_zero(tmp_path: Path) -> None:
    assert wav_seconds(tmp_path / "none.wav") == 0.0
    (tmp_path / "bad.wav").write_bytes(b"not a wav")
    assert wav_seconds(tmp_path / "bad.wav") == 0.0
