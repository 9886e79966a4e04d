"""RTP/RTCP packets: hand-laid byte fixtures round-trip, negative twins, demux, fuzzing."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from softphone.rtp.errors import RtpError, RtpParseError
from softphone.rtp.packet import (
    RtcpBye,
    RtcpPacket,
    RtcpReceiverReport,
    RtcpReportBlock,
    RtcpSdesChunk,
    RtcpSdesItem,
    RtcpSenderReport,
    RtcpSourceDescription,
    RtcpUnknown,
    RtpPacket,
    SdesItemType,
    is_rtcp,
    parse_rtcp,
    plain_rtp_bytes,
)

DATA = Path(__file__).resolve().parent.parent / "data" / "rtp"
FAST = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def load(name: str) -> bytes:
    return (DATA / name).read_bytes()


# --- RTP ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["rtp_pcmu.bin", "rtp_full.bin"])
def test_rtp_fixture_round_trips_byte_for_byte(name: str) -> None:
    data = load(name)
    assert bytes(RtpPacket.parse(data)) == data


def test_rtp_plain_packet_fields() -> None:
    packet = RtpPacket.parse(load("rtp_pcmu.bin"))
    assert packet == RtpPacket(
        payload_type=0, sequence=0x1234, timestamp=0xA0B0, ssrc=0xDEADBEEF, payload=b"\xff" * 160
    )


def test_rtp_csrcs_extension_padding_and_marker() -> None:
    packet = RtpPacket.parse(load("rtp_full.bin"))
    assert packet.marker is True
    assert packet.payload_type == 111
    assert (packet.sequence, packet.timestamp, packet.ssrc) == (0xFFFF, 0xFFFFFFF0, 0x01020304)
    assert packet.csrcs == (0x11111111, 0x22222222)
    assert packet.extension_profile == 0xBEDE
    assert packet.extension == bytes.fromhex("10aa0000")
    assert packet.payload == bytes.fromhex("fc010203")  # the 3 padding octets are not payload
    assert packet.padding_length == 3


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("rtp_version1.bin", "RTP version must be 2, not 1"),
        ("rtp_short_csrc.bin", "RTP packet is too short for its 3 CSRCs"),
        ("rtp_bad_padding.bin", "RTP padding length 9 is invalid with 2 octets after the header"),
        ("rtp_short_extension.bin", "RTP packet is too short for its header extension"),
    ],
)
def test_rtp_negative_twin_gives_exact_error(name: str, message: str) -> None:
    with pytest.raises(RtpParseError) as info:
        RtpPacket.parse(load(name))
    assert str(info.value) == message


def test_rtp_shorter_than_fixed_header() -> None:
    with pytest.raises(RtpParseError) as info:
        RtpPacket.parse(load("rtp_pcmu.bin")[:11])
    assert str(info.value) == "RTP packet is too short (11 bytes, the fixed header is 12)"


@pytest.mark.parametrize(
    "fields",
    [
        {"payload_type": 128},
        {"sequence": 65536},
        {"timestamp": -1},
        {"csrcs": tuple(range(16))},
        {"extension": b"\x00" * 4},  # without a profile
        {"extension_profile": 1, "extension": b"\x00" * 3},
        {"padding_length": 256},
    ],
)
def test_rtp_out_of_range_fields_are_our_bug(fields: dict[str, object]) -> None:
    base: dict[str, object] = {"payload_type": 0, "sequence": 0, "timestamp": 0, "ssrc": 0}
    with pytest.raises(RtpError) as info:
        RtpPacket(**{**base, **fields})  # type: ignore[arg-type]
    assert not isinstance(info.value, RtpParseError)


# --- RTCP ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["rtcp_sr_sdes.bin", "rtcp_rr_sdes_bye.bin", "rtcp_rr_app.bin"])
def test_rtcp_fixture_round_trips_byte_for_byte(name: str) -> None:
    data = load(name)
    assert b"".join(bytes(p) for p in parse_rtcp(data)) == data


def test_rtcp_sender_report_and_sdes_fields() -> None:
    sr, sdes = parse_rtcp(load("rtcp_sr_sdes.bin"))
    assert sr == RtcpSenderReport(
        ssrc=0x01020304,
        ntp_timestamp=0xE8A1B2C3_80000000,
        rtp_timestamp=0x12345,
        packet_count=100,
        octet_count=16000,
        reports=(
            RtcpReportBlock(
                ssrc=0xDEADBEEF,
                fraction_lost=0x40,
                packets_lost=5,
                highest_sequence=0x11234,
                jitter=0x50,
                lsr=0xB2C38000,
                dlsr=0x10000,
            ),
        ),
    )
    assert isinstance(sdes, RtcpSourceDescription)
    assert [c.cname for c in sdes.chunks] == ["alice@example.test"]


def test_rtcp_receiver_report_sdes_and_bye_fields() -> None:
    rr, sdes, bye = parse_rtcp(load("rtcp_rr_sdes_bye.bin"))
    assert rr == RtcpReceiverReport(ssrc=0xDEADBEEF)
    assert sdes == RtcpSourceDescription(
        chunks=(RtcpSdesChunk(ssrc=0xDEADBEEF, items=(RtcpSdesItem(type=1, value=b"bob"),)),)
    )
    assert bye == RtcpBye(sources=(0xDEADBEEF,), reason="hang up")


def test_rtcp_unknown_packet_types_are_kept_not_errors() -> None:
    rr, app = parse_rtcp(load("rtcp_rr_app.bin"))
    assert isinstance(rr, RtcpReceiverReport) and rr.reports[0].highest_sequence == 0xFFFF
    assert app == RtcpUnknown(
        packet_type=204,
        count=1,
        body=bytes.fromhex("deadbeef") + b"TEST" + bytes.fromhex("01020304"),
    )


def test_negative_cumulative_loss_is_signed_24_bit() -> None:
    block = RtcpReportBlock(
        ssrc=1, fraction_lost=0, packets_lost=-3, highest_sequence=9, jitter=0, lsr=0, dlsr=0
    )
    data = bytes(RtcpReceiverReport(ssrc=2, reports=(block,)))
    assert data[12:16] == bytes.fromhex("00fffffd")
    (rr,) = parse_rtcp(data)
    assert isinstance(rr, RtcpReceiverReport) and rr.reports == (block,)


def test_padding_on_the_last_packet_is_removed() -> None:
    plain = load("rtcp_rr_sdes_bye.bin")
    # Set P on the BYE (the last packet, at offset 24) and append 4 padding octets to it.
    padded = bytearray(plain + bytes.fromhex("00000004"))
    padded[24] |= 0x20
    padded[26:28] = (4).to_bytes(2, "big")  # BYE length 3 -> 4 words
    assert parse_rtcp(bytes(padded)) == parse_rtcp(plain)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("rtcp_sr_overrun.bin", "RTCP length field overruns the datagram (offset 0)"),
        ("rtcp_padding_not_last.bin", "RTCP padding is allowed only on the last packet (offset 0)"),
        (
            "rtcp_starts_with_sdes.bin",
            "a compound RTCP packet must start with SR or RR, not type 202",
        ),
        ("rtcp_sdes_unterminated.bin", "RTCP SDES chunk 0 is not terminated"),
        ("rtcp_rr_short_blocks.bin", "RTCP RR is too short for 1 report blocks"),
        ("rtcp_bye_reason_overrun.bin", "RTCP BYE reason overruns the packet"),
    ],
)
def test_rtcp_negative_twin_gives_exact_error(name: str, message: str) -> None:
    with pytest.raises(RtpParseError) as info:
        parse_rtcp(load(name))
    assert str(info.value) == message


def test_reduced_size_rtcp_may_start_with_any_packet() -> None:
    (sdes,) = parse_rtcp(load("rtcp_starts_with_sdes.bin"), reduced_size=True)
    assert isinstance(sdes, RtcpSourceDescription) and sdes.chunks[0].cname == "bob"


def test_rtcp_serializes_what_it_builds() -> None:
    packets: list[RtcpPacket] = [
        RtcpReceiverReport(ssrc=7),
        RtcpSourceDescription(
            chunks=(
                RtcpSdesChunk(
                    ssrc=7, items=(RtcpSdesItem(type=SdesItemType.CNAME, value=b"x" * 4),)
                ),
                RtcpSdesChunk(ssrc=8),
            )
        ),
        RtcpBye(sources=(7, 8), reason="done"),
    ]
    data = b"".join(map(bytes, packets))
    assert len(data) % 4 == 0
    assert parse_rtcp(data) == packets


# --- RFC 5761 §4 demultiplexing -------------------------------------------------------------------
@pytest.mark.parametrize("name", ["rtcp_sr_sdes.bin", "rtcp_rr_sdes_bye.bin", "rtcp_rr_app.bin"])
def test_is_rtcp_recognises_rtcp(name: str) -> None:
    assert is_rtcp(load(name))


@pytest.mark.parametrize("payload_type", [0, 8, 9, 18, 96, 101, 111, 127])
@pytest.mark.parametrize("marker", [False, True])
def test_is_rtcp_leaves_usable_payload_types_to_rtp(payload_type: int, marker: bool) -> None:
    packet = RtpPacket(payload_type=payload_type, sequence=1, timestamp=2, ssrc=3, marker=marker)
    assert not is_rtcp(bytes(packet))


def test_is_rtcp_rejects_junk() -> None:
    assert not is_rtcp(b"")
    assert not is_rtcp(b"\x80")
    assert not is_rtcp(b"\x40\xc8\x00\x01")  # version 1


# --- fuzzing: parse raises nothing but RtpParseError ------------------------------------------------
FIXTURES = [p.read_bytes() for p in sorted(DATA.glob("*.bin"))]


@st.composite
def mutated_fixture(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(FIXTURES)))
    for _ in range(draw(st.integers(1, 6))):
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        kind = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        if kind == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete" and data:
            del data[pos : pos + draw(st.integers(1, 8))]
        else:
            del data[pos:]
    return bytes(data)


DATAGRAMS = st.one_of(st.binary(max_size=200), mutated_fixture())


@FAST
@given(DATAGRAMS)
def test_rtp_parse_raises_only_parse_errors(data: bytes) -> None:
    try:
        packet = RtpPacket.parse(data)
    except RtpParseError:
        return
    # Whatever parses survives a round trip (padding octets are rewritten as zeros).
    assert RtpPacket.parse(bytes(packet)) == packet


@FAST
@given(DATAGRAMS, st.booleans())
def test_rtcp_parse_raises_only_parse_errors(data: bytes, reduced_size: bool) -> None:
    try:
        packets = parse_rtcp(data, reduced_size=reduced_size)
    except RtpParseError:
        return
    assert packets  # a datagram that parses holds at least one packet
    again = parse_rtcp(b"".join(map(bytes, packets)), reduced_size=reduced_size)
    assert again == packets  # and what was parsed serializes back to the same packets


@FAST
@given(
    st.builds(
        RtpPacket,
        payload_type=st.integers(0, 127),
        sequence=st.integers(0, 65535),
        timestamp=st.integers(0, 2**32 - 1),
        ssrc=st.integers(0, 2**32 - 1),
        marker=st.booleans(),
        csrcs=st.lists(st.integers(0, 2**32 - 1), max_size=15).map(tuple),
        extension_profile=st.one_of(st.none(), st.integers(0, 65535)),
        payload=st.binary(max_size=64),
        padding_length=st.integers(0, 255),
    )
)
def test_rtp_built_packets_round_trip(packet: RtpPacket) -> None:
    assert RtpPacket.parse(bytes(packet)) == packet


# --- the sending shortcut -------------------------------------------------------------------------
@FAST
@given(
    payload_type=st.integers(0, 127),
    sequence=st.integers(0, 0xFFFF),
    timestamp=st.integers(0, 0xFFFF_FFFF),
    ssrc=st.integers(0, 0xFFFF_FFFF),
    marker=st.booleans(),
    payload=st.binary(max_size=200),
)
def test_plain_rtp_bytes_are_the_packets_octets(
    payload_type: int, sequence: int, timestamp: int, ssrc: int, marker: bool, payload: bytes
) -> None:
    fields = dict(payload_type=payload_type, sequence=sequence, timestamp=timestamp, ssrc=ssrc)
    data = plain_rtp_bytes(**fields, marker=marker, payload=payload)
    assert data == bytes(RtpPacket(**fields, marker=marker, payload=payload))
    assert RtpPacket.parse(data) == RtpPacket(**fields, marker=marker, payload=payload)


@pytest.mark.parametrize(
    ("name", "value", "bits"),
    [
        ("payload_type", 128, 7),
        ("payload_type", -1, 7),
        ("sequence", 0x10000, 16),
        ("timestamp", 1 << 32, 32),
        ("ssrc", -1, 32),
    ],
)
def test_plain_rtp_bytes_refuse_what_the_packet_refuses(name: str, value: int, bits: int) -> None:
    fields = {"payload_type": 0, "sequence": 1, "timestamp": 2, "ssrc": 3, name: value}
    message = f"{name} must fit in {bits} bits, got {value}"
    with pytest.raises(RtpError, match=message):
        RtpPacket(**fields)
    with pytest.raises(RtpError, match=message):
        plain_rtp_bytes(**fields, marker=False, payload=b"")
