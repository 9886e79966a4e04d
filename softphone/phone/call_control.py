"""What the phone's call actions do to the SIP core: :class:`CallControl` places a call (the
INVITE with its offer), answers one (or refuses it with 488 when no codec fits), rejects and
hangs up, holds and resumes (re-offers), transfers (REFER, blind or attended) and sends DTMF
(RFC 4733 events or SIP INFO), and finds the media address a new call advertises (ICE's default
candidate, else nat.py's).

The Phone (phone.py) keeps the public methods with their docstrings and hands each action here;
what a call action needs of the phone comes in as the objects and callables it names.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Sequence

from softphone.config import Config
from softphone.phone import events as pe
from softphone.phone.call_audio import CallAudio
from softphone.phone.call_info import CallInfo
from softphone.phone.calls import Calls
from softphone.phone.errors import AddressError, PhoneError
from softphone.phone.ice import CallIce
from softphone.phone.nat import MediaAddress, PublicMedia
from softphone.phone.network import resolve_hop
from softphone.phone.offer_answer import warning_for
from softphone.phone.sip_events import SipEvents
from softphone.phone.target import TargetError, normalize_target
from softphone.phone.transfers import attended_transfer
from softphone.phone.video import CallVideo
from softphone.sdp import MediaRefused
from softphone.sip.account import AccountConfig, is_ip_literal
from softphone.sip.address import Address
from softphone.sip.call import CallState
from softphone.sip.errors import LocalProtocolError
from softphone.sip.ua import UserAgent
from softphone.transport.resolver import DnsBackend
from softphone.transport.rtp import RtpEndpoint, open_rtp_endpoint

__all__ = ["CallControl"]

DTMF_INFO_DURATION_MS = 160


class CallControl:
    """The call actions of one phone. ``ua`` and ``sip`` give the running SIP core and what
    handles its events (both raise PhoneError before the phone has started); ``account`` looks
    an account up by name (None: the first); ``advertised`` is the phone's address as it is
    now; ``pump`` sends what the core queued."""

    def __init__(
        self,
        *,
        ua: Callable[[], UserAgent],
        sip: Callable[[], SipEvents],
        account: Callable[[str | None], AccountConfig],
        calls: Calls,
        audio: CallAudio,
        video: CallVideo,
        ice: CallIce,
        public_media: PublicMedia,
        config: Config,
        bind_host: str,
        dns: DnsBackend,
        rng: random.Random,
        advertised: Callable[[], str],
        emit: Callable[[pe.PhoneEvent], None],
        clock: Callable[[], float],
        pump: Callable[[], None],
        warn: Callable[[str], None],
    ) -> None:
        self._ua = ua
        self._sip = sip
        self._account = account
        self._calls = calls
        self._audio = audio
        self._video = video
        self._ice = ice
        self._public_media = public_media
        self._config = config
        self._bind_host = bind_host
        self._dns = dns
        self._rng = rng
        self._advertised = advertised
        self._emit = emit
        self._now = clock
        self._pump = pump
        self._warn = warn

    async def dial(
        self, target: str, *, account: str | None = None, headers: Sequence[tuple[str, str]] = ()
    ) -> str:
        ua = self._ua()
        acct = self._account(account)
        try:
            uri = normalize_target(target, acct.aor)
        except TargetError as exc:
            raise AddressError(str(exc)) from None
        dest: Address | None = None
        if acct.outbound is None and not is_ip_literal(uri.host):
            dest = await resolve_hop(uri, acct.transport, dns=self._dns, rng=self._rng)
        rtp = await open_rtp_endpoint(
            self._bind_host, self._config.rtp_port_min, self._config.rtp_port_max, self._rng
        )
        info = CallInfo(
            call_id="",
            account=acct.name,
            direction="outgoing",
            remote=str(uri),
            state="calling",
            started_at=self._now(),
            rtp=rtp,
        )
        info.media_address = await self._media_address(info, rtp)
        offer = self._calls.offer(info)
        try:
            call_id = ua.invite(
                acct.name, uri, sdp=bytes(offer), now=self._now(), dest=dest, extra=headers
            )
        except LocalProtocolError as exc:
            rtp.close()
            if (video_rtp := self._video.stop(info)) is not None:  # the offer had video
                video_rtp.close()
            raise PhoneError(str(exc)) from None
        info.call_id = call_id
        self._calls.add(info)
        self._emit(
            pe.CallStateChanged(
                call_id=call_id, state="calling", direction="outgoing", remote=info.remote
            )
        )
        self._pump()
        return call_id

    async def answer(self, call_id: str) -> None:
        ua, info = self._ua(), self._calls.require(call_id)
        if ua.call_state(call_id) is not CallState.INCOMING:
            raise PhoneError("this call is not ringing")
        if info.media_address is None:
            rtp = self._calls.ensure_rtp(info)
            info.media_address = await self._media_address(info, rtp)
            if ua.call_state(call_id) is not CallState.INCOMING:  # cancelled meanwhile
                raise PhoneError("this call is not ringing")
        sdp = self._calls.answer_offer(info, info.remote_sdp)
        if sdp is None:
            problem = info.sdp_problem
            warning = warning_for(problem)
            self._sip().handle(ua.reject(call_id, status=488, now=self._now(), warning=warning))
            self._pump()
            if isinstance(problem, MediaRefused):
                raise PhoneError(f"{problem} (rejected with 488)")
            raise PhoneError("no common codec with the caller (rejected with 488)")
        ua.answer(call_id, sdp=sdp, now=self._now())
        self._pump()
        self._calls.sync_media(info, sending=True)

    async def reject(self, call_id: str, *, status: int = 486) -> None:
        sip, info = self._sip(), self._calls.require(call_id)
        if status == 486 and sip.routing.refused_busy(info):  # forward_busy
            return self._pump()
        try:
            sip.handle(self._ua().reject(call_id, status=status, now=self._now()))
        except LocalProtocolError as exc:
            raise PhoneError(str(exc)) from None
        self._pump()

    async def hangup(self, call_id: str) -> None:
        sip, _ = self._sip(), self._calls.require(call_id)
        try:
            sip.handle(self._ua().hangup(call_id, self._now()))
        except LocalProtocolError as exc:
            raise PhoneError(str(exc)) from None
        self._pump()

    async def reoffer(self, call_id: str, *, hold: bool) -> None:
        """A re-INVITE with a new offer: the call held or resumed, or its video added or taken
        away (phone/video.py)."""
        ua, info = self._ua(), self._calls.require(call_id)
        await self._video.prepare_ice(info, host=self._advertised(), offer_sdp=None)
        if info.state not in ("established", "held"):
            raise PhoneError("the call is not established")
        info.local_hold = hold
        if hold:
            self._audio.conference.leave(info)  # a held party is no longer mixed in
        offer = self._calls.offer(info, hold=hold)
        try:
            ua.reoffer(call_id, sdp=bytes(offer), now=self._now())
        except LocalProtocolError as exc:
            raise PhoneError(str(exc)) from None
        self._pump()

    async def transfer(self, call_id: str, target: str) -> None:
        ua, info = self._ua(), self._calls.require(call_id)
        acct = self._account(info.account)
        try:
            uri = normalize_target(target, acct.aor)
        except TargetError as exc:
            raise AddressError(str(exc)) from None
        try:
            ua.refer(call_id, uri, self._now())
        except LocalProtocolError as exc:
            raise PhoneError(str(exc)) from None
        self._pump()

    async def attended_transfer(self, call_id: str, other_call_id: str) -> None:
        ua = self._ua()
        attended_transfer(ua, self._calls, call_id, other_call_id, self._now())
        self._pump()

    async def send_dtmf(self, call_id: str, digits: str) -> str:
        ua, info = self._ua(), self._calls.require(call_id)
        bad = [d for d in digits if d.upper() not in "0123456789*#ABCD"]
        if not digits or bad:
            raise PhoneError(f"not DTMF digits: {digits!r} (use 0-9, *, #, A-D)")
        if info.state not in ("established", "held"):
            raise PhoneError("the call is not established")
        if info.audio is not None and info.audio.has_telephone_event:
            info.audio.send_dtmf(digits.upper(), self._now())
            return "rtp"
        try:
            for digit in digits:
                ua.send_dtmf_info(
                    call_id, digit, duration_ms=DTMF_INFO_DURATION_MS, now=self._now()
                )
        except LocalProtocolError as exc:
            raise PhoneError(str(exc)) from None
        self._pump()
        return "info"

    async def _media_address(self, info: CallInfo, rtp: RtpEndpoint) -> MediaAddress:
        """ICE's default candidate when the call does ICE (phone/ice.py), else nat.py's."""
        offer = info.remote_sdp if info.direction == "incoming" else None
        found, _ = await asyncio.gather(  # the video's candidates too (phone/video_ice.py)
            self._ice.prepare(info, rtp, host=self._advertised(), offer_sdp=offer),
            self._video.prepare_ice(info, host=self._advertised(), offer_sdp=offer),
        )
        if found is not None:
            return found
        registered = self._ua().registered_contact(info.account)
        return await self._public_media.address(
            info.account,
            rtp,
            advertised=self._advertised(),
            registered_host=registered.host if registered is not None else None,
            clock=self._now,
            warn=self._warn,
        )
