"""The sans-IO RTSP client (RFC 2326) walked through whole dialogues by the ``now`` argument."""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from softphone.auth.digest import Algorithm, make_challenge, verify_authorization
from softphone.rtsp import (
    NEED_DATA,
    Described,
    Event,
    Headers,
    InterleavedFrame,
    InterleavedFrameReceived,
    LocalProtocolError,
    Paused,
    PlayStarted,
    Redirected,
    RemoteProtocolError,
    RequestFailed,
    RequestTimedOut,
    RtpInfo,
    RtspClient,
    RtspConnection,
    RtspRequest,
    RtspResponse,
    RtspUrl,
    ServerRequestReceived,
    State,
    TornDown,
    TrackRequest,
    TrackSetUp,
    explain,
)
from softphone.rtsp.headers import parse_range, parse_rtp_info, parse_session, parse_transport
from softphone.rtsp.message import reason_phrase
from softphone.rtsp.state import TRANSITIONS, Input, next_state

DATA = Path(__file__).parent.parent / "data" / "rtsp"
GST_URL = "rtsp://127.0.0.1:8554/test"
PUBLIC = "OPTIONS, DESCRIBE, ANNOUNCE, GET_PARAMETER, PAUSE, PLAY, RECORD, SETUP, SET_PARAMETER, TEARDOWN"
MINIMAL_SDP = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=control:*\r\n"
    b"m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:stream=0\r\n"
    b"m=audio 0 RTP/AVP 0\r\na=control:stream=1\r\n"
)


def load(name: str) -> bytes:
    return (DATA / name).read_bytes()


def state_of(client: RtspClient) -> State:
    """The state, read through a call so that mypy does not narrow it between steps."""
    return client.state


def with_cseq(data: bytes, cseq: int) -> bytes:
    return re.sub(rb"CSeq: *[0-9]+", f"CSeq: {cseq}".encode(), data, count=1)


class Server:
    """The far end of the fake connection: reads the client's requests, writes responses."""

    def __init__(self, client: RtspClient) -> None:
        self.client = client
        self._conn = RtspConnection()
        self.frames: list[InterleavedFrame] = []

    def requests(self) -> list[RtspRequest]:
        self._conn.receive_data(self.client.data_to_send())
        out: list[RtspRequest] = []
        while (item := self._conn.next_event()) is not NEED_DATA:
            if isinstance(item, InterleavedFrame):
                self.frames.append(item)
            else:
                assert isinstance(item, RtspRequest)
                out.append(item)
        return out

    def request(self) -> RtspRequest:
        (only,) = self.requests()
        return only

    def responses(self) -> list[RtspResponse]:
        self._conn.receive_data(self.client.data_to_send())
        out: list[RtspResponse] = []
        while (item := self._conn.next_event()) is not NEED_DATA:
            assert isinstance(item, RtspResponse)
            out.append(item)
        return out

    def reply(
        self,
        request: RtspRequest,
        status: int,
        now: float,
        headers: Sequence[tuple[str, str]] = (),
        body: bytes = b"",
    ) -> list[Event]:
        response = RtspResponse(
            status=status,
            reason=reason_phrase(status),
            headers=Headers([("CSeq", str(request.cseq)), *headers]),
            body=body,
        )
        return self.client.receive_data(bytes(response), now)


def make_client(url: str = GST_URL, **kwargs: object) -> tuple[RtspClient, Server]:
    client = RtspClient(
        RtspUrl.parse(url),
        rng=random.Random(4),
        user_agent="softphone-test/1.0",
        now=0.0,
        **kwargs,  # type: ignore[arg-type]
    )
    return client, Server(client)


def described(
    url: str = GST_URL,
    sdp: bytes = MINIMAL_SDP,
    public: str = PUBLIC,
    headers: Sequence[tuple[str, str]] = (),
) -> tuple[RtspClient, Server, Described]:
    client, server = make_client(url)
    client.start(0.0)
    server.reply(server.request(), 200, 0.01, [("Public", public)])
    events = server.reply(server.request(), 200, 0.02, [*headers], sdp)
    (event,) = events
    assert isinstance(event, Described)
    return client, server, event


def playing(session: str = "F00D;timeout=60", public: str = PUBLIC) -> tuple[RtspClient, Server]:
    client, server, _ = described(public=public)
    client.setup([TrackRequest(index=0, transport="tcp")], now=1.0, play=True)
    server.reply(
        server.request(),
        200,
        1.0,
        [("Session", session), ("Transport", "RTP/AVP/TCP;unicast;interleaved=0-1")],
    )
    assert server.reply(server.request(), 200, 1.0)[0] == PlayStarted(
        range_start=None, range_end=None, rtp_info=()
    )
    assert state_of(client) is State.PLAYING
    return client, server


# --------------------------------------------------------------------------------------------
# The whole dialogue


def test_full_dialogue_against_a_gstreamer_like_server() -> None:
    client, server = make_client(credentials=("viewer", "s3cret"))
    assert client.get_timer() is None  # nothing outstanding before start

    # OPTIONS at start (§10.1)
    client.start(0.0)
    options = server.request()
    assert options.method == "OPTIONS" and options.uri == GST_URL and options.cseq == 1
    assert options.headers.get("User-Agent") == "softphone-test/1.0"
    assert "Session" not in options.headers and "Authorization" not in options.headers
    assert client.get_timer() == 10.0  # the OPTIONS blocks progress: 10 s to answer
    assert server.reply(options, 200, 0.05, [("Public", PUBLIC)]) == []

    # DESCRIBE, challenged with MD5 and SHA-256: SHA-256 is answered (RFC 8760 §2.4)
    describe = server.request()
    assert (describe.method, describe.cseq, describe.headers.get("Accept")) == (
        "DESCRIBE",
        2,
        "application/sdp",
    )
    assert state_of(client) is State.DESCRIBING
    challenges = [
        (
            "WWW-Authenticate",
            make_challenge(realm="GStreamer", nonce="n1", algorithm=Algorithm.MD5),
        ),
        (
            "WWW-Authenticate",
            make_challenge(realm="GStreamer", nonce="n2", algorithm=Algorithm.SHA256),
        ),
        ("WWW-Authenticate", 'Basic realm="GStreamer"'),
    ]
    assert server.reply(describe, 401, 0.1, challenges) == []
    retry = server.request()
    assert (retry.method, retry.cseq, retry.uri) == ("DESCRIBE", 3, GST_URL)
    authorization = retry.headers.get("Authorization") or ""
    assert "algorithm=SHA-256" in authorization and 'nonce="n2"' in authorization
    assert "nc=00000001" in authorization
    assert verify_authorization(
        authorization, password="s3cret", method="DESCRIBE", username="viewer"
    )

    # The GStreamer-like DESCRIBE answer (CSeq 3 in the fixture)
    (event,) = client.receive_data(load("gstreamer_describe_200.txt"), 0.2)
    assert isinstance(event, Described)
    assert str(event.base_url) == "rtsp://127.0.0.1:8554/test/"
    video, audio = event.tracks
    assert (video.index, video.media, video.encoding, video.clock_rate, video.payload_type) == (
        0,
        "video",
        "H264",
        90000,
        96,
    )
    assert video.fmtp["packetization-mode"] == "1"
    assert video.fmtp["sprop-parameter-sets"] == "Z2QAHqzZQKAv+XARAAADAAEAAAMAMg8WLZY=,aOvjyyLA"
    assert str(video.control_url) == "rtsp://127.0.0.1:8554/test/stream=0"
    assert (audio.encoding, audio.clock_rate, audio.channels) == ("MPEG4-GENERIC", 48000, 2)
    assert audio.fmtp["config"] == "1190" and audio.fmtp["mode"] == "AAC-hbr"
    assert str(client.aggregate_url) == "rtsp://127.0.0.1:8554/test/"
    assert state_of(client) is State.DESCRIBED

    # SETUP x2 over TCP interleaved, then PLAY on its own
    client.setup(
        [TrackRequest(index=0, transport="tcp"), TrackRequest(index=1, transport="tcp")], now=0.3
    )
    setup0 = server.request()
    assert setup0.uri == "rtsp://127.0.0.1:8554/test/stream=0"
    assert setup0.headers.get("Transport") == "RTP/AVP/TCP;unicast;interleaved=0-1"
    assert "Session" not in setup0.headers
    auth = setup0.headers.get("Authorization") or ""
    assert "nc=00000002" in auth  # later requests carry credentials (RFC 7616 §3.4)
    assert verify_authorization(auth, password="s3cret", method="SETUP", username="viewer")
    events = server.reply(
        setup0,
        200,
        0.35,
        [
            ("Session", "7f3a21c0;timeout=20"),
            ("Transport", 'RTP/AVP/TCP;unicast;interleaved=0-1;ssrc=DEADBEEF;mode="PLAY"'),
        ],
    )
    assert events == [
        TrackSetUp(
            index=0,
            transport="tcp",
            interleaved=(0, 1),
            server_ports=None,
            source=None,
            ssrc=0xDEADBEEF,
        )
    ]
    setup1 = server.request()
    assert setup1.uri == "rtsp://127.0.0.1:8554/test/stream=1"
    assert setup1.headers.get("Transport") == "RTP/AVP/TCP;unicast;interleaved=2-3"
    assert setup1.headers.get("Session") == "7f3a21c0"
    events = server.reply(
        setup1,
        200,
        0.4,
        [
            ("Session", "7f3a21c0;timeout=20"),
            ("Transport", "RTP/AVP/TCP;unicast;interleaved=2-3"),
        ],
    )
    assert [type(e) for e in events] == [TrackSetUp]
    play = server.request()
    assert (play.method, play.uri, play.headers.get("Session")) == (
        "PLAY",
        "rtsp://127.0.0.1:8554/test/",
        "7f3a21c0",
    )
    assert "Range" not in play.headers
    assert state_of(client) is State.STARTING

    # quirk: RTCP before the PLAY response is delivered (channel 1 was set up)
    rtcp = bytes(InterleavedFrame(channel=1, data=b"\x80\xc8\x00\x06sr"))
    assert client.receive_data(rtcp, 0.42) == [
        InterleavedFrameReceived(channel=1, data=b"\x80\xc8\x00\x06sr")
    ]
    events = server.reply(
        play,
        200,
        0.45,
        [
            ("Range", "npt=now-"),
            (
                "RTP-Info",
                "url=rtsp://127.0.0.1:8554/test/stream=0;seq=100;rtptime=1000,"
                "url=rtsp://127.0.0.1:8554/test/stream=1;seq=200;rtptime=2000",
            ),
        ],
    )
    assert events == [
        PlayStarted(
            range_start=None,
            range_end=None,
            rtp_info=(
                RtpInfo(url="rtsp://127.0.0.1:8554/test/stream=0", index=0, seq=100, rtptime=1000),
                RtpInfo(url="rtsp://127.0.0.1:8554/test/stream=1", index=1, seq=200, rtptime=2000),
            ),
        )
    ]
    assert state_of(client) is State.PLAYING

    # media flows; a channel never set up is counted and dropped
    media = (
        bytes(InterleavedFrame(channel=0, data=b"rtp"))
        + bytes(InterleavedFrame(channel=7, data=b"stale"))
        + bytes(InterleavedFrame(channel=2, data=b"aac"))
    )
    assert client.receive_data(media, 1.0) == [
        InterleavedFrameReceived(channel=0, data=b"rtp"),
        InterleavedFrameReceived(channel=2, data=b"aac"),
    ]
    assert client.ignored_frames == 1

    # keep-alives: timeout=20 -> every 10 s after the last request (PLAY at 0.4), never awaited
    assert client.get_timer() == pytest.approx(10.4)
    assert client.handle_timer(10.0) == [] and server.requests() == []
    assert client.handle_timer(10.4) == []
    ping1 = server.request()
    assert (ping1.method, ping1.headers.get("Session")) == ("GET_PARAMETER", "7f3a21c0")
    assert verify_authorization(
        ping1.headers.get("Authorization") or "", password="s3cret", method="GET_PARAMETER"
    )
    assert client.get_timer() == pytest.approx(20.4)
    assert client.handle_timer(20.4) == []  # ping1 was never answered: not an error
    ping2 = server.request()
    assert ping2.method == "GET_PARAMETER" and ping2.cseq == ping1.cseq + 1
    assert server.reply(ping2, 200, 21.0) == []
    assert state_of(client) is State.PLAYING

    # PAUSE, then PLAY again with a seek
    client.pause(25.0)
    pause = server.request()
    assert (pause.method, pause.uri) == ("PAUSE", "rtsp://127.0.0.1:8554/test/")
    assert client.get_timer() == pytest.approx(35.0)
    assert server.reply(pause, 200, 25.1) == [Paused()]
    assert state_of(client) is State.READY
    client.play(26.0, start_npt=12.5)
    resume = server.request()
    assert resume.headers.get("Range") == "npt=12.500-"
    assert server.reply(resume, 200, 26.1, [("Range", "npt=12.480-30")]) == [
        PlayStarted(range_start=12.48, range_end=30.0, rtp_info=())
    ]

    # TEARDOWN
    assert client.teardown(27.0) == []
    teardown = server.request()
    assert (teardown.method, teardown.headers.get("Session")) == ("TEARDOWN", "7f3a21c0")
    assert server.reply(teardown, 200, 27.1) == [TornDown()]
    assert state_of(client) is State.CLOSED
    assert client.get_timer() is None
    assert client.receive_data(bytes(InterleavedFrame(channel=0, data=b"late")), 27.2) == []


# --------------------------------------------------------------------------------------------
# Timers


@pytest.mark.parametrize(
    ("steps", "method"),
    [(0, "OPTIONS"), (1, "DESCRIBE")],
)
def test_unanswered_blocking_request_times_out_after_10_s(steps: int, method: str) -> None:
    client, server = make_client()
    client.start(0.0)
    if steps:
        server.reply(server.request(), 200, 2.0, [("Public", PUBLIC)])
    pending = server.request()
    assert pending.method == method
    sent_at = 2.0 if steps else 0.0
    assert client.get_timer() == sent_at + 10.0
    assert client.handle_timer(sent_at + 9.999) == []
    assert client.handle_timer(sent_at + 10.0) == [RequestTimedOut(method=method)]
    assert state_of(client) is State.FAILED
    assert client.get_timer() is None
    assert server.reply(pending, 200, 13.0, [("Public", PUBLIC)]) == []  # too late: ignored


def test_setup_and_play_time_out() -> None:
    client, server, _ = described()
    client.setup([TrackRequest(index=0, transport="udp", client_ports=(5000, 5001))], now=5.0)
    server.request()
    assert client.handle_timer(15.0) == [RequestTimedOut(method="SETUP")]
    client, server = playing()
    client.play(100.0, start_npt=3.0)
    server.request()
    assert client.handle_timer(110.0) == [RequestTimedOut(method="PLAY")]
    assert state_of(client) is State.FAILED


def test_teardown_without_reply_ends_after_the_timeout() -> None:
    client, server = playing()
    client.teardown(50.0)
    server.request()
    assert client.handle_timer(60.0) == [TornDown()]
    assert state_of(client) is State.CLOSED


@pytest.mark.parametrize(
    ("session", "interval"),
    [
        ("ab", 30.0),
        ("ab;timeout=60", 30.0),
        ("ab;timeout=10", 5.0),
        ("ab;timeout=120", 30.0),
        ("ab; timeout = 7", 3.5),
        ("ab;timeout=junk", 30.0),
    ],
)
def test_keepalive_interval_is_half_the_timeout_capped_at_30_s(
    session: str, interval: float
) -> None:
    client, server = playing(session=session)
    assert client.get_timer() == pytest.approx(1.0 + interval)
    now = 1.0
    for _ in range(3):
        now += interval
        assert client.handle_timer(now) == []
        ping = server.request()
        assert ping.headers.get("Session") == "ab"
    assert client.get_timer() == pytest.approx(now + interval)


def test_keepalive_is_options_when_get_parameter_is_not_public() -> None:
    client, server = playing(public="OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN")
    client.handle_timer(31.0)
    ping = server.request()
    assert (ping.method, ping.headers.get("Session")) == ("OPTIONS", "F00D")
    assert str(client.aggregate_url) == ping.uri


def test_requests_with_the_session_push_the_keepalive_back() -> None:
    client, server = playing()
    client.set_parameter("barparam", "barstuff", now=20.0)
    request = server.request()
    assert request.body == b"barparam: barstuff\r\n"
    assert request.headers.get("Content-Type") == "text/parameters"
    assert client.get_timer() == pytest.approx(50.0)
    assert server.reply(request, 451, 20.5) == [
        RequestFailed(method="SET_PARAMETER", status=451, reason="Parameter Not Understood")
    ]
    assert state_of(client) is State.PLAYING


def test_keepalives_run_while_paused() -> None:
    client, server = playing()
    client.pause(2.0)
    assert server.reply(server.request(), 200, 2.1) == [Paused()]
    assert client.get_timer() == pytest.approx(32.0)
    client.handle_timer(32.0)
    assert server.request().method == "GET_PARAMETER"


# --------------------------------------------------------------------------------------------
# Failures, redirects, server requests


def test_describe_404_fails_with_the_reason() -> None:
    client, server = make_client()
    client.start(0.0)
    server.reply(server.request(), 200, 0.1, [("Public", PUBLIC)])
    assert server.reply(server.request(), 404, 0.2) == [
        RequestFailed(method="DESCRIBE", status=404, reason="Not Found")
    ]
    assert state_of(client) is State.FAILED
    assert explain(404) == "404 Not Found: there is no stream at this URL (check the path)"


def test_options_refused_still_describes() -> None:
    client, server = make_client()
    client.start(0.0)
    assert server.reply(server.request(), 501, 0.1) == []  # quirk: OPTIONS not implemented
    assert server.request().method == "DESCRIBE"
    assert client.public == frozenset()


@pytest.mark.parametrize(
    ("status", "reason"), [(461, "Unsupported transport"), (453, "Not Enough Bandwidth")]
)
def test_setup_refusal_fails(status: int, reason: str) -> None:
    client, server, _ = described()
    client.setup([TrackRequest(index=0, transport="udp", client_ports=(5000, 5001))], now=1.0)
    setup = server.request()
    assert setup.headers.get("Transport") == "RTP/AVP;unicast;client_port=5000-5001"
    assert server.reply(setup, status, 1.1) == [
        RequestFailed(method="SETUP", status=status, reason=reason)
    ]
    assert state_of(client) is State.FAILED
    assert server.requests() == []  # no PLAY follows


def test_refused_pause_and_play_keep_the_session() -> None:
    client, server = playing()
    client.pause(2.0)
    assert server.reply(server.request(), 455, 2.1) == [
        RequestFailed(method="PAUSE", status=455, reason="Method Not Valid in This State")
    ]
    assert state_of(client) is State.PLAYING
    client.play(3.0, start_npt=999.0)
    assert server.reply(server.request(), 457, 3.1)[0] == RequestFailed(
        method="PLAY", status=457, reason="Invalid Range"
    )
    assert state_of(client) is State.PLAYING


def test_redirect_reports_the_location_and_closes() -> None:
    client, server = make_client("rtsp://u:pw@cam.local/old", credentials=None)
    client.start(0.0)
    server.reply(server.request(), 200, 0.1)
    events = server.reply(server.request(), 302, 0.2, [("Location", "rtsp://cam.local:8554/new")])
    assert events == [Redirected(location=RtspUrl.parse("rtsp://u:pw@cam.local:8554/new"))]
    assert state_of(client) is State.CLOSED
    assert client.get_timer() is None


def test_redirect_without_location_is_a_failure() -> None:
    client, server = make_client()
    client.start(0.0)
    assert server.reply(server.request(), 301, 0.1) == [
        RequestFailed(method="OPTIONS", status=301, reason="redirect without a usable Location")
    ]


def test_server_requests_are_answered() -> None:
    client, server = playing()
    data = (
        b"GET_PARAMETER rtsp://127.0.0.1:8554/test RTSP/1.0\r\nCSeq: 41\r\n\r\n"
        b"ANNOUNCE rtsp://127.0.0.1:8554/test RTSP/1.0\r\nCSeq: 42\r\nContent-Length: 3\r\n\r\nv=0"
        b"OPTIONS * RTSP/1.0\r\nCSeq: 43\r\n\r\n"
    )
    assert client.receive_data(data, 5.0) == [
        ServerRequestReceived(method="GET_PARAMETER"),
        ServerRequestReceived(method="ANNOUNCE"),
        ServerRequestReceived(method="OPTIONS"),
    ]
    answers = server.responses()
    assert [(r.status, r.cseq) for r in answers] == [(200, 41), (501, 42), (200, 43)]
    assert answers[0].headers.get("Session") == "F00D"
    assert state_of(client) is State.PLAYING


def test_teardown_before_any_session_sends_nothing() -> None:
    client, server, _ = described()
    assert client.teardown(1.0) == [TornDown()]
    assert server.requests() == []
    assert state_of(client) is State.CLOSED
    assert client.teardown(2.0) == []  # idempotent once closed


def test_provisional_and_unknown_responses_are_ignored() -> None:
    client, server = make_client()
    client.start(0.0)
    options = server.request()
    assert server.reply(options, 100, 0.1) == []
    stray = RtspResponse(status=200, reason="OK", headers=Headers([("CSeq", "99")]))
    assert client.receive_data(bytes(stray), 0.2) == []
    assert state_of(client) is State.QUERYING
    server.reply(options, 200, 0.3)
    assert server.request().method == "DESCRIBE"


def test_unreadable_sdp_fails_describe() -> None:
    client, server = make_client()
    client.start(0.0)
    server.reply(server.request(), 200, 0.1)
    events = server.reply(server.request(), 200, 0.2, [], b"<html>nope</html>")
    assert events == [
        RequestFailed(
            method="DESCRIBE",
            status=200,
            reason="unreadable SDP: line 1: not a <type>=<value> line: '<html>nope</html>'",
        )
    ]


# --------------------------------------------------------------------------------------------
# Quirks


def test_session_id_change_keeps_the_first() -> None:
    client, server, _ = described()
    client.setup(
        [TrackRequest(index=0, transport="tcp"), TrackRequest(index=1, transport="tcp")], now=1.0
    )
    server.reply(server.request(), 200, 1.1, [("Session", "first;timeout=30")])
    setup1 = server.request()
    server.reply(setup1, 200, 1.2, [("Session", "second")])  # quirk: a new id per SETUP
    play = server.request()
    assert play.headers.get("Session") == "first"
    assert client.session_id == "first" and client.session_timeout_s == 30.0


def test_server_answering_tcp_to_udp_is_reported_as_tcp() -> None:
    client, server, _ = described()
    client.setup([TrackRequest(index=1, transport="udp", client_ports=(6000, 6001))], now=1.0)
    events = server.reply(
        server.request(),
        200,
        1.1,
        [
            ("Session", "s1"),
            ("Transport", "RTP/AVP/TCP;unicast;interleaved=4-5"),
        ],
    )
    assert events == [
        TrackSetUp(
            index=1, transport="tcp", interleaved=(4, 5), server_ports=None, source=None, ssrc=None
        )
    ]
    assert client.receive_data(b"$\x04\x00\x01x", 1.2) == [
        InterleavedFrameReceived(channel=4, data=b"x")
    ]


def test_udp_setup_reports_server_ports_source_and_ssrc() -> None:
    client, server, _ = described()
    client.setup(
        [TrackRequest(index=0, transport="udp", client_ports=(5000, 5001))], now=1.0, play=False
    )
    events = server.reply(
        server.request(),
        200,
        1.1,
        [
            ("Session", "s1"),
            (
                "Transport",
                "RTP/AVP;unicast;client_port=5000-5001;server_port=6970-6971;"
                "source=127.0.0.1; ssrc= 0000ABCD",
            ),  # quirk: leading space in ssrc
        ],
    )
    assert events == [
        TrackSetUp(
            index=0,
            transport="udp",
            interleaved=None,
            server_ports=(6970, 6971),
            source="127.0.0.1",
            ssrc=0xABCD,
        )
    ]
    assert state_of(client) is State.READY and server.requests() == []  # play=False
    client.play(2.0)
    assert server.request().method == "PLAY"


def test_camera_quirks_describe_fixture() -> None:
    client, server = make_client("rtsp://10.0.0.5/live")
    client.start(0.0)
    server.reply(server.request(), 200, 0.1)
    describe = server.request()
    data = with_cseq(load("camera_quirks_describe_200.txt"), describe.cseq)
    (event,) = client.receive_data(data, 0.2)
    assert isinstance(event, Described)
    # quirk: scheme-less Content-Base "10.0.0.5:554/live/"
    assert str(event.base_url) == "rtsp://10.0.0.5/live/"
    video, audio = event.tracks
    assert (video.index, video.encoding, video.clock_rate, video.fmtp) == (0, "H264", 90000, {})
    assert str(video.control_url) == "rtsp://10.0.0.5/live/trackID=0"
    # the unparseable m=application section was skipped whole
    assert (audio.index, audio.encoding, audio.payload_type) == (1, "PCMU", 0)
    assert str(audio.control_url) == "rtsp://10.0.0.5/live/trackID=1"
    assert event.sdp.origin.username == "-"  # placeholder for the missing o=
    assert event.sdp.connection is not None and event.sdp.connection.address == "10.0.0.5"


def test_hikvision_describe_fixture_uses_absolute_controls() -> None:
    client, server = make_client("rtsp://admin:12345@192.0.2.64:554/Streaming/Channels/101")
    client.start(0.0)
    server.reply(server.request(), 200, 0.1)
    describe = server.request()
    assert describe.uri == "rtsp://192.0.2.64/Streaming/Channels/101"  # no credentials
    (event,) = client.receive_data(
        with_cseq(load("hikvision_describe_200.txt"), describe.cseq), 0.2
    )
    assert isinstance(event, Described)
    video, audio = event.tracks
    assert (video.encoding, video.clock_rate) == ("H265", 90000)
    assert video.fmtp["sprop-pps"] == "RAHA8vA8kA=="
    assert str(video.control_url) == (
        "rtsp://192.0.2.64/Streaming/Channels/101/trackID=1?transportmode=unicast"
    )
    assert (audio.encoding, audio.payload_type, audio.clock_rate) == ("PCMA", 8, 8000)
    assert str(client.aggregate_url) == (
        "rtsp://192.0.2.64/Streaming/Channels/101/?transportmode=unicast"
    )


@pytest.mark.parametrize(
    ("headers", "base"),
    [
        (
            [("Content-Base", "rtsp://h/base/"), ("Content-Location", "rtsp://h/loc/")],
            "rtsp://h/base/",
        ),
        ([("Content-Location", "rtsp://h/loc/")], "rtsp://h/loc/"),
        ([], "rtsp://h/req"),
        ([("Content-Base", "/abs/")], "rtsp://h/abs/"),
    ],
)
def test_base_resolution_order(headers: list[tuple[str, str]], base: str) -> None:
    _, _, event = described(url="rtsp://h/req", headers=headers)
    assert str(event.base_url) == base
    assert str(event.tracks[0].control_url) == base.rstrip("/") + "/stream=0"


def test_rtp_info_quirks() -> None:
    client, server, _ = described()
    client.setup(
        [TrackRequest(index=0, transport="tcp"), TrackRequest(index=1, transport="tcp")], now=1.0
    )
    server.reply(server.request(), 200, 1.1, [("Session", "s")])
    server.reply(server.request(), 200, 1.2, [("Session", "s")])
    events = server.reply(
        server.request(),
        200,
        1.3,
        [
            # quirk: trailing ";", missing rtptime, a URL on another host, ssrc only here
            (
                "RTP-Info",
                "url=rtsp://10.1.1.1/x/stream=1;seq=7;ssrc=0000BEEF;,"
                "url=rtsp://127.0.0.1:8554/test/stream=0;seq=65535;rtptime=bogus;",
            ),
        ],
    )
    assert events == [
        PlayStarted(
            range_start=None,
            range_end=None,
            rtp_info=(
                RtpInfo(
                    url="rtsp://10.1.1.1/x/stream=1", index=1, seq=7, rtptime=None, ssrc=0xBEEF
                ),
                RtpInfo(
                    url="rtsp://127.0.0.1:8554/test/stream=0", index=0, seq=65535, rtptime=None
                ),
            ),
        )
    ]


# --------------------------------------------------------------------------------------------
# Header value helpers


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("npt=0.000-", (0.0, None)),
        ("npt=now-", (None, None)),
        ("npt=9.984-20.5", (9.984, 20.5)),
        ("npt=00:01:02.5-01:00:00", (62.5, 3600.0)),
        ("npt = 5-", (5.0, None)),
        ("clock=19961108T142300Z-", (None, None)),
        ("npt=abc-", (None, None)),
        (None, (None, None)),
    ],
)
def test_parse_range(value: str | None, expected: tuple[float | None, float | None]) -> None:
    assert parse_range(value) == expected


def test_parse_transport_variants() -> None:
    reply = parse_transport("RTP/AVP/UDP;unicast;client_port=5000;server_port=7000")
    assert (reply.transport, reply.client_ports, reply.server_ports) == (
        "udp",
        (5000, 5001),
        (7000, 7001),
    )
    assert parse_transport("RTP/AVP/TCP;interleaved=6", asked="udp").interleaved == (6, 7)
    assert parse_transport("junk", asked="tcp").transport == "tcp"
    assert parse_transport("RTP/AVP;ssrc=nothex").ssrc is None


def test_parse_session_and_rtp_info() -> None:
    assert parse_session("12345678;timeout=60") == ("12345678", 60.0)
    assert parse_session("abc") == ("abc", 60.0)
    assert parse_rtp_info("url=rtsp://h/a;seq=1;rtptime=2") == [("rtsp://h/a", 1, 2, None)]
    assert parse_rtp_info("seq=1") == []


def test_explain_gives_user_facing_reasons() -> None:
    assert explain(401) == "401 Unauthorized: the camera rejected the credentials"
    assert explain(461).startswith("461 Unsupported transport: the server refused the transport")
    assert explain(299) == "status 299"


# --------------------------------------------------------------------------------------------
# The state table


@pytest.mark.parametrize(("state", "event"), list(itertools.product(State, Input)))
def test_every_state_input_pair_transitions_or_raises(state: State, event: Input) -> None:
    if (state, event) in TRANSITIONS:
        assert next_state(state, event) is TRANSITIONS[(state, event)]
    else:
        with pytest.raises(LocalProtocolError, match=f"{event.name} is not allowed in state"):
            next_state(state, event)


def test_terminal_states_allow_nothing_but_teardown() -> None:
    for (state, event), _ in TRANSITIONS.items():
        if state is State.CLOSED:
            pytest.fail(f"CLOSED accepts {event}")
        if state is State.FAILED:
            assert event is Input.SEND_TEARDOWN


def test_api_misuse_raises_local_protocol_error() -> None:
    client, _ = make_client()
    with pytest.raises(LocalProtocolError, match="SEND_PAUSE is not allowed in state INIT"):
        client.pause(0.0)
    with pytest.raises(LocalProtocolError, match="SEND_PLAY is not allowed in state INIT"):
        client.play(0.0)
    client2, _, _ = described()
    with pytest.raises(LocalProtocolError, match="no track with index 5"):
        client2.setup([TrackRequest(index=5, transport="tcp")], now=1.0)
    with pytest.raises(LocalProtocolError, match="a UDP track needs client_ports"):
        client2.setup([TrackRequest(index=0, transport="udp")], now=1.0)
    with pytest.raises(LocalProtocolError, match="SET_PARAMETER needs a session"):
        client2.set_parameter("a", "b", now=1.0)


def test_send_interleaved_frames_rtcp_to_the_server() -> None:
    client, server = playing()
    client.send_interleaved(1, b"\x81\xc9\x00\x01rr")
    assert server.requests() == []
    assert server.frames == [InterleavedFrame(channel=1, data=b"\x81\xc9\x00\x01rr")]


def test_challenged_keepalive_refreshes_the_nonce() -> None:
    client, server = make_client(credentials=("u", "pw"))
    client.start(0.0)
    server.reply(server.request(), 200, 0.0, [("Public", PUBLIC)])
    old = make_challenge(realm="r", nonce="old", algorithm=Algorithm.SHA256)
    server.reply(server.request(), 401, 0.0, [("WWW-Authenticate", old)])
    server.reply(server.request(), 200, 0.0, [], MINIMAL_SDP)
    client.setup([TrackRequest(index=0, transport="tcp")], now=1.0)
    server.reply(server.request(), 200, 1.0, [("Session", "s;timeout=20")])
    server.reply(server.request(), 200, 1.0)
    client.handle_timer(11.0)
    ping = server.request()
    new = make_challenge(realm="r", nonce="new", algorithm=Algorithm.SHA256, stale=True)
    assert server.reply(ping, 401, 11.1, [("WWW-Authenticate", new)]) == []
    assert server.requests() == []  # not repeated
    client.handle_timer(21.0)
    value = server.request().headers.get("Authorization") or ""
    assert 'nonce="new"' in value and "nc=00000001" in value
    assert verify_authorization(value, password="pw", method="GET_PARAMETER")


RESPONSES = [
    load("gstreamer_describe_200.txt"),
    load("camera_quirks_describe_200.txt"),
    b"RTSP/1.0 200 OK\r\nCSeq: 4\r\nSession: s;timeout=x\r\nTransport: RTP/AVP/TCP;interleaved=0-1\r\n\r\n",
    b"RTSP/1.0 200 OK\r\nCSeq: 5\r\nRange: npt=1-2\r\nRTP-Info: url=x;seq=1;rtptime=2\r\n\r\n",
    b'RTSP/1.0 401 Unauthorized\r\nCSeq: 3\r\nWWW-Authenticate: Digest realm="r", nonce="n"\r\n\r\n',
    b"RTSP/1.0 302 Moved\r\nCSeq: 3\r\nLocation: rtsp://h:1/x\r\n\r\n",
    b"$\x00\x00\x02ab",
]


@given(st.data())
def test_client_receive_raises_only_remote_protocol_error(data: st.DataObject) -> None:
    client, server = make_client(credentials=("u", "p"))
    client.start(0.0)
    server.reply(server.request(), 200, 0.0, [("Public", PUBLIC)])
    if data.draw(st.booleans()):
        client.receive_data(with_cseq(load("gstreamer_describe_200.txt"), 2), 0.1)
        client.setup([TrackRequest(index=0, transport="tcp")], now=0.2)
    raw = bytearray(b"".join(data.draw(st.lists(st.sampled_from(RESPONSES), max_size=4))))
    for _ in range(data.draw(st.integers(0, 6))):
        if raw:
            raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    raw += data.draw(st.binary(max_size=20))
    try:
        client.receive_data(bytes(raw), 1.0)
        client.handle_timer(100.0)
    except RemoteProtocolError:
        pass
    client.data_to_send()
