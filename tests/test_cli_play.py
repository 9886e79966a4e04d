"""``softphone play``: argument checking, run for real in subprocesses (no server needed).
What it does against a real RTSP server is in tests/interop/test_rtsp_play.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cli_support import make_env

RUN_TIMEOUT_S = 20.0


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = make_env(tmp_path)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "softphone",
            "--log-file",
            str(tmp_path / "play.log"),
            "play",
            *args,
        ],
        env=env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )


def test_help_lists_the_options(tmp_path: Path) -> None:
    result = run(tmp_path, "--help")
    assert result.returncode == 0
    for option in (
        "--headless",
        "--duration",
        "--transport",
        "--json",
        "--snapshot",
        "--record",
        "--no-audio",
        "--insecure",
    ):
        assert option in result.stdout, option


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["http://example.com/stream"], "is not an RTSP URL"),
        (["rtsp://"], "is not an RTSP URL"),
        (["rtsp://127.0.0.1:9/x", "--snapshot", "shot.jpg"], "--snapshot needs a .png"),
        (["rtsp://127.0.0.1:9/x", "--snapshot", "/nonexistent-dir/shot.png"], "does not exist"),
        (["rtsp://127.0.0.1:9/x", "--record", "out.mp4"], "--record needs a .mkv"),
        (["rtsp://127.0.0.1:9/x", "--transport", "quic"], "invalid choice"),
        (["rtsp://127.0.0.1:9/x", "--duration", "0"], "positive"),
        (["rtsp://127.0.0.1:9/x", "--ca-file", "/nonexistent.pem"], "no such file"),
        (["rtsp://127.0.0.1:9/x", "--record", "~nosuchuser-sp/x.mkv"], "no such user's home"),
    ],
    ids=[
        "http-url",
        "empty-host",
        "snapshot-suffix",
        "snapshot-dir",
        "record-suffix",
        "transport",
        "duration",
        "ca-file",
        "record-home",
    ],
)
def test_bad_input_is_a_usage_error(tmp_path: Path, args: list[str], says: str) -> None:
    result = run(tmp_path, *args, "--headless")
    assert result.returncode == 2, result.stderr
    assert says in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_a_name_that_is_no_camera_lists_the_configured_ones(tmp_path: Path) -> None:
    config = tmp_path / "xdg_config_home" / "softphone" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(
        '[[camera]]\nname = "door"\nurl = "rtsp://127.0.0.1:9/door"\n', encoding="utf-8"
    )
    result = run(tmp_path, "garage", "--headless")
    assert result.returncode == 2, result.stderr
    assert "'garage' is not an RTSP URL" in result.stderr and "door" in result.stderr


def test_unreachable_server_fails_with_the_reason(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = run(tmp_path, f"rtsp://127.0.0.1:{port}/x", "--headless", "--duration", "10")
    assert result.returncode == 1
    assert "cannot play: cannot reach 127.0.0.1" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
