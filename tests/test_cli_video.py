"""The video options of ``dial`` and ``listen`` (softphone/cli_video.py) and the config's
``video_device``: what the phone is told to send as video."""

from __future__ import annotations

from pathlib import Path

import pytest

from softphone.__main__ import build_parser
from softphone.cli_video import video_settings
from softphone.config import Config, ConfigError, config_to_dict, parse_config
from softphone.phone.video import VideoSettings


def settings(argv: list[str], config: Config | None = None) -> VideoSettings:
    return video_settings(config or Config(), build_parser().parse_args(argv))


def test_no_option_sends_nothing_and_offers_nothing() -> None:
    assert settings(["dial", "sip:bob@example.com"]) == VideoSettings()
    assert not VideoSettings().can_send


def test_video_sends_the_test_pattern_or_the_configured_camera() -> None:
    assert settings(["dial", "sip:bob@example.com", "--video"]) == VideoSettings(
        source="pattern", offer=True
    )
    camera = Config(video_device="/dev/video2")
    assert settings(["listen", "--video"], camera) == VideoSettings(
        source="camera", path="/dev/video2", offer=True
    )


def test_video_file_sends_the_file(tmp_path: Path) -> None:
    clip = tmp_path / "clip.webm"
    clip.write_bytes(b"x")
    got = settings(["dial", "sip:bob@example.com", "--video-file", str(clip)])
    assert got == VideoSettings(source="file", path=str(clip), offer=True)


def test_a_missing_video_file_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["dial", "sip:bob@example.com", "--video-file", "/nope.mp4"])
    assert exc.value.code == 2
    assert "no such video file: /nope.mp4" in capsys.readouterr().err


def test_video_device_is_read_checked_and_saved() -> None:
    config = parse_config({"video_device": "/dev/video0"})
    assert config.video_device == "/dev/video0"
    assert config_to_dict(config)["video_device"] == "/dev/video0"
    with pytest.raises(ConfigError, match="video_device must be a device path"):
        parse_config({"video_device": 3})
