"""The command line's options on either side of the command, and ``softphone dial`` against a
registrar that never answers.

The parser is tested in process (every option, both sides, twice); the commands run for real in
subprocesses, with their XDG directories under ``tmp_path`` and every wait bounded."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_support import make_env

from softphone.__main__ import GLOBAL_DEFAULTS, _settle_globals, build_parser, main
from softphone.config import Account, Config, save_config
from softphone.report import ExitCode
from softphone.sip.uri import SipUri

HOST = "127.0.0.1"
RUN_TIMEOUT_S = 30.0
TIMEOUT_S = 6  # dial --timeout against a registrar that is down


def parse(*argv: str) -> tuple[dict[str, object], str | None]:
    args = build_parser().parse_args(list(argv))
    problem = _settle_globals(args)
    return {name: getattr(args, name) for name in GLOBAL_DEFAULTS}, problem


# Each option, a value for it, and the commands it applies to (with what they need after them).
OPTIONS: dict[str, tuple[list[str], list[str], object]] = {
    # dest: (first value's argv, second value's argv, the second value parsed)
    "config": (["--config", "a.toml"], ["--config", "b.toml"], Path("b.toml")),
    "log_file": (["--log-file", "a.log"], ["--log-file", "b.log"], Path("b.log")),
    "log_level": (["--log-level", "ERROR"], ["--log-level", "DEBUG"], "DEBUG"),
    "account": (["--account", "home"], ["--account", "work"], "work"),
    "sip_port": (["--sip-port", "5062"], ["--sip-port", "5070"], 5070),
    "bind": (["--bind", "127.0.0.2"], ["--bind", "127.0.0.1"], "127.0.0.1"),
    "json": (["--json"], ["--json"], True),
}
COMMANDS = {
    "dial": ["dial", "sip:bob@example.com"],
    "listen": ["listen"],
    "play": ["play", "rtsp://camera.test/stream"],
    "devices": ["devices"],
    "tui": [],
}
APPLIES = {
    "config": set(COMMANDS),
    "log_file": set(COMMANDS),
    "log_level": set(COMMANDS),
    "account": {"dial", "listen"},
    "sip_port": {"dial", "listen", "tui"},
    "bind": {"dial", "listen"},
    "json": {"dial", "listen", "play"},
}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("option", list(OPTIONS))
def test_an_option_is_taken_on_either_side_of_the_command(option: str, command: str) -> None:
    first, second, value = OPTIONS[option]
    words = COMMANDS[command]
    if command not in APPLIES[option]:
        # Before the command: refused by name, with where it applies (never silently ignored).
        _, problem = parse(*first, *words)
        assert problem is not None and f"--{option.replace('_', '-')} does not apply" in problem
        return
    before, problem = parse(*second, *words)
    assert problem is None and before[option] == value
    if words:  # after the command (the TUI has no command to put it after)
        after, problem = parse(*words, *second)
        assert problem is None and after[option] == value
        # Given twice, on both sides or on one: the later one wins.
        twice, problem = parse(*first, *words, *second)
        assert problem is None and twice[option] == value
        twice_after, problem = parse(*words, *first, *second)
        assert problem is None and twice_after[option] == value
    # Left out, it has its default.
    default, problem = parse(*words)
    assert problem is None and default[option] == GLOBAL_DEFAULTS[option]


def test_an_option_after_a_command_it_does_not_apply_to_is_an_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["play", "rtsp://camera.test/s", "--sip-port", "5062"])
    assert exited.value.code == 2
    assert "unrecognized arguments: --sip-port 5062" in capsys.readouterr().err


def test_a_misplaced_option_exits_2_with_a_sentence(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--json"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: softphone")
    assert "softphone: --json does not apply to the full-screen interface" in err
    assert "Traceback" not in err
    assert main(["--log-level", "DEBUG", "bench", "jitter-report"]) == 2
    assert "softphone bench takes its own options" in capsys.readouterr().err


def test_dial_timeout_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["dial", "bob", "--timeout", "0"])
    assert "--timeout: must be a positive number of seconds" in capsys.readouterr().err
    assert build_parser().parse_args(["dial", "bob"]).timeout == 30.0


# --------------------------------------------------------------------------- for real
def free_udp_port() -> int:
    """A port nothing listens on once this returns (a registrar that is down)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def write_config(path: Path, registrar_port: int) -> None:
    hop = SipUri.parse(f"sip:{HOST}:{registrar_port}")
    account = Account(
        name="alice",
        uri=SipUri(user="alice", host="lab.test"),
        password="alicepw",
        registrar=hop,
        proxy=hop,
    )
    save_config(Config(accounts=(account,)), path)


def softphone(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "softphone", *args],
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )


def test_dial_to_a_registrar_that_is_down_says_why_and_gives_up_at_its_timeout(
    tmp_path: Path,
) -> None:
    """Global options after the command and before it; a dead registrar's port: dial says what
    it tries and why it waits, gives up at --timeout (not at SIP's 32 s + 32 s) with exit 7.

    --timeout counts from the command's start, and the "no answer yet" notice comes 2 s after
    the REGISTER: TIMEOUT_S leaves a loaded machine 4 s to start the phone (with --timeout 4, a
    CI run beside heavy other work gave up before the notice)."""
    port = free_udp_port()
    config = tmp_path / "softphone.toml"
    write_config(config, port)
    started = time.monotonic()
    result = softphone(
        "--log-file",
        str(tmp_path / "dial.log"),
        "--sip-port",
        "0",
        "dial",
        "bob",
        "--config",
        str(config),
        "--bind",
        HOST,
        "--no-audio",
        "--json",
        "--timeout",
        str(TIMEOUT_S),
        "--duration",
        "1",
        env=make_env(tmp_path),
        cwd=tmp_path,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == ExitCode.NETWORK, result.stderr
    assert "Traceback" not in result.stderr
    server = f"{HOST}:{port}"
    lines = result.stderr.splitlines()
    assert f"registering alice to {server} over udp" in lines
    # The notice comes 2 s after the REGISTER, when Timer F (32 s) has 30 s to go: a little
    # less when a loaded machine runs the deadline late.
    notice = f"registering alice to {server} over udp: no answer yet (retrying; gives up in "
    (gives_up,) = [line.removeprefix(notice) for line in lines if line.startswith(notice)]
    assert gives_up.endswith(" s)") and 25 <= int(gives_up.removesuffix(" s)")) <= 30, gives_up
    assert lines[-1] == (
        f"softphone: no answer from {server} over udp in {TIMEOUT_S} s (--timeout): is the registrar or "
        "proxy up, and on that port and transport?"
    )
    events = [json.loads(line) for line in result.stdout.splitlines()]
    waits = [e for e in events if e["event"] == "no_answer_yet"]
    assert [(e["request"], e["server"], e["transport"]) for e in waits][:1] == [
        ("REGISTER", server, "udp")
    ]
    # The call was tried all the same (a call does not need the registration).
    assert any(e["event"] == "call_state" and e["state"] == "calling" for e in events)
    # Bounded by --timeout, plus start-up and clean-up.
    assert TIMEOUT_S <= elapsed < TIMEOUT_S + 5.0


def test_no_echo_cancellation_turns_it_off_for_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[bool] = []

    async def listen(config: Config, args: object, reporter: object) -> int:
        seen.append(config.echo_cancellation)
        return 0

    monkeypatch.setattr("softphone.cli.run_listen", listen)
    config = tmp_path / "softphone.toml"
    save_config(Config(), config)
    common = ["listen", "--config", str(config), "--log-file", str(tmp_path / "l.log")]
    assert main([*common, "--no-echo-cancellation"]) == 0
    assert main(common) == 0
    assert seen == [False, True]  # the config's default is on
