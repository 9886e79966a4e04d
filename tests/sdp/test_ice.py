"""ICE attributes in SDP (RFC 8839): candidates read and written back, credentials, the
session-level fallbacks, and malformed lines refused with the reason."""

from __future__ import annotations

import pytest

from softphone.sdp import SessionDescription
from softphone.sdp.ice import IceCandidate, IceDescription, IceParseError, ice_attributes, ice_of

OFFER = (
    "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 203.0.113.7\r\nt=0 0\r\n"
    "a=ice-lite\r\n"
    "m=audio 50000 RTP/AVP 0\r\n"
    "a=ice-ufrag:8hhY\r\na=ice-pwd:asd88fgpdd777uzjYhagZg\r\n"
    "a=candidate:1 1 UDP 2130706431 10.0.1.1 8998 typ host\r\n"
    "a=candidate:2 1 UDP 1694498815 203.0.113.7 50000 typ srflx raddr 10.0.1.1 rport 8998\r\n"
    "a=candidate:3 1 UDP 16777215 198.51.100.9 61000 typ relay raddr 203.0.113.7 rport 50000"
    " generation 0\r\n"
    "a=candidate:4 1 TCP 2105458943 10.0.1.1 9 typ host tcptype active\r\n"
    "a=candidate:5 1 UDP 2130706431 abcd.local 8998 typ host\r\n"
    "a=end-of-candidates\r\n"
)


def test_candidates_credentials_and_lite_are_read() -> None:
    sdp = SessionDescription.parse(OFFER)
    ice = ice_of(sdp, sdp.media[0])
    assert ice is not None
    assert (ice.ufrag, ice.pwd, ice.lite, ice.end_of_candidates) == (
        "8hhY",
        "asd88fgpdd777uzjYhagZg",
        True,
        True,
    )
    # TCP and an mDNS name are skipped (RFC 8839 §5.1: ignored), not errors.
    assert [c.type for c in ice.candidates] == ["host", "srflx", "relay"]
    relay = ice.candidates[2]
    assert (relay.address, relay.port, relay.related_address, relay.related_port) == (
        "198.51.100.9",
        61000,
        "203.0.113.7",
        50000,
    )
    assert relay.priority == 16777215 and relay.component == 1


def test_written_attributes_read_back_the_same() -> None:
    candidates = (
        IceCandidate("a1", 1, "UDP", 2130706431, "192.0.2.1", 4000, "host"),
        IceCandidate("b2", 2, "UDP", 1694498814, "203.0.113.7", 5001, "srflx", "192.0.2.1", 4001),
    )
    ours = IceDescription("abcd", "0123456789abcdef012345", candidates)
    sdp = SessionDescription.parse(
        "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
        "m=audio 4000 RTP/AVP 0\r\n"
    )
    sdp.media[0].attributes.extend(ice_attributes(ours))
    again = SessionDescription.parse(bytes(sdp))
    assert ice_of(again, again.media[0]) == ours
    text = bytes(sdp).decode()
    assert (
        "a=candidate:b2 2 UDP 1694498814 203.0.113.7 5001 typ srflx raddr 192.0.2.1 rport 4001"
        in text
    )
    assert "a=end-of-candidates" in text


def test_no_ice_is_none() -> None:
    sdp = SessionDescription.parse(
        "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
        "m=audio 4000 RTP/AVP 0\r\n"
    )
    assert ice_of(sdp, sdp.media[0]) is None


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("1 1 UDP 2130706431 10.0.1.1 8998", "fewer than 8 fields"),
        ("1 x UDP 2130706431 10.0.1.1 8998 typ host", "component must be 1-256"),
        ("1 1 UDP 0 10.0.1.1 8998 typ host", "priority must be 1 to 2^31-1"),
        ("1 1 UDP 2130706431 10.0.1.1 70000 typ host", "'70000' is not a port"),
        ("1 1 UDP 2130706431 10.0.1.1 8998 type host", "expected 'typ'"),
        ("1 1 UDP 2130706431 10.0.1.1 8998 typ srflx raddr", "an extension without a value"),
        ("fo:o 1 UDP 2130706431 10.0.1.1 8998 typ host", "foundation must be 1-32 ice-chars"),
        ("1 1 UDP 2130706431 10.0.1.1 8998 typ srflx raddr 10.0.0.1 rport x", "not a port"),
    ],
)
def test_malformed_candidates_are_refused_with_the_reason(line: str, why: str) -> None:
    with pytest.raises(IceParseError, match=why.replace("^", r"\^").replace("(", r"\(")):
        IceCandidate.parse(line)


@pytest.mark.parametrize(
    ("attributes", "why"),
    [
        ("a=candidate:1 1 UDP 1 10.0.1.1 8998 typ host\r\n", "without a=ice-ufrag and a=ice-pwd"),
        ("a=ice-ufrag:ab\r\na=ice-pwd:asd88fgpdd777uzjYhagZg\r\n", "ice-ufrag must be 4-256"),
        ("a=ice-ufrag:abcd\r\na=ice-pwd:short\r\n", "ice-pwd must be 22-256"),
        ("a=ice-ufrag:ab_d\r\na=ice-pwd:asd88fgpdd777uzjYhagZg\r\n", "ice-ufrag must be"),
    ],
)
def test_bad_credentials_are_refused_with_the_reason(attributes: str, why: str) -> None:
    sdp = SessionDescription.parse(
        "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
        "m=audio 4000 RTP/AVP 0\r\n" + attributes
    )
    with pytest.raises(IceParseError, match=why):
        ice_of(sdp, sdp.media[0])


def test_session_level_credentials_serve_the_media() -> None:
    sdp = SessionDescription.parse(
        "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
        "a=ice-ufrag:sess\r\na=ice-pwd:asd88fgpdd777uzjYhagZg\r\na=ice-options:trickle\r\n"
        "m=audio 4000 RTP/AVP 0\r\na=candidate:1 1 UDP 1 192.0.2.1 4000 typ host\r\n"
    )
    ice = ice_of(sdp, sdp.media[0])
    assert ice is not None and ice.ufrag == "sess"
    # Trickle without end-of-candidates: more may come (RFC 8838), so not ended.
    assert ice.options == ("trickle",) and not ice.end_of_candidates


@pytest.mark.parametrize(
    "extensions",
    ["rport 22182", "raddr 192.168.2.100", "r\u0096ddr 192.168.2.100 rport 22182"],
)
def test_half_a_related_address_is_none_and_reads_back_the_same(extensions: str) -> None:
    # Found by the sdp fuzz target: a lone rport was kept, left out when written, and the
    # candidate we would repeat was not the one we read.
    line = f"2 1 UDP 1845494015 203.0.113.2 20436 typ srflx {extensions}"
    candidate = IceCandidate.parse(line)
    assert candidate is not None
    assert candidate.related_address is None and candidate.related_port is None
    assert IceCandidate.parse(str(candidate)) == candidate
