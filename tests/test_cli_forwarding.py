"""``softphone dnd`` and ``softphone forward``: they change the config file (nothing else in it),
say each account's state (--json: one object each), and refuse bad input with exit code 2 and
the config untouched."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from softphone.__main__ import main
from softphone.config import load_config

CONFIG = """\
sip_port = 5070

[[account]]
name = "alice"
uri = "sip:alice@lab.test"
password = "alicepw"

[[account]]
name = "work"
uri = "sip:1001@pbx.test"
"""


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    path = tmp_path / "config.toml"
    path.write_text(CONFIG)
    path.chmod(0o600)
    return path


def run(config: Path, *argv: str) -> int:
    return main(["--config", str(config), *argv])


def test_dnd_on_and_off_per_account_with_the_chosen_status(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(config, "dnd", "on", "--response", "603", "--account", "work") == 0
    assert capsys.readouterr().out == "work: DND\n"
    loaded = load_config(config)
    alice, work = loaded.accounts
    assert (work.forwarding.do_not_disturb, work.forwarding.dnd_response) == (True, 603)
    assert alice.forwarding.do_not_disturb is False
    assert (loaded.sip_port, alice.password) == (5070, "alicepw")  # the rest is kept
    assert run(config, "dnd", "--json") == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(o["account"], o["do_not_disturb"], o["do_not_disturb_response"]) for o in lines] == [
        ("alice", False, 486),
        ("work", True, 603),
    ]
    assert run(config, "dnd", "off") == 0
    assert not any(a.forwarding.do_not_disturb for a in load_config(config).accounts)


def test_forward_each_kind_then_off(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(config, "forward", "busy", "1002", "--account", "alice") == 0
    assert run(config, "forward", "no-answer", "bob@example.com", "--after", "15") == 0
    capsys.readouterr()
    assert run(config, "forward") == 0
    assert capsys.readouterr().out == (
        "alice: → sip:1002@lab.test if busy, → sip:bob@example.com after 15 s\n"
        "work: → sip:bob@example.com after 15 s\n"
    )
    assert run(config, "forward", "always", "sip:carol@example.com", "--account", "work") == 0
    assert load_config(config).account("work").forwarding.always == "sip:carol@example.com"
    assert run(config, "forward", "off", "no-answer") == 0
    alice, work = load_config(config).accounts
    assert (alice.forwarding.busy, alice.forwarding.no_answer) == ("sip:1002@lab.test", None)
    assert (work.forwarding.always, work.forwarding.no_answer) == ("sip:carol@example.com", None)
    assert run(config, "forward", "off") == 0
    assert all(
        (a.forwarding.always, a.forwarding.busy) == (None, None)
        for a in load_config(config).accounts
    )


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (("forward", "always"), "forward always needs a target"),
        (("forward", "always", "<bob>"), "'<bob>' is not a SIP URI, user@host or a number"),
        (("forward", "always", "alice", "--account", "alice"), "a forwarding loop"),
        (("forward", "busy", "bob", "--after", "10"), "--after goes with no-answer"),
        (("forward", "off", "sometimes"), "say always, busy or no-answer"),
        (("dnd", "--response", "603"), "--response goes with on"),
        (("dnd", "on", "--account", "home"), "no account named 'home' (configured: alice, work)"),
    ],
)
def test_bad_input_is_refused_and_the_file_is_untouched(
    config: Path, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], error: str
) -> None:
    assert run(config, *argv) == 2
    assert error in capsys.readouterr().err
    assert config.read_text() == CONFIG


def test_an_unknown_status_or_time_is_a_usage_error(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        run(config, "dnd", "on", "--response", "480")
    assert exited.value.code == 2 and "invalid choice: 480" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run(config, "forward", "no-answer", "bob", "--after", "0")
    assert "give whole seconds from 1 to 300" in capsys.readouterr().err
    assert config.read_text() == CONFIG
