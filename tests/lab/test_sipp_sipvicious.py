"""SIPp's scenarios and result files, and sipvicious' tables, without running either."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from softphone.lab.sipp import Sipp, percentile, read_stats, scenario_text
from softphone.lab.sipvicious import ScanRow, _table

STATS_HEADER = (
    "StartTime;ElapsedTime(C);OutgoingCall(C);SuccessfulCall(C);FailedCall(C);"
    "FailedTimeoutOnRecv(C);FailedMaxUDPRetrans(C);FailedUnexpectedMessage(C);Retransmissions(C);"
)


@pytest.mark.parametrize("name", ["scanner_flood", "call", "replacing", "refer_replaces"])
def test_the_scenarios_are_package_data_and_well_formed_xml(name: str, tmp_path: Path) -> None:
    for wav in (None, tmp_path / "speech.wav"):
        text = scenario_text(name, rtp_wav=wav)  # type: ignore[arg-type]
        assert "@@" not in text.split("-->", 1)[1]  # placeholders filled (the comment keeps them)
        root = ET.fromstring(text.encode("iso-8859-1"))
        assert root.tag == "scenario" and root.find("send") is not None
        if name == "call":
            streams = [e.get("rtp_stream") for e in root.iter("exec")]
            assert streams == ([] if wav is None else [f"{wav},-1,0"])


def test_read_stats_takes_the_last_line_and_every_answer_time(tmp_path: Path) -> None:
    stats = tmp_path / "stats.csv"
    stats.write_text(
        STATS_HEADER + "\nx;00:00:01;10;5;0;0;0;0;0;\nx;00:01:05:250000;100;97;3;2;1;0;4;\n"
    )
    rtt = tmp_path / "call_1_rtt.csv"
    rtt.write_text("Date_ms;response_time_ms;rtd_no\n1;4;answer\n2;12;answer\n3;250;answer\n")
    result = read_stats(stats, [rtt], exit_code=1)
    assert (result.created, result.successful, result.failed) == (100, 97, 3)
    assert result.timed_out == 3 and result.retransmissions == 4
    assert result.elapsed_s == pytest.approx(65.25)
    assert result.answer_ms == (4.0, 12.0, 250.0) and result.unanswered == 97
    assert result.answer_percentile(0.5) == 12.0 and result.answer_percentile(0.99) == 250.0


def test_percentile_is_the_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50.0 and percentile(values, 0.99) == 99.0
    assert percentile(values, 1.0) == 100.0 and percentile([], 0.5) is None


def test_sipp_argv_holds_the_ramp_the_users_and_the_namespace(tmp_path: Path) -> None:
    sipp = Sipp(
        tmp_path,
        "scanner_flood",
        ("203.0.113.1", 5060),
        rate=10,
        rate_increase=10,
        rate_period_s=5,
        rate_max=80,
        calls=100,
        users=["admin", "100"],
        local_host="203.0.113.2",
        prefix=("ip", "netns", "exec", "ns-b"),
    )
    argv = sipp.argv("/usr/bin/sipp")
    assert argv[:5] == ["ip", "netns", "exec", "ns-b", "/usr/bin/sipp"]
    assert argv[argv.index("-rate_max") + 1 : argv.index("-rate_max") + 3] == [
        "80",
        "-no_rate_quit",
    ]
    assert argv[argv.index("-i") + 1] == "203.0.113.2"
    assert (tmp_path / "users.csv").read_text() == "SEQUENTIAL\nadmin\n100\n"


def test_sipvicious_tables_are_read_without_their_header() -> None:
    output = (
        "+-----------+----------------+\n| Extension | Authentication |\n"
        "+===========+================+\n| alice     | noauth         |\n"
        "+-----------+----------------+\n| 100       | reqauth        |\n"
        "WARNING:TakeASip:something\n"
    )
    assert _table(output, "Extension") == [ScanRow("alice", "noauth"), ScanRow("100", "reqauth")]
    assert _table("WARNING:root:found nothing\n", "SIP Device") == []


def test_sipp_keys_fill_the_transfer_scenarios(tmp_path: Path) -> None:
    sipp = Sipp(
        tmp_path,
        "refer_replaces",
        ("127.0.0.1", 5060),
        rate=1,
        calls=1,
        keys={"target": "sip:carol@lab.test", "replaces": "a%3Bto-tag%3Db%3Bfrom-tag%3Dc"},
    )
    argv = sipp.argv("/usr/bin/sipp")
    at = argv.index("-key")
    assert argv[at : at + 6] == [
        "-key", "target", "sip:carol@lab.test",
        "-key", "replaces", "a%3Bto-tag%3Db%3Bfrom-tag%3Dc",
    ]  # fmt: skip
    xml = (tmp_path / "refer_replaces.xml").read_text()
    assert "Refer-To: <[target]?Replaces=[replaces]>" in xml and "INVITE sip:[service]" in xml
    assert "Replaces: [replaces]" in scenario_text("replacing")


def test_a_server_scenario_has_no_remote_and_its_session_interval_filled_in(
    tmp_path: Path,
) -> None:
    sipp = Sipp(tmp_path, "prack_uas", None, rate=1, calls=1, session_expires=4)
    sipp.local_port = 5099
    argv = sipp.argv("/usr/bin/sipp")
    assert argv[1] == "-sf" and argv[argv.index("-p") + 1] == "5099"
    text = (tmp_path / "prack_uas.xml").read_text()
    assert "Session-Expires: 4;refresher=uac" in text and 'timeout="4000"' in text
    assert "@@" not in text.split("-->", 1)[1]
    assert "Require: 100rel" in scenario_text("prack_uac", session_expires=90)
