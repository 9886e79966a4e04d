"""Domain events the phone publishes to front ends (CLI, TUI). Frozen, past tense, snake_case
fields: the CLI's ``--json`` output is these events, one per line, with ``"event"`` = ``kind``."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Literal

CallStateName = Literal["calling", "ringing", "early", "established", "held", "ended"]


@dataclass(frozen=True, slots=True, kw_only=True)
class PhoneEvent:
    kind: ClassVar[str] = "event"

    def to_json(self) -> dict[str, Any]:
        return {"event": self.kind, **asdict(self)}


@dataclass(frozen=True, slots=True, kw_only=True)
class Listening(PhoneEvent):
    kind: ClassVar[str] = "listening"
    transport: str
    host: str
    port: int
    fallback: bool = False  # the default port was taken and another one was chosen


@dataclass(frozen=True, slots=True, kw_only=True)
class Registered(PhoneEvent):
    kind: ClassVar[str] = "registered"
    account: str
    expires: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistrationFailed(PhoneEvent):
    kind: ClassVar[str] = "registration_failed"
    account: str
    status: int
    reason: str
    retry_in_s: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Unregistered(PhoneEvent):
    kind: ClassVar[str] = "unregistered"
    account: str


@dataclass(frozen=True, slots=True, kw_only=True)
class IncomingCall(PhoneEvent):
    kind: ClassVar[str] = "incoming_call"
    call_id: str
    account: str
    remote: str
    display_name: str | None
    waiting: bool  # another call is already up (call waiting)


@dataclass(frozen=True, slots=True, kw_only=True)
class CallStateChanged(PhoneEvent):
    kind: ClassVar[str] = "call_state"
    call_id: str
    state: CallStateName
    direction: Literal["outgoing", "incoming"]
    remote: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CallEnded(PhoneEvent):
    kind: ClassVar[str] = "call_ended"
    call_id: str
    status: int
    reason: str
    duration_s: float  # talk time; 0 when never established
    answered: bool
    stats: dict[str, Any] | None = None  # the call's last audio statistics (see CallStats)
    recording: str | None = None  # the call recording's path, when the call was recorded


@dataclass(frozen=True, slots=True, kw_only=True)
class CallStats(PhoneEvent):
    """Every few seconds while a call has audio: codec, packets, loss, jitter, RTT, the jitter
    buffer, concealment and a MOS estimate (ITU-T G.107), plus microphone/speaker levels."""

    kind: ClassVar[str] = "call_stats"
    call_id: str
    stats: dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class DtmfReceived(PhoneEvent):
    kind: ClassVar[str] = "dtmf"
    call_id: str
    digit: str
    method: Literal["rtp", "info"]
    duration_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferProgressed(PhoneEvent):
    kind: ClassVar[str] = "transfer"
    call_id: str
    status: int
    reason: str
    final: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Registering(PhoneEvent):
    """A REGISTER for the account is on its way (first time, refresh after a failure)."""

    kind: ClassVar[str] = "registering"
    account: str


@dataclass(frozen=True, slots=True, kw_only=True)
class MuteChanged(PhoneEvent):
    kind: ClassVar[str] = "mute"
    call_id: str
    muted: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordingChanged(PhoneEvent):
    kind: ClassVar[str] = "recording"
    call_id: str
    path: str | None  # the WAV being written; None once recording stopped


@dataclass(frozen=True, slots=True, kw_only=True)
class Notice(PhoneEvent):
    """Something a person should read: a warning or an error with its reason."""

    kind: ClassVar[str] = "notice"
    level: Literal["info", "warning", "error"]
    text: str


# --- the RTSP player (issue 4 §4: `softphone play --json`) ---------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamInfo:
    """One stream of a described RTSP presentation (not an event: a field of StreamDescribed)."""

    media: str  # "audio" | "video" | what the SDP says
    codec: str  # encoding name as the SDP gives it, e.g. "H264", "MPEG4-GENERIC"
    clock_rate: int
    control: str
    supported: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamDescribed(PhoneEvent):
    kind: ClassVar[str] = "described"
    url: str  # never carries credentials
    streams: tuple[StreamInfo, ...]

    def to_json(self) -> dict[str, Any]:
        return {"event": self.kind, "url": self.url, "streams": [asdict(s) for s in self.streams]}


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamPlaying(PhoneEvent):
    kind: ClassVar[str] = "playing"
    transport: Literal["udp", "tcp"]  # the one in use, never "auto"
    range_start: float | None = None
    range_end: float | None = None  # on-demand media: its length in seconds (npt)


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamPaused(PhoneEvent):
    kind: ClassVar[str] = "paused"


@dataclass(frozen=True, slots=True, kw_only=True)
class FirstFrame(PhoneEvent):
    kind: ClassVar[str] = "first_frame"
    ms: float  # since the command started
    width: int
    height: int
    codec: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamStats(PhoneEvent):
    kind: ClassVar[str] = "stats"
    video_frames: int
    audio_frames: int  # 20 ms units of decoded audio
    fps: float
    lost_packets: int
    waiting_for_keyframe: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamReconnecting(PhoneEvent):
    kind: ClassVar[str] = "reconnecting"
    attempt: int
    delay_s: float
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamFailed(PhoneEvent):
    kind: ClassVar[str] = "failed"
    reason: str
    status: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamSummary(PhoneEvent):
    kind: ClassVar[str] = "summary"
    video_frames: int
    audio_frames: int
    first_frame_ms: float | None
    lost_packets: int
    reconnects: int
    transport: Literal["udp", "tcp"] | None
    recording: str | None = None
    snapshot: str | None = None
