"""The phone's calls: every call it knows by Call-ID (ended ones too, the last ``KEEP_ENDED``),
and each change of a call's state with what goes with it: the event front ends see, the ring
and ringback tones, the call's SDP (phone/offer_answer.py) and its audio (phone/call_audio.py).

What the SIP core decides (a call was answered, the peer re-offered) arrives through the phone's
SIP event handling (phone/sip_events.py), which calls the methods here; the phone's actions
(dial, answer, hold) call them too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator

from softphone.phone import events as pe
from softphone.phone.call_audio import CallAudio
from softphone.phone.call_info import CallInfo
from softphone.phone.errors import PhoneError
from softphone.phone.ice import CallIce
from softphone.phone.offer_answer import OfferAnswer
from softphone.phone.outcome import call_outcome
from softphone.phone.video import CallVideo
from softphone.sdp import Direction, SdpError, SecurityRefused, SessionDescription
from softphone.transport.rtp import RtpEndpoint

__all__ = ["KEEP_ENDED", "CallInfo", "Calls"]

KEEP_ENDED = 50  # bounded memory in long sessions: ended calls beyond these are forgotten
TALKING = ("established", "held")


class Calls:
    """The call table and its state changes. ``open_rtp`` opens an RTP endpoint now (an
    incoming call gets one when it is answered); ``forget_ended`` lets the SIP core drop its
    ended calls too."""

    def __init__(
        self,
        *,
        sdp: OfferAnswer,
        audio: CallAudio,
        emit: Callable[[pe.PhoneEvent], None],
        clock: Callable[[], float],
        open_rtp: Callable[[], RtpEndpoint],
        forget_ended: Callable[[], None],
        ice: CallIce,
        video: CallVideo,
    ) -> None:
        self._calls: dict[str, CallInfo] = {}
        self._sdp = sdp
        self._audio = audio
        self._emit = emit
        self._clock = clock
        self._open_rtp = open_rtp
        self._forget_ended = forget_ended
        self._ice = ice
        self._video = video
        self._closing: set[RtpEndpoint] = set()  # closed before their sockets were attached
        self._ended = asyncio.Event()  # set by every call that ends (wait_ended)

    # ------------------------------------------------------------------ the table
    def __iter__(self) -> Iterator[CallInfo]:
        return iter(self._calls.values())

    def all(self) -> list[CallInfo]:
        return list(self._calls.values())

    def get(self, call_id: str) -> CallInfo | None:
        return self._calls.get(call_id)

    def require(self, call_id: str) -> CallInfo:
        try:
            return self._calls[call_id]
        except KeyError:
            raise PhoneError(f"no call {call_id}") from None

    def add(self, info: CallInfo) -> None:
        self._calls[info.call_id] = info

    # ------------------------------------------------------------------ SDP
    def offer(self, info: CallInfo, *, hold: bool = False) -> SessionDescription:
        """Our new offer for the call (sendonly while we hold it), kept until its answer."""
        info.offer = self._sdp.offer(info, Direction.SENDONLY if hold else Direction.SENDRECV)
        return info.offer

    def ensure_rtp(self, info: CallInfo) -> RtpEndpoint:
        """The call's RTP endpoint, opened now for an incoming call that has none yet."""
        if info.rtp is None:
            info.rtp = self._open_rtp()
        return info.rtp

    def answer_offer(self, info: CallInfo, offer_sdp: bytes | None) -> bytes | None:
        """Our answer to the peer's offer (sendonly while we hold the call); None when it cannot
        be answered. An incoming call gets its RTP endpoint here."""
        self.ensure_rtp(info)
        direction = Direction.SENDONLY if info.local_hold else Direction.SENDRECV
        return self._sdp.answer(info, offer_sdp, direction)

    def gathers_for(self, info: CallInfo, offer_sdp: bytes | None) -> bool:
        """Whether answering the peer's re-offer ``offer_sdp`` must first gather candidates:
        it adds video with ICE (phone/video_ice.py)."""
        return self._video.needs_ice(info, offer_sdp)

    async def gather(self, info: CallInfo, offer_sdp: bytes | None) -> None:
        await self._video.prepare_ice(info, offer_sdp=offer_sdp)

    def offer_problem(self, info: CallInfo) -> SdpError | None:
        """Why the peer's offer in ``info.remote_sdp`` cannot be answered (checked on arrival)."""
        return self._sdp.problem(info, info.remote_sdp)

    def apply_answer(self, info: CallInfo, sdp: bytes) -> SdpError | None:
        problem = self._sdp.apply_answer(info, sdp)
        if problem is not None:
            self._emit(pe.Notice(level="warning", text=f"unusable SDP answer: {problem}"))
        return problem

    # ------------------------------------------------------------------ state
    def set_state(self, info: CallInfo, state: pe.CallStateName) -> None:
        if info.state == state:
            return
        info.state = state
        self.update_tones()
        self._emit(
            pe.CallStateChanged(
                call_id=info.call_id,
                state=state,
                direction=info.direction,
                remote=info.remote,
                encryption=info.encryption,
                srtp_suite=info.srtp_suite,
                session_expires_s=info.session_expires_s,
            )
        )

    def update_tones(self) -> None:
        self._audio.tones(self._calls.values())

    def sync_media(self, info: CallInfo, *, sending: bool) -> None:
        """Start or update the call's audio to match what SDP negotiated."""
        self._ice.start(info)
        cname = f"{info.account}@{self._sdp.address}"  # one CNAME for both (RFC 3550 §6.5.1)
        if info.ntp_offset_s is None:
            info.ntp_offset_s = time.time() - self._clock()
        self._audio.sync(info, sending=sending, cname=cname)
        self._video.sync(info, sending=sending, cname=cname)

    def update_hold_state(self, info: CallInfo) -> None:
        media = info.media
        info.remote_hold = bool(media is not None and media.on_hold)
        if info.state in TALKING:
            self.set_state(info, "held" if info.local_hold or info.remote_hold else "established")

    def progressed(self, info: CallInfo, status: int, sdp: bytes | None) -> None:
        """A provisional response to our INVITE; with SDP it is early media (listen only)."""
        if sdp is not None:
            self.apply_answer(info, sdp)
            self.sync_media(info, sending=False)
        self.set_state(info, "early" if sdp is not None and status == 183 else "ringing")

    def answered(self, info: CallInfo, sdp: bytes | None) -> SdpError | None:
        """The peer answered our call (its 2xx, with the SDP answer to our offer). Returns the
        answer's problem when its media security is not acceptable: the caller hangs up, as
        nothing may be sent in the clear (or with keys we did not agree) instead."""
        if sdp is not None:
            problem = self.apply_answer(info, sdp)
            if isinstance(problem, SecurityRefused):
                info.media = None
                return problem
        self.established(info)
        return None

    def established(self, info: CallInfo) -> None:
        """Answered (our 2xx was ACKed, or the peer's 2xx came): the audio flows both ways."""
        info.established_at = self._clock()
        self.set_state(info, "established")
        self.sync_media(info, sending=True)

    def reoffered(self, info: CallInfo, sdp: bytes | None) -> None:
        """A re-offer (hold, resume, a new address) was answered, by us or by the peer."""
        if sdp is not None:
            self.apply_answer(info, sdp)
        self.update_hold_state(info)
        self.sync_media(info, sending=True)

    def finish(
        self,
        info: CallInfo,
        status: int,
        reason: str,
        *,
        phrase: str = "",
        no_response: bool = False,
    ) -> None:
        """The call ended with final ``status``; ``no_response``: no final response came at all
        (a timeout or a transport error, so ``status`` is the one RFC 3261 §8.1.3.1 assumes)."""
        if info.state == "ended":
            return
        duration = self._clock() - info.established_at if info.established_at is not None else 0.0
        reason = info.end_reason or reason
        self.set_state(info, "ended")
        self._ended.set()
        self._audio.stop(info)
        self._stop_video(info)
        self._ice.close(info)
        if info.rtp is not None:
            self.close_rtp(info.rtp)
            info.rtp = None
        self._prune_ended()
        answered = info.established_at is not None
        self._emit(
            pe.CallEnded(
                call_id=info.call_id,
                status=status,
                reason=reason,
                phrase=phrase,
                outcome="voicemail"
                if info.greeting is not None  # the answering machine took it
                else call_outcome(
                    direction=info.direction,
                    answered=answered,
                    status=status,
                    no_response=no_response,
                ),
                duration_s=round(duration, 3),
                answered=answered,
                stats=info.final_stats,
                recording=str(info.recording_path) if info.recording_path else None,
            )
        )

    def _prune_ended(self) -> None:
        ended = [c.call_id for c in self._calls.values() if c.state == "ended"]
        for call_id in ended[:-KEEP_ENDED] if len(ended) > KEEP_ENDED else []:
            del self._calls[call_id]
        self._forget_ended()

    # ------------------------------------------------------------------ closing
    def _stop_video(self, info: CallInfo) -> None:
        rtp = self._video.stop(info)
        if rtp is not None:
            self.close_rtp(rtp)

    def close_rtp(self, rtp: RtpEndpoint) -> None:
        """Close an endpoint; one whose sockets were still being attached is waited for in
        :meth:`wait_closed`."""
        rtp.close()
        if not rtp.settled:
            self._closing.add(rtp)

    async def wait_ended(self, timeout_s: float) -> list[CallInfo]:
        """Wait (at most ``timeout_s``) until every call has ended (the phone stops: its BYEs and
        CANCELs are answered); returns those that have not."""
        try:
            async with asyncio.timeout(timeout_s):
                while any(c.state != "ended" for c in self._calls.values()):
                    self._ended.clear()
                    await self._ended.wait()
        except TimeoutError:
            pass
        return [c for c in self._calls.values() if c.state != "ended"]

    def close_all(self) -> None:
        """The phone stops: every call's audio and sockets close (the SIP side hung up)."""
        for info in self._calls.values():
            self._audio.stop(info)
            self._stop_video(info)
            self._ice.close(info)
            if info.rtp is not None:
                self.close_rtp(info.rtp)

    async def wait_closed(self) -> None:
        """Wait for the endpoints closed so far to end their set-up task."""
        closing, self._closing = self._closing, set()
        await asyncio.gather(
            *(rtp.wait_closed() for rtp in closing),
            self._ice.wait_closed(),
            self._video.wait_closed(),
        )
