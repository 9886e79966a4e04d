"""``echo_cancellation`` in the config file (config_audio.py): on unless the file says false,
anything but true/false refused with the key named, and saved only when it is not the default."""

from __future__ import annotations

from pathlib import Path

import pytest

from softphone.config import Config, ConfigError, load_config, parse_config, save_config


def test_echo_cancellation_is_on_unless_the_file_says_otherwise() -> None:
    assert Config().echo_cancellation is True
    assert parse_config({}).echo_cancellation is True
    assert parse_config({"echo_cancellation": False}).echo_cancellation is False


@pytest.mark.parametrize("value", ["no", 0, 1, "false"])
def test_anything_but_true_or_false_is_refused(value: object) -> None:
    with pytest.raises(ConfigError, match=r"^config: echo_cancellation must be true or false"):
        parse_config({"echo_cancellation": value})


def test_it_is_saved_only_when_switched_off(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    save_config(Config(echo_cancellation=False), path)
    assert "echo_cancellation = false" in path.read_text()
    assert load_config(path).echo_cancellation is False
    save_config(Config(echo_cancellation=True), path)
    assert "echo_cancellation" not in path.read_text()
    assert load_config(path).echo_cancellation is True
