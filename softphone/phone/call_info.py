"""What the phone knows about one call: :class:`CallInfo`, the record ``Phone.calls`` returns.

It fits :class:`~softphone.phone.api.CallView` (what a front end may read) and carries the
phone's own working state beside it: the RTP endpoint, the SDP of both sides, the audio."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from softphone.phone import events as pe
from softphone.phone.api import StreamSummary
from softphone.phone.audio import AudioEngine
from softphone.phone.media import CallMedia
from softphone.phone.nat import MediaAddress
from softphone.sdp import LocalSecurity, NegotiatedMedia, SdpError, SessionDescription
from softphone.sdp.video import NegotiatedVideo
from softphone.transport.ice import IceEndpoint
from softphone.transport.rtp import RtpEndpoint

__all__ = ["CallInfo", "EncryptionName"]

EncryptionName = Literal["none", "sdes", "dtls-srtp"]


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
    # Where the far end reaches our RTP (the public address behind a NAT: phone/nat.py); None
    # until learned, then the SDP's c= and m= for every offer and answer of the call.
    media_address: MediaAddress | None = None
    ice: IceEndpoint | None = None  # the call's ICE agent when it does ICE (phone/ice.py)
    end_reason: str | None = None  # why we ended it, when the SIP side's reason would not say
    offer: SessionDescription | None = None  # our last offer, waiting for its answer
    media: NegotiatedMedia | None = None
    session_version: int = 0
    local_hold: bool = False
    remote_hold: bool = False
    transfer_of: str | None = None  # this call was made for a REFER on that call
    transfer_replaces: bool = False  # ... a REFER with Replaces: that call ends when this is up
    attended_with: str | None = None  # our REFER asks this call's peer to replace that call
    remote_sdp: bytes | None = None
    local_sdp: SessionDescription | None = None  # our last offer or answer
    audio: CallMedia | None = None
    engine: AudioEngine | None = None
    call_number: int = 0  # the n-th call that got media (FileAudio names recordings by it)
    final_stats: dict[str, object] | None = None
    final_streams: tuple[StreamSummary, ...] = ()  # the RTP streams when the audio closed
    recording_path: Path | None = None
    display_name: str | None = None  # the far end's, from From (incoming) when it sent one
    conference: bool = False  # mixed with other calls in the local conference (conference.py)
    muted: bool = False  # kept here so a mute before the audio starts still applies
    silenced: bool = False  # ringing stopped for this incoming call (silence())
    codec_name: str | None = None  # the last negotiated codec, kept after the media closes
    session_expires_s: int | None = None  # the session timer agreed (RFC 4028), None: none
    local_security: LocalSecurity | None = None  # our SDES keys and certificate, for the call
    sdp_problem: SdpError | None = None  # why the last offer could not be answered
    encryption_name: EncryptionName = "none"  # as negotiated; kept after the media closes
    srtp_suite_name: str | None = None
    greeting: Path | None = None  # the answering machine took the call: this WAV is its voice
    # Video (phone/video.py, which keeps the running stream): wanted in our offers (None: as
    # the settings say), its sockets, what SDP settled, its last statistics once it closed.
    video_wanted: bool | None = None
    video_rtp: RtpEndpoint | None = None
    video_media: NegotiatedVideo | None = None
    video_security: LocalSecurity | None = None  # our video SDES keys, apart from the audio's
    video_final: dict[str, object] | None = None
    # The video's own ICE agent and its default candidate (phone/video_ice.py), when it does ICE.
    video_ice: IceEndpoint | None = None
    video_ice_address: MediaAddress | None = None
    # Wall clock - loop clock, taken once for the call: the sender reports of its audio and its
    # video tell one time (RFC 3550 §6.4.1), which is what the far end's lip sync relies on.
    ntp_offset_s: float | None = None

    @property
    def encryption(self) -> EncryptionName:
        """What protects the call's media: "none", "sdes" or "dtls-srtp"."""
        if self.media is not None:
            return self.media.security.method if self.media.security is not None else "none"
        return self.encryption_name

    @property
    def srtp_suite(self) -> str | None:
        """The SRTP suite (DTLS-SRTP: once its handshake is done)."""
        if self.audio is not None and self.audio.protection is not None:
            return self.audio.protection.suite
        if self.media is not None and self.media.security is not None:
            return self.media.security.suite
        return self.srtp_suite_name

    @property
    def has_video(self) -> bool:
        return self.video_media is not None

    @property
    def codec(self) -> str | None:
        if self.media is not None and self.media.codec is not None:
            return self.media.codec.encoding
        return self.codec_name
