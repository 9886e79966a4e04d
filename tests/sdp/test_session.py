"""SDP parsing and serialization (RFC 8866) against captured-style fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from softphone.sdp import (
    Connection,
    Direction,
    MediaDescription,
    Origin,
    RtpMap,
    SdpParseError,
    SessionDescription,
)

DATA = Path(__file__).parent.parent / "data" / "sdp"
WELL_FORMED = [
    "baresip_offer.sdp",
    "asterisk_answer.sdp",
    "linphone_offer.sdp",
    "camera_describe.sdp",
    "rfc8866_example.sdp",
]


def load(name: str) -> bytes:
    return (DATA / name).read_bytes()


@pytest.mark.parametrize("name", WELL_FORMED)
def test_well_formed_fixtures_round_trip_byte_for_byte(name: str) -> None:
    data = load(name)
    assert data.endswith(b"\r\n")  # guard: the fixture kept its CRLF line ends
    assert bytes(SessionDescription.parse(data)) == data


def test_baresip_offer_fields() -> None:
    sd = SessionDescription.parse(load("baresip_offer.sdp"))
    assert sd.origin == Origin("-", "2237437666", 647389653, "IN", "IP4", "192.0.2.10")
    assert sd.attribute("tool") == "baresip 3.16.0"
    [audio] = sd.media
    assert (audio.media, audio.port, audio.proto) == ("audio", 8570, "RTP/AVP")
    assert audio.formats == ["96", "9", "0", "8", "101"]
    assert list(audio.rtpmaps().values()) == [
        RtpMap(96, "opus", 48000, 2),
        RtpMap(9, "G722", 8000),
        RtpMap(0, "PCMU", 8000),
        RtpMap(8, "PCMA", 8000),
        RtpMap(101, "telephone-event", 8000),
    ]
    assert audio.fmtp(96) == {
        "stereo": "1",
        "sprop-stereo": "1",
        "maxaveragebitrate": "28000",
        "cbr": "0",
        "useinbandfec": "1",
    }
    assert audio.fmtp(101) == {"0-15": ""}
    assert audio.fmtp(0) == {}
    assert audio.bandwidths == [("AS", "125")]
    assert audio.direction is Direction.SENDRECV and audio.explicit_direction is Direction.SENDRECV
    assert audio.ptime == 20 and audio.attribute("minptime") == "20"
    assert audio.rtcp_mux is False and audio.has_attribute("rtcp-rsize")
    assert audio.attribute("rtcp-rsize") is None  # a flag: present, without a value
    assert sd.media_address(audio) == "192.0.2.10"


def test_linphone_static_payload_types_without_rtpmap_use_rfc3551_defaults() -> None:
    sd = SessionDescription.parse(load("linphone_offer.sdp"))
    audio, video = sd.media
    maps = audio.rtpmaps()
    assert list(maps) == [96, 97, 98, 0, 8, 18, 101, 99, 100]  # m= order
    assert maps[0] == RtpMap(0, "PCMU", 8000)
    assert maps[8] == RtpMap(8, "PCMA", 8000)
    assert maps[18] == RtpMap(18, "G729", 8000)
    assert maps[99] == RtpMap(99, "telephone-event", 16000)
    assert audio.fmtp(18) == {"annexb": "yes"}
    assert audio.rtcp_port == 7079
    assert audio.attribute_all("rtcp-fb") == ["* trr-int 1000", "* ccm tmmbr"]
    # Same PT 96 means something else in another m= section.
    assert video.rtpmaps() == {96: RtpMap(96, "VP8", 90000)}
    assert sd.media_address(video) == "192.0.2.20"
    assert sd.first_media("video") is video


def test_camera_describe_controls_fmtp_and_recvonly() -> None:
    sd = SessionDescription.parse(load("camera_describe.sdp"))
    assert sd.session_name == "Media Presentation"
    assert sd.other == [("e", "NONE")]
    assert sd.bandwidths == [("AS", "5050")]
    assert sd.attribute("control") == (
        "rtsp://192.0.2.64:554/Streaming/Channels/101/?transportmode=unicast"
    )
    video, audio, metadata = sd.media
    assert video.control == (
        "rtsp://192.0.2.64:554/Streaming/Channels/101/trackID=1?transportmode=unicast"
    )
    assert audio.control is not None and audio.control.endswith("trackID=2?transportmode=unicast")
    assert sd.direction_of(video) is Direction.RECVONLY
    fmtp = video.fmtp(96)
    assert fmtp["packetization-mode"] == "1"
    assert fmtp["profile-level-id"] == "420029"
    # split at the first "=" only: base64 padding survives
    assert fmtp["sprop-parameter-sets"].endswith("KAA=,aO44gA==")
    assert metadata.rtpmaps() == {107: RtpMap(107, "vnd.onvif.metadata", 90000)}
    assert sd.media_address(metadata) == "0.0.0.0"


def test_sloppy_camera_is_tolerated_and_normalized() -> None:
    sd = SessionDescription.parse(load("camera_sloppy.sdp"))
    assert sd.session_name == "-"  # no s= line
    assert sd.timing == [(0, 0)]  # no t= line
    assert sd.origin.address == "127.0.0.1"  # trailing space dropped
    assert sd.connection == Connection("0.0.0.0")  # trailing tab dropped
    assert sd.attribute("control") == "*"
    video, audio = sd.media
    assert video.formats == ["96"]
    assert video.fmtp(96) == {} and video.fmtp_text(96) == ""  # "a=fmtp:96", empty
    assert audio.fmtp(8) == {}
    assert audio.rtpmaps() == {8: RtpMap(8, "PCMA", 8000)}
    assert (video.control, audio.control) == ("track1", "track2")
    assert str(sd) == (
        "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n"
        "a=control:*\r\na=range:npt=0-\r\n"
        "m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96\r\na=control:track1\r\n"
        "m=audio 0 RTP/AVP 8\r\na=fmtp:8\r\na=control:track2\r\n"
    )


def test_rfc8866_example_keeps_other_lines_multicast_and_port_count() -> None:
    sd = SessionDescription.parse(load("rfc8866_example.sdp"))
    assert [k for k, _ in sd.other] == ["i", "u", "e", "p", "r", "z", "k"]
    assert sd.connection == Connection("233.252.0.1", "IP4", "IN", ttl=127)
    assert sd.timing == [(3034423619, 3042462419)]
    audio1, audio2, video = sd.media
    assert audio1.other == [("i", "the voice")]
    assert sd.direction_of(audio2) is Direction.RECVONLY  # session-level fallback
    assert audio2.direction is Direction.SENDRECV  # the media section alone says nothing
    assert (video.port, video.port_count) == (51372, 2)
    assert video.connection == Connection("2001:db8::1", "IP6", "IN", count=3)
    assert video.other == [("k", "prompt"), ("y", "0100000001")]
    assert video.rtpmaps()[99].encoding == "h263-1998"  # case as written


def test_empty_session_name_is_written_as_a_space() -> None:
    sd = SessionDescription.parse("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns= \r\nt=0 0\r\n")
    assert sd.session_name == ""
    assert "s= \r\n" in str(sd)  # RFC 8866 §5.3


def test_lf_input_serializes_with_crlf() -> None:
    text = "v=0\no=- 1 2 IN IP6 2001:db8::2\ns=x\nt=0 0\nm=audio 4000 RTP/AVP 0\n"
    out = str(SessionDescription.parse(text))
    assert out == text.replace("\n", "\r\n")


def test_non_utf8_bytes_survive_the_round_trip() -> None:
    data = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=caf\xe9\r\nt=0 0\r\n"
    assert bytes(SessionDescription.parse(data)) == data


def test_built_description_serializes_in_rfc_order() -> None:
    media = MediaDescription(
        "audio", 5004, "RTP/AVP", ["0"], attributes=[("sendonly", None)], other=[("i", "x")]
    )
    sd = SessionDescription(
        origin=Origin("me", "7", 8, "IN", "IP4", "192.0.2.9"),
        connection=Connection.for_address("192.0.2.9"),
        attributes=[("tool", "softphone")],
        other=[("u", "http://example.test/")],
        media=[media],
    )
    assert str(sd) == (
        "v=0\r\no=me 7 8 IN IP4 192.0.2.9\r\ns=-\r\nu=http://example.test/\r\n"
        "c=IN IP4 192.0.2.9\r\nt=0 0\r\na=tool:softphone\r\n"
        "m=audio 5004 RTP/AVP 0\r\ni=x\r\na=sendonly\r\n"
    )
    assert sd.direction_of(media) is Direction.SENDONLY


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("", None, "empty description"),
        ("o=- 1 1 IN IP4 1.2.3.4\r\nv=0\r\n", 1, "must start with v="),
        ("v=0\r\ns=-\r\n", None, "missing o="),
        ("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nhello world\r\n", 3, "not a <type>=<value> line"),
        ("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\n=x\r\n", 3, "not a <type>=<value> line"),
        ("v=x\r\n", 1, "v= is not a number"),
        ("v=0\r\no=- 1 IN IP4 1.2.3.4\r\n", 2, "o= needs 6 fields"),
        ("v=0\r\no=- 1 x IN IP4 1.2.3.4\r\n", 2, "session version is not a number"),
        ("v=0\r\no=- 1 1 IN IP4 h\r\nt=0\r\n", 3, "t= needs 2 fields"),
        ("v=0\r\no=- 1 1 IN IP4 h\r\nc=IN IP4\r\n", 3, "c= needs 3 fields"),
        ("v=0\r\no=- 1 1 IN IP4 h\r\nc=IN IP4 224.0.0.1/x\r\n", 3, "c= suffix is not a number"),
        ("v=0\r\no=- 1 1 IN IP4 h\r\nm=audio\r\n", 3, "m= needs media, port and proto"),
        ("v=0\r\no=- 1 1 IN IP4 h\r\nm=audio 70000 RTP/AVP 0\r\n", 3, "out of range"),
        ("v=0\r\no=- 1 1 IN IP4 h\r\nm=audio -1 RTP/AVP 0\r\n", 3, "port is not a number"),
        ("v=0\r\no=- 1 1 IN IP4 h\r\nb=AS\r\n", 3, "bad b= line"),
        ("v=0\r\no=- 1 1 IN IP4 h\r\na=\r\n", 3, "without an attribute name"),
        ("v=0\r\no=- 1 1 IN IP4 h\r\nv=0\r\n", 3, "a second v= line"),
        ("v=0\r\no=- 1 1 IN IP4 h\r\ns=a\rb\r\n", 3, "CR or NUL"),
    ],
)
def test_malformed_text_raises_parse_error_with_line(
    text: str, line: int | None, message: str
) -> None:
    with pytest.raises(SdpParseError, match=message) as info:
        SessionDescription.parse(text)
    assert info.value.line == line


def test_direction_reversed_and_intersect() -> None:
    assert Direction.SENDONLY.reversed() is Direction.RECVONLY
    assert Direction.RECVONLY.reversed() is Direction.SENDONLY
    assert Direction.SENDRECV.reversed() is Direction.SENDRECV
    assert Direction.INACTIVE.reversed() is Direction.INACTIVE
    assert Direction.SENDRECV.intersect(Direction.SENDONLY) is Direction.SENDONLY
    assert Direction.SENDONLY.intersect(Direction.RECVONLY) is Direction.INACTIVE
    assert Direction("recvonly") is Direction.RECVONLY


def test_rtpmap_parse_and_str() -> None:
    assert RtpMap.parse("96 opus/48000/2") == RtpMap(96, "opus", 48000, 2)
    assert str(RtpMap(8, "PCMA", 8000)) == "8 PCMA/8000"
    assert str(RtpMap(96, "opus", 48000, 2)) == "96 opus/48000/2"
    for bad in ("96 opus", "x PCMU/8000", "200 PCMU/8000", "96 /8000"):
        with pytest.raises(SdpParseError):
            RtpMap.parse(bad)


def test_unreadable_attribute_values_are_skipped_by_helpers() -> None:
    sd = SessionDescription.parse(
        "v=0\r\no=- 1 1 IN IP4 h\r\nm=audio 1 RTP/AVP 96 0 77\r\n"
        "a=rtpmap:96 broken\r\na=ptime:abc\r\na=rtcp:nope\r\n"
    )
    [m] = sd.media
    assert m.rtpmaps() == {0: RtpMap(0, "PCMU", 8000)}  # 96 unreadable, 77 unknown
    assert m.ptime is None and m.rtcp_port is None


def test_fractional_ptime_is_truncated() -> None:
    m = MediaDescription("audio", 1, "RTP/AVP", ["0"], attributes=[("ptime", "30.0")])
    assert m.ptime == 30


TYPED_LINE = st.one_of(
    st.tuples(st.sampled_from("vosictbmaxkrz"), st.text(max_size=30)).map(
        lambda t: f"{t[0]}={t[1]}"
    ),
    st.sampled_from(
        [
            "m=audio 9 RTP/AVP 0 96",
            "m=video 0/2 RTP/AVP 31",
            "c=IN IP4 224.0.0.1/1/2",
            "c=IN IP6 ::1/9",
            "a=rtpmap:96 opus/48000/2",
            "a=fmtp:96",
            "a=sendonly",
            "t=1 2",
            "b=AS:1",
            "s= ",
        ]
    ),
)
HEADER = ["v=0", "o=- 1 1 IN IP4 192.0.2.1"]


@given(st.lists(TYPED_LINE, max_size=12), st.sampled_from(["\r\n", "\n"]))
def test_whatever_parses_serializes_stably(lines: list[str], eol: str) -> None:
    try:
        sd = SessionDescription.parse(eol.join(HEADER + lines))
    except SdpParseError:
        return
    once = str(sd)
    assert str(SessionDescription.parse(once)) == once
    for m in sd.media:  # the helpers never raise
        assert m.ptime is None or m.ptime >= 0
        assert all(0 <= pt <= 127 for pt in m.rtpmaps())
        assert m.rtcp_port is None or m.rtcp_port <= 65535
        assert isinstance(m.direction, Direction)
        assert all(isinstance(m.fmtp(pt), dict) for pt in m.payload_types())


@given(st.booleans(), st.lists(st.one_of(st.text(max_size=30), TYPED_LINE), max_size=12))
def test_parse_text_raises_only_parse_error(with_header: bool, lines: list[str]) -> None:
    text = "\r\n".join((HEADER if with_header else []) + lines)
    try:
        sd = SessionDescription.parse(text)
    except SdpParseError:
        return
    assert str(sd).startswith(f"v={sd.version}\r\no=")  # whatever parses has v= then o=


@given(st.binary(max_size=200))
def test_parse_bytes_raises_only_parse_error(data: bytes) -> None:
    try:
        SessionDescription.parse(data)
    except SdpParseError:
        pass
