"""The audio side of the phone's calls: each call's media session (phone/media.py: RTP, codecs,
jitter buffer, DTMF) attached to an engine of the audio provider (phone/audio.py) while SDP
says there is audio, the statistics every few seconds, the ring and ringback tones, and the
port that plays a WAV file (a recording) on the call device."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Iterable
from functools import partial
from typing import Literal

from softphone.media.codecs import CodecError
from softphone.media.device import AudioDeviceError
from softphone.phone import events as pe
from softphone.phone.api import StreamSummary
from softphone.phone.audio import AudioProvider, greeting_engine
from softphone.phone.call_info import CallInfo
from softphone.phone.conference import LocalConference
from softphone.phone.media import CallMedia, receive_map
from softphone.sdp import NegotiatedMedia, SdpError, SessionDescription
from softphone.srtp import DtlsCertificate, MediaProtection, SrtpError

__all__ = ["STATS_INTERVAL_S", "CallAudio"]

logger = logging.getLogger(__name__)

STATS_INTERVAL_S = 5.0
AUDIO_STATES = ("established", "held")


class CallAudio:
    """Starts, updates and stops each call's audio on ``provider``. ``calls`` lists the calls
    the periodic statistics look at; ``clock`` is the event loop's."""

    def __init__(
        self,
        provider: AudioProvider,
        *,
        rng: random.Random,
        emit: Callable[[pe.PhoneEvent], None],
        clock: Callable[[], float],
        calls: Callable[[], Iterable[CallInfo]],
        certificate: Callable[[], DtlsCertificate] | None = None,
    ) -> None:
        self.provider = provider
        self._certificate = certificate
        self._rng = rng
        self._emit = emit
        self._clock = clock
        self._calls = calls
        self._media_calls = 0
        self.advertised: str | None = None  # our address in SDP (the phone sets it on start)
        self._stats_handle: asyncio.TimerHandle | None = None
        self.conference = LocalConference(calls=calls, emit=emit)
        # More statistics of a call to report with its audio's (the video's: phone/video.py).
        self.extra_stats: Callable[[CallInfo], dict[str, object]] = lambda _: {}

    def sync(self, info: CallInfo, *, sending: bool, cname: str) -> None:
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
                engine = (
                    greeting_engine(info.greeting)
                    if info.greeting is not None
                    else self.provider.engine_for_call(info.call_number)
                )
                info.audio = CallMedia(
                    call_id=info.call_id,
                    endpoint=info.ice or info.rtp,
                    media=media,
                    pt_map=pt_map,
                    engine_rate=engine.sample_rate,
                    rng=self._rng,
                    cname=cname,
                    on_dtmf=partial(self._dtmf_received, info.call_id),
                    ntp_offset_s=info.ntp_offset_s,
                )
                info.engine = engine
                info.audio.muted = info.muted
                self._protect(info.audio, media)
                engine.attach(info.audio)
                self._arm_stats()
            else:
                info.audio.update(media, pt_map)
                self._protect(info.audio, media)
        except (CodecError, SdpError, OSError, AudioDeviceError) as exc:
            self._emit(pe.Notice(level="error", text=f"audio could not start: {exc}"))
            return
        except SrtpError as exc:  # keys libsrtp refuses: no media rather than plain media
            self.stop(info)  # never plain RTP where SRTP was agreed
            self._emit(pe.Notice(level="error", text=f"media encryption failed: {exc}"))
            return
        if sending:
            info.audio.sending_allowed = True
        elif info.state not in AUDIO_STATES:
            info.audio.sending_allowed = False

    def _protect(self, audio: CallMedia, media: NegotiatedMedia) -> None:
        """SRTP as negotiated: new protection, the same one re-keyed, or none (plain RTP)."""
        security, now = media.security, self._clock()
        if security is None:
            if audio.protection is not None:
                audio.protect(None, now)
        elif audio.protection is None:
            protection = MediaProtection(
                security, rtcp_mux=media.rtcp_mux, certificate=self._require_certificate
            )
            audio.protect(protection, now)
        else:
            audio.protection.update(security, rtcp_mux=media.rtcp_mux, now=now)

    def _require_certificate(self) -> DtlsCertificate:
        if self._certificate is None:
            raise SrtpError("DTLS-SRTP needs a certificate and none was given")
        return self._certificate()

    def stop(self, info: CallInfo) -> None:
        """Close the call's audio, keeping its last statistics and codec for later."""
        info.codec_name = info.codec
        info.encryption_name = info.encryption
        info.srtp_suite_name = info.srtp_suite
        self.conference.leave(info)  # the other parties go on with us
        if info.audio is None:
            return
        now = self._clock()
        try:
            info.final_stats = info.audio.stats(now).to_json() | self.extra_stats(info)
            info.final_streams = tuple(info.audio.streams(now, advertised=self.advertised))
        except Exception:  # stats are a nicety: never let them break a hang-up
            logger.exception("final stats failed")
        info.audio.close(now)
        if info.engine is not None:
            info.engine.detach(info.audio)
            if info.greeting is not None:
                info.engine.close()  # the answering machine's own engine
            else:
                self.provider.release(info.engine)
            info.engine = None
        info.audio = None

    def stats(self, info: CallInfo) -> dict[str, object] | None:
        """The call's statistics now, or its last ones once the audio has closed."""
        if info.audio is None:
            return info.final_stats
        return info.audio.stats(self._clock()).to_json() | self.extra_stats(info)

    def streams(self, info: CallInfo) -> list[StreamSummary]:
        """The call's RTP streams now, or as they were when its audio closed."""
        if info.audio is None:
            return list(info.final_streams)
        return info.audio.streams(self._clock(), advertised=self.advertised)

    def levels(self, info: CallInfo) -> tuple[float, float] | None:
        if info.audio is None or info.engine is None:
            return None
        return (info.engine.mic_level.last.rms_dbfs, info.engine.speaker_level.last.rms_dbfs)

    def tones(self, calls: Iterable[CallInfo]) -> None:
        """Ringback while an outgoing call rings without early media; ring while a call for us
        waits to be answered (not when do-not-disturb rejected it)."""
        ringing = [c for c in calls if c.state == "ringing"]
        ringback = any(c.direction == "outgoing" for c in ringing)
        ring = any(c.direction == "incoming" and not c.silenced for c in ringing)
        try:
            self.provider.tones(ringback=ringback, ring=ring)
        except Exception as exc:  # a tone is a nicety: never let it break call handling
            logger.exception("tones failed")
            self._emit(pe.Notice(level="warning", text=f"cannot play tones: {exc}"))

    def close(self) -> None:
        """No more statistics; the provider closes its devices."""
        if self._stats_handle is not None:
            self._stats_handle.cancel()
            self._stats_handle = None
        self.provider.close()

    def _arm_stats(self) -> None:
        if self._stats_handle is None:
            self._stats_handle = asyncio.get_running_loop().call_later(
                STATS_INTERVAL_S, self._emit_stats
            )

    def _emit_stats(self) -> None:
        self._stats_handle = None
        now = self._clock()
        active = [info for info in self._calls() if info.audio is not None]
        for info in active:
            assert info.audio is not None
            stats = info.audio.stats(now).to_json() | self.extra_stats(info)
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
