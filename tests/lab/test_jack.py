"""The lab's JACK server without jackd: a clear error when it is missing or cannot start."""

from __future__ import annotations

from pathlib import Path

import pytest

from softphone.lab import process
from softphone.lab.jack import JackServer
from softphone.lab.process import LabError, PeerMissing, wait_until


@pytest.fixture
def bin_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty directory as the whole PATH (and no sbin directories to fall back on)."""
    path = tmp_path / "bin"
    path.mkdir()
    monkeypatch.setenv("PATH", str(path))
    monkeypatch.setattr(process, "SBIN_DIRS", ())
    return path


def script(directory: Path, name: str, body: str) -> None:
    target = directory / name
    target.write_text(f"#!/bin/sh\n{body}\n")
    target.chmod(0o755)


def test_a_missing_jackd_is_a_peer_missing_that_names_the_package(
    bin_dir: Path, tmp_path: Path
) -> None:
    server = JackServer(tmp_path / "jack")
    with pytest.raises(
        PeerMissing, match=r"^jackd is not installed \(sudo apt-get install jackd2\)$"
    ):
        server.start()
    assert not server.alive() and server.stop() is None


def test_a_jackd_that_exits_fails_the_start_with_its_output(bin_dir: Path, tmp_path: Path) -> None:
    script(bin_dir, "jackd", 'echo "Cannot open the dummy driver" >&2; exit 1')
    script(bin_dir, "jack_lsp", "exit 1")  # no server to talk to
    server = JackServer(tmp_path / "jack")
    with pytest.raises(LabError, match="Cannot open the dummy driver") as error:
        server.start(timeout_s=60.0)
    assert "died while waiting for jackd" in str(error.value)
    assert (tmp_path / "jack" / "jackd.log").read_text() == "Cannot open the dummy driver\n"


def test_the_server_is_ready_once_a_client_connects(
    bin_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ready = tmp_path / "ready"
    script(bin_dir, "jackd", f'printf "%s\\n" "$*"; : > {ready}; exec /bin/sleep 300')
    # Connects once jackd is up, and only to the server by that name.
    script(bin_dir, "jack_lsp", f'test -e {ready} && test "$1 $2" = "-s $EXPECTED"')
    server = JackServer(tmp_path / "jack", rate=44100, period=256)
    env = server.client_env()
    assert env["JACK_DEFAULT_SERVER"] == server.name and env["JACK_NO_START_SERVER"] == "1"
    monkeypatch.setenv("EXPECTED", server.name)
    try:
        server.start(timeout_s=60.0)
        assert server.alive()
        # The line is read by the log's thread: it may come a moment after the server is up.
        wait_until(lambda: bool(server.lines()), 10.0, "jackd's first line")
        assert server.lines() == [f"-n {server.name} -d dummy -r 44100 -p 256"]
    finally:
        server.stop()
    assert not server.alive()
