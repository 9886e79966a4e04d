"""``softphone voicemail``: list (--json), heard and delete, on the store the answering machine
fills; a missing id or a wrong one is a usage error."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from softphone.__main__ import main
from softphone.phone.book import Book, VoicemailRecord


@pytest.fixture
def messages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    for name in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    files = [tmp_path / "a.wav", tmp_path / "b.wav"]
    book = Book.open()
    for minute, (path, name) in enumerate(zip(files, ("Bob", None), strict=True)):
        path.write_bytes(b"RIFF")
        record = book.voicemails.start(
            VoicemailRecord(
                received_at=datetime(2026, 12, 7, 9, minute, tzinfo=UTC),
                account="alice",
                caller_uri=f"sip:caller{minute}@lab.test",
                caller_name=name,
                path=str(path),
            )
        )
        assert record.id is not None
        book.voicemails.finish(record.id, duration_s=4.5 + minute)
    book.close()
    return files


def listed(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    assert main(["voicemail", "list", "--json"]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_list_heard_and_delete(messages: list[Path], capsys: pytest.CaptureFixture[str]) -> None:
    rows = listed(capsys)
    assert [(r["id"], r["caller"], r["duration_s"], r["heard"]) for r in rows] == [
        (2, "sip:caller1@lab.test", 5.5, False),
        (1, "sip:caller0@lab.test", 4.5, False),
    ]
    assert rows[1]["caller_name"] == "Bob" and rows[1]["path"] == str(messages[0])
    assert rows[1]["received_at"] == "2026-12-07T09:00:00+00:00"
    assert main(["voicemail"]) == 0
    human = capsys.readouterr().out
    assert "NEW" in human and "Bob <sip:caller0@lab.test>" in human
    assert main(["voicemail", "heard", "1"]) == 0
    assert [r["heard"] for r in listed(capsys)] == [False, True]
    assert main(["voicemail", "heard", "1", "--unheard"]) == 0
    assert [r["heard"] for r in listed(capsys)] == [False, False]
    assert main(["voicemail", "delete", "2"]) == 0
    assert "deleted voicemail 2" in capsys.readouterr().out
    assert [r["id"] for r in listed(capsys)] == [1]
    assert not messages[1].exists() and messages[0].exists()


def test_a_missing_or_unknown_id_is_a_usage_error(
    messages: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["voicemail", "delete"]) == 2
    assert "voicemail delete needs the message's id" in capsys.readouterr().err
    assert main(["voicemail", "play", "7"]) == 2
    assert "no voicemail 7" in capsys.readouterr().err
    assert all(path.exists() for path in messages)
