"""The per-account ``prack`` and ``session_expires`` keys: read, checked with a clear error,
written back, and spelled as the SIP core spells them."""

from __future__ import annotations

from pathlib import Path

import pytest

from softphone import config as cfg
from softphone import config_calls
from softphone.sip import reliable, session_timer

ACCOUNT = '[[account]]\nname = "a"\nuri = "sip:a@example.com"\n'


def load(tmp_path: Path, extra: str) -> cfg.Config:
    path = tmp_path / "config.toml"
    path.write_text(ACCOUNT + extra)
    return cfg.load_config(path)


def test_defaults_are_supported_and_1800(tmp_path: Path) -> None:
    (account,) = load(tmp_path, "").accounts
    assert (account.prack, account.session_expires) == ("supported", 1800)


def test_values_are_read_and_written_back(tmp_path: Path) -> None:
    config = load(tmp_path, 'prack = "required"\nsession_expires = 90\n')
    (account,) = config.accounts
    assert (account.prack, account.session_expires) == ("required", 90)
    (entry,) = cfg.config_to_dict(config)["account"]
    assert (entry["prack"], entry["session_expires"]) == ("required", 90)
    (off,) = load(tmp_path, "session_expires = 0\n").accounts
    assert off.session_expires == 0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('prack = "always"\n', "prack must be one of off, supported, required (not 'always')"),
        ("session_expires = 60\n", "session_expires must be 0 (no session timer) or a whole"),
        ("session_expires = 100000\n", "from 90 (RFC 4028's smallest) to 86400, not 100000"),
        ('session_expires = "1800"\n', "not '1800'"),
        ("session_expires = true\n", "not True"),
    ],
)
def test_bad_values_are_refused_with_a_clear_error(
    tmp_path: Path, extra: str, message: str
) -> None:
    with pytest.raises(cfg.ConfigError, match="account") as info:
        load(tmp_path, extra)
    assert message in str(info.value)


def test_the_config_spells_them_as_the_sip_core_does() -> None:
    assert config_calls.PRACK_MODES == reliable.PRACK_MODES
    assert config_calls.MIN_SE_S == session_timer.MIN_SE_S
    assert config_calls.DEFAULT_SESSION_EXPIRES_S == session_timer.DEFAULT_SESSION_EXPIRES_S
