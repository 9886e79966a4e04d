"""The RTSP 1.0 client core (RFC 2326): a sans-IO state machine for one presentation.

Bytes in, events out; bytes out through ``data_to_send()``; time only through ``now`` arguments::

    client = RtspClient(url, rng=random.SystemRandom(), user_agent="softphone/0.1", now=t)
    client.start(now=t)                       # OPTIONS, then DESCRIBE
    sock.send(client.data_to_send())
    for event in client.receive_data(sock.recv(65536), now=t):
        ...                                   # Described -> client.setup([...]) -> PlayStarted
    if (at := client.get_timer()) is not None: ...  # call handle_timer(at) then

State machine: RFC 2326 §A.1 (client: Init, Ready, Playing) with the states between a request
and its response made explicit; the whole table is ``TRANSITIONS`` in rtsp/state.py. Several requests may be
outstanding (keep-alives are never waited for); responses are matched by CSeq (§12.17).
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from softphone.rtsp.errors import LocalProtocolError, ParseError
from softphone.rtsp.events import (
    AuthenticationFailed,
    ClientEvent,
    Described,
    Event,
    InterleavedFrameReceived,
    Paused,
    PlayStarted,
    Redirected,
    RequestFailed,
    RequestTimedOut,
    RtpInfo,
    ServerRequestReceived,
    TornDown,
    Track,
    TrackRequest,
    TrackSetUp,
)
from softphone.rtsp.headers import (
    DEFAULT_SESSION_TIMEOUT_S,
    TransportName,
    parse_range,
    parse_rtp_info,
    parse_session,
    parse_transport,
)
from softphone.rtsp.message import (
    NEED_DATA,
    InterleavedFrame,
    RtspConnection,
    RtspRequest,
    RtspResponse,
    reason_phrase,
)
from softphone.rtsp.state import KEEPALIVE_STATES, Input, State, next_state
from softphone.rtsp.status import AuthAttempts, Authenticator, redirect_target
from softphone.rtsp.url import RtspUrl
from softphone.sdp import SdpParseError, SessionDescription

__all__ = [
    "DEFAULT_SESSION_TIMEOUT_S",
    "MAX_KEEPALIVE_INTERVAL_S",
    "REQUEST_TIMEOUT_S",
    "AuthenticationFailed",
    "ClientEvent",
    "Described",
    "Event",
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
]

logger = logging.getLogger(__name__)
wire_logger = logging.getLogger("softphone.wire")

REQUEST_TIMEOUT_S: Final = 10.0  # a request that blocks progress fails after this long
# Keep-alives at least this often, whatever session timeout the server gives: NAT bindings on
# the way outlive a 30 s refresh, and the server's timeout may be longer than theirs.
MAX_KEEPALIVE_INTERVAL_S: Final = 30.0


@dataclass(slots=True, kw_only=True)
class _Pending:
    """A request awaiting its response, keyed by CSeq."""

    request: RtspRequest
    sent_at: float
    blocking: bool  # times out after REQUEST_TIMEOUT_S with an event
    keepalive: bool = False
    auth: AuthAttempts = field(default_factory=AuthAttempts)


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
        self._authenticator = Authenticator(credentials, rng=rng)
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

    def teardown(self, now: float) -> list[ClientEvent]:
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

    def handle_timer(self, now: float) -> list[ClientEvent]:
        events: list[ClientEvent] = []
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

    def receive_data(self, data: bytes, now: float) -> list[ClientEvent]:
        """Feed bytes read from the connection; raises only RemoteProtocolError."""
        self._connection.receive_data(data)
        events: list[ClientEvent] = []
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
        authorization = self._authenticator.authorization(request.method, request.uri, pending.auth)
        if authorization is not None:
            request.headers.set("Authorization", authorization)
        pending.sent_at = now
        self._pending[self._cseq] = pending
        data = bytes(request)
        self._log_wire("sent", data)
        self._out += data

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
        # The session and the NAT bindings on the way must be refreshed (RFC 2326 §12.37):
        # GET_PARAMETER when the server lists it (a no-op, §10.8), else OPTIONS; never waited
        # for, since cameras answer keep-alives late or not at all.
        method = "GET_PARAMETER" if "GET_PARAMETER" in self.public else "OPTIONS"
        for cseq in [c for c, p in self._pending.items() if p.keepalive]:
            if now - self._pending[cseq].sent_at > REQUEST_TIMEOUT_S:
                del self._pending[cseq]  # quirk: cameras that never answer keep-alives
        url = self.aggregate_url
        self._send(method, url, now, keepalive=True)
        self._last_session_request_at = now

    def _keepalive_at(self) -> float | None:
        if self.session_id is None or self.state not in KEEPALIVE_STATES:
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

    def _on_response(self, response: RtspResponse, now: float) -> list[ClientEvent]:
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
                self._authenticator.refresh(response)
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

    def _fail(self, method: str, status: int, reason: str) -> list[ClientEvent]:
        self._apply(Input.RECV_FAILURE)
        return [RequestFailed(method=method, status=status, reason=reason)]

    def _on_redirect(self, method: str, response: RtspResponse) -> list[ClientEvent]:
        """3xx (RFC 2326 §11.3): report the Location; the driver connects there."""
        target = redirect_target(self.url, response)
        if target is None:
            return self._fail(method, response.status, "redirect without a usable Location")
        self._apply(Input.RECV_REDIRECT)
        return [Redirected(location=target)]

    def _on_unauthorized(
        self, pending: _Pending, response: RtspResponse, now: float
    ) -> list[ClientEvent]:
        """401 (RFC 2326 §D.1, RFC 7235 §3.1): answer the strongest challenge, once per nonce
        (rtsp/status.py); a request that cannot be answered fails, unless nothing waits for
        it."""
        refused = self._authenticator.answer(response, pending.auth)
        if refused is None:
            self._transmit(pending, now)
            return []
        if pending.keepalive or not pending.blocking:
            return []
        self._apply(Input.RECV_FAILURE)
        return [AuthenticationFailed(method=pending.request.method, reason=refused)]

    def _on_server_request(self, request: RtspRequest) -> list[ClientEvent]:
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

    def _describe(self, now: float) -> list[ClientEvent]:
        self._apply(Input.SEND_DESCRIBE)
        self._send("DESCRIBE", self.url, now, blocking=True, headers={"Accept": "application/sdp"})
        return []

    def _on_options_ok(
        self, response: RtspResponse, pending: _Pending, now: float
    ) -> list[ClientEvent]:
        self.public = frozenset(
            m.strip().upper()
            for value in response.headers.get_all("Public")
            for m in value.split(",")
            if m.strip()
        )
        return self._describe(now)

    def _on_describe_ok(
        self, response: RtspResponse, pending: _Pending, now: float
    ) -> list[ClientEvent]:
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

    def _on_setup_ok(
        self, response: RtspResponse, pending: _Pending, now: float
    ) -> list[ClientEvent]:
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

    def _on_play_ok(
        self, response: RtspResponse, pending: _Pending, now: float
    ) -> list[ClientEvent]:
        start, end = parse_range(response.headers.get("Range"))
        rtp_info = tuple(
            RtpInfo(url=url, index=self._track_for(url), seq=seq, rtptime=rtptime, ssrc=ssrc)
            for url, seq, rtptime, ssrc in parse_rtp_info(response.headers.get("RTP-Info") or "")
        )
        self._apply(Input.RECV_PLAY_OK)
        return [PlayStarted(range_start=start, range_end=end, rtp_info=rtp_info)]

    def _on_pause_ok(
        self, response: RtspResponse, pending: _Pending, now: float
    ) -> list[ClientEvent]:
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
