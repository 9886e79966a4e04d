"""The lab's process machinery with plain shell children: output kept and logged, waits that end
on a condition (or with a clear error), stop by pid reaching the child's whole group."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from softphone.lab import process
from softphone.lab.process import (
    HOST,
    LabError,
    LabProcess,
    PeerMissing,
    find_binary,
    free_port_pair,
    wait_until,
)

STEP_S = 10.0


def shell(tmp_path: Path, script: str, name: str = "child") -> LabProcess:
    return LabProcess(
        ["/bin/sh", "-c", script], name=name, cwd=tmp_path, log_path=tmp_path / f"{name}.log"
    )


def gone(pid: int) -> bool:
    """No such process, or a zombie nobody has reaped yet (it runs no more)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state == "Z"


def test_output_is_kept_and_written_to_the_log_file_as_it_comes(tmp_path: Path) -> None:
    child = shell(tmp_path, "echo one; echo two >&2; read line")  # stays until stdin ends
    try:
        assert child.wait_for(r"^two$", STEP_S).group(0) == "two"
        assert child.lines() == ["one", "two"]  # stderr goes with stdout
        assert (tmp_path / "child.log").read_text() == "one\ntwo\n"  # already flushed
        assert child.mark() == 2
    finally:
        child.stop()


def test_a_wait_for_output_that_never_comes_says_the_output_closed(tmp_path: Path) -> None:
    child = shell(tmp_path, "echo only line; exit 3")
    with pytest.raises(LabError, match=r"no line matching 'READY' \(output closed\)") as error:
        child.wait_for("READY", timeout_s=60.0)
    assert "only line" in str(error.value)  # the last lines come with the error
    assert child.stop() == 3


def test_a_wait_for_a_port_fails_when_the_process_dies(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind((HOST, 0))  # bound, never listening: nothing accepts there
        port = int(s.getsockname()[1])
        child = shell(tmp_path, "echo starting; exit 1")
        with pytest.raises(LabError, match=r"died while waiting for 127\.0\.0\.1"):
            child.wait_port(port, timeout_s=60.0)
    child.stop()


def test_stop_ends_the_child_and_what_it_left_in_its_group(tmp_path: Path) -> None:
    child = shell(tmp_path, "sleep 300 & echo $!; trap '' TERM; wait")  # ignores SIGTERM
    grandchild = int(child.wait_for(r"^\d+$", STEP_S).group(0))
    assert not gone(grandchild)
    code = child.stop(term_wait_s=0.5)  # then SIGKILL to the group
    assert code is not None and not child.alive()
    wait_until(lambda: gone(grandchild), STEP_S, "the grandchild to end")


def test_stderr_can_go_to_a_file_of_its_own(tmp_path: Path) -> None:
    child = LabProcess(
        ["/bin/sh", "-c", "echo data; echo noise >&2"],
        name="split",
        cwd=tmp_path,
        stderr_path=tmp_path / "stderr.log",
    )
    assert child.proc.wait(timeout=STEP_S) == 0
    child.stop()
    assert child.lines() == ["data"]
    assert (tmp_path / "stderr.log").read_text() == "noise\n"


def test_wait_until_is_bounded_and_says_what_it_waited_for() -> None:
    with pytest.raises(LabError, match=r"timed out after 0.05 s waiting for the moon"):
        wait_until(lambda: False, 0.05, "the moon")
    with pytest.raises(LabError, match="the process died while waiting for the moon"):
        wait_until(lambda: False, 60.0, "the moon", alive=lambda: False)
    calls = iter([False, False, True])
    wait_until(lambda: next(calls), STEP_S, "the third look", poll_s=0.0)


def bindable(port: int) -> bool:
    """UDP and TCP both free on ``port`` (the test's own look, not the lab's helper)."""
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind((HOST, port))
            except OSError:
                return False
    return True


def test_free_port_pair_passes_over_a_port_whose_neighbour_is_taken(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The kernel hands out single ports; the pair is only good when P+1 is free too. Offered
    a port whose P+1 someone holds over UDP, then 65535 (no P+1 at all), it takes the third."""
    pairs = (p for p in range(20000, 60000, 7) if bindable(p) and bindable(p + 1))
    blocked, good = next(pairs), next(pairs)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as held:
        held.bind((HOST, blocked + 1))
        offered = iter([blocked, 65535, good])
        monkeypatch.setattr(process, "free_tcp_port", lambda host=HOST: next(offered))
        assert free_port_pair() == good
        monkeypatch.setattr(process, "free_tcp_port", lambda host=HOST: blocked)
        with pytest.raises(LabError, match=r"^no free port pair on 127\.0\.0\.1$"):
            free_port_pair()


def test_free_port_pair_leaves_both_ports_free_for_udp_and_tcp() -> None:
    port = free_port_pair()
    assert bindable(port) and bindable(port + 1)


def test_find_binary_looks_on_path_and_names_the_package_when_missing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert Path(find_binary("sh")).name == "sh"
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(process, "SBIN_DIRS", ())
    with pytest.raises(PeerMissing, match=r"^sh is not installed \(sudo apt-get install dash\)$"):
        find_binary("sh", "dash")
    tool = tmp_path / "tool"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    assert find_binary("tool") == str(tool)


def test_the_child_is_told_to_die_with_its_parent(tmp_path: Path) -> None:
    """PR_SET_PDEATHSIG is set (by setpriv, before the exec); the child reads it back
    (PR_GET_PDEATHSIG)."""
    code = (
        "import ctypes\n"
        "sig = ctypes.c_int()\n"
        "ctypes.CDLL(None).prctl(2, ctypes.byref(sig))\n"
        "print(sig.value)\n"
    )
    child = LabProcess([sys.executable, "-c", code], name="py", cwd=tmp_path)
    assert int(child.wait_for(r"^\d+$", STEP_S).group(0)) == signal.SIGTERM
    child.stop()


def test_no_code_of_ours_runs_between_fork_and_exec(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A preexec_fn runs Python in the forked child of a process with threads, where a lock
    another thread held at the fork can hang it for good (it once held a whole CI run)."""
    seen: list[dict[str, object]] = []
    real = subprocess.Popen

    def spy(*args: object, **kwargs: object) -> object:
        seen.append(kwargs)
        return real(*args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(subprocess, "Popen", spy)
    shell(tmp_path, "echo ready").stop()
    assert seen and all(kw.get("preexec_fn") is None for kw in seen)


def test_lines_sent_to_stdin_reach_the_child_and_bad_ones_are_refused(tmp_path: Path) -> None:
    child = LabProcess(
        ["/bin/sh", "-c", 'while read -r line; do echo "got $line"; done'],
        name="reader",
        cwd=tmp_path,
        stdin_pipe=True,
    )
    try:
        child.send_line("call sip:bob@lab.test")
        assert child.wait_for(r"^got call sip:bob@lab\.test$", STEP_S).group(0)
        with pytest.raises(LabError, match="one line at a time"):
            child.send_line("quit\nrm -rf")
    finally:
        child.stop()
    with pytest.raises(LabError, match="cannot send"):
        child.send_line("after the end")


def test_a_child_without_a_stdin_pipe_refuses_lines(tmp_path: Path) -> None:
    child = shell(tmp_path, "echo ready")
    try:
        with pytest.raises(LabError, match="without a stdin pipe"):
            child.send_line("hello")
    finally:
        child.stop()


TAKEN = "bind() on 127.0.0.1:40000: Address already in use"


def _peer(kind: str, tmp_path: Path) -> Any:
    """A lab peer that is never started for real: its ``_start`` is replaced by the test."""
    from softphone.lab.baresip import Baresip
    from softphone.lab.kamailio import Kamailio
    from softphone.lab.linphone import Linphone
    from softphone.lab.pki import CertPair, LabPki

    if kind == "baresip":
        return Baresip(tmp_path, user="bob")
    pair = CertPair(cert=tmp_path / "cert.pem", key=tmp_path / "key.pem")  # never read
    pki = LabPki(
        ca_file=tmp_path / "ca.pem",
        ca_key=tmp_path / "ca.key",
        good=pair,
        expired=pair,
        wrong_name=pair,
    )
    kamailio = Kamailio(tmp_path, pki)
    return kamailio if kind == "kamailio" else Linphone(tmp_path, kamailio=kamailio)


@pytest.mark.parametrize("kind", ["baresip", "kamailio", "linphone"])
@pytest.mark.parametrize(
    ("failures", "starts", "raised"),
    [
        ([TAKEN], 2, False),  # another process took a free port between the probe and the bind
        ([TAKEN] * 3, 3, True),  # bounded: the third start is the last
        (["the process died: no such module"], 1, True),  # anything else is not retried
    ],
)
def test_a_peer_that_lost_its_free_port_is_started_again_on_others(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    failures: list[str],
    starts: int,
    raised: bool,
) -> None:
    peer = _peer(kind, tmp_path)
    tries: list[tuple[object, ...]] = []

    def start_once(*args: object) -> object:
        tries.append(args)
        if len(tries) <= len(failures):
            raise LabError(f"{kind} output:\n{failures[len(tries) - 1]}")
        return peer

    monkeypatch.setattr(peer, "_start", start_once)
    if raised:
        with pytest.raises(LabError, match=re.escape(failures[-1])):
            peer.start(timeout_s=3.0)
    else:
        assert peer.start(timeout_s=3.0) is peer
    assert len(tries) == starts and all(args[0] == 3.0 for args in tries)


def test_a_kamailio_asked_for_a_port_is_not_moved_to_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = _peer("kamailio", tmp_path)
    asked: list[int | None] = []

    def start_once(timeout_s: float, port: int | None) -> object:
        asked.append(port)
        raise LabError(f"kamailio output:\n{TAKEN}")

    monkeypatch.setattr(server, "_start", start_once)
    with pytest.raises(LabError, match="Address already in use"):
        server.start(port=5070)  # a restart on the same ports: they are the point
    assert asked == [5070]
