"""The phone: accounts, transports and calls behind one async API, with a stream of events.

Front ends (the CLI, the TUI) call ``dial/answer/reject/hangup/hold/resume/transfer`` (and
``attended_transfer``) and read ``events()``; ``apply_accounts`` changes the accounts while the
phone runs. They never see SIP messages, sockets or SDP. The Phone owns the UA core
(sip/ua.py), the SIP transport (transport/sip.py) and name resolution (transport/resolver.py),
and puts together the pieces beside it in this package:

- lifecycle.py: ``start``, ``apply_accounts`` and ``stop``: the SIP side from start to stop;
- call_control.py: what each call action (dial, answer, hold, transfer, DTMF...) does;
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
import random
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from softphone.config import Account, Config, default_data_dir
from softphone.config_privacy import exposed_password, make_private
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
from softphone.phone.call_control import CallControl
from softphone.phone.call_info import CallInfo
from softphone.phone.calls import Calls
from softphone.phone.echo_control import echo_enabled, switch_echo
from softphone.phone.errors import AddressError, PhoneError
from softphone.phone.event_queue import EventReader
from softphone.phone.ice import CallIce
from softphone.phone.lifecycle import Lifecycle, Running
from softphone.phone.messaging import Messaging
from softphone.phone.nat import PublicMedia
from softphone.phone.network import resolve_hop
from softphone.phone.offer_answer import OfferAnswer, codec_specs
from softphone.phone.playback import FilePlayback
from softphone.phone.presence import PresenceService, presence_settings
from softphone.phone.recordings import record_call
from softphone.phone.registrations import Registrations
from softphone.phone.target import TargetError, normalize_target
from softphone.phone.tasks import TaskSet
from softphone.phone.trace import SipTrace
from softphone.phone.video import CallVideo, VideoSettings
from softphone.phone.video_ice import VideoIce
from softphone.sdp import MediaEncryption
from softphone.sip.account import AccountConfig, is_ip_literal
from softphone.sip.address import Address
from softphone.sip.errors import LocalProtocolError
from softphone.sip.timers import TimerConfig
from softphone.srtp import DtlsCertificate, load_or_create
from softphone.transport.resolver import DnsBackend, DnspythonBackend
from softphone.transport.rtp import RtpEndpoint

__all__ = ["Phone"]

FORGET_EVERY_S = 1.0  # how often the user agent drops ended calls whose transactions are gone


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
        self._data_dir = data_dir
        self._dtls_certificate: DtlsCertificate | None = None
        self._bind_host = bind_host
        self._rng = rng or random.SystemRandom()
        self._dns = dns or DnspythonBackend()
        self.auto_answer = auto_answer
        self._queue: asyncio.Queue[pe.PhoneEvent] = asyncio.Queue()
        self._next_forget_at = 0.0
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
            encryption=lambda name: self._life.encryption.get(name, MediaEncryption.SRTP_OPTIONAL),
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
        self._control = CallControl(
            ua=lambda: self._require().ua,
            sip=lambda: self._require().sip,
            account=self._account,
            calls=self._calls,
            audio=self._audio,
            video=self._video,
            ice=self._ice,
            public_media=self._public_media,
            config=config,
            bind_host=self._bind_host,
            dns=self._dns,
            rng=self._rng,
            advertised=lambda: self._life.advertised,
            emit=self._emit,
            clock=self._now,
            pump=self._pump,
            warn=self._audio_problem,
        )
        self._life = Lifecycle(
            config,
            phone=self,
            bind_host=bind_host,
            sip_port=sip_port if sip_port is not None else config.sip_port,
            tls_port=tls_port if tls_port is not None else config.sip_tls_port,
            rng=self._rng,
            dns=self._dns,
            timers=timers or TimerConfig(),
            instance_id=instance_id,
            data_dir=data_dir,
            sdp=self._sdp,
            audio=self._audio,
            calls=self._calls,
            ice=self._ice,
            public_media=self._public_media,
            registrations=self._registrations,
            presence=self._presence,
            messaging=self._messaging,
            tasks=self._tasks,
            trace=self._trace,
            emit=self._emit,
            clock=self._now,
        )

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        await self._life.start()

    async def apply_accounts(self, accounts: Sequence[Account]) -> None:
        """Use ``accounts`` from now on, without a restart (PhoneApi.apply_accounts): each one's
        server is looked up, then the SIP core registers, re-registers or unregisters what
        changed (sip/registration.py). Calls go on with the account they began with."""
        await self._life.apply_accounts(accounts)

    async def stop(self) -> None:
        """End the phone's own tasks, hang up every call, unregister (waiting at most a few
        seconds), close sockets."""
        await self._life.stop()

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
        if self._life.accounts:
            return list(self._life.accounts)
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
        return await self._control.dial(target, account=account, headers=headers)

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
        await self._control.answer(call_id)

    async def reject(self, call_id: str, *, status: int = 486) -> None:
        await self._control.reject(call_id, status=status)

    async def hangup(self, call_id: str) -> None:
        await self._control.hangup(call_id)

    async def hold(self, call_id: str) -> None:
        await self._control.reoffer(call_id, hold=True)

    async def resume(self, call_id: str) -> None:
        await self._control.reoffer(call_id, hold=False)

    async def set_video(self, call_id: str, on: bool) -> None:
        """Add video to the call or take it away, by re-INVITE (phone/video.py)."""
        self._video.want(self.call(call_id), on)
        await self._control.reoffer(call_id, hold=self.call(call_id).local_hold)

    def video_picture(self, call_id: str, width: int, height: int) -> npt.NDArray[np.uint8] | None:
        """The call's video for a ``width`` x ``height`` pixel box, with our self-view."""
        return self._video.picture(self.call(call_id).call_id, width, height)

    async def transfer(self, call_id: str, target: str) -> None:
        await self._control.transfer(call_id, target)

    async def attended_transfer(self, call_id: str, other_call_id: str) -> None:
        await self._control.attended_transfer(call_id, other_call_id)

    async def join(self, call_id: str, other_call_id: str) -> None:
        await self._audio.conference.join(self.call(call_id), self.call(other_call_id), self.resume)

    async def split(self, call_id: str) -> None:
        await self._audio.conference.split(self.call(call_id), self.hold)

    async def send_dtmf(self, call_id: str, digits: str) -> str:
        """Send DTMF digits: RFC 4733 events when the peer offered telephone-event, else SIP INFO.
        Returns the method used ("rtp" or "info")."""
        return await self._control.send_dtmf(call_id, digits)

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

    # ------------------------------------------------------------------ plumbing
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

    def _emit(self, event: pe.PhoneEvent) -> None:
        self._queue.put_nowait(event)
        if isinstance(event, pe.CallStateChanged):
            self._presence.calls_changed()  # busy while talking

    def _pump(self) -> None:
        if self._running is not None:
            self._running.transport.pump()

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    @property
    def _running(self) -> Running | None:
        return self._life.running

    def _require(self) -> Running:
        return self._life.require()

    def _account(self, name: str | None) -> AccountConfig:
        try:
            return self._require().ua.account(name)
        except LocalProtocolError as exc:
            raise PhoneError(str(exc)) from None
