"""``softphone bench setup --topology ice-*``: reading two namespaces' wires (the INVITE leaving
the caller, the first media arriving at each end, relayed media inside TURN ChannelData), and
one real run of the command in the NAT lab."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from lab_support import skip_or_fail

from softphone.bench.call_setup import SetupTime
from softphone.bench.call_setup_ice import is_media, measure
from softphone.lab.sniff import Datagram

CALLER, CALLEE, REGISTRAR = "192.168.1.100", "192.168.2.100", "203.0.113.10"
RTP = bytes([0x80, 111, 0, 1]) + bytes(12)
RTCP = bytes([0x81, 200, 0, 6]) + bytes(12)
STUN = bytes([0x00, 0x01, 0, 0x48, 0x21, 0x12, 0xA4, 0x42]) + bytes(8)
# TURN ChannelData (RFC 8656 §12.4): channel 0x4000, length, then the RTP it carries.
RELAYED_RTP = bytes([0x40, 0x00, 0x00, 0x1C]) + RTP[:12]
RELAYED_RTCP = bytes([0x40, 0x01, 0x00, 0x1C]) + RTCP[:12]
INVITE = b"INVITE sip:bob@lab.test SIP/2.0\r\n"


def dgram(at: float, src: str, dst: str, head: bytes, out: bool = False) -> Datagram:
    return Datagram(at, out, (src, 4000), (dst, 5000), head)


def test_media_is_rtp_plain_or_in_turn_channel_data_and_never_stun_or_rtcp() -> None:
    assert is_media(RTP) and is_media(RELAYED_RTP)
    assert not is_media(RTCP) and not is_media(RELAYED_RTCP) and not is_media(STUN)
    assert not is_media(bytes([0x40, 0x00, 0x00]))  # too short to hold anything


def test_first_media_into_each_namespace_after_the_callers_invite() -> None:
    caller = [
        dgram(0.5, "203.0.113.2", CALLER, RTP),  # before the INVITE: an earlier call's
        dgram(1.0, CALLER, REGISTRAR, INVITE, out=True),
        dgram(1.1, CALLER, "203.0.113.2", RTP, out=True),  # ours leaving: not arriving
        dgram(1.2, "203.0.113.30", CALLER, STUN),
        dgram(3.4, "203.0.113.30", CALLER, RELAYED_RTP),  # the far end's, through the relay
        dgram(3.5, "203.0.113.2", CALLER, RTP),
    ]
    callee = [
        dgram(1.01, REGISTRAR, CALLEE, INVITE),  # the proxy's INVITE is not the caller's
        dgram(3.2, "203.0.113.1", CALLEE, RTCP),
        dgram(3.3, "203.0.113.1", CALLEE, RTP),
    ]
    found = measure(list(reversed(caller)), callee, CALLER)
    assert found == SetupTime(1.0, at_callee=3.3, at_caller=3.4)
    assert round(found.both_ways_ms or 0.0, 3) == 2400.0


def test_no_invite_from_the_caller_is_no_measurement() -> None:
    assert measure([dgram(1.0, REGISTRAR, CALLER, INVITE)], [], CALLER) is None
    one_way = measure(
        [dgram(1.0, CALLER, REGISTRAR, INVITE, out=True)],
        [dgram(1.5, "203.0.113.1", CALLEE, RTP)],
        CALLER,
    )
    assert one_way is not None and not one_way.complete


@pytest.mark.interop
def test_bench_setup_with_ice_host_candidates_measures_both_callers(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        skip_or_fail("the NAT lab's namespaces and sniffers need root")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "softphone",
            "bench",
            "setup",
            "--topology",
            "ice-host",
            "--calls",
            "1",
            "--json",
            "--workdir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    (row,) = result["topologies"]
    assert row["topology"] == "ice-host"
    for who in ("softphone", "baresip"):
        assert row[who]["calls"] == 1 and 0 < row[who]["median_ms"] < 20_000, row
    assert row["median_ratio"] > 0
