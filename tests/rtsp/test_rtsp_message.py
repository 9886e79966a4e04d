"""RTSP messages and the stream parser (RFC 2326 §4, §6, §7, §10.12) against byte fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from softphone.rtsp import (
    NEED_DATA,
    Headers,
    InterleavedFrame,
    LocalProtocolError,
    ParseError,
    RtspConnection,
    RtspRequest,
    RtspResponse,
)
from softphone.rtsp.message import parse_message

DATA = Path(__file__).parent.parent / "data" / "rtsp"
WELL_FORMED = ["gstreamer_describe_200.txt", "hikvision_describe_200.txt"]


def load(name: str) -> bytes:
    return (DATA / name).read_bytes()


def drain(conn: RtspConnection) -> list[object]:
    events: list[object] = []
    while (event := conn.next_event()) is not NEED_DATA:
        events.append(event)
    return events


@pytest.mark.parametrize("name", WELL_FORMED)
def test_fixtures_round_trip_byte_for_byte(name: str) -> None:
    data = load(name)
    assert b"\r\n\r\n" in data  # guard: the fixture kept its CRLF line ends
    response = RtspResponse.parse(data)
    assert bytes(response) == data
    assert response.status == 200 and response.cseq == 3
    assert response.content_type == "application/sdp"
    assert response.body.startswith(b"v=0\r\n")


def test_gstreamer_fixture_headers() -> None:
    response = RtspResponse.parse(load("gstreamer_describe_200.txt"))
    assert response.headers.get("content-base") == "rtsp://127.0.0.1:8554/test/"
    assert response.headers.get("SERVER") == "GStreamer RTSP server"
    assert int(response.headers.get("Content-Length") or "") == len(response.body)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("gstreamer_describe_200_short_body.txt", "body has 726 bytes, Content-Length says 736"),
        ("hikvision_describe_200_no_status.txt", "bad status code in status line 'RTSP/1.0 OK'"),
    ],
)
def test_negative_twins_raise_exact_errors(name: str, message: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_message(load(name))
    assert str(info.value) == message


def test_negative_twin_short_body_waits_on_a_stream() -> None:
    conn = RtspConnection()
    conn.receive_data(load("gstreamer_describe_200_short_body.txt"))
    assert conn.next_event() is NEED_DATA  # 10 more body bytes are due
    conn.receive_data(b"$\x00\x00\x00" + b"x" * 6)
    response = conn.next_event()
    assert isinstance(response, RtspResponse) and response.body.endswith(b"$\x00\x00\x00xxxxxx")


def test_request_serializes_with_content_length() -> None:
    request = RtspRequest(
        method="SET_PARAMETER",
        uri="rtsp://h/s",
        headers=Headers([("CSeq", "7"), ("Content-Type", "text/parameters")]),
        body=b"barparam: barstuff\r\n",
    )
    assert bytes(request) == (
        b"SET_PARAMETER rtsp://h/s RTSP/1.0\r\nCSeq: 7\r\nContent-Type: text/parameters\r\n"
        b"Content-Length: 20\r\n\r\nbarparam: barstuff\r\n"
    )
    parsed = RtspRequest.parse(bytes(request))
    assert (parsed.method, parsed.uri, parsed.body) == (request.method, request.uri, request.body)
    assert parsed.headers.get("Content-Length") == "20"


def test_wrong_content_length_is_corrected_on_serialization() -> None:
    response = RtspResponse(status=200, reason="OK", headers=Headers([("Content-Length", "99")]))
    assert bytes(response) == b"RTSP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Headers([("Bad Name", "x")]), "header name must be a token: 'Bad Name'"),
        (lambda: Headers([("X", "a\r\nInjected: 1")]), "line break in the X header value"),
        (lambda: bytes(RtspRequest(method="PLAY", uri="rtsp://h/a b")), "bad request line"),
        (lambda: bytes(InterleavedFrame(channel=256, data=b"")), "interleaved frame out of range"),
    ],
)
def test_local_misuse_raises_local_protocol_error(build: object, message: str) -> None:
    with pytest.raises(LocalProtocolError, match=message):
        build()  # type: ignore[operator]


@pytest.mark.parametrize("name", WELL_FORMED)
def test_connection_gives_the_same_message_at_every_split(name: str) -> None:
    data = load(name)
    whole = RtspResponse.parse(data)
    for cut in range(1, len(data), 7):
        conn = RtspConnection()
        conn.receive_data(data[:cut])
        first = drain(conn)
        conn.receive_data(data[cut:])
        assert first + drain(conn) == [whole]
        assert conn.buffered == 0


def test_interleaved_frames_between_messages_and_crlf_before_dollar() -> None:
    rtp = bytes(range(12)) + b"payload"
    stream = (
        bytes(InterleavedFrame(channel=0, data=rtp))
        + b"\r\n"  # quirk: a CRLF before an interleaved frame
        + bytes(InterleavedFrame(channel=1, data=b"\x80\xc9\x00\x01rtcp"))
        + b"RTSP/1.0 200 OK\r\nCSeq: 9\r\n\r\n"
        + b"\r\n$\x03\x00\x00"  # an empty frame on channel 3
    )
    conn = RtspConnection()
    conn.receive_data(stream)
    events = drain(conn)
    assert events[0] == InterleavedFrame(channel=0, data=rtp)
    assert events[1] == InterleavedFrame(channel=1, data=b"\x80\xc9\x00\x01rtcp")
    assert isinstance(events[2], RtspResponse) and events[2].cseq == 9
    assert events[3] == InterleavedFrame(channel=3, data=b"")
    assert len(events) == 4


def test_interleaved_frame_waits_for_its_length() -> None:
    conn = RtspConnection()
    conn.receive_data(b"$\x02\x00\x05abc")
    assert conn.next_event() is NEED_DATA
    conn.receive_data(b"de")
    assert conn.next_event() == InterleavedFrame(channel=2, data=b"abcde")


def test_bare_lf_folding_trailing_whitespace_and_no_content_type() -> None:
    data = load("camera_quirks_describe_200.txt")
    conn = RtspConnection()
    conn.receive_data(data)
    (response,) = drain(conn)
    assert isinstance(response, RtspResponse)
    assert response.cseq == 3  # quirk: "CSeq: 3 " with trailing whitespace
    assert response.headers.get("X-Accept-Dynamic-Rate") == "1"  # folded value
    assert response.content_type is None  # quirk: no Content-Type; the body is still read
    assert response.body.startswith(b"v=0\r\ns=IP Camera\r\n") and response.body.endswith(
        b"a=control:trackID=1\r\n"
    )


def test_server_request_is_parsed() -> None:
    conn = RtspConnection()
    conn.receive_data(
        b"ANNOUNCE rtsp://h/s RTSP/1.0\r\nCSeq: 1\r\nContent-Type: application/sdp\r\n"
        b"Content-Length: 4\r\n\r\nv=0\n"
        b"GET_PARAMETER rtsp://h/s RTSP/1.0\r\nCSeq: 2\r\n\r\n"
    )
    announce, get = drain(conn)
    assert isinstance(announce, RtspRequest) and announce.method == "ANNOUNCE"
    assert announce.body == b"v=0\n"
    assert isinstance(get, RtspRequest) and (get.method, get.cseq) == ("GET_PARAMETER", 2)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"HTTP/1.1 200 OK\r\n\r\n", "not an RTSP request or status line: 'HTTP/1.1 200 OK'"),
        (b"RTSP/1.0 2000 OK\r\n\r\n", "bad status code in status line 'RTSP/1.0 2000 OK'"),
        (b"RTSP/1.0 099 X\r\n\r\n", "status code out of range: 99"),
        (b"RTSP/x 200 OK\r\n\r\n", "bad RTSP version in status line 'RTSP/x 200 OK'"),
        (b"RTSP/1.0 200 OK\r\nNoColon\r\n\r\n", "bad header line 'NoColon'"),
        (b"RTSP/1.0 200 OK\r\nA: b\x00c\r\n\r\n", "control character in header line 'A: b\\x00c'"),
        (b"RTSP/1.0 200 OK\r\nContent-Length: -1\r\n\r\n", "bad Content-Length '-1'"),
        (
            b"RTSP/1.0 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "conflicting Content-Length headers",
        ),
        (b"\x00\x01garbage", "expected an RTSP message or a $ frame, got b'\\x00\\x01garbag'"),
        (
            b"PLAY rtsp://h/ RTSP/1.0 extra\r\n\r\n",
            "not an RTSP request or status line: 'PLAY rtsp://h/ RTSP/1.0 extra'",
        ),
    ],
)
def test_malformed_streams_raise_parse_error(data: bytes, message: str) -> None:
    conn = RtspConnection()
    conn.receive_data(data)
    with pytest.raises(ParseError) as info:
        drain(conn)
    assert str(info.value) == message
    with pytest.raises(ParseError, match="connection unusable after an earlier error"):
        conn.next_event()


def test_missing_cseq_raises_parse_error() -> None:
    response = RtspResponse.parse(b"RTSP/1.0 200 OK\r\n\r\n")
    with pytest.raises(ParseError, match="message has no CSeq header"):
        _ = response.cseq
    response.headers.add("CSeq", "x1")
    with pytest.raises(ParseError, match="bad CSeq 'x1'"):
        _ = response.cseq


def test_head_and_body_limits() -> None:
    conn = RtspConnection(max_size=1024)
    conn.receive_data(b"RTSP/1.0 200 OK\r\nX: " + b"a" * 1100)
    with pytest.raises(ParseError, match="message head exceeds the 1024 byte limit"):
        conn.next_event()
    conn = RtspConnection(max_size=1024)
    conn.receive_data(b"RTSP/1.0 200 OK\r\nContent-Length: 1025\r\n\r\n")
    with pytest.raises(ParseError, match="body of 1025 bytes exceeds the 1024 byte limit"):
        conn.next_event()


def test_default_limit_is_one_mebibyte() -> None:
    conn = RtspConnection()
    conn.receive_data(b"RTSP/1.0 200 OK\r\nContent-Length: 1048577\r\n\r\n")
    with pytest.raises(ParseError, match="body of 1048577 bytes exceeds the 1048576 byte limit"):
        conn.next_event()
    ok = RtspConnection()
    ok.receive_data(b"RTSP/1.0 200 OK\r\nContent-Length: 1048576\r\n\r\n")
    assert ok.next_event() is NEED_DATA


@given(st.binary(max_size=300))
def test_parser_raises_only_parse_error_on_random_bytes(data: bytes) -> None:
    conn = RtspConnection(max_size=256)
    conn.receive_data(data)
    try:
        events = drain(conn)
    except ParseError:
        return
    for event in events:
        if isinstance(event, RtspRequest | RtspResponse):
            try:
                _ = event.cseq
            except ParseError:
                pass
            bytes(event)  # whatever parsed also serializes


@given(st.data())
def test_parser_raises_only_parse_error_on_mutated_fixtures(data: st.DataObject) -> None:
    raw = bytearray(
        load(data.draw(st.sampled_from([*WELL_FORMED, "camera_quirks_describe_200.txt"])))
    )
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        raw[pos] = data.draw(st.integers(0, 255))
    conn = RtspConnection()
    cut = data.draw(st.integers(0, len(raw)))
    try:
        conn.receive_data(bytes(raw[:cut]))
        drain(conn)
        conn.receive_data(bytes(raw[cut:]))
        drain(conn)
    except ParseError:
        pass
