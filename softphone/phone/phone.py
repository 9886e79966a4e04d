"""The phone: accounts, transports and calls behind one async API, with a stream of events.

Front ends (the CLI, the TUI) call ``dial/answer/reject/hangup/hold/resume/transfer`` (and
``attended_transfer``) and read ``events()``; ``apply_accounts`` changes the accounts while the
phone runs. They never see SIP messages, sockets or SDP. The Phone owns the UA core
(sip/ua.py), the SIP transport (transport/sip.py) and name resolution (transport/resolver.py),
and puts together the pieces beside it in this package:

- network.py: accounts resolved for the core, the advertised address, the SIP listeners;
- sip_events.py: what each event of the core means (registrations, calls, transfers);
- transfers.py: attended transfer (REFER with Replaces) as transferor, transferee and target;
- calls.py: the call table and each call's state changes, with offer_answer.py (SDP) and
  call_audio.py (per call, the media session of media.py attached to an audio engine of
  audio.py: the sound card, WAV files, or nothing);
- registrations.py: each account's registration as front ends see it;
- presence.py: our presence, the watched parties' presence and busy lamps, message waiting;
- nat.py: the public media address; recordings.py, playback.py: recordings and WAV playback;
- tasks.py: the tasks the phone starts by itself, ended by ``stop()``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from softphone.config import Account, Config, default_data_dir
from softphone.config_privacy import exposed_password, make_private
from softphone.media.codecs import unavailable_reasons
from softphone.phone import events as pe
from softphone.phone.api import (
    ContactPresence,
    FlowSummary,
    OwnPresence,
    Registration,
    StreamSummary,
    TracedMessage,
    Voicemail,
)
from softphone.phone.audio import AudioProvider, DeviceAudio
from softphone.phone.call_audio import CallAudio
from softphone.phone.call_info import CallInfo
from softphone.phone.calls import Calls
from softphone.phone.echo_control import echo_enabled, switch_echo
from softphone.phone.errors import AddressError, PhoneError
from softphone.phone.event_queue import EventReader
from softphone.phone.ice import CallIce
from softphone.phone.messaging import Messaging
from softphone.phone.nat import MediaAddress, PublicMedia
from softphone.phone.network import (
    account_config,
    add_tls_listener,
    advertised_host,
    alternate_host,
    listen,
    local_account,
    resolve_hop,
    stable_instance_id,
    unresolved_account,
)
from softphone.phone.offer_answer import OfferAnswer, codec_specs, warning_for
from softphone.phone.playback import FilePlayback
from softphone.phone.presence import PresenceService, presence_settings
from softphone.phone.recordings import record_call
from softphone.phone.registrations import Registrations
from softphone.phone.sip_events import SipEvents
from softphone.phone.target import TargetError, normalize_target
from softphone.phone.tasks import TaskSet
from softphone.phone.tls import ClientTls, client_tls, listener_context
from softphone.phone.trace import SipTrace
from softphone.phone.transfers import attended_transfer
from softphone.phone.video import CallVideo, VideoSettings
from softphone.phone.video_ice import VideoIce
from softphone.sdp import MediaEncryption, MediaRefused
from softphone.sip.account import AccountConfig, is_ip_literal
from softphone.sip.address import Address
from softphone.sip.call import CallState
from softphone.sip.errors import LocalProtocolError
from softphone.sip.registration import registrar_hop
from softphone.sip.timers import TimerConfig
from softphone.sip.ua import UserAgent
from softphone.srtp import DtlsCertificate, load_or_create
from softphone.transport.resolver import DnsBackend, DnspythonBackend
from softphone.transport.rtp import RtpEndpoint, open_rtp_endpoint
from softphone.transport.sip import SipTransport

__all__ = ["Phone"]

logger = logging.getLogger(__name__)

DTMF_INFO_DURATION_MS = 160
UNREGISTER_TIMEOUT_S = 3.0
FORGET_EVERY_S = 1.0  # how often the user agent drops ended calls whose transactions are gone


@dataclass(frozen=True, slots=True)
class _Running:
    """What the phone has from ``start()`` on."""

    ua: UserAgent
    transport: SipTransport
    sip: SipEvents


class Phone(EventReader):
    def __init__(
        self,
        config: Config,
        *,
        bind_host: str = "0.0.0.0",
        sip_port: int | None = None,
        tls_port: int | None = None,
        rng: random.Random | None = None,
        dns: DnsBackend | None = None,
        timers: TimerConfig | None = None,
        auto_answer: bool = False,
        audio: AudioProvider | None = None,
        instance_id: str | None = None,
        data_dir: Path | None = None,
        video: VideoSettings | None = None,
    ) -> None:
        """``instance_id``: this phone's RFC 5626 instance (a UUID); by default the one kept
        in the data directory, the same across restarts. ``data_dir``: where the DTLS
        certificate is kept (default: the XDG data directory). ``video``: what calls send as
        video and whether they offer it (phone/video.py); by default none, received only."""
        self._config = config
        self._instance_id = instance_id
        self._data_dir = data_dir
        self._dtls_certificate: DtlsCertificate | None = None
        self._encryption: dict[str, MediaEncryption] = {
            a.name: MediaEncryption(a.media_encryption) for a in config.accounts
        }
        self._bind_host = bind_host
        self._sip_port = sip_port if sip_port is not None else config.sip_port
        self._tls_port = tls_port if tls_port is not None else config.sip_tls_port
        self._rng = rng or random.SystemRandom()
        self._dns = dns or DnspythonBackend()
        self._timers = timers or TimerConfig()
        self.auto_answer = auto_answer
        self._queue: asyncio.Queue[pe.PhoneEvent] = asyncio.Queue()
        self._running: _Running | None = None
        self._next_forget_at = 0.0
        self._stopped = False
        self._accounts: dict[str, AccountConfig] = {}
        self._advertised: str = "127.0.0.1"
        self._client_tls = ClientTls()
        self._tasks = TaskSet()
        self._registrations = Registrations()
        self._audio = CallAudio(
            audio
            or DeviceAudio(
                config.input_device,
                config.output_device,
                on_problem=self._audio_problem,
                ring_device=config.ring_device,
                echo_cancellation=config.echo_cancellation,
            ),
            rng=self._rng,
            emit=self._emit,
            clock=self._now,
            calls=lambda: self._calls,
            certificate=self._certificate,
        )
        self._ice = CallIce(self._dns, emit=self._emit, hangup=self.hangup, tasks=self._tasks)
        self._video = CallVideo(
            video or VideoSettings(),
            rng=self._rng,
            emit=self._emit,
            open_rtp=self._open_rtp_now,
            certificate=self._certificate,
            ice=VideoIce(self._ice, emit=self._emit, tasks=self._tasks),
        )
        self._audio.extra_stats = self._video.stats
        self._sdp = OfferAnswer(
            codec_specs(config.codecs),
            encryption=lambda name: self._encryption.get(name, MediaEncryption.SRTP_OPTIONAL),
            certificate=self._certificate,
            ice=self._ice.attributes,
            video=self._video,
        )
        self._calls = Calls(
            sdp=self._sdp,
            audio=self._audio,
            emit=self._emit,
            clock=self._now,
            open_rtp=self._open_rtp_now,
            forget_ended=self._forget_ended_calls,
            ice=self._ice,
            video=self._video,
        )
        self._trace = SipTrace(time.time)
        self._messaging = Messaging(calls=self._calls.all, emit=self._emit)
        self._presence = PresenceService(
            emit=self._emit,
            clock=self._now,
            calls=self._calls.all,
            settings=presence_settings(config.accounts),
        )
        self._playback = FilePlayback(self._audio.provider)
        self._public_media = PublicMedia(self._dns, self._rng)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        accounts = self._config.accounts or (local_account(self._bind_host),)
        self._public_media.configure(accounts)
        self._ice.configure(accounts)
        if self._instance_id is None:
            self._instance_id = await asyncio.to_thread(
                stable_instance_id, self._data_dir or default_data_dir()
            )
        resolved = [await self._account_config(a) for a in accounts]
        self._accounts = {a.name: a for a in resolved}
        self._client_tls = client_tls(accounts, resolved)
        self._advertised = self._sdp.address = advertised_host(self._bind_host, resolved)
        self._sdp.alternate_address = alternate_host(self._bind_host, self._advertised)
        self._audio.advertised = self._advertised
        ua = UserAgent(
            accounts=resolved,
            rng=self._rng,
            timers=self._timers,
            # The product name only, unless configured: an exact version tells scanners which
            # known bugs to try.
            user_agent=self._config.user_agent,
        )
        for name, reason in unavailable_reasons().items():
            if name in {c.lower() for c in self._config.codecs}:
                self._emit(pe.Notice(level="warning", text=f"{name} is not offered: {reason}"))
        server = await listener_context(
            accounts, self._data_dir or default_data_dir(), self._advertised, self._emit
        )
        transport = SipTransport(
            ua,
            self._on_ua_events,
            tls_context=self._tls_context,
            tls_server_context=server,
            tap=self._trace_message,
        )
        sip = SipEvents(
            phone=self,
            ua=ua,
            transport=transport,
            calls=self._calls,
            registrations=self._registrations,
            accounts=self._accounts,
            tasks=self._tasks,
            emit=self._emit,
            clock=self._now,
            do_not_disturb=self._config.do_not_disturb,
            messaging=self._messaging,
            presence=self._presence,
            config=self._config,
            rng=self._rng,
        )
        self._presence.bind(ua, self._accounts, sip.handle)
        self._running = _Running(ua=ua, transport=transport, sip=sip)
        await listen(
            transport,
            ua,
            accounts=resolved,
            bind_host=self._bind_host,
            port=self._sip_port,
            advertised=self._advertised,
            emit=self._emit,
            tls=server is not None,
            tls_port=self._tls_port,
        )
        for acct in resolved:
            self._registrations.add(acct)
            if acct.registrar is not None:
                ua.register(acct.name, self._now())
                self._registering(acct)
            else:
                self._presence.account_ready(acct.name)
        transport.pump()

    async def apply_accounts(self, accounts: Sequence[Account]) -> None:
        """Use ``accounts`` from now on, without a restart (PhoneApi.apply_accounts): each one's
        server is looked up, then the SIP core registers, re-registers or unregisters what
        changed (sip/registration.py). Calls go on with the account they began with."""
        running, wanted = self._require(), tuple(accounts) or (local_account(self._bind_host),)
        self._encryption = {a.name: MediaEncryption(a.media_encryption) for a in wanted}
        running.sip.routing.configure(wanted)
        resolved: list[AccountConfig] = []
        unresolved: dict[str, str] = {}
        for acct in wanted:
            try:
                resolved.append(await self._account_config(acct))
            except PhoneError as exc:
                unresolved[acct.name] = str(exc)
        if not resolved:
            resolved = [await self._account_config(local_account(self._bind_host))]
        await add_tls_listener(
            running.transport,
            running.ua,
            accounts=wanted,
            data_dir=self._data_dir or default_data_dir(),
            bind_host=self._bind_host,
            sip_port=self._sip_port,
            tls_port=self._tls_port,
            advertised=self._advertised,
            emit=self._emit,
        )
        self._client_tls = client_tls(wanted, resolved)
        self._public_media.configure(wanted)
        self._ice.configure(wanted)
        hops_before = {a.outbound for a in self._accounts.values()}
        changes = running.ua.update_accounts(resolved, self._now())
        self._accounts.clear()  # the dict SipEvents reads: changed in place
        self._accounts.update((a.name, a) for a in resolved)
        by_name = {a.name: a for a in resolved}
        self._registrations.set_accounts(
            [by_name.get(a.name) or unresolved_account(a) for a in wanted]
        )
        for hop in hops_before - {a.outbound for a in resolved}:
            if hop is not None:
                running.transport.cancel_keep_alive(hop)
        for name in changes.registering:
            self._registering(self._accounts[name])
        self._presence.accounts_changed(self._accounts, presence_settings(wanted))
        for name, reason in unresolved.items():
            self._registrations.failed(name, reason=reason, retry_in_s=None)
            self._emit(pe.RegistrationFailed(account=name, status=0, reason=reason))
        running.transport.pump()
        logger.info(
            "accounts applied: added %s, removed %s, changed %s, could not resolve %s",
            changes.added,
            changes.removed,
            changes.changed,
            tuple(unresolved),
        )

    async def _account_config(self, acct: Account) -> AccountConfig:
        return await account_config(
            acct, dns=self._dns, rng=self._rng, instance_id=self._instance_id
        )

    def _registering(self, acct: AccountConfig) -> None:
        hop = registrar_hop(acct)
        self._registrations.registering(acct.name, server=hop.host_port)
        self._emit(pe.Registering(account=acct.name, server=hop.host_port, transport=hop.transport))

    async def stop(self) -> None:
        """End the phone's own tasks, hang up every call, unregister (waiting at most a few
        seconds), close sockets."""
        running = self._running
        if running is None or self._stopped:
            return
        self._stopped = True
        await self._tasks.close()
        ua = running.ua
        for call_id in list(ua.active_calls()):
            try:
                running.sip.handle(ua.hangup(call_id, self._now()))
            except LocalProtocolError:
                pass
        self._presence.close()  # Expires: 0 for subscriptions and publications (RFC 6665, 3903)
        self._registrations.expect_unregister(
            name for name in self._accounts if ua.unregister(name, self._now())
        )
        running.transport.pump()
        left, presence_done, unanswered = await asyncio.gather(
            self._registrations.wait_unregistered(UNREGISTER_TIMEOUT_S),
            self._presence.wait_closed(UNREGISTER_TIMEOUT_S),
            self._calls.wait_ended(UNREGISTER_TIMEOUT_S),
        )
        if left:
            logger.warning("unregister not confirmed for %s", ", ".join(left))
        if not presence_done:
            logger.warning("removal of subscriptions and publications not confirmed")
        for info in unanswered:
            # The far end never answered our BYE or CANCEL: the call is over for us all the
            # same (RFC 3261 §15.1.1), and whoever reads the events learns how it ended.
            answered = info.established_at is not None
            self._calls.finish(
                info,
                200 if answered else 487,
                "hung up: the phone stopped (the far end did not confirm)",
            )
        self._calls.close_all()
        await self._calls.wait_closed()
        self._audio.close()
        await running.transport.close()

    async def __aenter__(self) -> Phone:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def wait_registered(self, timeout_s: float = 10.0) -> dict[str, bool]:
        """Wait until every account with a registrar has registered or failed once."""
        return await self._registrations.wait_settled(timeout_s)

    @property
    def accounts(self) -> list[str]:
        if self._accounts:
            return list(self._accounts)
        return [a.name for a in self._config.accounts] or ["local"]

    @property
    def registrations(self) -> Mapping[str, Registration]:
        return self._registrations.records()

    @property
    def calls(self) -> list[CallInfo]:
        return self._calls.all()

    def call(self, call_id: str) -> CallInfo:
        return self._calls.require(call_id)

    # ------------------------------------------------------------------ actions
    async def dial(self, target: str, *, account: str | None = None) -> str:
        return await self.dial_with(target, account=account)

    async def dial_with(
        self, target: str, *, account: str | None = None, headers: Sequence[tuple[str, str]] = ()
    ) -> str:
        """``dial`` with more INVITE headers (a transfer's Replaces and Referred-By)."""
        ua = self._require().ua
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

    async def send_message(
        self,
        target: str,
        text: str,
        *,
        account: str | None = None,
        content_type: str = "text/plain",
    ) -> str:
        """Send an instant message (RFC 3428); returns its id. It goes inside the call with
        ``target`` when one is up (phone/messaging.py). ``MessageStatusChanged(sending)`` is
        queued before this returns; delivered or failed comes later."""
        ua = self._require().ua
        acct = self._account(account)
        try:
            uri = normalize_target(target, acct.aor)
        except TargetError as exc:
            raise AddressError(str(exc)) from None
        call = self._messaging.call_with(uri)
        dest: Address | None = None
        if call is None and acct.outbound is None and not is_ip_literal(uri.host):
            dest = await resolve_hop(uri, acct.transport, dns=self._dns, rng=self._rng)
        message_id = self._messaging.send(
            ua.messaging, acct, uri, text, content_type, now=self._now(), dest=dest, call=call
        )
        self._pump()
        return message_id

    async def answer(self, call_id: str) -> None:
        running, info = self._require(), self.call(call_id)
        ua = running.ua
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
            running.sip.handle(ua.reject(call_id, status=488, now=self._now(), warning=warning))
            self._pump()
            if isinstance(problem, MediaRefused):
                raise PhoneError(f"{problem} (rejected with 488)")
            raise PhoneError("no common codec with the caller (rejected with 488)")
        ua.answer(call_id, sdp=sdp, now=self._now())
        self._pump()
        self._calls.sync_media(info, sending=True)

    async def reject(self, call_id: str, *, status: int = 486) -> None:
        running, info = self._require(), self.call(call_id)
        if status == 486 and running.sip.routing.refused_busy(info):  # forward_busy
            return self._pump()
        try:
            running.sip.handle(running.ua.reject(call_id, status=status, now=self._now()))
        except LocalProtocolError as exc:
            raise PhoneError(str(exc)) from None
        self._pump()

    async def hangup(self, call_id: str) -> None:
        running, _ = self._require(), self.call(call_id)
        try:
            running.sip.handle(running.ua.hangup(call_id, self._now()))
        except LocalProtocolError as exc:
            raise PhoneError(str(exc)) from None
        self._pump()

    async def hold(self, call_id: str) -> None:
        await self._reoffer(call_id, hold=True)

    async def resume(self, call_id: str) -> None:
        await self._reoffer(call_id, hold=False)

    async def set_video(self, call_id: str, on: bool) -> None:
        """Add video to the call or take it away, by re-INVITE (phone/video.py)."""
        self._video.want(self.call(call_id), on)
        await self._reoffer(call_id, hold=self.call(call_id).local_hold)

    def video_picture(self, call_id: str, width: int, height: int) -> npt.NDArray[np.uint8] | None:
        """The call's video for a ``width`` x ``height`` pixel box, with our self-view."""
        return self._video.picture(self.call(call_id).call_id, width, height)

    async def transfer(self, call_id: str, target: str) -> None:
        ua, info = self._require().ua, self.call(call_id)
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
        ua = self._require().ua
        attended_transfer(ua, self._calls, call_id, other_call_id, self._now())
        self._pump()

    async def join(self, call_id: str, other_call_id: str) -> None:
        await self._audio.conference.join(self.call(call_id), self.call(other_call_id), self.resume)

    async def split(self, call_id: str) -> None:
        await self._audio.conference.split(self.call(call_id), self.hold)

    async def send_dtmf(self, call_id: str, digits: str) -> str:
        """Send DTMF digits: RFC 4733 events when the peer offered telephone-event, else SIP INFO.
        Returns the method used ("rtp" or "info")."""
        ua, info = self._require().ua, self.call(call_id)
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

    @property
    def echo_cancellation(self) -> bool:
        return echo_enabled(self._audio.provider)

    def set_echo_cancellation(self, on: bool) -> None:
        switch_echo(self._audio.provider, on)  # phone/echo_control.py
        self._emit(pe.EchoCancellationChanged(on=on))

    def mute(self, call_id: str, muted: bool) -> None:
        """Mute (or unmute) our microphone in this call (in a conference: to all its parties,
        who still hear each other); kept when the audio starts later."""
        self._audio.conference.mute(self.call(call_id), muted)

    def silence(self, call_id: str) -> None:
        """Stop ringing for this incoming call; it stays ringing for the caller until answered,
        rejected or given up."""
        info = self.call(call_id)
        if info.direction == "incoming" and info.state == "ringing" and not info.silenced:
            info.silenced = True
            self._calls.update_tones()

    def levels(self, call_id: str) -> tuple[float, float] | None:
        return self._audio.levels(self.call(call_id))

    def sip_flows(self) -> list[FlowSummary]:
        return self._trace.flows()

    def sip_flow(self, flow_id: str) -> list[TracedMessage]:
        return self._trace.messages(flow_id)

    def rtp_streams(self, call_id: str) -> list[StreamSummary]:
        return self._audio.streams(self.call(call_id))

    def record(self, call_id: str, on: bool) -> Path | None:
        """Record the call (or stop) to a stereo WAV, local left, remote right (its video to
        Matroska beside it); its path."""
        return record_call(self.call(call_id), on, self._config, self._emit, self._video)

    def call_stats(self, call_id: str) -> dict[str, object] | None:
        return self._audio.stats(self.call(call_id))

    async def play_file(self, path: Path) -> None:
        """Play a WAV file (a call recording) on the call device; returns when it has played or
        ``stop_playback`` stopped it. One file at a time: a new one stops the old."""
        await self._playback.play(path)

    def stop_playback(self) -> None:
        self._playback.stop()

    # ------------------------------------------------------------------ presence
    def set_presence(self, state: str, note: str | None = None) -> None:
        """Choose our presence (phone/presence.py); published at once where presence runs."""
        self._presence.set_presence(state, note)
        self._pump()

    @property
    def presence(self) -> OwnPresence:
        return self._presence.own

    def watch(self, uri: str) -> None:
        """Follow ``uri``'s presence and busy lamp (PresenceChanged events)."""
        self._presence.watch(uri)
        self._pump()

    def unwatch(self, uri: str) -> None:
        self._presence.unwatch(uri)
        self._pump()

    @property
    def watched(self) -> Mapping[str, ContactPresence]:
        return self._presence.watched

    @property
    def voicemail(self) -> Mapping[str, Voicemail]:
        return self._presence.voicemail

    def config_warning(self) -> str | None:
        return exposed_password(self._config)

    def protect_config(self) -> None:
        path = self._config.path
        if path is None:
            raise PhoneError("there is no config file")
        try:
            make_private(path)
        except OSError as exc:
            raise PhoneError(f"cannot change the mode of {path}: {exc.strerror or exc}") from None

    async def _reoffer(self, call_id: str, *, hold: bool) -> None:
        ua, info = self._require().ua, self.call(call_id)
        await self._video.prepare_ice(info, host=self._advertised, offer_sdp=None)
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

    # ------------------------------------------------------------------ plumbing
    def _on_ua_events(self, events: list[object]) -> None:
        self._require().sip.handle(events)

    def _trace_message(
        self, direction: Literal["sent", "received"], data: bytes, peer: Address
    ) -> None:
        running = self._running
        listeners = running.transport.listeners() if running is not None else []
        port = next((a.port for a in listeners if a.transport == peer.transport), None)
        local = f"{peer.transport}:{self._advertised}" + (f":{port}" if port is not None else "")
        self._trace.add(direction, data, local, f"{peer.transport}:{peer.host}:{peer.port}")

    def _certificate(self) -> DtlsCertificate:
        """The DTLS certificate, loaded (or made, mode 0600) when a call first needs it."""
        if self._dtls_certificate is None:
            self._dtls_certificate = load_or_create(self._data_dir or default_data_dir())
        return self._dtls_certificate

    def _audio_problem(self, text: str) -> None:
        self._emit(pe.Notice(level="warning", text=text))

    def _forget_ended_calls(self) -> None:
        # The user agent's sweep looks at every call it holds, and an ended call is held while
        # its transactions live (32 s over UDP): swept at every call's end, that is quadratic in
        # the call rate (80 calls/s: 2,500 calls looked at 80 times a second). Once a second
        # keeps memory as bounded.
        now = self._now()
        if self._running is not None and now >= self._next_forget_at:
            self._next_forget_at = now + FORGET_EVERY_S
            self._running.ua.forget_ended_calls()

    def _open_rtp_now(self) -> RtpEndpoint:
        loop = asyncio.get_running_loop()
        return RtpEndpoint.open_sync(
            loop, self._bind_host, self._config.rtp_port_min, self._config.rtp_port_max, self._rng
        )

    async def _media_address(self, info: CallInfo, rtp: RtpEndpoint) -> MediaAddress:
        """ICE's default candidate when the call does ICE (phone/ice.py), else nat.py's."""
        offer = info.remote_sdp if info.direction == "incoming" else None
        found, _ = await asyncio.gather(  # the video's candidates too (phone/video_ice.py)
            self._ice.prepare(info, rtp, host=self._advertised, offer_sdp=offer),
            self._video.prepare_ice(info, host=self._advertised, offer_sdp=offer),
        )
        if found is not None:
            return found
        registered = self._require().ua.registered_contact(info.account)
        return await self._public_media.address(
            info.account,
            rtp,
            advertised=self._advertised,
            registered_host=registered.host if registered is not None else None,
            clock=self._now,
            warn=self._audio_problem,
        )

    def _emit(self, event: pe.PhoneEvent) -> None:
        self._queue.put_nowait(event)
        if isinstance(event, pe.CallStateChanged):
            self._presence.calls_changed()  # busy while talking

    def _pump(self) -> None:
        if self._running is not None:
            self._running.transport.pump()

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _require(self) -> _Running:
        if self._running is None:
            raise PhoneError("the phone is not started")
        return self._running

    def _account(self, name: str | None) -> AccountConfig:
        try:
            return self._require().ua.account(name)
        except LocalProtocolError as exc:
            raise PhoneError(str(exc)) from None

    def _tls_context(self, address: Address) -> ssl.SSLContext:
        """Verification always on; what an account trusts and shows is for its own servers
        (phone/tls.py)."""
        return self._client_tls.context(address)
