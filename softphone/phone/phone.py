"""The phone: accounts, transports and calls behind one async API, with a stream of events.

Front ends (the CLI now, the TUI later) call ``dial/answer/reject/hangup/hold/resume/transfer``
and read ``events()``. They never see SIP messages, sockets or SDP. The Phone owns the UA core
(sip/ua.py), the SIP transport (transport/sip.py), name resolution (transport/resolver.py) and,
per call, the media session (phone/media.py: RTP, codecs, jitter buffer, DTMF) attached to an
audio engine (phone/audio.py: the sound card, WAV files, or nothing).
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from softphone import __version__
from softphone.config import Account, Config, default_data_dir
from softphone.media.codecs import CodecError, available_codecs, unavailable_reasons
from softphone.media.resample import resample
from softphone.media.wav import WavError, read_wav
from softphone.phone import events as pe
from softphone.phone.api import Registration, RegistrationState, TracedMessage
from softphone.phone.audio import AudioEngine, AudioProvider, DeviceAudio
from softphone.phone.errors import PhoneError as PhoneError  # re-exported: older imports
from softphone.phone.event_queue import EventReader
from softphone.phone.media import CallMedia, receive_map
from softphone.phone.target import TargetError, normalize_target
from softphone.phone.trace import SipTrace
from softphone.sdp import (
    CodecSpec,
    Direction,
    LocalMedia,
    NegotiatedMedia,
    SdpError,
    SessionDescription,
    apply_answer,
    create_answer,
    create_offer,
)
from softphone.sip import events as ue
from softphone.sip.account import AccountConfig, is_ip_literal
from softphone.sip.address import DEFAULT_PORTS, Address, TransportName
from softphone.sip.call import CallState
from softphone.sip.errors import LocalProtocolError
from softphone.sip.timers import TimerConfig
from softphone.sip.ua import UserAgent
from softphone.sip.uri import SipUri
from softphone.transport.resolver import DnsBackend, DnspythonBackend, ResolveError, resolve
from softphone.transport.rtp import RtpEndpoint, open_rtp_endpoint
from softphone.transport.sip import SipTransport, TransportError
from softphone.transport.tls import client_context

logger = logging.getLogger(__name__)

TELEPHONE_EVENT = CodecSpec(
    encoding="telephone-event", clock_rate=8000, payload_type=101, fmtp="0-16"
)
STATS_INTERVAL_S = 5.0
DTMF_INFO_DURATION_MS = 160


def codec_specs(order: tuple[str, ...]) -> tuple[CodecSpec, ...]:
    """What we offer, in the configured order, leaving out codecs whose library is missing;
    RFC 4733 telephone-event always goes last."""
    available = available_codecs()
    specs: list[CodecSpec] = []
    for name in order:
        codec = available.get(name.lower())
        if codec is None:
            continue
        specs.append(
            CodecSpec(
                encoding=codec.encoding,
                clock_rate=codec.clock_rate,
                channels=codec.channels,
                payload_type=codec.static_payload_type,
                fmtp=codec.fmtp,
            )
        )
    return (*specs, TELEPHONE_EVENT)


UNREGISTER_TIMEOUT_S = 3.0
KEEPALIVE_UDP_S = 25.0
KEEPALIVE_STREAM_S = 90.0


@dataclass(slots=True)
class CallInfo:
    call_id: str
    account: str
    direction: Literal["outgoing", "incoming"]
    remote: str
    state: pe.CallStateName
    started_at: float  # monotonic
    established_at: float | None = None
    rtp: RtpEndpoint | None = None
    offer: SessionDescription | None = None  # our last offer, waiting for its answer
    media: NegotiatedMedia | None = None
    session_version: int = 0
    local_hold: bool = False
    remote_hold: bool = False
    transfer_of: str | None = None  # this call was made for a REFER on that call
    remote_sdp: bytes | None = None
    local_sdp: SessionDescription | None = None  # our last offer or answer
    audio: CallMedia | None = None
    engine: AudioEngine | None = None
    call_number: int = 0  # the n-th call that got media (FileAudio names recordings by it)
    final_stats: dict[str, object] | None = None
    recording_path: Path | None = None
    display_name: str | None = None  # the far end's, from From (incoming) when it sent one
    muted: bool = False  # kept here so a mute before the audio starts still applies
    silenced: bool = False  # ringing stopped for this incoming call (silence())
    codec_name: str | None = None  # the last negotiated codec, kept after the media closes

    @property
    def codec(self) -> str | None:
        if self.media is not None and self.media.codec is not None:
            return self.media.codec.encoding
        return self.codec_name


class Phone(EventReader):
    def __init__(
        self,
        config: Config,
        *,
        bind_host: str = "0.0.0.0",
        sip_port: int | None = None,
        rng: random.Random | None = None,
        dns: DnsBackend | None = None,
        timers: TimerConfig | None = None,
        auto_answer: bool = False,
        audio: AudioProvider | None = None,
    ) -> None:
        self._config = config
        self._bind_host = bind_host
        self._sip_port = sip_port if sip_port is not None else config.sip_port
        self._rng = rng or random.SystemRandom()
        self._dns = dns or DnspythonBackend()
        self._timers = timers or TimerConfig()
        self.auto_answer = auto_answer
        self._queue: asyncio.Queue[pe.PhoneEvent] = asyncio.Queue()
        self._ua: UserAgent | None = None
        self._transport: SipTransport | None = None
        self._accounts: dict[str, AccountConfig] = {}
        self._calls: dict[str, CallInfo] = {}
        self._advertised: str = "127.0.0.1"
        self._unregistered: asyncio.Event = asyncio.Event()
        self._pending_unregister: set[str] = set()
        self._registered: dict[str, bool] = {}
        self._registration_settled: dict[str, asyncio.Event] = {}
        self._tls_ca_files: dict[tuple[str, int], str] = {}
        self._audio: AudioProvider = audio or DeviceAudio(
            config.input_device,
            config.output_device,
            on_problem=self._audio_problem,
            ring_device=config.ring_device,
        )
        self._codecs = codec_specs(config.codecs)
        self._media_calls = 0
        self._stats_handle: asyncio.TimerHandle | None = None
        self._registrations: dict[str, Registration] = {}
        self._trace = SipTrace(time.time)
        self._playback: asyncio.Future[None] | None = None

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        accounts = self._config.accounts or (self._local_account(),)
        resolved = [await self._account_config(a) for a in accounts]
        self._accounts = {a.name: a for a in resolved}
        self._tls_ca_files = {
            (r.outbound.host, r.outbound.port): str(a.tls_ca_file)
            for a, r in zip(accounts, resolved, strict=True)
            if r.outbound is not None and a.tls_ca_file is not None
        }
        self._advertised = self._pick_advertised_host(resolved)
        ua = UserAgent(
            accounts=resolved,
            rng=self._rng,
            timers=self._timers,
            user_agent=f"softphone/{__version__}",
        )
        self._ua = ua
        for name, reason in unavailable_reasons().items():
            if name in {c.lower() for c in self._config.codecs}:
                self._emit(pe.Notice(level="warning", text=f"{name} is not offered: {reason}"))
        self._transport = SipTransport(
            ua, self._on_ua_events, tls_context=self._tls_context, tap=self._trace_message
        )
        await self._listen()
        for acct in resolved:
            self._set_registration(acct.name, "none")
            if acct.registrar is not None:
                self._registration_settled[acct.name] = asyncio.Event()
                ua.register(acct.name, self._now())
                self._set_registration(acct.name, "registering")
                self._emit(pe.Registering(account=acct.name))
        self._pump()

    async def stop(self) -> None:
        """Hang up every call, unregister (waiting at most a few seconds), close sockets."""
        if self._ua is None or self._transport is None:
            return
        ua = self._ua
        for call_id in list(ua.active_calls()):
            try:
                self._handle(ua.hangup(call_id, self._now()))
            except LocalProtocolError:
                pass
        self._pending_unregister = {
            name for name in self._accounts if ua.unregister(name, self._now())
        }
        self._pump()
        if self._pending_unregister:
            try:
                async with asyncio.timeout(UNREGISTER_TIMEOUT_S):
                    await self._unregistered.wait()
            except TimeoutError:
                logger.warning(
                    "unregister not confirmed for %s", ", ".join(self._pending_unregister)
                )
        for info in self._calls.values():
            self._stop_media(info)
            if info.rtp is not None:
                info.rtp.close()
        if self._stats_handle is not None:
            self._stats_handle.cancel()
            self._stats_handle = None
        self._audio.close()
        await self._transport.close()
        self._transport = None

    async def __aenter__(self) -> Phone:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def wait_registered(self, timeout_s: float = 10.0) -> dict[str, bool]:
        """Wait until every account with a registrar has registered or failed once."""
        try:
            async with asyncio.timeout(timeout_s):
                for settled in self._registration_settled.values():
                    await settled.wait()
        except TimeoutError:
            pass
        return dict(self._registered)

    @property
    def accounts(self) -> list[str]:
        if self._accounts:
            return list(self._accounts)
        return [a.name for a in self._config.accounts] or ["local"]

    @property
    def registrations(self) -> Mapping[str, Registration]:
        return dict(self._registrations)

    @property
    def calls(self) -> list[CallInfo]:
        return list(self._calls.values())

    def call(self, call_id: str) -> CallInfo:
        try:
            return self._calls[call_id]
        except KeyError:
            raise PhoneError(f"no call {call_id}") from None

    # ------------------------------------------------------------------ actions
    async def dial(self, target: str, *, account: str | None = None) -> str:
        ua = self._require_ua()
        acct = self._account(account)
        try:
            uri = normalize_target(target, acct.aor)
        except TargetError as exc:
            raise PhoneError(str(exc)) from None
        dest: Address | None = None
        if acct.outbound is None and not is_ip_literal(uri.host):
            dest = await self._resolve(uri, acct.transport)
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
        info.offer = self._offer(info, Direction.SENDRECV)
        try:
            call_id = ua.invite(acct.name, uri, sdp=bytes(info.offer), now=self._now(), dest=dest)
        except LocalProtocolError as exc:
            rtp.close()
            raise PhoneError(str(exc)) from None
        info.call_id = call_id
        self._calls[call_id] = info
        self._emit(
            pe.CallStateChanged(
                call_id=call_id, state="calling", direction="outgoing", remote=info.remote
            )
        )
        self._pump()
        return call_id

    async def answer(self, call_id: str) -> None:
        ua, info = self._require_ua(), self.call(call_id)
        if ua.call_state(call_id) is not CallState.INCOMING:
            raise PhoneError("this call is not ringing")
        sdp = self._answer_sdp(info, info.remote_sdp, Direction.SENDRECV)
        if sdp is None:
            self._handle(ua.reject(call_id, status=488, now=self._now()))
            self._pump()
            raise PhoneError("no common codec with the caller (rejected with 488)")
        ua.answer(call_id, sdp=sdp, now=self._now())
        self._pump()
        self._sync_media(info, sending=True)

    async def reject(self, call_id: str, *, status: int = 486) -> None:
        ua = self._require_ua()
        self.call(call_id)
        try:
            self._handle(ua.reject(call_id, status=status, now=self._now()))
        except LocalProtocolError as exc:
            raise PhoneError(str(exc)) from None
        self._pump()

    async def hangup(self, call_id: str) -> None:
        ua = self._require_ua()
        self.call(call_id)
        try:
            self._handle(ua.hangup(call_id, self._now()))
        except LocalProtocolError as exc:
            raise PhoneError(str(exc)) from None
        self._pump()

    async def hold(self, call_id: str) -> None:
        await self._reoffer(call_id, hold=True)

    async def resume(self, call_id: str) -> None:
        await self._reoffer(call_id, hold=False)

    async def transfer(self, call_id: str, target: str) -> None:
        ua, info = self._require_ua(), self.call(call_id)
        acct = self._account(info.account)
        try:
            uri = normalize_target(target, acct.aor)
            ua.refer(call_id, uri, self._now())
        except (TargetError, LocalProtocolError) as exc:
            raise PhoneError(str(exc)) from None
        self._pump()

    async def send_dtmf(self, call_id: str, digits: str) -> str:
        """Send DTMF digits: RFC 4733 events when the peer offered telephone-event, else SIP INFO.
        Returns the method used ("rtp" or "info")."""
        ua, info = self._require_ua(), self.call(call_id)
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

    def mute(self, call_id: str, muted: bool) -> None:
        """Mute (or unmute) our microphone in this call; kept when the audio starts later."""
        info = self.call(call_id)
        if info.state == "ended":
            raise PhoneError("the call has ended")
        if info.audio is not None:
            info.audio.muted = muted
        if info.muted != muted:
            info.muted = muted
            self._emit(pe.MuteChanged(call_id=call_id, muted=muted))

    def silence(self, call_id: str) -> None:
        """Stop ringing for this incoming call; it stays ringing for the caller until answered,
        rejected or given up."""
        info = self.call(call_id)
        if info.direction == "incoming" and info.state == "ringing" and not info.silenced:
            info.silenced = True
            self._update_tones()

    def levels(self, call_id: str) -> tuple[float, float] | None:
        info = self.call(call_id)
        if info.audio is None or info.engine is None:
            return None
        return (info.engine.mic_level.last.rms_dbfs, info.engine.speaker_level.last.rms_dbfs)

    def sip_trace(self, call_id: str) -> list[TracedMessage]:
        return self._trace.messages(call_id)

    def record(self, call_id: str, on: bool) -> Path | None:
        """Start (or stop) recording the call to a stereo WAV in the recordings directory
        (local left, remote right). Returns the file's path."""
        info = self.call(call_id)
        if info.audio is None:
            raise PhoneError("the call has no audio to record yet")
        if not on:
            was_recording = info.audio.recording
            path = info.audio.stop_recording()
            if was_recording:
                self._emit(pe.RecordingChanged(call_id=call_id, path=None))
            return path
        if info.audio.recording:
            return info.audio.recording_path
        directory = self._config.recordings_dir or default_data_dir() / "recordings"
        stamp = time.strftime("%Y%m%d-%H%M%S")
        who = (
            re.sub(r"[^A-Za-z0-9._@+-]+", "_", info.remote.strip("<>").removeprefix("sip:"))[:60]
            or "call"
        )
        path = directory / f"{stamp}-{who}.wav"
        try:
            info.audio.start_recording(path)
        except OSError as exc:
            raise PhoneError(f"cannot record to {path}: {exc.strerror or exc}") from None
        info.recording_path = path
        self._emit(pe.RecordingChanged(call_id=call_id, path=str(path)))
        return path

    def call_stats(self, call_id: str) -> dict[str, object] | None:
        info = self.call(call_id)
        if info.audio is None:
            return info.final_stats
        return info.audio.stats(self._now()).to_json()

    async def _reoffer(self, call_id: str, *, hold: bool) -> None:
        ua, info = self._require_ua(), self.call(call_id)
        if info.state not in ("established", "held"):
            raise PhoneError("the call is not established")
        info.local_hold = hold
        info.offer = self._offer(info, Direction.SENDONLY if hold else Direction.SENDRECV)
        try:
            ua.reoffer(call_id, sdp=bytes(info.offer), now=self._now())
        except LocalProtocolError as exc:
            raise PhoneError(str(exc)) from None
        self._pump()

    # ------------------------------------------------------------------ UA events -> phone events
    def _on_ua_events(self, events: list[object]) -> None:
        self._handle(events)

    def _handle(self, events: list[object] | list[ue.Event]) -> None:
        for event in events:
            try:
                self._handle_one(event)
            except LocalProtocolError as exc:  # a race between our action and the peer's
                logger.info("event %r raced with the call state: %s", event, exc)
        self._pump()

    def _handle_one(self, event: object) -> None:
        ua = self._require_ua()
        match event:
            case ue.Registered(account=account, expires=expires):
                first = not self._registered.get(account)
                self._registered[account] = True
                self._settle(account)
                acct = self._accounts[account]
                if first and acct.outbound is not None and self._transport is not None:
                    interval = (
                        KEEPALIVE_UDP_S if acct.outbound.transport == "udp" else KEEPALIVE_STREAM_S
                    )
                    self._transport.keep_alive(acct.outbound, interval)
                self._set_registration(account, "registered", expires_at=time.time() + expires)
                self._emit(pe.Registered(account=account, expires=expires))
            case ue.RegistrationFailed(
                account=account, status=status, reason=reason, retry_in_s=retry
            ):
                self._registered[account] = False
                self._settle(account)
                self._set_registration(account, "failed", reason=reason, retry_in_s=retry)
                self._emit(
                    pe.RegistrationFailed(
                        account=account, status=status, reason=reason, retry_in_s=retry
                    )
                )
            case ue.Unregistered(account=account):
                self._registered[account] = False
                self._pending_unregister.discard(account)
                if not self._pending_unregister:
                    self._unregistered.set()
                self._set_registration(account, "none")
                self._emit(pe.Unregistered(account=account))
            case ue.IncomingCall():
                self._incoming(event)
            case ue.CallProgressed(call_id=call_id, status=status, sdp=sdp):
                info = self._calls.get(call_id)
                if info is not None:
                    if sdp is not None:
                        self._apply_answer(info, sdp)
                        self._sync_media(info, sending=False)  # early media: listen only
                    self._set_state(
                        info, "early" if sdp is not None and status == 183 else "ringing"
                    )
            case ue.CallAnswered(call_id=call_id, sdp=sdp):
                info = self._calls.get(call_id)
                if info is not None:
                    if sdp is not None:
                        self._apply_answer(info, sdp)
                    info.established_at = self._now()
                    self._set_state(info, "established")
                    self._sync_media(info, sending=True)
                    self._notify_transferor(info, 200, "OK")
            case ue.CallConfirmed(call_id=call_id):
                info = self._calls.get(call_id)
                if info is not None:
                    info.established_at = self._now()
                    self._set_state(info, "established")
                    self._sync_media(info, sending=True)
            case ue.CallFailed(call_id=call_id, status=status, reason=reason):
                info = self._calls.get(call_id)
                if info is not None:
                    self._notify_transferor(info, status or 503, reason)
                    self._finish(info, status, reason)
            case ue.CallEnded(call_id=call_id, status=status, reason=reason):
                info = self._calls.get(call_id)
                if info is not None:
                    self._finish(info, status, reason)
            case ue.ReofferReceived(call_id=call_id, sdp=sdp):
                info = self._calls.get(call_id)
                if info is None:
                    return
                answer = self._answer_sdp(
                    info, sdp, Direction.SENDONLY if info.local_hold else Direction.SENDRECV
                )
                if answer is None:
                    ua.reject_reoffer(call_id, status=488, now=self._now())
                    return
                ua.answer_reoffer(call_id, sdp=answer, now=self._now())
                self._update_hold_state(info)
                self._sync_media(info, sending=True)
            case ue.ReofferAnswered(call_id=call_id, sdp=sdp):
                info = self._calls.get(call_id)
                if info is not None:
                    if sdp is not None:
                        self._apply_answer(info, sdp)
                    self._update_hold_state(info)
                    self._sync_media(info, sending=True)
            case ue.ReofferFailed(call_id=call_id, status=status, reason=reason):
                info = self._calls.get(call_id)
                if info is not None:
                    info.local_hold = not info.local_hold  # the change did not happen
                    self._emit(pe.Notice(level="warning", text=f"hold/resume failed: {reason}"))
            case ue.TransferRequested(call_id=call_id, target=target):
                info = self._calls.get(call_id)
                if info is not None:
                    self._emit(pe.Notice(level="info", text=f"transferred to {target}"))
                    asyncio.get_running_loop().create_task(self._transfer_dial(info, target))
            case ue.TransferProgressed(call_id=call_id, status=status, reason=reason, final=final):
                self._emit(
                    pe.TransferProgressed(
                        call_id=call_id, status=status, reason=reason, final=final
                    )
                )
                info = self._calls.get(call_id)
                if final and 200 <= status < 300 and info is not None and info.state != "ended":
                    # Blind transfer done: the transferee has the new call; we leave (RFC 5589 §6).
                    self._handle(ua.hangup(call_id, self._now()))
            case ue.DtmfReceived(call_id=call_id, digit=digit, duration_ms=duration_ms):
                self._emit(
                    pe.DtmfReceived(
                        call_id=call_id, digit=digit, method="info", duration_ms=duration_ms
                    )
                )
            case _:
                logger.debug("unhandled UA event %r", event)

    def _incoming(self, event: ue.IncomingCall) -> None:
        ua = self._require_ua()
        info = CallInfo(
            call_id=event.call_id,
            account=event.account,
            direction="incoming",
            remote=event.remote,
            state="ringing",
            started_at=self._now(),
            remote_sdp=event.sdp,
            display_name=event.remote_display,
        )
        self._calls[event.call_id] = info
        self._emit(
            pe.IncomingCall(
                call_id=event.call_id,
                account=event.account,
                remote=event.remote,
                display_name=event.remote_display,
                waiting=event.replaces_call,
            )
        )
        if self._config.do_not_disturb:
            self._handle(
                ua.reject(event.call_id, status=480, now=self._now(), reason="Do Not Disturb")
            )
            return
        self._emit(
            pe.CallStateChanged(
                call_id=info.call_id, state="ringing", direction="incoming", remote=info.remote
            )
        )
        self._update_tones()
        ua.ring(event.call_id, self._now())
        if self.auto_answer:
            asyncio.get_running_loop().create_task(self._auto_answer(event.call_id))

    async def _auto_answer(self, call_id: str) -> None:
        try:
            await self.answer(call_id)
        except PhoneError as exc:
            self._emit(pe.Notice(level="error", text=f"could not answer: {exc}"))

    async def _transfer_dial(self, original: CallInfo, target: str) -> None:
        try:
            new_id = await self.dial(target, account=original.account)
        except PhoneError as exc:
            ua = self._require_ua()
            try:
                ua.notify_transfer(
                    original.call_id, status=503, reason=str(exc)[:60], now=self._now()
                )
            except LocalProtocolError:
                pass
            self._pump()
            return
        self._calls[new_id].transfer_of = original.call_id

    def _notify_transferor(self, info: CallInfo, status: int, reason: str) -> None:
        if info.transfer_of is None:
            return
        original, info.transfer_of = info.transfer_of, None
        try:
            self._require_ua().notify_transfer(
                original, status=status, reason=reason[:60], now=self._now()
            )
        except LocalProtocolError:
            pass

    # ------------------------------------------------------------------ media (SDP) helpers
    def _offer(self, info: CallInfo, direction: Direction) -> SessionDescription:
        assert info.rtp is not None
        info.session_version += 1
        local = LocalMedia(
            address=self._advertised,
            port=info.rtp.port,
            codecs=self._codecs,
            direction=direction,
            rtcp_port=info.rtp.rtcp_port,
            rtcp_mux=True,  # RFC 5761: used when the peer agrees
        )
        offer = create_offer(
            local, session_id=info.rtp.session_id, session_version=info.session_version
        )
        info.local_sdp = offer
        return offer

    def _apply_answer(self, info: CallInfo, sdp: bytes) -> None:
        if info.offer is None:
            return
        try:
            info.media = apply_answer(info.offer, SessionDescription.parse(sdp))
            info.remote_sdp = sdp
        except SdpError as exc:
            self._emit(pe.Notice(level="warning", text=f"unusable SDP answer: {exc}"))

    def _answer_sdp(
        self, info: CallInfo, offer_sdp: bytes | None, direction: Direction
    ) -> bytes | None:
        """Answer an offer (or, for an offer-less INVITE, make our offer)."""
        if info.rtp is None:
            info.rtp = self._open_rtp_now()
        if not offer_sdp:
            info.offer = self._offer(info, direction)
            return bytes(info.offer)
        try:
            offer = SessionDescription.parse(offer_sdp)
            info.session_version += 1
            local = LocalMedia(
                address=self._advertised,
                port=info.rtp.port,
                codecs=self._codecs,
                direction=direction,
                rtcp_port=info.rtp.rtcp_port,
                rtcp_mux=True,  # RFC 5761: used when the peer agrees
            )
            answer, media = create_answer(
                offer, local, session_id=info.rtp.session_id, session_version=info.session_version
            )
        except SdpError as exc:
            logger.info("cannot answer offer: %s", exc)
            return None
        info.media = media
        info.local_sdp = answer
        info.remote_sdp = offer_sdp
        return bytes(answer)

    def _open_rtp_now(self) -> RtpEndpoint:
        loop = asyncio.get_running_loop()
        return RtpEndpoint.open_sync(
            loop, self._bind_host, self._config.rtp_port_min, self._config.rtp_port_max, self._rng
        )

    def _update_hold_state(self, info: CallInfo) -> None:
        media = info.media
        info.remote_hold = bool(media is not None and media.on_hold)
        if info.state in ("established", "held"):
            self._set_state(info, "held" if info.local_hold or info.remote_hold else "established")

    # ------------------------------------------------------------------ audio
    def _sync_media(self, info: CallInfo, *, sending: bool) -> None:
        """Start or update the call's audio to match what SDP negotiated."""
        media = info.media
        if media is None or media.codec is None or info.rtp is None or info.state == "ended":
            return
        pt_map = receive_map(
            info.local_sdp, SessionDescription.parse(info.remote_sdp) if info.remote_sdp else None
        )
        try:
            if info.audio is None:
                self._media_calls += 1
                info.call_number = self._media_calls
                engine = self._audio.engine_for_call(info.call_number)
                info.audio = CallMedia(
                    call_id=info.call_id,
                    endpoint=info.rtp,
                    media=media,
                    pt_map=pt_map,
                    engine_rate=engine.sample_rate,
                    rng=self._rng,
                    cname=f"{info.account}@{self._advertised}",
                    on_dtmf=partial(self._dtmf_received, info.call_id),
                )
                info.engine = engine
                info.audio.muted = info.muted
                engine.attach(info.audio)
                self._arm_stats()
            else:
                info.audio.update(media, pt_map)
        except (CodecError, SdpError, OSError) as exc:
            self._emit(pe.Notice(level="error", text=f"audio could not start: {exc}"))
            return
        if sending:
            info.audio.sending_allowed = True
        elif info.state not in ("established", "held"):
            info.audio.sending_allowed = False

    def _stop_media(self, info: CallInfo) -> None:
        info.codec_name = info.codec
        if info.audio is None:
            return
        now = self._now()
        try:
            info.final_stats = info.audio.stats(now).to_json()
        except Exception:  # stats are a nicety: never let them break a hang-up
            logger.exception("final stats failed")
        info.audio.close(now)
        if info.engine is not None:
            info.engine.detach(info.audio)
            self._audio.release(info.engine)
            info.engine = None
        info.audio = None

    def _arm_stats(self) -> None:
        if self._stats_handle is None:
            self._stats_handle = asyncio.get_running_loop().call_later(
                STATS_INTERVAL_S, self._emit_stats
            )

    def _emit_stats(self) -> None:
        self._stats_handle = None
        now = self._now()
        active = [info for info in self._calls.values() if info.audio is not None]
        for info in active:
            assert info.audio is not None
            stats = info.audio.stats(now).to_json()
            if info.engine is not None:
                stats["mic_dbfs"] = round(info.engine.mic_level.last.rms_dbfs, 1)
                stats["speaker_dbfs"] = round(info.engine.speaker_level.last.rms_dbfs, 1)
            self._emit(pe.CallStats(call_id=info.call_id, stats=stats))
        if active:
            self._arm_stats()

    def _dtmf_received(
        self, call_id: str, digit: str, method: Literal["rtp", "info"], duration_ms: int
    ) -> None:
        self._emit(
            pe.DtmfReceived(call_id=call_id, digit=digit, method=method, duration_ms=duration_ms)
        )

    def _update_tones(self) -> None:
        """Ringback while an outgoing call rings without early media; ring while a call for us
        waits to be answered (not when do-not-disturb rejected it)."""
        calls = self._calls.values()
        ringback = any(c.direction == "outgoing" and c.state == "ringing" for c in calls)
        ring = any(
            c.direction == "incoming" and c.state == "ringing" and not c.silenced for c in calls
        )
        try:
            self._audio.tones(ringback=ringback, ring=ring)
        except Exception as exc:  # a tone is a nicety: never let it break call handling
            logger.exception("tones failed")
            self._emit(pe.Notice(level="warning", text=f"cannot play tones: {exc}"))

    def _audio_problem(self, text: str) -> None:
        self._emit(pe.Notice(level="warning", text=text))

    async def play_file(self, path: Path) -> None:
        """Play a WAV file (a call recording) on the call device; returns when it has played or
        ``stop_playback`` stopped it. One file at a time: a new one stops the old."""
        try:
            mono, rate = await asyncio.to_thread(read_wav, path)
        except WavError as exc:
            raise PhoneError(f"cannot play the recording: {exc}") from None
        self.stop_playback()
        engine = self._audio.engine_for_call(0)
        samples = resample(mono, rate, engine.sample_rate).astype(np.float32, copy=False)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        port = _FilePort(samples, done)
        self._playback = done
        engine.attach(port)
        try:
            await done
        except asyncio.CancelledError:
            if not done.cancelled():
                raise
        finally:
            engine.detach(port)
            self._audio.release(engine)
            if self._playback is done:
                self._playback = None

    def stop_playback(self) -> None:
        if self._playback is not None and not self._playback.done():
            self._playback.cancel()
        self._playback = None

    # ------------------------------------------------------------------ plumbing
    def _trace_message(
        self, direction: Literal["sent", "received"], data: bytes, peer: Address
    ) -> None:
        listeners = self._transport.listeners() if self._transport is not None else []
        port = next((a.port for a in listeners if a.transport == peer.transport), None)
        local = f"{peer.transport}:{self._advertised}" + (f":{port}" if port is not None else "")
        self._trace.add(direction, data, local, f"{peer.transport}:{peer.host}:{peer.port}")

    def _set_registration(
        self,
        account: str,
        state: RegistrationState,
        *,
        expires_at: float | None = None,
        reason: str | None = None,
        retry_in_s: float | None = None,
    ) -> None:
        acct = self._accounts[account]
        self._registrations[account] = Registration(
            account=account,
            aor=str(acct.aor),
            transport=acct.transport,
            state=state,
            expires_at=expires_at,
            reason=reason,
            retry_in_s=retry_in_s,
        )

    def _set_state(self, info: CallInfo, state: pe.CallStateName) -> None:
        if info.state == state:
            return
        info.state = state
        self._update_tones()
        self._emit(
            pe.CallStateChanged(
                call_id=info.call_id, state=state, direction=info.direction, remote=info.remote
            )
        )

    def _finish(self, info: CallInfo, status: int, reason: str) -> None:
        if info.state == "ended":
            return
        duration = self._now() - info.established_at if info.established_at is not None else 0.0
        self._set_state(info, "ended")
        self._stop_media(info)
        if info.rtp is not None:
            info.rtp.close()
            info.rtp = None
        self._prune_ended()
        self._emit(
            pe.CallEnded(
                call_id=info.call_id,
                status=status,
                reason=reason,
                duration_s=round(duration, 3),
                answered=info.established_at is not None,
                stats=info.final_stats,
                recording=str(info.recording_path) if info.recording_path else None,
            )
        )

    def _prune_ended(self, keep: int = 50) -> None:
        """Bounded memory in long sessions: forget all but the last ``keep`` ended calls."""
        ended = [c.call_id for c in self._calls.values() if c.state == "ended"]
        for call_id in ended[:-keep] if len(ended) > keep else []:
            del self._calls[call_id]
        if self._ua is not None:
            self._ua.forget_ended_calls()

    def _settle(self, account: str) -> None:
        settled = self._registration_settled.get(account)
        if settled is not None:
            settled.set()

    def _emit(self, event: pe.PhoneEvent) -> None:
        self._queue.put_nowait(event)

    def _pump(self) -> None:
        if self._transport is not None:
            self._transport.pump()

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _require_ua(self) -> UserAgent:
        if self._ua is None:
            raise PhoneError("the phone is not started")
        return self._ua

    def _account(self, name: str | None) -> AccountConfig:
        try:
            return self._require_ua().account(name)
        except LocalProtocolError as exc:
            raise PhoneError(str(exc)) from None

    async def _listen(self) -> None:
        assert self._transport is not None and self._ua is not None
        port = self._sip_port
        fallback = port is None
        wanted = DEFAULT_PORTS["udp"] if port is None else port
        transports: list[TransportName] = ["udp", "tcp"]
        for acct in self._accounts.values():
            if acct.transport == "tls" and "tls" not in transports:
                transports.append("tls")
        bound_port = wanted
        bound: dict[TransportName, Address] = {}
        if port == 0:
            bound = await self._ephemeral_pair()
            bound_port = bound["udp"].port
        for transport in transports:
            if transport == "tls":
                # No server certificate: TLS is client-only; requests come back over our connection.
                self._ua.add_listener(Address("tls", self._advertised, bound_port))
                continue
            try:
                address = bound.get(transport) or await self._transport.listen(
                    transport, self._bind_host, bound_port, fallback=fallback
                )
            except TransportError as exc:
                raise PhoneError(str(exc)) from None
            moved = address.port != bound_port
            if moved and transport == "udp":
                self._emit(
                    pe.Notice(
                        level="warning",
                        text=f"port {wanted}/{transport} is in use; using {address.port} instead",
                    )
                )
                bound_port = address.port
            advertised = Address(transport, self._advertised, address.port)
            self._ua.add_listener(advertised)
            self._emit(
                pe.Listening(
                    transport=transport, host=address.host, port=address.port, fallback=moved
                )
            )

    async def _ephemeral_pair(self, attempts: int = 8) -> dict[TransportName, Address]:
        """A port free for both UDP and TCP. The kernel picks the UDP one; the same TCP port may
        be someone's ephemeral connection, so try again with a new one (bounded)."""
        assert self._transport is not None
        for _ in range(attempts):
            try:
                udp = await self._transport.listen("udp", self._bind_host, 0)
            except TransportError as exc:
                raise PhoneError(str(exc)) from None
            try:
                tcp = await self._transport.listen("tcp", self._bind_host, udp.port)
            except TransportError:
                await self._transport.unlisten(udp)
                continue
            return {"udp": udp, "tcp": tcp}
        raise PhoneError(
            f"no port free for both UDP and TCP on {self._bind_host} after {attempts} tries"
        )

    async def _account_config(self, acct: Account) -> AccountConfig:
        hop_uri = acct.proxy or acct.registrar
        outbound = await self._resolve(hop_uri, acct.transport) if hop_uri is not None else None
        return AccountConfig(
            name=acct.name,
            aor=acct.uri,
            username=acct.auth_username,
            password=acct.password,
            display_name=acct.display_name,
            registrar=acct.registrar,
            outbound=outbound,
            transport=acct.transport,
            expires=acct.expires,
        )

    async def _resolve(self, uri: SipUri, transport: TransportName) -> Address:
        port = uri.port
        if transport == "tls" and port is None:
            port = 5061
        try:
            targets = await resolve(
                uri.host,
                port=port,
                transport=(uri.transport or transport),  # type: ignore[arg-type]
                sips=uri.scheme == "sips",
                backend=self._dns,
                rng=self._rng,
            )
        except ResolveError as exc:
            raise PhoneError(f"cannot find the server for {uri}: {exc}") from None
        return targets[0].address()

    def _local_account(self) -> Account:
        """No account configured: a peer-to-peer identity on this host."""
        return Account(name="local", uri=SipUri(user="softphone", host=self._bind_host_for_uri()))

    def _bind_host_for_uri(self) -> str:
        return self._bind_host if self._bind_host not in ("0.0.0.0", "::") else "localhost"

    def _pick_advertised_host(self, accounts: list[AccountConfig]) -> str:
        """The address that goes into Via and Contact: the bind address when it is specific, else
        the local address the kernel would use to reach the first outbound hop. A UDP connect()
        sends nothing; it only asks the routing table."""
        if self._bind_host not in ("0.0.0.0", "::", ""):
            return self._bind_host
        for acct in accounts:
            if acct.outbound is not None:
                return _route_source(acct.outbound.host) or "127.0.0.1"
        return _route_source("192.0.2.1") or "127.0.0.1"

    def _tls_context(self, address: Address) -> ssl.SSLContext:
        """Verification always on; an account's tls_ca_file is trusted for its own proxy."""
        return client_context(self._tls_ca_files.get((address.host, address.port)))


class _FilePort:
    """Plays samples once into an engine, then resolves ``done``; captures nothing."""

    def __init__(self, samples: npt.NDArray[np.float32], done: asyncio.Future[None]) -> None:
        self._samples = samples
        self._at = 0
        self._done = done

    def capture(self, pcm: object, now: float) -> None:
        pass

    def render(self, samples: int, now: float) -> npt.NDArray[np.float32]:
        out = np.zeros(samples, dtype=np.float32)
        chunk = self._samples[self._at : self._at + samples]
        out[: len(chunk)] = chunk
        self._at += len(chunk)
        if self._at >= len(self._samples) and not self._done.done():
            self._done.set_result(None)
        return out


def _route_source(host: str) -> str | None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect((host, 9))
            return str(probe.getsockname()[0])
    except OSError:
        return None
