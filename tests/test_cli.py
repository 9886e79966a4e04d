"""The ``softphone`` command line, run for real: ``python -m softphone`` in subprocesses.

Every process binds 127.0.0.1 on ports picked free beforehand, logs into ``tmp_path`` and gets
XDG_CONFIG_HOME / XDG_STATE_HOME / XDG_DATA_HOME inside ``tmp_path``, so the user's own config is
never read. Nothing sleeps: a background ``listen`` is ready once its stdout (``--json``) has
said ``listening``; every wait has a deadline and every process is killed by its pid at the end.
"""

from __future__ import annotations

import json
import queue
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from cli_support import make_env

from softphone import __version__
from softphone.config import Account, Config, save_config
from softphone.lab.process import wait_until
from softphone.phone.book import Book
from softphone.sip.uri import SipUri

HOST = "127.0.0.1"
RUN_TIMEOUT_S = 20.0  # a whole one-shot command
WAIT_TIMEOUT_S = 15.0  # one awaited event of a background command
LISTEN_DURATION_S = "10"  # the listener quits by itself after this, should the test not stop it

Event = dict[str, Any]


# ---------------------------------------------------------------------------------- helpers
def free_ports(count: int) -> list[int]:
    """Ports free on 127.0.0.1 for both UDP and TCP (the phone binds both on one port)."""
    held: list[socket.socket] = []
    ports: list[int] = []
    try:
        while len(ports) < count:
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            held.append(udp)
            udp.bind((HOST, 0))
            port = int(udp.getsockname()[1])
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            held.append(tcp)
            try:
                tcp.bind((HOST, port))
            except OSError:
                continue
            ports.append(port)
    finally:
        for sock in held:
            sock.close()
    return ports


def softphone(log_file: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "softphone", "--log-file", str(log_file), *args]


def run(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """One-shot command; subprocess.run kills the child (by its pid) when the timeout expires."""
    return subprocess.run(
        argv,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )


def json_events(stdout: str) -> list[Event]:
    """stdout of a --json run: every line one JSON object with an "event" key, nothing else."""
    events = [json.loads(line) for line in stdout.splitlines()]
    for event in events:
        assert isinstance(event, dict) and isinstance(event.get("event"), str), event
    return events


def of_kind(events: list[Event], kind: str) -> list[Event]:
    return [e for e in events if e["event"] == kind]


class Background:
    """A softphone running in the background; reader threads turn its stdout into events."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        self.proc = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.events: list[Event] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stderr: list[str] = []
        self._eof = False
        self._threads = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._stderr.append(line)

    @property
    def stderr(self) -> str:
        return "".join(self._stderr)

    def _take(self, line: str) -> Event:
        event = json.loads(line)
        assert isinstance(event, dict) and isinstance(event.get("event"), str), line
        self.events.append(event)
        return event

    def wait_for(
        self, matches: Callable[[Event], bool], timeout_s: float = WAIT_TIMEOUT_S
    ) -> Event:
        """The first event (seen before or arriving within the deadline) that ``matches``."""
        for event in self.events:
            if matches(event):
                return event
        deadline = time.monotonic() + timeout_s
        while not self._eof:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                break
            if line is None:
                self._eof = True
                break
            if matches(event := self._take(line)):
                return event
        raise AssertionError(
            f"no matching event (exited: {self.proc.poll()}); events: {self.events}; stderr: {self.stderr}"
        )

    def finish(self, timeout_s: float = RUN_TIMEOUT_S) -> int:
        """Wait for the exit; every remaining stdout line becomes an event."""
        code = self.proc.wait(timeout=timeout_s)
        for thread in self._threads:
            thread.join(timeout=timeout_s)
        while not self._eof:
            line = self._lines.get(timeout=timeout_s)
            if line is None:
                self._eof = True
            else:
                self._take(line)
        return code

    def interrupt(self) -> None:
        self.proc.send_signal(signal.SIGINT)  # Ctrl-C, to this process only (by its pid)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=RUN_TIMEOUT_S)


@contextmanager
def background(argv: list[str], env: dict[str, str], cwd: Path) -> Iterator[Background]:
    proc = Background(argv, env, cwd)
    try:
        yield proc
    finally:
        proc.kill()


def listening_on(transport: str) -> Callable[[Event], bool]:
    return lambda e: e["event"] == "listening" and e["transport"] == transport


@contextmanager
def auto_answer_listener(tmp_path: Path, port: int, *extra: str) -> Iterator[Background]:
    """``listen --auto-answer`` with no config (peer-to-peer: sip:softphone@127.0.0.1), ready."""
    with listener_with(tmp_path, port, "--auto-answer", *extra) as listener:
        yield listener


@contextmanager
def listener_with(tmp_path: Path, port: int, *extra: str) -> Iterator[Background]:
    """``listen`` with these options and no config (peer-to-peer), ready."""
    argv = softphone(
        tmp_path / "listen.log",
        "listen",
        "--json",
        "--bind",
        HOST,
        "--sip-port",
        str(port),
        "--duration",
        LISTEN_DURATION_S,
        *extra,
    )
    with background(argv, make_env(tmp_path / "listener"), tmp_path) as listener:
        for transport in ("udp", "tcp"):
            listener.wait_for(listening_on(transport))
        yield listener


def stop_listener(listener: Background) -> None:
    """Ctrl-C: the listener closes cleanly and exits 0."""
    listener.interrupt()
    assert listener.finish() == 0, listener.stderr
    assert "Traceback" not in listener.stderr


# ---------------------------------------------------------------------------------- 1. help
def test_version_prints_the_package_version(tmp_path: Path) -> None:
    result = run(softphone(tmp_path / "v.log", "--version"), make_env(tmp_path), tmp_path)
    assert result.returncode == 0
    assert result.stdout.strip() == f"softphone {__version__}"
    assert re.fullmatch(r"softphone \d+\.\d+\.\d+\S*", result.stdout.strip())


@pytest.mark.parametrize(
    ("command", "mentions", "absent"),
    [
        ([], ["dial", "listen", "--config", "--log-file", "--log-level", "--version"], []),
        (
            ["dial"],
            ["uri", "--account", "--sip-port", "--bind", "--duration", "--json", "--ring-timeout"],
            ["--auto-answer"],
        ),
        (
            ["listen"],
            [
                "--account",
                "--sip-port",
                "--bind",
                "--duration",
                "--json",
                "--auto-answer",
                "--reject",
            ],
            ["exit codes"],
        ),
    ],
    ids=["top", "dial", "listen"],
)
def test_help_lists_the_options(
    tmp_path: Path, command: list[str], mentions: list[str], absent: list[str]
) -> None:
    result = run(softphone(tmp_path / "h.log", *command, "--help"), make_env(tmp_path), tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: softphone")
    for word in mentions:
        assert word in result.stdout, word
    for word in absent:
        assert word not in result.stdout, word


def test_dial_help_lists_every_exit_code(tmp_path: Path) -> None:
    from softphone.report import EXIT_CODE_MEANINGS, ExitCode

    result = run(softphone(tmp_path / "h.log", "dial", "--help"), make_env(tmp_path), tmp_path)
    assert result.returncode == 0, result.stderr
    table = result.stdout.split("exit codes:", 1)[1]
    listed = [int(n) for n in re.findall(r"^\s+(\d+)  ", table, re.M)]
    assert listed == [int(code) for code in ExitCode]
    assert len(set(listed)) == len(listed) == len(EXIT_CODE_MEANINGS)
    assert re.search(r"^\s+130  interrupted with Ctrl-C", table, re.M)


# ---------------------------------------------------------------------------------- 2. bad input
ACCOUNT_TOML = '[[account]]\nname = "carol"\nuri = "sip:carol@127.0.0.1"\n'

BAD_INPUT = {
    # id: (config file text, or None for no --config; extra args; what stderr must say)
    "sip-port-70000": (None, ["--sip-port", "70000"], ["--sip-port", "70000"]),
    "negative-duration": (None, ["--duration", "-1"], ["--duration", "positive"]),
    "zero-duration": (None, ["--duration", "0"], ["--duration", "positive"]),
    "missing-config": ("<missing>", [], ["{config}", "no such file"]),
    "invalid-toml": ("sip_port = [\n", [], ["{config}", "invalid TOML"]),
    "account-without-uri": ('[[account]]\nname = "carol"\n', [], ["{config}", "carol", "uri"]),
    "unknown-account": (ACCOUNT_TOML, ["--account", "nosuch"], ["nosuch", "carol"]),
    "missing-play-file": (None, ["--play", "/nonexistent/in.wav"], ["--play", "no such file"]),
    "unknown-codec": ("codecs = ['speex']\n", [], ["{config}", "unknown codec 'speex'"]),
}


@pytest.mark.parametrize("command", ["dial", "listen"])
@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_is_a_usage_error(tmp_path: Path, case: str, command: str) -> None:
    config_text, extra, says = BAD_INPUT[case]
    (port,) = free_ports(1)
    config = tmp_path / "conf" / "softphone.toml"
    global_args: list[str] = []
    if config_text is not None:
        global_args = ["--config", str(config)]
        if config_text != "<missing>":
            config.parent.mkdir()
            config.write_text(config_text, encoding="utf-8")
    target = ["sip:softphone@127.0.0.1:9"] if command == "dial" else []
    # --duration 1 first: if a bad input were accepted, the command would still end soon.
    argv = softphone(
        tmp_path / "bad.log",
        *global_args,
        command,
        *target,
        "--bind",
        HOST,
        "--sip-port",
        str(port),
        "--duration",
        "1",
        *extra,
    )
    result = run(argv, make_env(tmp_path), tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    for text in says:
        assert text.format(config=config) in result.stderr, (text, result.stderr)


@pytest.mark.parametrize("command", ["dial", "listen"])
def test_unknown_account_without_a_config_is_a_usage_error(tmp_path: Path, command: str) -> None:
    (port,) = free_ports(1)
    target = ["sip:softphone@127.0.0.1:9"] if command == "dial" else []
    argv = softphone(
        tmp_path / "bad.log",
        command,
        *target,
        "--bind",
        HOST,
        "--sip-port",
        str(port),
        "--duration",
        "1",
        "--account",
        "nosuch",
    )
    result = run(argv, make_env(tmp_path), tmp_path)
    assert "Traceback" not in result.stderr
    assert result.returncode == 2, result.stderr
    assert "nosuch" in result.stderr


def test_bad_dtmf_digits_are_a_usage_error(tmp_path: Path) -> None:
    (port,) = free_ports(1)
    argv = softphone(
        tmp_path / "bad.log",
        "dial",
        "sip:softphone@127.0.0.1:9",
        "--bind",
        HOST,
        "--sip-port",
        str(port),
        "--duration",
        "1",
        "--dtmf",
        "12x",
    )
    result = run(argv, make_env(tmp_path), tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "DTMF digits are 0-9" in result.stderr


def test_devices_lists_what_portaudio_lists_or_says_there_are_none(tmp_path: Path) -> None:
    from softphone.media.device import list_devices, portaudio_available

    result = run(softphone(tmp_path / "d.log", "devices"), make_env(tmp_path), tmp_path)
    assert "Traceback" not in result.stderr
    from softphone.media.cameras import list_cameras

    cameras = [line.split()[1] for line in result.stdout.splitlines() if line.startswith("camera")]
    assert cameras == [c.device for c in list_cameras()]
    assert ("No cameras found" in result.stdout) == (cameras == [])
    if (missing := portaudio_available()) is not None:
        assert result.returncode == 1 and missing in result.stderr
        return
    assert result.returncode == 0, result.stderr
    expected = [d.index for d in list_devices()]
    listed = [int(m.group(1)) for m in re.finditer(r"^\s*(\d+)  ", result.stdout, re.M)]
    assert listed == expected
    # This machine has no sound card (CI neither): the command says so instead of failing.
    assert ("No sound devices found" in result.stdout) == (expected == [])


# ---------------------------------------------------------------------------------- 3. a real call
def test_dial_calls_a_listener_talks_and_hangs_up(tmp_path: Path) -> None:
    listen_port, dial_port = free_ports(2)
    uri = f"sip:softphone@127.0.0.1:{listen_port}"
    env = make_env(tmp_path / "dialer")
    with auto_answer_listener(tmp_path, listen_port) as listener:
        result = run(
            softphone(
                tmp_path / "dial.log",
                "dial",
                uri,
                "--json",
                "--bind",
                HOST,
                "--sip-port",
                str(dial_port),
                "--duration",
                "1",
            ),
            env,
            tmp_path,
        )
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
        events = json_events(result.stdout)  # stdout is JSON only; human text went to stderr
        assert "call established" in result.stderr

        listening = of_kind(events, "listening")
        assert {(e["transport"], e["host"], e["port"]) for e in listening} == {
            ("udp", HOST, dial_port),
            ("tcp", HOST, dial_port),
        }
        states = of_kind(events, "call_state")
        assert [e["state"] for e in states] == ["calling", "ringing", "established", "ended"]
        call_id = states[0]["call_id"]
        assert all(e["call_id"] == call_id and e["direction"] == "outgoing" for e in states)
        assert all(e["remote"] == uri for e in states)
        (ended,) = of_kind(events, "call_ended")
        assert ended["call_id"] == call_id
        assert ended["answered"] is True and ended["status"] == 200
        assert ended["duration_s"] >= 1.0
        assert events[-1] == ended

        incoming = listener.wait_for(lambda e: e["event"] == "incoming_call")
        assert incoming["call_id"] == call_id
        assert "softphone@127.0.0.1" in incoming["remote"]  # the peer-to-peer identity
        far_end = listener.wait_for(lambda e: e["event"] == "call_ended")
        assert far_end["call_id"] == call_id and far_end["answered"] is True
        assert far_end["duration_s"] >= 0.9  # measured on the other side of the BYE
        stop_listener(listener)

    assert (tmp_path / "dial.log").stat().st_size > 0  # --log-file honoured ...
    assert not (tmp_path / "dialer" / "xdg_state_home" / "softphone" / "softphone.log").exists()


SPEECH = Path(__file__).resolve().parent / "data" / "audio" / "speech16k.wav"


def test_dial_plays_records_and_sends_dtmf_to_a_listener(tmp_path: Path) -> None:
    """The headless audio contract: --play as the microphone, --record what the far end says
    (after the jitter buffer, >= 16 kHz mono), --dtmf once established; listen records too."""
    import wave

    listen_port, dial_port = free_ports(2)
    heard_by_listener = tmp_path / "listener-heard.wav"
    heard_by_dialer = tmp_path / "dialer-heard.wav"
    with auto_answer_listener(
        tmp_path, listen_port, "--play", str(SPEECH), "--record", str(heard_by_listener)
    ) as listener:
        result = run(
            softphone(
                tmp_path / "dial.log",
                "dial",
                f"sip:softphone@127.0.0.1:{listen_port}",
                "--json",
                "--bind",
                HOST,
                "--sip-port",
                str(dial_port),
                "--duration",
                "2",
                "--play",
                str(SPEECH),
                "--record",
                str(heard_by_dialer),
                "--dtmf",
                "4#",
            ),
            make_env(tmp_path / "dialer"),
            tmp_path,
        )
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
        listener.wait_for(lambda e: e["event"] == "dtmf" and e["digit"] == "#")
        assert [e["digit"] for e in listener.events if e["event"] == "dtmf"] == ["4", "#"]
        far_end = listener.wait_for(lambda e: e["event"] == "call_ended")
        assert far_end["stats"]["packets_received"] >= 50
        stop_listener(listener)
    (ended,) = of_kind(json_events(result.stdout), "call_ended")
    assert ended["stats"]["codec"] == "opus" and ended["stats"]["packets_sent"] >= 50
    for path in (heard_by_dialer, heard_by_listener):
        with wave.open(str(path)) as w:
            assert w.getnchannels() == 1 and w.getframerate() >= 16000
            assert w.getnframes() >= 1.5 * w.getframerate(), path
            samples = w.readframes(w.getnframes())
        assert (
            max(
                abs(int.from_bytes(samples[i : i + 2], "little", signed=True))
                for i in range(0, len(samples), 2)
            )
            > 1000
        )


# ---------------------------------------------------------------------------------- 4. failing call
def test_dial_to_an_unknown_user_fails_with_404(tmp_path: Path) -> None:
    listen_port, dial_port = free_ports(2)
    with auto_answer_listener(tmp_path, listen_port) as listener:
        result = run(
            softphone(
                tmp_path / "dial.log",
                "dial",
                f"sip:nobody@127.0.0.1:{listen_port}",
                "--json",
                "--bind",
                HOST,
                "--sip-port",
                str(dial_port),
                "--duration",
                "1",
            ),
            make_env(tmp_path / "dialer"),
            tmp_path,
        )
        assert result.returncode == 5, result.stderr
        assert "Traceback" not in result.stderr
        assert "softphone: call failed: no such user or number (SIP 404 Not Found)" in (
            result.stderr
        )
        events = json_events(result.stdout)
        assert "established" not in [e["state"] for e in of_kind(events, "call_state")]
        (ended,) = of_kind(events, "call_ended")
        assert ended["status"] == 404 and ended["answered"] is False and ended["duration_s"] == 0
        stop_listener(listener)
    assert of_kind(listener.events, "incoming_call") == []  # rejected before ringing anyone


# A dial to a port where nothing listens (UDP) only fails after Timer B (64*T1 = 32 s): too slow
# for this file; the same exit code comes from a TCP connection refused, below.


def dial_argv(tmp_path: Path, uri: str, port: int, *extra: str) -> list[str]:
    return softphone(
        tmp_path / "dial.log",
        "dial",
        uri,
        "--json",
        "--bind",
        HOST,
        "--sip-port",
        str(port),
        *extra,
    )


def history_rows(env: dict[str, str]) -> list[tuple[str, str | None, str]]:
    """(direction, remote URI, result) of every call in that process's history, newest first;
    opening it is what the next start does (calls of dead processes become interrupted)."""
    book = Book.open(Path(env["XDG_DATA_HOME"]) / "softphone" / "softphone.db")
    try:
        return [(r.direction, r.remote_uri, r.result) for r in book.history.list()]
    finally:
        book.close()


@pytest.mark.parametrize(
    ("status", "code", "line", "result"),
    [
        (486, 3, "call failed: busy (SIP 486 Busy Here)", "busy"),
        (603, 4, "call failed: declined (SIP 603 Decline)", "rejected"),
        (604, 5, "call failed: no such user or number (SIP 604 Does Not Exist Anywhere)", "failed"),
        (480, 6, "call failed: no answer (SIP 480 Temporarily Unavailable)", "failed"),
        (503, 7, "call failed: network problem (SIP 503 Service Unavailable)", "failed"),
        (
            488,
            1,
            "call failed: no common codec or media format (SIP 488 Not Acceptable Here)",
            "failed",
        ),
    ],
)
def test_each_kind_of_refusal_has_its_exit_code_and_plain_words(
    tmp_path: Path, status: int, code: int, line: str, result: str
) -> None:
    listen_port, dial_port = free_ports(2)
    env = make_env(tmp_path / "dialer")
    uri = f"sip:softphone@127.0.0.1:{listen_port}"
    with listener_with(tmp_path, listen_port, "--reject", str(status)) as listener:
        outcome = run(dial_argv(tmp_path, uri, dial_port), env, tmp_path)
        assert "Traceback" not in outcome.stderr
        assert outcome.returncode == code, outcome.stderr
        assert f"softphone: {line}\n" in outcome.stderr
        (ended,) = of_kind(json_events(outcome.stdout), "call_ended")
        assert (ended["status"], ended["answered"]) == (status, False)
        listener.wait_for(lambda e: e["event"] == "call_ended")
        stop_listener(listener)
    assert history_rows(env) == [("out", uri, result)]


def test_no_answer_within_the_ring_timeout_hangs_up_with_its_exit_code(tmp_path: Path) -> None:
    listen_port, dial_port = free_ports(2)
    uri = f"sip:softphone@127.0.0.1:{listen_port}"
    env = make_env(tmp_path / "dialer")
    with listener_with(tmp_path, listen_port) as listener:  # rings, never answers
        outcome = run(dial_argv(tmp_path, uri, dial_port, "--ring-timeout", "1"), env, tmp_path)
        assert outcome.returncode == 6, outcome.stderr
        assert "softphone: call failed: no answer within 1 s\n" in outcome.stderr
        missed = listener.wait_for(lambda e: e["event"] == "call_ended")
        assert (missed["status"], missed["outcome"]) == (487, "missed")  # our CANCEL
        stop_listener(listener)
    assert history_rows(env) == [("out", uri, "cancelled")]


def test_a_refused_connection_is_a_network_failure(tmp_path: Path) -> None:
    closed, dial_port = free_ports(2)  # nothing listens on `closed`
    outcome = run(
        dial_argv(tmp_path, f"sip:softphone@127.0.0.1:{closed};transport=tcp", dial_port),
        make_env(tmp_path / "dialer"),
        tmp_path,
    )
    assert outcome.returncode == 7, outcome.stderr
    assert "softphone: call failed: network problem: cannot connect to tcp:127.0.0.1:" in (
        outcome.stderr
    )


def test_an_address_that_is_none_is_a_usage_error(tmp_path: Path) -> None:
    (dial_port,) = free_ports(1)
    outcome = run(dial_argv(tmp_path, "sip:", dial_port), make_env(tmp_path), tmp_path)
    assert outcome.returncode == 2, outcome.stderr
    assert "softphone: cannot call sip:" in outcome.stderr and "Traceback" not in outcome.stderr


def test_a_killed_dial_leaves_its_call_in_the_history_marked_interrupted(tmp_path: Path) -> None:
    listen_port, dial_port = free_ports(2)
    uri = f"sip:softphone@127.0.0.1:{listen_port}"
    env = make_env(tmp_path / "dialer")
    db = Path(env["XDG_DATA_HOME"]) / "softphone" / "softphone.db"
    with (
        listener_with(tmp_path, listen_port) as listener,  # rings until the dial is gone
        background(dial_argv(tmp_path, uri, dial_port), env, tmp_path) as dial,
    ):
        dial.wait_for(lambda e: e["event"] == "call_state" and e["state"] == "ringing")
        wait_until(  # the row is written when the call starts, in a thread of its own
            lambda: _results(db) == ["in_progress"],
            WAIT_TIMEOUT_S,
            "the call in progress in the history",
            alive=lambda: dial.proc.poll() is None,
        )
        dial.proc.kill()  # SIGKILL: no clean-up of any kind
        assert dial.proc.wait(timeout=RUN_TIMEOUT_S) == -signal.SIGKILL
        stop_listener(listener)
    assert history_rows(env) == [("out", uri, "interrupted")]


def _results(db: Path) -> list[str]:
    """The results in the database as another reader sees them now (read-only, no marking)."""
    if not db.exists():
        return []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [row[0] for row in conn.execute("SELECT result FROM calls")]
    except sqlite3.OperationalError:  # the schema is still being made
        return []
    finally:
        conn.close()


# ---------------------------------------------------------------------------------- 5. Ctrl-C
@pytest.mark.parametrize(
    ("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["ctrl-c", "sigterm"]
)
def test_ctrl_c_during_a_call_hangs_up(tmp_path: Path, sig: signal.Signals, code: int) -> None:
    """The call is hung up cleanly and the exit code says it was interrupted (128 + signal,
    as shells report it), not that the call succeeded."""
    listen_port, dial_port = free_ports(2)
    argv = softphone(
        tmp_path / "dial.log",
        "dial",
        f"sip:softphone@127.0.0.1:{listen_port}",
        "--json",
        "--bind",
        HOST,
        "--sip-port",
        str(dial_port),  # no --duration: talks until Ctrl-C
    )
    with (
        auto_answer_listener(tmp_path, listen_port) as listener,
        background(argv, make_env(tmp_path / "dialer"), tmp_path) as dial,
    ):
        established = dial.wait_for(
            lambda e: e["event"] == "call_state" and e["state"] == "established"
        )
        dial.proc.send_signal(sig)  # to this process only (by its pid)
        exit_code = dial.finish()
        assert "Traceback" not in dial.stderr

        far_end = listener.wait_for(lambda e: e["event"] == "call_ended")  # the BYE arrived
        assert far_end["call_id"] == established["call_id"] and far_end["answered"] is True
        stop_listener(listener)

        assert exit_code == code, dial.stderr
        (ended,) = of_kind(dial.events, "call_ended")
        assert ended["call_id"] == established["call_id"]
        assert ended["answered"] is True and ended["status"] == 200


# ---------------------------------------------------------------------------------- 6. config
def write_literal_config(path: Path) -> list[str]:
    path.write_text(ACCOUNT_TOML, encoding="utf-8")
    return ["--config", str(path)]


def write_default_config_with_save_config(path: Path) -> list[str]:
    """Two accounts written by save_config at the XDG default path; no --config needed."""
    accounts = (
        Account(name="carol", uri=SipUri.parse("sip:carol@127.0.0.1")),
        Account(name="dave", uri=SipUri.parse("sip:dave@127.0.0.1")),
    )
    save_config(Config(accounts=accounts), path)
    return []


@pytest.mark.parametrize(
    ("where", "account_args", "user", "not_user"),
    [
        ("explicit", [], "carol", "softphone@"),
        ("default", ["--account", "dave"], "dave", "carol"),
    ],
    ids=["explicit-config", "default-path-and-account"],
)
def test_dial_calls_from_the_configured_account(
    tmp_path: Path, where: str, account_args: list[str], user: str, not_user: str
) -> None:
    listen_port, dial_port = free_ports(2)
    env = make_env(tmp_path / "dialer")
    if where == "explicit":
        global_args = write_literal_config(tmp_path / "my-softphone.toml")
    else:
        global_args = write_default_config_with_save_config(
            Path(env["XDG_CONFIG_HOME"]) / "softphone" / "config.toml"
        )
    with auto_answer_listener(tmp_path, listen_port) as listener:
        result = run(
            softphone(
                tmp_path / "dial.log",
                *global_args,
                "dial",
                f"sip:softphone@127.0.0.1:{listen_port}",
                "--json",
                "--bind",
                HOST,
                "--sip-port",
                str(dial_port),
                "--duration",
                "1",
                *account_args,
            ),
            env,
            tmp_path,
        )
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
        incoming = listener.wait_for(lambda e: e["event"] == "incoming_call")
        assert f"sip:{user}@127.0.0.1" in incoming["remote"]
        assert not_user not in incoming["remote"]
        stop_listener(listener)
