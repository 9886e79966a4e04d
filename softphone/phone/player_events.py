"""The base of the phone's events, and the events of the RTSP player (``softphone play --json``).

They are split from events.py, which re-exports them, so that ``softphone play`` does not build
the classes of the SIP events on its way to PLAY (each frozen dataclass costs ~0.4 ms to make).
Same rules as there: frozen, past tense, snake_case fields; ``--json`` prints ``to_json()``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar, Final, Literal

# Types whose values asdict() hands back as they are (immutable, not containers): exactly these
# types, not subclasses (an enum member is an int or a str too, and goes the long way).
_SCALARS: Final = frozenset({str, int, float, bool, type(None)})
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}  # per event class, made on its first event


def _field_names(cls: type) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in fields(cls))
    return names


@dataclass(frozen=True, slots=True, kw_only=True)
class PhoneEvent:
    """The base of every event the phone and the player publish; ``kind`` names it in JSON."""

    kind: ClassVar[str] = "event"

    def to_json(self) -> dict[str, Any]:
        """``{"event": kind, **asdict(self)}``. Most events hold only scalars, and a dict of them
        (statistics): those are copied directly, the rest goes through ``asdict`` (which walks
        and deep-copies every value: a busy ``listen`` spent a tenth of its time there)."""
        out: dict[str, Any] = {"event": self.kind}
        for name in _field_names(type(self)):
            value = getattr(self, name)
            if type(value) not in _SCALARS:
                if type(value) is not dict or not _flat(value):
                    return {"event": self.kind, **asdict(self)}
                value = dict(value)
            out[name] = value
        return out


def _flat(mapping: dict[Any, Any]) -> bool:
    """Keys and values all scalars: a copy of the dict is what ``asdict`` would make of it."""
    return all(type(k) in _SCALARS and type(v) in _SCALARS for k, v in mapping.items())


@dataclass(frozen=True, slots=True, kw_only=True)
class Notice(PhoneEvent):
    """Something a person should read: a warning or an error with its reason."""

    kind: ClassVar[str] = "notice"
    level: Literal["info", "warning", "error"]
    text: str


# --- the RTSP player (what `softphone play --json` prints) ----------------------------------------


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
    """The RTSP presentation was described: its streams, and which of them play."""

    kind: ClassVar[str] = "described"
    url: str  # never carries credentials
    streams: tuple[StreamInfo, ...]

    def to_json(self) -> dict[str, Any]:
        return {"event": self.kind, "url": self.url, "streams": [asdict(s) for s in self.streams]}


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamPlaying(PhoneEvent):
    """PLAY was answered; media flows over ``transport``."""

    kind: ClassVar[str] = "playing"
    transport: Literal["udp", "tcp"]  # the one in use, never "auto"
    range_start: float | None = None
    range_end: float | None = None  # on-demand media: its length in seconds (npt)


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamPaused(PhoneEvent):
    """The stream is paused (PAUSE answered)."""

    kind: ClassVar[str] = "paused"


@dataclass(frozen=True, slots=True, kw_only=True)
class FirstFrame(PhoneEvent):
    """The first picture was decoded, ``ms`` after the command started."""

    kind: ClassVar[str] = "first_frame"
    ms: float  # since the command started
    width: int
    height: int
    codec: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamStats(PhoneEvent):
    """Counters of a playing stream, once a second."""

    kind: ClassVar[str] = "stats"
    video_frames: int
    audio_frames: int  # 20 ms units of decoded audio
    fps: float
    lost_packets: int
    waiting_for_keyframe: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamReconnecting(PhoneEvent):
    """A session that played broke; the next try is in ``delay_s``."""

    kind: ClassVar[str] = "reconnecting"
    attempt: int
    delay_s: float
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamFailed(PhoneEvent):
    """The player gave up: a refusal, or the command's limits."""

    kind: ClassVar[str] = "failed"
    reason: str
    status: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamSummary(PhoneEvent):
    """The player ended: what it played, lost and wrote."""

    kind: ClassVar[str] = "summary"
    video_frames: int
    audio_frames: int
    first_frame_ms: float | None
    lost_packets: int
    reconnects: int
    transport: Literal["udp", "tcp"] | None
    recording: str | None = None
    snapshot: str | None = None
