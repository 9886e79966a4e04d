"""ICE (RFC 8445) in the phone's calls: when an account does ICE, each call's media runs through
an ICE agent (transport/ice.py) on the call's RTP sockets.

- Before our offer or answer goes out, the agent gathers host, server-reflexive (the account's
  ``stun_server``) and relay (``turn_server``) candidates, at most a few seconds; the SDP's
  c=/m= name the default candidate (relay, else server-reflexive, else host: RFC 8445 §5.1.4)
  and the candidates follow as a= lines (RFC 8839).
- The offerer is controlling (RFC 8445 §6.1.1). We answer with ICE only an offer that has it:
  an offer without ICE gets the plain path (phone/nat.py's address), as before.
- When the far end's SDP comes (its answer, or the offer we answer), the checks run in the
  background. An answer without ICE means a peer that does not do it: plain RTP from our
  default candidate to its c=/m= (RFC 8445 §5.1.4, the fallback).
- Checks that find no pair within ``CONNECT_TIMEOUT_S`` end the call with the reason
  "no media path", not with silence; consent that expires later (RFC 7675: the far end stopped
  answering on the selected pair) ends it with "media path lost".
- A TURN server that gives no relay candidate (wrong ``turn_username``/``turn_password``, or
  silence) is said once per account and server, and the calls go on with the other candidates.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Final

from softphone.config import Account
from softphone.config_nat import parse_host_port
from softphone.phone import events as pe
from softphone.phone.call_info import CallInfo
from softphone.phone.nat import MediaAddress, stun_target
from softphone.phone.tasks import TaskSet
from softphone.sdp import SdpError, SessionDescription
from softphone.sdp.ice import IceDescription, ice_attributes, ice_of
from softphone.transport.ice import IceEndpoint
from softphone.transport.resolver import DnsBackend
from softphone.transport.rtp import RtpEndpoint

__all__ = ["CONNECT_TIMEOUT_S", "MEDIA_PATH_LOST", "NO_MEDIA_PATH", "CallIce", "IceSettings"]

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_S: Final = 10.0
"""How long the checks may take once both sides' candidates are known. RFC 8445 leaves it to
the agent; aioice's own transactions give up only after ~40 s, far past a caller's patience."""
NO_MEDIA_PATH: Final = "no media path"
MEDIA_PATH_LOST: Final = "media path lost"


@dataclass(frozen=True, slots=True)
class IceSettings:
    stun_server: str | None
    turn_server: str | None
    turn_username: str | None
    turn_password: str | None


def ice_settings(accounts: Iterable[Account]) -> dict[str, IceSettings]:
    """Account name -> its ICE settings, for the accounts that do ICE."""
    return {
        a.name: IceSettings(
            a.stun_server, a.nat.turn_server, a.nat.turn_username, a.nat.turn_password
        )
        for a in accounts
        if a.nat.ice_enabled(a.stun_server)
    }


def _remote_ice(sdp: bytes | None) -> IceDescription | None:
    """The ICE of the audio stream in ``sdp``; None without ICE. SdpError when malformed."""
    if not sdp:
        return None
    description = SessionDescription.parse(sdp)
    audio = description.first_media("audio")
    return ice_of(description, audio) if audio is not None else None


class CallIce:
    """Each call's ICE agent, from the SDP it gathers for to the end of the call (module
    docstring). ``hangup`` ends a call; ``emit`` takes the notices."""

    def __init__(
        self,
        dns: DnsBackend,
        *,
        emit: Callable[[pe.PhoneEvent], None],
        hangup: Callable[[str], Awaitable[None]],
        tasks: TaskSet,
    ) -> None:
        self._dns = dns
        self._emit = emit
        self._hangup = hangup
        self._tasks = tasks
        self._settings: dict[str, IceSettings] = {}
        self._turn_warned: set[tuple[str, str]] = set()
        self._started: set[str] = set()  # call ids whose checks have started
        self._closing: list[IceEndpoint] = []
        self.connect_timeout_s = CONNECT_TIMEOUT_S

    def configure(self, accounts: Iterable[Account]) -> None:
        self._settings = ice_settings(accounts)

    def enabled(self, account: str) -> bool:
        return account in self._settings

    async def prepare(
        self, info: CallInfo, rtp: RtpEndpoint, *, host: str, offer_sdp: bytes | None
    ) -> MediaAddress | None:
        """Gather the call's candidates; the default candidate's address for the SDP, or None
        when the call does not do ICE (the account does not, or the offer we answer has none)."""
        if info.account not in self._settings:
            return None
        components = 2
        if offer_sdp:
            try:
                offer = SessionDescription.parse(offer_sdp)
                audio = offer.first_media("audio")
                if audio is None or ice_of(offer, audio) is None:
                    return None
            except SdpError as exc:
                logger.info("offer's ICE is unusable, answering without: %s", exc)
                return None
            components = 1 if audio.rtcp_mux else 2
        ice = await self.agent(
            info.account, rtp, host=host, controlling=not offer_sdp, components=components
        )
        info.ice = ice
        rtp_default = ice.default_candidate(1)
        assert rtp_default is not None  # the host candidate is always there
        rtcp_default = ice.default_candidate(2) or rtp_default
        logger.info(
            "ICE for a call on %s: %d candidates, default %s %s:%s",
            info.account,
            len(ice.local_candidates()),
            rtp_default.type,
            rtp_default.address,
            rtp_default.port,
        )
        return MediaAddress(
            rtp_default.address, rtp_default.port, rtcp_default.port, f"ice-{rtp_default.type}"
        )

    async def agent(
        self, account: str, rtp: RtpEndpoint, *, host: str, controlling: bool, components: int
    ) -> IceEndpoint:
        """An agent on ``rtp``'s sockets with its candidates gathered (the account must do ICE):
        the audio's, and the video's (phone/video_ice.py). A TURN server that gives no relay is
        said once per account and server."""
        settings = self._settings[account]
        await rtp.attached()
        ice = IceEndpoint(
            rtp,
            host=host,
            controlling=controlling,
            components=components,
            stun_server=await self._target(settings.stun_server),
            turn_server=await self._target(settings.turn_server),
            turn_username=settings.turn_username,
            turn_password=settings.turn_password,
        )
        await ice.gather()
        if ice.turn_failed and settings.turn_server is not None:
            key = (account, settings.turn_server)
            if key not in self._turn_warned:
                self._turn_warned.add(key)
                self._emit(
                    pe.Notice(
                        level="warning",
                        text=(
                            f"TURN server {settings.turn_server} gave no relay address for"
                            f" {account}: check turn_username and turn_password (or the"
                            " server does not answer); calls go on without a relay"
                        ),
                    )
                )
        return ice

    async def _target(self, server: str | None) -> tuple[str, int] | None:
        if server is None or parse_host_port(server) is None:
            return None
        return await stun_target(server, self._dns)

    @staticmethod
    def attributes(info: CallInfo) -> list[tuple[str, str | None]]:
        """The a= lines of our ICE for the call's audio (none when it does not do ICE)."""
        ice = info.ice
        if ice is None:
            return []
        return ice_attributes(IceDescription(ice.ufrag, ice.pwd, tuple(ice.local_candidates())))

    def start(self, info: CallInfo) -> None:
        """The far end's SDP is known: run the checks (once per call), or take the plain path
        when it does not do ICE."""
        ice = info.ice
        if ice is None or info.call_id in self._started or info.remote_sdp is None:
            return
        self._started.add(info.call_id)
        try:
            remote = _remote_ice(info.remote_sdp)
        except SdpError as exc:
            self._emit(pe.Notice(level="warning", text=f"the far end's ICE is unusable: {exc}"))
            remote = None
        if remote is None:
            logger.info("call %s: the far end does not do ICE: plain RTP", info.call_id)
            ice.use_plain()
            return
        self._tasks.spawn(self._connect(info, ice, remote), name=f"ice {info.call_id}")

    async def _connect(self, info: CallInfo, ice: IceEndpoint, remote: IceDescription) -> None:
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                await ice.connect(
                    remote.ufrag, remote.pwd, list(remote.candidates), lite=remote.lite
                )
        except (ConnectionError, TimeoutError) as exc:
            if info.state == "ended":
                return
            logger.info("call %s: ICE failed: %r", info.call_id, exc)
            ice.state = "failed"
            await self._fail(info, NO_MEDIA_PATH)
            return
        logger.info("call %s: ICE connected over %s", info.call_id, ice.selected_types())
        await ice.lost()
        if info.state != "ended" and info.ice is ice:
            # RFC 7675 §5.1: no consent, no sending; a call that cannot send is over.
            ice.state = "failed"
            await self._fail(info, MEDIA_PATH_LOST)

    async def _fail(self, info: CallInfo, reason: str) -> None:
        info.end_reason = reason
        self._emit(pe.Notice(level="error", text=f"call with {info.remote}: {reason} (ICE)"))
        try:
            await self._hangup(info.call_id)
        except Exception:  # the call may have ended meanwhile
            logger.info("hang-up after ICE failure of %s failed", info.call_id, exc_info=True)

    def close(self, info: CallInfo) -> None:
        """The call ended: close its agent (the RTP sockets are closed beside)."""
        ice, info.ice = info.ice, None
        self._started.discard(info.call_id)
        if ice is not None:
            ice.close()
            self._closing.append(ice)

    async def wait_closed(self) -> None:
        closing, self._closing = self._closing, []
        await asyncio.gather(*(ice.wait_closed() for ice in closing))
