"""ICE (RFC 8445) for a call's video: the ``m=video`` is a second media stream with an agent of
its own (transport/ice.py) on the video's RTP socket, beside the audio's (phone/ice.py).

- RFC 8445 §5.1 / RFC 8839 §5.4: each media stream has its own candidates and, here, its own
  ufrag and pwd in its m= section. We offer ``a=rtcp-mux`` for video (sdp/video.py) with RTCP
  candidates beside (RFC 5761 §5.1.3: the answer may refuse it); once it accepts, one
  component is left. We answer with one when the offer's video multiplexes, else two.
- Gathering (host, server-reflexive from ``stun_server``, relay from ``turn_server``) happens
  before the offer or answer that brings the video goes out (call_control.py's media address step,
  and the re-INVITE that adds video: the ``C`` key, ``--video``). The video section's c=/m=
  name its default candidate (RFC 8445 §5.1.4).
- Roles: one per session (RFC 8445 §6.1.1): the video's agent takes the audio's.
- We answer with ICE only a video offer that has ICE; an answer whose video has none means the
  plain path for the video: from the default candidate to its c=/m=.
- Re-offers that keep the stream keep its agent (RFC 8839 §4.4: same ufrag, pwd and candidates,
  no ICE restart). A video turned off (port 0) loses its agent; turned on again, it is a new
  stream that gathers anew (on the same socket).
- Checks that fail (or consent lost later, RFC 7675) end the video, not the call: the audio is
  what a call is for. The video stops with a notice, later offers turn it off (port 0,
  RFC 3264 §8.2), and a re-offer of video from the far end is answered with port 0; turning
  the video on again (the ``C`` key) gathers a new agent and tries again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Final

from softphone.phone import events as pe
from softphone.phone.call_info import CallInfo
from softphone.phone.ice import CallIce
from softphone.phone.nat import MediaAddress
from softphone.phone.tasks import TaskSet
from softphone.sdp import SdpError, SessionDescription
from softphone.sdp.ice import IceDescription, ice_attributes, ice_of
from softphone.sdp.session import MediaDescription
from softphone.transport.ice import IceEndpoint
from softphone.transport.rtp import RtpEndpoint

__all__ = ["VIDEO_NO_PATH", "VIDEO_PATH_LOST", "VideoIce", "remote_video_ice"]

logger = logging.getLogger(__name__)

VIDEO_NO_PATH: Final = "no video path"
VIDEO_PATH_LOST: Final = "video path lost"


def _video(sdp: SessionDescription) -> MediaDescription | None:
    """The first ``m=video`` that is not rejected (port 0)."""
    return next((m for m in sdp.media if m.media.lower() == "video" and m.port != 0), None)


def remote_video_ice(sdp: bytes | None) -> IceDescription | None:
    """The ICE of the video stream in ``sdp``; None without video or without ICE for it.
    SdpError when malformed."""
    if not sdp:
        return None
    description = SessionDescription.parse(sdp)
    video = _video(description)
    return ice_of(description, video) if video is not None else None


class VideoIce:
    """Every call's video agent (module docstring). ``ice`` gathers (the accounts' settings and
    the TURN warnings are the audio's); ``on_failed(info, reason)`` stops the call's video."""

    def __init__(
        self,
        ice: CallIce,
        *,
        emit: Callable[[pe.PhoneEvent], None],
        tasks: TaskSet,
    ) -> None:
        self._ice = ice
        self._emit = emit
        self._tasks = tasks
        self._started: set[str] = set()  # call ids whose video checks have started
        self._closing: list[IceEndpoint] = []
        self.on_failed: Callable[[CallInfo, str], None] = lambda _info, _reason: None

    def enabled(self, account: str) -> bool:
        return self._ice.enabled(account)

    @property
    def connect_timeout_s(self) -> float:
        return self._ice.connect_timeout_s

    async def prepare(
        self, info: CallInfo, rtp: RtpEndpoint, *, host: str, offer_sdp: bytes | None
    ) -> None:
        """Gather the video's candidates on ``rtp`` (the call's video socket) when the call's
        account does ICE and it has no video agent yet; ``offer_sdp``: the offer we will
        answer (None: we offer), whose video must do ICE."""
        if info.video_ice is not None or not self.enabled(info.account):
            return
        # RFC 5761 §5.1.3: our offer has rtcp-mux, but a peer may refuse it, so it has RTCP
        # candidates too (aioice drops the component when the answer has none for it).
        components = 2
        if offer_sdp:
            try:
                offer = SessionDescription.parse(offer_sdp)
                video = _video(offer)
                if video is None or ice_of(offer, video) is None:
                    return
            except SdpError as exc:
                logger.info("offer's video ICE is unusable, answering without: %s", exc)
                return
            components = 1 if video.rtcp_mux else 2
        controlling = info.ice.controlling if info.ice is not None else not offer_sdp
        ice = await self._ice.agent(
            info.account, rtp, host=host, controlling=controlling, components=components
        )
        if info.state == "ended" or info.video_rtp is not rtp:  # the call ended meanwhile
            self._close(ice)
            return
        info.video_ice = ice
        default = ice.default_candidate(1)
        assert default is not None  # the host candidate is always there
        rtcp = ice.default_candidate(2) or default
        info.video_ice_address = MediaAddress(
            default.address, default.port, rtcp.port, f"ice-{default.type}"
        )
        logger.info(
            "video ICE for a call on %s: %d candidates, default %s %s:%s",
            info.account,
            len(ice.local_candidates()),
            default.type,
            default.address,
            default.port,
        )

    @staticmethod
    def attributes(info: CallInfo) -> list[tuple[str, str | None]]:
        """The a= lines of our ICE for the call's m=video (none when its video does no ICE),
        after ``a=rtcp`` with the default RTCP candidate's port when there is one (RFC 3605
        §2.1: a peer without ICE and without rtcp-mux sends there, and behind a NAT that need
        not be the RTP port + 1)."""
        ice = info.video_ice
        if ice is None:
            return []
        rtcp = ice.default_candidate(2)
        out: list[tuple[str, str | None]] = [("rtcp", str(rtcp.port))] if rtcp is not None else []
        description = IceDescription(ice.ufrag, ice.pwd, tuple(ice.local_candidates()))
        return out + ice_attributes(description)

    @staticmethod
    def failed(info: CallInfo) -> bool:
        ice = info.video_ice
        return ice is not None and ice.state == "failed"

    def start(self, info: CallInfo) -> None:
        """The far end's SDP with video is known: run the video's checks (once per call), or
        take the plain path when its video does not do ICE."""
        ice = info.video_ice
        if ice is None or info.call_id in self._started or info.video_media is None:
            return
        self._started.add(info.call_id)
        try:
            remote = remote_video_ice(info.remote_sdp)
        except SdpError as exc:
            text = f"the far end's video ICE is unusable: {exc}"
            self._emit(pe.Notice(level="warning", text=text))
            remote = None
        if remote is None:
            logger.info("call %s: the far end's video does not do ICE: plain RTP", info.call_id)
            ice.use_plain()
            return
        self._tasks.spawn(self._connect(info, ice, remote), name=f"video ice {info.call_id}")

    async def _connect(self, info: CallInfo, ice: IceEndpoint, remote: IceDescription) -> None:
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                await ice.connect(
                    remote.ufrag, remote.pwd, list(remote.candidates), lite=remote.lite
                )
        except (ConnectionError, TimeoutError) as exc:
            if info.state != "ended" and info.video_ice is ice:
                logger.info("call %s: video ICE failed: %r", info.call_id, exc)
                ice.state = "failed"
                self._fail(info, VIDEO_NO_PATH)
            return
        logger.info("call %s: video ICE connected over %s", info.call_id, ice.selected_types())
        await ice.lost()
        if info.state != "ended" and info.video_ice is ice:
            ice.state = "failed"  # RFC 7675 §5.1: no consent, no sending
            self._fail(info, VIDEO_PATH_LOST)

    def _fail(self, info: CallInfo, reason: str) -> None:
        text = f"call with {info.remote}: {reason} (ICE); the call goes on without video"
        self._emit(pe.Notice(level="warning", text=text))
        self.on_failed(info, reason)

    def close(self, info: CallInfo) -> None:
        """The call's video socket closes: so does its agent."""
        ice, info.video_ice = info.video_ice, None
        info.video_ice_address = None
        self._started.discard(info.call_id)
        if ice is not None:
            self._close(ice)

    def _close(self, ice: IceEndpoint) -> None:
        ice.close()
        self._closing.append(ice)

    async def wait_closed(self) -> None:
        closing, self._closing = self._closing, []
        await asyncio.gather(*(ice.wait_closed() for ice in closing))
