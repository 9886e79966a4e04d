"""The per-account ICE and TURN keys: read, checked with a clear error, written back, and ICE's
default (on with a STUN or TURN server)."""

from __future__ import annotations

from pathlib import Path

import pytest

from softphone import config as cfg

ACCOUNT = '[[account]]\nname = "a"\nuri = "sip:a@example.com"\n'
TURN = 'turn_server = "turn.example.com:3479"\nturn_username = "u"\nturn_password = "p"\n'


def load(tmp_path: Path, extra: str) -> cfg.Config:
    path = tmp_path / "config.toml"
    path.write_text(ACCOUNT + extra)
    return cfg.load_config(path)


@pytest.mark.parametrize(
    ("extra", "ice"),
    [
        ("", False),
        ('stun_server = "stun.example.com"\n', True),
        (TURN, True),
        ("ice = true\n", True),
        ('stun_server = "stun.example.com"\nice = false\n', False),
    ],
)
def test_ice_is_on_with_a_stun_or_turn_server_unless_said(
    tmp_path: Path, extra: str, ice: bool
) -> None:
    (account,) = load(tmp_path, extra).accounts
    assert account.nat.ice_enabled(account.stun_server) is ice


def test_turn_keys_are_read_and_written_back(tmp_path: Path) -> None:
    config = load(tmp_path, TURN + "ice = true\n")
    (account,) = config.accounts
    assert (account.nat.turn_server, account.nat.turn_username, account.nat.turn_password) == (
        "turn.example.com:3479",
        "u",
        "p",
    )
    (entry,) = cfg.config_to_dict(config)["account"]
    assert (entry["turn_server"], entry["turn_username"], entry["turn_password"], entry["ice"]) == (
        "turn.example.com:3479",
        "u",
        "p",
        True,
    )
    (plain,) = cfg.config_to_dict(load(tmp_path, ""))["account"]
    assert not {"turn_server", "turn_username", "turn_password", "ice"} & set(plain)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('turn_server = "a b"\nturn_username = "u"\nturn_password = "p"\n', "turn_server must be"),
        ('turn_server = "t.example.com"\n', "turn_server needs turn_username and turn_password"),
        ('turn_username = "u"\nturn_password = "p"\n', "need a turn_server"),
        ('turn_server = "t"\nturn_username = ""\nturn_password = "p"\n', "turn_username must be"),
        ('ice = "yes"\n', "ice must be true or false"),
        (TURN + "ice = false\n", "it needs ice = true"),
    ],
)
def test_bad_values_are_refused_with_the_key(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(cfg.ConfigError, match=message):
        load(tmp_path, extra)


def test_a_turn_password_in_a_readable_file_is_warned_about(tmp_path: Path) -> None:
    from softphone.config_privacy import exposed_password

    config = load(tmp_path, TURN)
    assert config.path is not None
    config.path.chmod(0o644)
    warning = exposed_password(config)
    assert warning is not None and "holds a password" in warning
