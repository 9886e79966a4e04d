"""Lenient SDP for DESCRIBE bodies (RFC 2326 §C): the camera quirks that
``SessionDescription.parse(lenient=True)`` tolerates, and that the strict SIP parse still refuses."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from softphone.sdp import Connection, RtpMap, SdpParseError, SessionDescription

HEAD = "v=0\r\no=- 1 1 IN IP4 10.0.0.5\r\ns=-\r\nt=0 0\r\n"


@pytest.mark.parametrize(
    ("text", "strict_error"),
    [
        ("v=0\r\ns=cam\r\nm=video 0 RTP/AVP 96\r\n", "missing o= line"),
        (HEAD + "t=now-\r\n", "t= needs 2 fields"),
        (HEAD + "c=IN 10.0.0.5\r\n", "c= needs 3 fields"),
        (HEAD + "m=video RTP/AVP 96\r\n", "port is not a number"),
        (HEAD + "b=AS\r\n", "bad b= line"),
        (HEAD + "garbage\r\n", "not a <type>=<value> line"),
    ],
)
def test_quirks_fail_strict_and_pass_lenient(text: str, strict_error: str) -> None:
    with pytest.raises(SdpParseError, match=strict_error):
        SessionDescription.parse(text)
    SessionDescription.parse(text, lenient=True)


def test_missing_origin_gets_a_placeholder() -> None:
    sd = SessionDescription.parse("v=0\r\ns=cam\r\nm=video 0 RTP/AVP 96\r\n", lenient=True)
    assert str(sd.origin) == "- 0 0 IN IP4 0.0.0.0"
    assert [m.media for m in sd.media] == ["video"]


def test_t_now_is_dropped_and_c_without_addrtype_is_read() -> None:
    sd = SessionDescription.parse(
        HEAD + "t=now-\r\nc=IN 10.0.0.5\r\nm=audio 0 RTP/AVP 0\r\nc=IN 2001:db8::5\r\n",
        lenient=True,
    )
    assert sd.timing == [(0, 0)]
    assert sd.connection == Connection("10.0.0.5", "IP4")
    assert sd.media[0].connection == Connection("2001:db8::5", "IP6")


def test_rtpmap_spaces_and_empty_fmtp() -> None:
    sd = SessionDescription.parse(
        HEAD + "m=audio 0 RTP/AVP 97 96\r\na=rtpmap:97 MPEG4-GENERIC/ 16000 /2 \r\n"
        "a=rtpmap:96 H264/90000 \r\na=fmtp:96\r\na=fmtp:97 \r\n",
        lenient=True,
    )
    media = sd.media[0]
    assert media.rtpmaps() == {
        97: RtpMap(97, "MPEG4-GENERIC", 16000, 2),
        96: RtpMap(96, "H264", 90000),
    }
    assert media.fmtp(96) == {} and media.fmtp(97) == {}


def test_unparseable_media_section_is_skipped_whole() -> None:
    sd = SessionDescription.parse(
        HEAD + "m=video 0 RTP/AVP 96\r\na=control:v\r\n"
        "m=application\r\na=control:bad\r\na=rtpmap:107 x/1\r\n"
        "m=audio 0 RTP/AVP 0\r\na=control:a\r\n",
        lenient=True,
    )
    assert [(m.media, m.control) for m in sd.media] == [("video", "v"), ("audio", "a")]
    assert sd.attribute("control") is None  # the skipped section's lines went nowhere


def test_control_before_other_attributes_and_session_control() -> None:
    sd = SessionDescription.parse(
        HEAD + "a=control:*\r\nm=video 0 RTP/AVP 96\r\na=control:trackID=1\r\n"
        "a=rtpmap:96 H265/90000\r\n",
        lenient=True,
    )
    assert sd.attribute("control") == "*"
    assert sd.media[0].control == "trackID=1"
    assert sd.media[0].rtpmaps()[96].encoding == "H265"


@pytest.mark.parametrize("text", ["", "hello\r\n", "o=- 1 1 IN IP4 h\r\nv=0\r\n"])
def test_lenient_still_needs_sdp(text: str) -> None:
    with pytest.raises(SdpParseError):
        SessionDescription.parse(text, lenient=True)


@given(st.lists(st.text(alphabet="vosctmab= :/0123456789INP4RTAVP*\t", max_size=25), max_size=12))
def test_lenient_parse_raises_only_sdp_parse_error(lines: list[str]) -> None:
    text = "v=0\r\n" + "\r\n".join(lines)
    try:
        sd = SessionDescription.parse(text, lenient=True)
    except SdpParseError:
        return
    str(sd)  # whatever parsed serializes
