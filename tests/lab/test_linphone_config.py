"""The linphonec lab phone without linphonec: its configuration file, argv, environment and
the parsing of the call events it prints (lines as liblinphone 5.1's linphonec writes them)."""

from __future__ import annotations

import configparser
from pathlib import Path

import pytest

from softphone.lab.linphone import ASOUNDRC, CallEvent, CallEventKind, Linphone, parse_event
from softphone.lab.process import LabError


class FakeKamailio:
    udp_port = 5070


def phone(tmp_path: Path, **options: object) -> Linphone:
    lp = Linphone(tmp_path, kamailio=FakeKamailio(), user="carol", **options)  # type: ignore[arg-type]
    lp.sip_port = 40000
    return lp


def rc(lp: Linphone) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(lp.rc_text())
    return parser


def test_the_account_registers_and_routes_through_the_lab_proxy_over_udp(tmp_path: Path) -> None:
    config = rc(phone(tmp_path))
    assert config["proxy_0"]["reg_proxy"] == "<sip:127.0.0.1:5070;transport=udp>"
    assert config["proxy_0"]["reg_route"] == "<sip:127.0.0.1:5070;transport=udp;lr>"
    assert config["proxy_0"]["reg_identity"] == '"carol" <sip:carol@lab.test>'
    assert config["auth_info_0"]["username"] == "carol"
    assert config["auth_info_0"]["passwd"] == "carolpw"
    assert config["auth_info_0"]["realm"] == "lab.test"
    sip = config["sip"]
    assert (sip["sip_port"], sip["sip_tcp_port"], sip["sip_tls_port"]) == ("40000", "0", "0")
    assert sip["bind_address"] == "127.0.0.1"
    # No GRUU: a Contact of sip:carol@lab.test;gr=... is unreachable through the lab proxy.
    assert "gruu" not in sip["supported"] and "replaces" in sip["supported"]


def test_100rel_and_session_timers_are_off_unless_asked_for(tmp_path: Path) -> None:
    plain = rc(phone(tmp_path))["sip"]
    assert plain["100rel_support_level"] == "0"
    assert plain["session_expires_enabled"] == "0"
    asked = rc(phone(tmp_path, rel100="mandatory", session_expires_s=90))["sip"]
    assert asked["100rel_support_level"] == "2"
    assert asked["session_expires_enabled"] == "1"
    assert asked["session_expires_value"] == "90"
    assert rc(phone(tmp_path, rel100="optional"))["sip"]["100rel_support_level"] == "1"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"user": "mallory"}, "Kamailio knows users"),
        ({"rel100": "always"}, "rel100 is one of"),
        ({"session_expires_s": 30}, "at least 90 s"),
    ],
)
def test_bad_options_are_refused_with_a_clear_error(
    tmp_path: Path, options: dict[str, object], message: str
) -> None:
    with pytest.raises(LabError, match=message):
        Linphone(tmp_path, kamailio=FakeKamailio(), **options)  # type: ignore[arg-type]


def test_argv_asks_for_state_messages_and_the_log_level_and_answering(tmp_path: Path) -> None:
    argv = phone(tmp_path).argv("/usr/bin/linphonec")
    core = argv[argv.index("/usr/bin/linphonec") :]
    assert core == ["/usr/bin/linphonec", "-c", str(tmp_path / "linphonerc"), "-S", "-d", "0"]
    traced = phone(tmp_path, sip_trace=True, auto_answer=True).argv("/usr/bin/linphonec")
    assert traced[-3:] == ["-d", "6", "-a"]


def test_video_is_off_unless_asked_and_then_headless(tmp_path: Path) -> None:
    plain = phone(tmp_path)
    assert rc(plain)["video"]["enabled"] == "0" and rc(plain)["video"]["capture"] == "0"
    assert "-C" not in plain.argv("/usr/bin/linphonec")
    lp = phone(tmp_path, video=True)
    video = rc(lp)["video"]
    assert (video["enabled"], video["capture"], video["display"]) == ("1", "1", "1")
    assert video["automatically_initiate"] == video["automatically_accept"] == "1"
    assert video["displaytype"] == "MSExtDisplay"  # no window
    assert rc(lp)["rtp"]["video_rtp_port"] == "40202-40400"  # apart from the audio's
    assert lp.argv("/usr/bin/linphonec")[-2:] == ["-C", "-D"]  # not -V: no preview window


def test_a_snapshot_path_with_blanks_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LabError, match="without blanks"):
        phone(tmp_path, video=True).snapshot(tmp_path / "a b.jpg")


def test_it_runs_in_a_home_of_its_own_with_no_usable_sound_card(tmp_path: Path) -> None:
    assert phone(tmp_path).env()["HOME"] == str(tmp_path)
    assert "type hw" in ASOUNDRC and "card 31" in ASOUNDRC
    assert "null" not in ASOUNDRC  # the null PCM hangs linphonec when streams restart


@pytest.mark.parametrize(
    ("line", "event"),
    [
        (
            'Receiving new incoming call from "alice" <sip:alice@lab.test>, assigned id 2',
            CallEvent(CallEventKind.INCOMING, 2, '"alice" <sip:alice@lab.test>'),
        ),
        (
            "linphonec> Call 1 to sip:bob@lab.test ringing.",
            CallEvent(CallEventKind.RINGING, 1, "sip:bob@lab.test"),
        ),
        (
            "Call 3 with sip:bob@lab.test connected.",
            CallEvent(CallEventKind.CONNECTED, 3, "sip:bob@lab.test"),
        ),
        (
            "Media streams established with sip:bob@lab.test for call 1 (audio).",
            CallEvent(CallEventKind.STREAMS_RUNNING, 1, "sip:bob@lab.test"),
        ),
        (
            'Call 1 has been paused by "carol" <sip:carol@lab.test>.',
            CallEvent(CallEventKind.PAUSED_BY_REMOTE, 1, '"carol" <sip:carol@lab.test>'),
        ),
        (
            "Call 1 with sip:alice@lab.test ended (Call terminated).",
            CallEvent(CallEventKind.ENDED, 1, "sip:alice@lab.test"),
        ),
        (
            "Call 4 with sip:bob@lab.test error.",
            CallEvent(CallEventKind.ERROR, 4, "sip:bob@lab.test"),
        ),
        ("2026-12-07 04:39:14:379 belle-sip-message-Transaction deleted", None),
        ("registered: yes", None),
    ],
)
def test_call_events_are_read_from_its_output(line: str, event: CallEvent | None) -> None:
    assert parse_event(line) == event


def test_commands_are_single_non_empty_lines(tmp_path: Path) -> None:
    lp = phone(tmp_path)
    with pytest.raises(LabError, match="one non-empty command line"):
        lp.command("call sip:bob@lab.test\nquit")
    with pytest.raises(LabError, match="one non-empty command line"):
        lp.command("   ")
    with pytest.raises(LabError, match="never started"):
        lp.command("calls")
