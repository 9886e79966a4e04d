"""The RTSP 1.0 client core (RFC 2326): a sans-IO state machine for one presentation.

Bytes in, events out; bytes out through ``data_to_send()``; time only through ``now`` arguments::

    client = RtspClient(url, rng=random.SystemRandom(), user_agent="softphone/0.1", now=t)
    client.start(now=t)                       # OPTIONS, then DESCRIBE
    sock.send(client.data_to_send())
    for event in client.receive_data(sock.recv(65536), now=t):
        ...                                   # Described -> client.setup([...]) -> PlayStarted
    if (at := client.get_timer()) is not None: ...  # call handle_timer(at) then

State machine: RFC 2326 §A.1 (client: Init, Ready, Playing) with the states between a request
and its response made explicit; the whole table is ``TRANSITIONS``. Several requests may be
outstanding (keep-alives are never waited for); responses are matched by CSeq (§12.17).
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum, auto
from typing import TYPE_CHECKING, Final, Literal, TypeAlias

from softphone.rtsp.errors import LocalProtocolError, ParseError
from softphone.rtsp.message import (
    NEED_DATA,
    InterleavedFrame,
    RtspConnection,
    RtspRequest,
    RtspResponse,
    reason_phrase,
)
from softphone.rtsp.url import RtspUrl
from softphone.sdp import SdpParseError, SessionDescription

if TYPE_CHECKING:
    from softphone.auth.digest import Challenge, DigestClient

__all__ = [
    "DEFAULT_SESSION_TIMEOUT_S",
    "MAX_KEEPALIVE_INTERVAL_S",
    "REQUEST_TIMEOUT_S",
    "TRANSITIONS",
    "AuthenticationFailed",
    "Described",
    "Event",
    "Input",
    "InterleavedFrameReceived",
    "Paused",
    "PlayStarted",
    "Redirected",
    "RequestFailed",
    "RequestTimedOut",
    "RtpInfo",
    "RtspClient",
    "ServerRequestReceived",
    "State",
    "TornDown",
    "Track",
    "TrackRequest",
    "TrackSetUp",
    "TransportReply",
    "explain",
    "next_state",
    "parse_range",
    "parse_rtp_info",
    "parse_session",
    "parse_transport",
]

logger = logging.getLogger(__name__)
wire_logger = logging.getLogger("softphone.wire")

REQUEST_TIMEOUT_S: Final = 10.0  # a request that blocks progress fails after this long
DEFAULT_SESSION_TIMEOUT_S: Final = 60.0  # RFC 2326 §12.37: "the default is 60 seconds"
MAX_KEEPALIVE_INTERVAL_S: Final = 30.0  # issue 4 §1: NAT bindings outlive a 30 s refresh
_MAX_AUTH_ATTEMPTS: Final = 3  # answered challenges per request (stale nonces included)

TransportName: TypeAlias = Literal["udp", "tcp"]


# --------------------------------------------------------------------------------------------
# The state machine (RFC 2326 §A.1)


class State(Enum):
    INIT = auto()  # nothing sent yet
    QUERYING = auto()  # OPTIONS sent at start (§10.1)
    DESCRIBING = auto()  # DESCRIBE sent (§10.2)
    DESCRIBED = auto()  # SDP known, no SETUP yet (still §A.1 Init)
    SETTING_UP = auto()  # a SETUP is outstanding (§10.4)
    READY = auto()  # §A.1 Ready: set up, not playing
    STARTING = auto()  # PLAY sent from READY (§10.5)
    PLAYING = auto()  # §A.1 Playing
    SEEKING = auto()  # PLAY sent while PLAYING (a new Range, §10.5)
    PAUSING = auto()  # PAUSE sent (§10.6)
    TEARING_DOWN = auto()  # TEARDOWN sent (§10.7)
    CLOSED = auto()  # torn down or redirected: this client is done
    FAILED = auto()  # a blocking request failed or timed out


class Input(Enum):
    SEND_OPTIONS = auto()
    SEND_DESCRIBE = auto()
    RECV_DESCRIBE_OK = auto()
    SEND_SETUP = auto()
    RECV_SETUP_OK = auto()
    SEND_PLAY = auto()
    RECV_PLAY_OK = auto()
    SEND_PAUSE = auto()
    RECV_PAUSE_OK = auto()
    SEND_TEARDOWN = auto()
    RECV_TEARDOWN_REPLY = auto()  # any final response: the session is gone either way
    RECV_FAILURE = auto()  # 4xx/5xx, or 401 after the credentials were tried
    RECV_REDIRECT = auto()  # 3xx with a Location (§11.3); the driver reconnects there
    REQUEST_TIMEOUT = auto()  # no response within REQUEST_TIMEOUT_S


S, In = State, Input
_WAITING: Final = (S.QUERYING, S.DESCRIBING, S.SETTING_UP, S.STARTING, S.SEEKING, S.PAUSING)
# Any pair not listed raises LocalProtocolError (the API was called in the wrong state).
TRANSITIONS: Final[Mapping[tuple[State, Input], State]] = {
    (S.INIT, In.SEND_OPTIONS): S.QUERYING,
    (S.QUERYING, In.SEND_DESCRIBE): S.DESCRIBING,
    (S.DESCRIBING, In.RECV_DESCRIBE_OK): S.DESCRIBED,
    (S.DESCRIBED, In.SEND_SETUP): S.SETTING_UP,
    (S.SETTING_UP, In.RECV_SETUP_OK): S.READY,
    (S.READY, In.SEND_SETUP): S.SETTING_UP,  # the next track of an aggregate (§10.4)
    (S.READY, In.SEND_PLAY): S.STARTING,
    (S.STARTING, In.RECV_PLAY_OK): S.PLAYING,
    (S.PLAYING, In.SEND_PLAY): S.SEEKING,  # §A.1: Playing --PLAY--> Playing
    (S.SEEKING, In.RECV_PLAY_OK): S.PLAYING,
    (S.PLAYING, In.SEND_PAUSE): S.PAUSING,
    (S.PAUSING, In.RECV_PAUSE_OK): S.READY,  # §A.1: Playing --PAUSE--> Ready
    # Failures: a refused SETUP/DESCRIBE ends the attempt (the driver may retry over TCP on a
    # new connection); a refused PLAY/PAUSE/seek leaves the session where it was.
    (S.QUERYING, In.RECV_FAILURE): S.FAILED,
    (S.DESCRIBING, In.RECV_FAILURE): S.FAILED,
    (S.SETTING_UP, In.RECV_FAILURE): S.FAILED,
    (S.STARTING, In.RECV_FAILURE): S.READY,
    (S.SEEKING, In.RECV_FAILURE): S.PLAYING,
    (S.PAUSING, In.RECV_FAILURE): S.PLAYING,
    **{(state, In.RECV_REDIRECT): S.CLOSED for state in _WAITING},
    **{(state, In.REQUEST_TIMEOUT): S.FAILED for state in _WAITING},
    # TEARDOWN (§10.7) from anywhere but CLOSED; without a session nothing is sent and the
    # reply is taken as given at once.
    **{(state, In.SEND_TEARDOWN): S.TEARING_DOWN for state in State if state is not S.CLOSED},
    (S.TEARING_DOWN, In.RECV_TEARDOWN_REPLY): S.CLOSED,
    (S.TEARING_DOWN, In.REQUEST_TIMEOUT): S.CLOSED,
}
del S, In

# While these hold a session, keep-alives run (issue 4 §1).
_KEEPALIVE_STATES: Final = frozenset(
    {
        State.SETTING_UP,
        State.READY,
        State.STARTING,
        State.PLAYING,
        State.SEEKING,
        State.PAUSING,
    }
)


def next_state(state: State, event: Input) -> State:
    """Apply ``TRANSITIONS``; a pair it does not list raises LocalProtocolError."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise LocalProtocolError(f"{event.name} is not allowed in state {state.name}") from None


# --------------------------------------------------------------------------------------------
# Events (past tense, frozen, compared by value)


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Base class of RTSP client events."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Track:
    """One ``m=`` section of the DESCRIBE answer. ``index`` is its position in ``sdp.media``."""

    index: int
    media: str  # "video", "audio", "application"...
    encoding: str  # as in a=rtpmap ("H264", "MPEG4-GENERIC"); "" when unknown
    clock_rate: int  # 0 when unknown
    channels: int
    payload_type: int
    fmtp: dict[str, str]
    control_url: RtspUrl


@dataclass(frozen=True, slots=True, kw_only=True)
class TrackRequest:
    """What ``setup()`` asks for one track. ``client_ports`` (rtp, rtcp) are needed for UDP."""

    index: int
    transport: TransportName
    client_ports: tuple[int, int] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RtpInfo:
    """One entry of the RTP-Info header (RFC 2326 §12.33); ``index`` is the matching track."""

    url: str
    index: int | None
    seq: int | None
    rtptime: int | None
    ssrc: int | None = None  # RFC 7826 §18.45; some RTSP 1.0 cameras put it here only


@dataclass(frozen=True, slots=True, kw_only=True)
class Described(Event):
    """DESCRIBE answered with an SDP (RFC 2326 §10.2): the RTP tracks, controls resolved."""

    sdp: SessionDescription
    base_url: RtspUrl
    tracks: tuple[Track, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class TrackSetUp(Event):
    """A SETUP succeeded; ``transport`` is what the server chose, not what we asked."""

    index: int
    transport: TransportName
    interleaved: tuple[int, int] | None
    server_ports: tuple[int, int] | None
    source: str | None
    ssrc: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class PlayStarted(Event):
    """PLAY answered (RFC 2326 §10.5): the range that will play, and RTP-Info per track."""

    range_start: float | None  # npt seconds (RFC 2326 §3.6); None for "now" or absent
    range_end: float | None
    rtp_info: tuple[RtpInfo, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Paused(Event):
    """PAUSE answered (RFC 2326 §10.6)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TornDown(Event):
    """TEARDOWN answered (RFC 2326 §10.7): the session is over."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Redirected(Event):
    """A 3xx answer (RFC 2326 §11.3): play ``location`` instead."""

    location: RtspUrl


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestFailed(Event):
    """A request answered with an error status (RFC 2326 §7.1.1)."""

    method: str
    status: int
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthenticationFailed(Event):
    """401 after the credentials were tried, or none to try (RFC 2326 §D)."""

    method: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestTimedOut(Event):
    """No answer within the request timeout."""

    method: str


@dataclass(frozen=True, slots=True, kw_only=True)
class InterleavedFrameReceived(Event):
    """A ``$`` frame on a channel that was set up (RFC 2326 §10.12)."""

    channel: int
    data: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerRequestReceived(Event):
    """A request from the server (RFC 2326 §10), already answered."""

    method: str


# --------------------------------------------------------------------------------------------
# Header values


_EXPLANATIONS: Final[dict[int, str]] = {
    301: "the stream has moved",
    302: "the stream is temporarily elsewhere",
    400: "the server did not understand the request",
    401: "the camera rejected the credentials",
    403: "access to this stream is forbidden",
    404: "there is no stream at this URL (check the path)",
    405: "the server does not allow this method here",
    453: "the server has no bandwidth left (too many viewers?)",
    454: "the server no longer knows this session (it expired)",
    455: "the server cannot do that in the current state (e.g. PAUSE on a live stream)",
    457: "the server cannot seek to that position",
    459: "the server does not allow aggregate control here",
    460: "the server only allows aggregate control",
    461: "the server refused the transport (try --transport tcp or udp)",
    500: "the server failed internally",
    501: "the server does not implement this method",
    503: "the server is busy or starting up",
}


def explain(status: int) -> str:
    """A user-facing reason: ``"401 Unauthorized: the camera rejected the credentials"``."""
    phrase = reason_phrase(status)
    text = f"{status} {phrase}" if phrase else f"status {status}"
    detail = _EXPLANATIONS.get(status)
    return f"{text}: {detail}" if detail else text


_NPT_CLOCK: Final = re.compile(r"(?:([0-9]+):)?([0-9]{1,2}):([0-9]{1,2}(?:\.[0-9]*)?)")


def _npt_time(text: str) -> float | None:
    """npt-time (RFC 2326 §3.6): "now", seconds ("12.5") or hh:mm:ss(.frac)."""
    text = text.strip()
    if not text or text == "now":
        return None
    if (clock := _NPT_CLOCK.fullmatch(text)) is not None:
        hours = int(clock.group(1)) if clock.group(1) else 0
        return hours * 3600 + int(clock.group(2)) * 60 + float(clock.group(3))
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value >= 0 and value != float("inf") else None


def parse_range(value: str | None) -> tuple[float | None, float | None]:
    """``npt=9.984-20`` -> (9.984, 20.0) (RFC 2326 §12.29, §3.6); other units -> (None, None)."""
    if value is None:
        return None, None
    spec = value.split(";")[0].strip()
    unit, eq, times = spec.partition("=")
    if not eq or unit.strip().lower() != "npt":
        return None, None
    start, _, end = times.partition("-")
    return _npt_time(start), _npt_time(end)


def _int(text: str | None, *, base: int = 10) -> int | None:
    if text is None:
        return None
    text = text.strip()
    try:
        value = int(text, base)
    except ValueError:
        return None
    return value if value >= 0 else None


def _ssrc(text: str | None) -> int | None:
    # quirk: a leading space in "ssrc= 1A2B3C4D" (stripped by _int).
    value = _int(text, base=16)
    return value if value is not None and value <= 0xFFFFFFFF else None


def _pair(text: str | None) -> tuple[int, int] | None:
    """``"5000-5001"`` -> (5000, 5001); a single number n -> (n, n + 1) (RFC 2326 §12.39)."""
    if text is None:
        return None
    first, dash, second = text.partition("-")
    a, b = _int(first), _int(second) if dash else None
    if a is None or a > 65535:
        return None
    return (a, b if b is not None and b <= 65535 else a + 1)


@dataclass(frozen=True, slots=True, kw_only=True)
class TransportReply:
    """The server's Transport header (RFC 2326 §12.39), first spec only."""

    transport: TransportName
    interleaved: tuple[int, int] | None
    server_ports: tuple[int, int] | None
    client_ports: tuple[int, int] | None
    source: str | None
    ssrc: int | None


def parse_transport(value: str, *, asked: TransportName = "udp") -> TransportReply:
    """Read the Transport reply; ``asked`` decides when the protocol field is unreadable."""
    spec = value.split(",")[0]
    parts = [p.strip() for p in spec.split(";")]
    protocol = parts[0].upper() if parts else ""
    params: dict[str, str] = {}
    for part in parts[1:]:
        name, _, val = part.partition("=")
        params.setdefault(name.strip().lower(), val.strip())
    transport: TransportName
    if protocol.startswith("RTP/AVP/TCP") or protocol.endswith("/TCP"):
        transport = "tcp"
    elif protocol in ("RTP/AVP", "RTP/AVP/UDP"):
        transport = "udp"
    else:
        transport = asked
    return TransportReply(
        transport=transport,
        interleaved=_pair(params.get("interleaved")),
        server_ports=_pair(params.get("server_port")),
        client_ports=_pair(params.get("client_port")),
        source=params.get("source") or None,
        ssrc=_ssrc(params.get("ssrc")),
    )


def parse_session(value: str) -> tuple[str, float]:
    """``Session: 12345678;timeout=60`` -> ("12345678", 60.0) (RFC 2326 §12.37)."""
    session_id, *params = (p.strip() for p in value.split(";"))
    timeout = DEFAULT_SESSION_TIMEOUT_S
    for param in params:
        name, _, val = param.partition("=")
        if name.strip().lower() == "timeout":
            try:
                parsed = float(val.strip())
            except ValueError:
                continue
            if 0 < parsed < float("inf"):
                timeout = parsed
    if not session_id:
        raise ParseError(f"empty session id in {value!r}")
    return session_id, timeout


def parse_rtp_info(value: str) -> list[tuple[str, int | None, int | None, int | None]]:
    """RTP-Info entries (RFC 2326 §12.33) as (url, seq, rtptime, ssrc)."""
    entries: list[tuple[str, int | None, int | None, int | None]] = []
    for item in value.split(","):
        params: dict[str, str] = {}
        # quirk: a trailing ";" ("url=...;seq=1;rtptime=2;"), and rtptime left out.
        for part in item.split(";"):
            name, eq, val = part.strip().partition("=")
            if eq:
                params.setdefault(name.strip().lower(), val.strip())
        if "url" not in params:
            continue
        seq = _int(params.get("seq"))
        rtptime = _int(params.get("rtptime"))
        entries.append(
            (
                params["url"],
                seq if seq is not None and seq <= 0xFFFF else None,
                rtptime if rtptime is not None and rtptime <= 0xFFFFFFFF else None,
                _ssrc(params.get("ssrc")),  # quirk: SSRC given only here, not in Transport
            )
        )
    return entries


# --------------------------------------------------------------------------------------------
# The client


class _Auth(Enum):
    NONE = auto()
    BASIC = auto()
    DIGEST = auto()


@dataclass(slots=True, kw_only=True)
class _Pending:
    """A request awaiting its response, keyed by CSeq."""

    request: RtspRequest
    sent_at: float
    blocking: bool  # times out after REQUEST_TIMEOUT_S with an event
    keepalive: bool = False
    auth_attempts: int = 0
    nonces: set[str] = field(default_factory=set)  # Digest nonces this request already answered
    basic_tried: bool = False


class RtspClient:
    """Sans-IO RTSP 1.0 client for one URL; see the module docstring."""

    def __init__(
        self,
        url: RtspUrl,
        *,
        rng: random.Random,
        credentials: tuple[str, str] | None = None,
        user_agent: str,
        now: float,
    ) -> None:
        self.url = url
        self.state = State.INIT
        self.session_id: str | None = None
        self.session_timeout_s = DEFAULT_SESSION_TIMEOUT_S
        self.public: frozenset[str] = frozenset()  # methods the server listed in Public
        self.tracks: tuple[Track, ...] = ()
        self.aggregate_url: RtspUrl = url
        self.ignored_frames = 0  # interleaved frames on channels never set up
        self._user_agent = user_agent
        if credentials is None and url.username is not None:
            credentials = (url.username, url.password or "")
        self._credentials = credentials
        self._rng = rng
        self._digest_client: DigestClient | None = None  # made with the first challenge
        self._auth = _Auth.NONE
        self._digest_realm: str | None = None
        self._connection = RtspConnection()
        self._out = bytearray()
        self._cseq = 0
        self._pending: dict[int, _Pending] = {}
        self._setup_queue: list[TrackRequest] = []
        self._current_setup: TrackRequest | None = None
        self._play_after_setup = True
        self._channels: set[int] = set()
        self._set_up: dict[int, TrackSetUp] = {}
        self._last_session_request_at = now

    # -- the state machine -------------------------------------------------------------------

    def _apply(self, event: Input) -> None:
        old = self.state
        self.state = next_state(old, event)
        if self.state is not old:
            logger.debug("%s: %s -> %s on %s", self.url, old.name, self.state.name, event.name)

    # -- public API --------------------------------------------------------------------------

    def start(self, now: float) -> None:
        """Send OPTIONS (§10.1); DESCRIBE (§10.2) follows when it is answered."""
        self._apply(Input.SEND_OPTIONS)
        self._send("OPTIONS", self.url, now, blocking=True)

    def setup(self, tracks: Sequence[TrackRequest], now: float, *, play: bool = True) -> None:
        """SETUP each track in turn (§10.4), then (with ``play``) PLAY the aggregate."""
        if not tracks:
            raise LocalProtocolError("setup() needs at least one track")
        known = {t.index for t in self.tracks}
        for request in tracks:
            if request.index not in known:
                raise LocalProtocolError(f"no track with index {request.index}")
            if request.transport == "udp" and request.client_ports is None:
                raise LocalProtocolError("a UDP track needs client_ports")
        self._apply(Input.SEND_SETUP)
        self._setup_queue = list(tracks[1:])
        self._play_after_setup = play
        self._send_setup(tracks[0], now)

    def play(self, now: float, start_npt: float | None = None) -> None:
        """PLAY the aggregate (§10.5): resume after PAUSE, or seek with ``start_npt``."""
        self._apply(Input.SEND_PLAY)
        headers = {} if start_npt is None else {"Range": f"npt={start_npt:.3f}-"}
        self._send("PLAY", self.aggregate_url, now, blocking=True, headers=headers)

    def pause(self, now: float) -> None:
        """PAUSE the aggregate (§10.6)."""
        self._apply(Input.SEND_PAUSE)
        self._send("PAUSE", self.aggregate_url, now, blocking=True)

    def teardown(self, now: float) -> list[Event]:
        """TEARDOWN (§10.7). Without a session nothing is sent and TornDown comes back at once."""
        if self.state is State.CLOSED:
            return []
        self._apply(Input.SEND_TEARDOWN)
        self._setup_queue = []
        if self.session_id is None:
            self._pending.clear()
            self._apply(Input.RECV_TEARDOWN_REPLY)
            return [TornDown()]
        # Responses to what is still outstanding no longer matter.
        self._pending.clear()
        self._send("TEARDOWN", self.aggregate_url, now, blocking=True)
        return []

    def set_parameter(self, name: str, value: str, now: float) -> None:
        """SET_PARAMETER (§10.9) with a ``text/parameters`` body; not waited for."""
        if self.session_id is None:
            raise LocalProtocolError("SET_PARAMETER needs a session")
        body = f"{name}: {value}\r\n".encode()
        headers = {"Content-Type": "text/parameters"}
        self._send("SET_PARAMETER", self.aggregate_url, now, headers=headers, body=body)

    def get_parameter(self, now: float) -> None:
        """GET_PARAMETER without a body (§10.8): a ping that refreshes the session."""
        self._send("GET_PARAMETER", self.aggregate_url, now)

    def send_interleaved(self, channel: int, data: bytes) -> None:
        """Queue an interleaved frame (§10.12), e.g. an RTCP receiver report over TCP."""
        self._out += bytes(InterleavedFrame(channel=channel, data=data))

    def data_to_send(self) -> bytes:
        data = bytes(self._out)
        self._out.clear()
        return data

    def get_timer(self) -> float | None:
        """When ``handle_timer`` must be called next, or None."""
        deadlines = [p.sent_at + REQUEST_TIMEOUT_S for p in self._pending.values() if p.blocking]
        if (keepalive := self._keepalive_at()) is not None:
            deadlines.append(keepalive)
        return min(deadlines, default=None)

    def handle_timer(self, now: float) -> list[Event]:
        events: list[Event] = []
        for cseq, pending in sorted(self._pending.items()):
            if pending.blocking and now >= pending.sent_at + REQUEST_TIMEOUT_S:
                del self._pending[cseq]
                method = pending.request.method
                logger.info("%s: no reply to %s within %s s", self.url, method, REQUEST_TIMEOUT_S)
                events.append(
                    TornDown() if method == "TEARDOWN" else RequestTimedOut(method=method)
                )
                self._apply(Input.REQUEST_TIMEOUT)
        if (keepalive := self._keepalive_at()) is not None and now >= keepalive:
            self._send_keepalive(now)
        return events

    def receive_data(self, data: bytes, now: float) -> list[Event]:
        """Feed bytes read from the connection; raises only RemoteProtocolError."""
        self._connection.receive_data(data)
        events: list[Event] = []
        while (item := self._connection.next_event()) is not NEED_DATA:
            if isinstance(item, InterleavedFrame):
                if item.channel in self._channels:
                    # quirk: RTCP (and RTP) before the PLAY response is delivered too: the
                    # channel exists from the SETUP answer on.
                    events.append(InterleavedFrameReceived(channel=item.channel, data=item.data))
                else:
                    # quirk: data on channels never set up (stale live555 sessions on a reused
                    # connection, cameras sending every track): counted and dropped.
                    self.ignored_frames += 1
            elif isinstance(item, RtspResponse):
                self._log_wire("received", bytes(item))
                events += self._on_response(item, now)
            else:
                self._log_wire("received", bytes(item))
                events += self._on_server_request(item)
        return events

    # -- sending -----------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        url: RtspUrl,
        now: float,
        *,
        blocking: bool = False,
        keepalive: bool = False,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
    ) -> None:
        request = RtspRequest(method=method, uri=str(url), body=body)
        for name, value in (headers or {}).items():
            request.headers.add(name, value)
        self._transmit(
            _Pending(request=request, sent_at=now, blocking=blocking, keepalive=keepalive), now
        )

    def _transmit(self, pending: _Pending, now: float) -> None:
        """Give the request a new CSeq, the session and credentials, and queue it."""
        request = pending.request
        self._cseq += 1
        request.headers.set("CSeq", str(self._cseq))
        request.headers.set("User-Agent", self._user_agent)
        # §12.37: the session goes on every request of it; also on OPTIONS as a keep-alive.
        if self.session_id is not None and (
            pending.keepalive or request.method not in ("OPTIONS", "DESCRIBE")
        ):
            request.headers.set("Session", self.session_id)
            self._last_session_request_at = now
        if (authorization := self._authorization(request, pending)) is not None:
            request.headers.set("Authorization", authorization)
        pending.sent_at = now
        self._pending[self._cseq] = pending
        data = bytes(request)
        self._log_wire("sent", data)
        self._out += data

    @property
    def _digest(self) -> DigestClient:
        # The auth modules load with the first challenge: most cameras on a LAN never ask.
        if self._digest_client is None:
            from softphone.auth.digest import Credentials, DigestClient

            creds = [Credentials(*self._credentials)] if self._credentials else []
            self._digest_client = DigestClient(creds, rng=self._rng)
        return self._digest_client

    def _authorization(self, request: RtspRequest, pending: _Pending) -> str | None:
        """Credentials for every request once the server asked (RFC 2326 §D, RFC 7616 §3.4)."""
        if self._auth is _Auth.BASIC and self._credentials is not None:
            from softphone.auth.basic import basic_authorization

            return basic_authorization(*self._credentials)
        if self._auth is _Auth.DIGEST:
            values = self._digest.cached(method=request.method, uri=request.uri)
            if values:
                nonce = re.search(r'nonce="([^"]*)"', values[0])
                if nonce is not None:
                    pending.nonces.add(nonce.group(1))
                return values[0]
        return None

    def _send_setup(self, track_request: TrackRequest, now: float) -> None:
        track = next(t for t in self.tracks if t.index == track_request.index)
        if track_request.transport == "tcp":
            i = track_request.index
            transport = f"RTP/AVP/TCP;unicast;interleaved={2 * i}-{2 * i + 1}"
        else:
            rtp, rtcp = track_request.client_ports or (0, 0)
            transport = f"RTP/AVP;unicast;client_port={rtp}-{rtcp}"
        # quirk: no "mode=" parameter: some cameras refuse "mode=play" (and PLAY is the default).
        self._send("SETUP", track.control_url, now, blocking=True, headers={"Transport": transport})
        self._current_setup = track_request

    def _send_keepalive(self, now: float) -> None:
        # Issue 4 §1: GET_PARAMETER when the server lists it, else OPTIONS; never waited for.
        method = "GET_PARAMETER" if "GET_PARAMETER" in self.public else "OPTIONS"
        for cseq in [c for c, p in self._pending.items() if p.keepalive]:
            if now - self._pending[cseq].sent_at > REQUEST_TIMEOUT_S:
                del self._pending[cseq]  # quirk: cameras that never answer keep-alives
        url = self.aggregate_url
        self._send(method, url, now, keepalive=True)
        self._last_session_request_at = now

    def _keepalive_at(self) -> float | None:
        if self.session_id is None or self.state not in _KEEPALIVE_STATES:
            return None
        interval = min(self.session_timeout_s / 2, MAX_KEEPALIVE_INTERVAL_S)
        return self._last_session_request_at + interval

    # -- receiving ---------------------------------------------------------------------------

    def _match(self, response: RtspResponse) -> tuple[int, _Pending] | None:
        try:
            cseq = response.cseq
        except ParseError:
            # quirk: a response without a readable CSeq is taken for the only outstanding
            # request, if there is exactly one.
            if len(self._pending) == 1:
                return next(iter(self._pending.items()))
            return None
        pending = self._pending.get(cseq)
        return (cseq, pending) if pending is not None else None

    def _on_response(self, response: RtspResponse, now: float) -> list[Event]:
        match = self._match(response)
        if match is None:
            logger.debug("%s: response to no outstanding request dropped", self.url)
            return []
        cseq, pending = match
        if 100 <= response.status < 200:
            return []  # §7.1.1: provisional; the final response follows
        del self._pending[cseq]
        method = pending.request.method
        if pending.keepalive:
            if response.status == 401:
                self._refresh_nonce(response)
            return []  # the server is alive; what it says does not matter
        if method == "TEARDOWN":
            self._apply(Input.RECV_TEARDOWN_REPLY)
            self._channels.clear()
            return [TornDown()]
        if response.status == 401:
            return self._on_unauthorized(pending, response, now)
        if not pending.blocking:  # SET_PARAMETER / GET_PARAMETER from the user
            if response.status >= 300:
                return [
                    RequestFailed(
                        method=method,
                        status=response.status,
                        reason=response.reason or reason_phrase(response.status),
                    )
                ]
            return []
        if 300 <= response.status < 400:
            return self._on_redirect(method, response)
        if response.status >= 300:
            if method == "OPTIONS":
                # quirk: cameras that refuse or do not implement OPTIONS still DESCRIBE.
                return self._describe(now)
            self._apply(Input.RECV_FAILURE)
            return [
                RequestFailed(
                    method=method,
                    status=response.status,
                    reason=response.reason or reason_phrase(response.status),
                )
            ]
        handler = _SUCCESS_HANDLERS[method]
        return handler(self, response, pending, now)

    def _fail(self, method: str, status: int, reason: str) -> list[Event]:
        self._apply(Input.RECV_FAILURE)
        return [RequestFailed(method=method, status=status, reason=reason)]

    def _on_redirect(self, method: str, response: RtspResponse) -> list[Event]:
        """3xx (RFC 2326 §11.3): report the Location; the driver connects there."""
        location = response.headers.get("Location")
        try:
            target = self.url.join(location) if location else None
        except ParseError:
            target = None
        if target is None:
            return self._fail(method, response.status, "redirect without a usable Location")
        self._apply(Input.RECV_REDIRECT)
        return [Redirected(location=target)]

    def _on_unauthorized(
        self, pending: _Pending, response: RtspResponse, now: float
    ) -> list[Event]:
        """401 (RFC 2326 §D.1, RFC 7235 §3.1): answer the strongest challenge, once per nonce."""
        method = pending.request.method

        def failed(reason: str) -> list[Event]:
            if pending.keepalive or not pending.blocking:
                return []
            self._apply(Input.RECV_FAILURE)
            return [AuthenticationFailed(method=method, reason=reason)]

        if self._credentials is None:
            return failed("the server asks for credentials and none were given")
        # The auth modules load with the first challenge: most cameras on a LAN never ask.
        from softphone.auth.challenge import REFUSED, choose_challenge

        if pending.auth_attempts >= _MAX_AUTH_ATTEMPTS:
            return failed(REFUSED)

        values = _challenge_values(response)
        choice = choose_challenge(self._digest, values, answered_nonces=pending.nonces)
        if choice.challenge is not None:
            return self._retry_digest(pending, choice.challenge, now)
        if choice.offered == 0 and _basic_offered(values):
            if pending.basic_tried:
                return failed(REFUSED)
            self._auth = _Auth.BASIC
            pending.basic_tried = True
            pending.auth_attempts += 1
            self._transmit(pending, now)
            return []
        if choice.offered == 0:
            offered = response.headers.get_all("WWW-Authenticate")
            schemes = ", ".join(v.split(" ")[0] for v in offered) or "none"
            return failed(f"no supported authentication scheme offered ({schemes})")
        return failed(choice.reason)

    def _retry_digest(self, pending: _Pending, challenge: Challenge, now: float) -> list[Event]:
        if self._digest_realm not in (None, challenge.realm):
            self._digest.forget()
        # Remembered here; _transmit computes the value (nc 1 for a new nonce, RFC 7616 §3.4).
        self._digest.remember(challenge)
        self._digest_realm = challenge.realm
        self._auth = _Auth.DIGEST
        pending.auth_attempts += 1
        pending.nonces.add(challenge.nonce)
        self._transmit(pending, now)
        return []

    def _refresh_nonce(self, response: RtspResponse) -> None:
        """A keep-alive was challenged (the nonce expired): later requests use the new nonce.
        The keep-alive itself is not repeated; the next one carries fresh credentials."""
        from softphone.auth.challenge import choose_challenge

        if self._auth is not _Auth.DIGEST:
            return
        best = choose_challenge(self._digest, _challenge_values(response)).challenge
        if best is not None:
            if self._digest_realm != best.realm:
                self._digest.forget()
            self._digest.remember(best)
            self._digest_realm = best.realm

    def _on_server_request(self, request: RtspRequest) -> list[Event]:
        """Requests from the server (RFC 2326 §10): 200 to OPTIONS/GET_PARAMETER, else 501."""
        status = 200 if request.method in ("OPTIONS", "GET_PARAMETER") else 501
        response = RtspResponse(status=status, reason=reason_phrase(status))
        try:
            response.headers.add("CSeq", str(request.cseq))
        except ParseError:
            response = RtspResponse(status=400, reason=reason_phrase(400))
        if self.session_id is not None:
            response.headers.add("Session", self.session_id)
        data = bytes(response)
        self._log_wire("sent", data)
        self._out += data
        return [ServerRequestReceived(method=request.method)]

    # -- successful responses ------------------------------------------------------------------

    def _describe(self, now: float) -> list[Event]:
        self._apply(Input.SEND_DESCRIBE)
        self._send("DESCRIBE", self.url, now, blocking=True, headers={"Accept": "application/sdp"})
        return []

    def _on_options_ok(self, response: RtspResponse, pending: _Pending, now: float) -> list[Event]:
        self.public = frozenset(
            m.strip().upper()
            for value in response.headers.get_all("Public")
            for m in value.split(",")
            if m.strip()
        )
        return self._describe(now)

    def _on_describe_ok(self, response: RtspResponse, pending: _Pending, now: float) -> list[Event]:
        # quirk: no Content-Type on the DESCRIBE answer; the body is read as SDP regardless.
        try:
            sdp = SessionDescription.parse(response.body, lenient=True)
        except SdpParseError as exc:
            return self._fail("DESCRIBE", response.status, f"unreadable SDP: {exc}")
        request_url = base = self.url
        # RFC 2326 §C.1.1: relative controls resolve against Content-Base, then
        # Content-Location, then the request URL.
        for header in ("Content-Base", "Content-Location"):
            value = response.headers.get(header)
            if value:
                try:
                    base = request_url.join(value)  # quirk: also scheme-less "10.0.0.5:554/x/"
                    break
                except ParseError:
                    logger.info("%s: unusable %s %r", self.url, header, value)
        tracks = _tracks(sdp, base)
        if not tracks:
            return self._fail("DESCRIBE", response.status, "the SDP describes no RTP stream")
        session_control = sdp.attribute("control")
        try:
            self.aggregate_url = base.join(session_control) if session_control else base
        except ParseError:
            self.aggregate_url = base
        self.tracks = tracks
        self._apply(Input.RECV_DESCRIBE_OK)
        return [Described(sdp=sdp, base_url=base, tracks=tracks)]

    def _on_setup_ok(self, response: RtspResponse, pending: _Pending, now: float) -> list[Event]:
        asked = self._current_setup
        assert asked is not None  # set with every SETUP sent
        session = response.headers.get("Session")
        if session is not None:
            try:
                session_id, timeout = parse_session(session)
            except ParseError as exc:
                return self._fail("SETUP", response.status, str(exc))
            if self.session_id is None:
                self.session_id, self.session_timeout_s = session_id, timeout
                self._last_session_request_at = now
            elif session_id != self.session_id:
                # quirk: servers that hand out a new id per SETUP; the first one wins.
                logger.info(
                    "%s: session id changed to %r, keeping %r",
                    self.url,
                    session_id,
                    self.session_id,
                )
        elif self.session_id is None:
            return self._fail("SETUP", response.status, "SETUP answer without a Session header")
        value = response.headers.get("Transport")
        reply = parse_transport(value, asked=asked.transport) if value else None
        chosen: TransportName = reply.transport if reply is not None else asked.transport
        interleaved: tuple[int, int] | None = None
        if chosen == "tcp":
            # quirk: a server answering TCP to a UDP request: reported as TCP, channels as
            # given (or the ones we would have asked for).
            i = asked.index
            interleaved = (reply.interleaved if reply is not None else None) or (2 * i, 2 * i + 1)
            self._channels.update(interleaved)
        event = TrackSetUp(
            index=asked.index,
            transport=chosen,
            interleaved=interleaved,
            server_ports=reply.server_ports if reply is not None and chosen == "udp" else None,
            source=reply.source if reply is not None else None,
            ssrc=reply.ssrc if reply is not None else None,
        )
        self._set_up[asked.index] = event
        self._apply(Input.RECV_SETUP_OK)
        if self._setup_queue:
            self._apply(Input.SEND_SETUP)
            self._send_setup(self._setup_queue.pop(0), now)
        elif self._play_after_setup:
            self.play(now)
        return [event]

    def _on_play_ok(self, response: RtspResponse, pending: _Pending, now: float) -> list[Event]:
        start, end = parse_range(response.headers.get("Range"))
        rtp_info = tuple(
            RtpInfo(url=url, index=self._track_for(url), seq=seq, rtptime=rtptime, ssrc=ssrc)
            for url, seq, rtptime, ssrc in parse_rtp_info(response.headers.get("RTP-Info") or "")
        )
        self._apply(Input.RECV_PLAY_OK)
        return [PlayStarted(range_start=start, range_end=end, rtp_info=rtp_info)]

    def _on_pause_ok(self, response: RtspResponse, pending: _Pending, now: float) -> list[Event]:
        self._apply(Input.RECV_PAUSE_OK)
        return [Paused()]

    def _track_for(self, url_text: str) -> int | None:
        """Which set-up track an RTP-Info url names (exact, else by last path segment)."""
        candidates = [t for t in self.tracks if t.index in self._set_up]
        wanted = url_text.strip().rstrip("/")
        try:
            wanted = str(RtspUrl.parse(wanted)).rstrip("/")
        except ParseError:
            pass
        for track in candidates:
            if str(track.control_url).rstrip("/") == wanted:
                return track.index
        # quirk: wrong RTP-Info URLs (another host or base): match the last path segment.
        tail = wanted.split("?")[0].rsplit("/", 1)[-1]
        by_tail = [
            t
            for t in candidates
            if str(t.control_url).split("?")[0].rstrip("/").rsplit("/", 1)[-1] == tail
        ]
        if len(by_tail) == 1:
            return by_tail[0].index
        return candidates[0].index if len(candidates) == 1 else None

    def _log_wire(self, direction: str, data: bytes) -> None:
        if wire_logger.isEnabledFor(logging.DEBUG):
            text = data.decode("utf-8", "replace")
            text = re.sub(r"(?im)^(Authorization:).*$", r"\1 <redacted>", text)
            wire_logger.debug("RTSP %s %s:\n%s", direction, self.url, text)


_SUCCESS_HANDLERS: Final = {
    "OPTIONS": RtspClient._on_options_ok,
    "DESCRIBE": RtspClient._on_describe_ok,
    "SETUP": RtspClient._on_setup_ok,
    "PLAY": RtspClient._on_play_ok,
    "PAUSE": RtspClient._on_pause_ok,
}


def _challenge_values(response: RtspResponse) -> list[str]:
    """WWW-Authenticate values; those with bytes that are not UTF-8 cannot be hashed: dropped."""
    values = response.headers.get_all("WWW-Authenticate")
    return [v for v in values if not any("\udc80" <= c <= "\udcff" for c in v)]


def _basic_offered(values: Sequence[str]) -> bool:
    from softphone.auth.basic import BasicChallenge
    from softphone.auth.errors import AuthError

    for value in values:
        try:
            BasicChallenge.parse(value)
        except AuthError:
            continue
        return True
    return False


def _tracks(sdp: SessionDescription, base: RtspUrl) -> tuple[Track, ...]:
    """The RTP media sections of a DESCRIBE answer (RFC 2326 §C.1)."""
    tracks: list[Track] = []
    for index, media in enumerate(sdp.media):
        payload_types = media.payload_types()
        if not payload_types or "RTP" not in media.proto.upper():
            continue
        pt = payload_types[0]
        rtpmap = media.rtpmaps().get(pt)
        control = media.control
        try:
            control_url = base.join(control) if control else base
        except ParseError:
            continue
        tracks.append(
            Track(
                index=index,
                media=media.media.lower(),
                encoding=rtpmap.encoding if rtpmap else "",
                clock_rate=rtpmap.clock_rate if rtpmap else 0,
                channels=rtpmap.channels if rtpmap else 1,
                payload_type=pt,
                fmtp=media.fmtp(pt),
                control_url=control_url,
            )
        )
    return tuple(tracks)
