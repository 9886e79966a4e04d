"""Forwarding and do-not-disturb in the [[account]] table: what loads, what is written back,
and the errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from softphone.config import ConfigError, config_to_dict, load_config, parse_config
from softphone.config_forwarding import Forwarding

BASE = {"name": "alice", "uri": "sip:alice@lab.test"}


def account(**keys: object) -> dict[str, object]:
    return {"account": [{**BASE, **keys}]}


def test_every_key_loads_with_targets_made_uris() -> None:
    config = parse_config(
        account(
            forward_always="sip:bob@example.com",
            forward_busy="1002",
            forward_no_answer="carol@pbx.example.com",
            forward_no_answer_after=15,
            do_not_disturb=True,
            do_not_disturb_response=603,
        )
    )
    assert config.account().forwarding == Forwarding(
        always="sip:bob@example.com",
        busy="sip:1002@lab.test",  # a number is on the account's domain
        no_answer="sip:carol@pbx.example.com",
        no_answer_after_s=15,
        do_not_disturb=True,
        dnd_response=603,
    )


def test_an_account_without_the_keys_rings_as_before() -> None:
    forwarding = parse_config(account()).account().forwarding
    assert forwarding == Forwarding() and forwarding.summary() is None
    assert (forwarding.no_answer_after_s, forwarding.dnd_response) == (20, 486)


def test_written_back_as_read_and_defaults_left_out(tmp_path: Path) -> None:
    keys = {"forward_busy": "sip:1002@lab.test", "do_not_disturb": True}
    written = config_to_dict(parse_config(account(**keys)))["account"][0]
    assert {k: v for k, v in written.items() if k.startswith(("forward", "do_not"))} == keys
    assert "do_not_disturb_response" not in written and "forward_no_answer_after" not in written


@pytest.mark.parametrize(
    ("keys", "error"),
    [
        (
            {"forward_always": "sip:bob@exa mple.com"},
            "account 'alice': forward_always 'sip:bob@exa mple.com' is not a SIP URI",
        ),
        ({"forward_busy": "<bob>"}, "forward_busy '<bob>' is not a SIP URI, user@host or a number"),
        ({"forward_no_answer": ""}, "forward_no_answer is empty"),
        ({"forward_always": 1002}, "forward_always must be a string"),
        ({"forward_always": "alice"}, "forward_always 'alice' is this account itself"),
        (
            {"forward_no_answer": "bob", "forward_no_answer_after": 0},
            "forward_no_answer_after must be a whole number of seconds from 1 to 300 (not 0)",
        ),
        ({"forward_no_answer_after": 301}, "from 1 to 300 (not 301)"),
        ({"forward_no_answer_after": True}, "from 1 to 300 (not True)"),
        ({"do_not_disturb": "yes"}, "do_not_disturb must be true or false"),
        (
            {"do_not_disturb_response": 480},
            "do_not_disturb_response must be 486 (Busy Here) or 603 (Decline), not 480",
        ),
        ({"do_not_disturb_response": "busy"}, "not 'busy'"),
    ],
)
def test_a_bad_key_is_a_clear_error(keys: dict[str, object], error: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(account(**keys))
    assert error in str(caught.value)


def test_the_status_line_summary() -> None:
    assert Forwarding(do_not_disturb=True).summary() == "DND"
    assert Forwarding(always="sip:bob@x").summary() == "→ sip:bob@x"
    assert Forwarding(busy="sip:b@x", no_answer="sip:n@x", no_answer_after_s=9).summary() == (
        "→ sip:b@x if busy, → sip:n@x after 9 s"
    )
    # forwarding always makes the others moot; with DND both are said
    assert Forwarding(always="sip:a@x", busy="sip:b@x", do_not_disturb=True).summary() == (
        "→ sip:a@x, DND"
    )


def test_a_file_with_forwarding_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        '[[account]]\nname = "alice"\nuri = "sip:alice@lab.test"\n'
        'forward_no_answer = "sip:voicemail@lab.test"\nforward_no_answer_after = 5\n'
    )
    config = load_config(path)
    assert config.account().forwarding.no_answer == "sip:voicemail@lab.test"
    assert parse_config(config_to_dict(config)) == parse_config(config_to_dict(config))
    assert parse_config(config_to_dict(config)).account().forwarding.no_answer_after_s == 5


def test_voicemail_keys_load_and_are_checked(tmp_path: Path) -> None:
    greeting = tmp_path / "hello.wav"
    greeting.write_bytes(b"RIFF")
    forwarding = (
        parse_config(
            {
                **account(voicemail=True, voicemail_after=12, voicemail_max=2),
                "voicemail_dir": str(tmp_path / "vm"),
            }
        )
        .account()
        .forwarding
    )
    assert (forwarding.voicemail, forwarding.voicemail_after_s, forwarding.voicemail_max_s) == (
        True,
        12,
        120,
    )
    config = parse_config({**account(voicemail_greeting=str(greeting)), "voicemail_dir": "/v"})
    assert config.account().forwarding.voicemail_greeting == greeting
    assert config.voicemail_dir == Path("/v")
    again = config_to_dict(config)
    assert again["voicemail_dir"] == "/v"
    assert again["account"][0]["voicemail_greeting"] == str(greeting)
    for keys, error in (
        ({"voicemail": 1}, "voicemail must be true or false"),
        ({"voicemail_after": 0}, "voicemail_after must be a whole number of seconds from 1 to 300"),
        ({"voicemail_max": 31}, "voicemail_max must be a whole number of minutes from 1 to 30"),
        ({"voicemail_greeting": str(tmp_path / "no.wav")}, "no.wav': no such file"),
    ):
        with pytest.raises(ConfigError) as caught:
            parse_config(account(**keys))
        assert error in str(caught.value)
