"""The call quality panel: jitter, loss, RTT and MOS of the selected call, with sparklines over
the last minutes (one point per CallStats, every ~5 s: 60 points are 5 minutes), and microphone /
speaker level meters (dBFS, polled by the screen at 10 Hz while the call has audio).

Each sparkline has a fixed scale (:data:`SCALES`), not one stretched over whatever it shows: a
steady 0.5 ms round trip is a flat bottom line and a perfect MOS a nearly full bar. Cells are
coloured by how good the value is (theme colours: success, warning, error). The figures:

- MOS 1-5 (ITU-T P.800's scale); below 4.0 some users are dissatisfied, below 3.6 many are
  (ITU-T G.107 Annex B, R 80 and 70).
- Jitter against 30 ms, the usual limit for voice; fair up to 20 ms.
- RTT against 300 ms: 150 ms each way, ITU-T G.114's limit for one-way delay in a conversation
  (the RTT is the network's, and codec and jitter buffer add to it); fair up to 200 ms.
- Loss against 5 %; fair up to 1 %, bad from 3 % (concealment hides little loss, not bursts).

The panel is three rows high (two metrics per row, both meters on the last) so that the calls
list keeps several rows on an 80x24 terminal.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Final, Literal

from rich.segment import Segment
from rich.style import Style
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Label, Static

__all__ = [
    "SCALES",
    "Grade",
    "LevelMeter",
    "MetricSpark",
    "QualityHistory",
    "QualityPanel",
    "Scale",
    "bar_levels",
    "grade",
    "ice_text",
    "level_bar",
    "video_text",
]

HISTORY_POINTS: Final = 60
FLOOR_DBFS: Final = -60.0
BARS: Final = "▁▂▃▄▅▆▇█"
Grade = Literal["good", "fair", "bad"]


@dataclass(frozen=True, slots=True)
class Scale:
    """How one metric is drawn: the value at the lowest bar (``empty``) and at the full one
    (``full``), and where it stops being good (``fair``) and becomes bad (``bad``). When ``bad``
    is below ``fair``, lower values are worse (MOS)."""

    key: str
    name: str
    unit: str
    empty: float
    full: float
    fair: float
    bad: float

    @property
    def lower_is_worse(self) -> bool:
        return self.bad < self.fair


SCALES: Final[tuple[Scale, ...]] = (
    Scale("jitter_ms", "jitter", "ms", empty=0.0, full=30.0, fair=20.0, bad=30.0),
    Scale("loss_percent", "loss", "%", empty=0.0, full=5.0, fair=1.0, bad=3.0),
    Scale("rtt_ms", "RTT", "ms", empty=0.0, full=300.0, fair=200.0, bad=300.0),
    Scale("mos", "MOS", "", empty=1.0, full=5.0, fair=4.0, bad=3.6),
)


def grade(value: float, scale: Scale) -> Grade:
    """good, fair or bad (``fair`` and ``bad`` are the first values of their grade)."""
    if scale.lower_is_worse:
        return "bad" if value < scale.bad else "fair" if value < scale.fair else "good"
    return "bad" if value >= scale.bad else "fair" if value >= scale.fair else "good"


def bar_levels(values: Sequence[float], scale: Scale) -> list[int]:
    """Bar heights 0-7 (an index into :data:`BARS`) of ``values`` on the fixed ``scale``:
    ``empty`` and below draw the lowest bar, ``full`` and above the full one."""
    span = scale.full - scale.empty
    top = len(BARS) - 1
    return [
        min(top, max(0, round((value - scale.empty) / span * top))) if span > 0 else 0
        for value in values
    ]


def worst(values: Sequence[float], scale: Scale) -> float:
    """The worst of ``values`` (a cell that stands for several points hides no spike)."""
    return min(values) if scale.lower_is_worse else max(values)


@dataclass(slots=True)
class QualityHistory:
    """The last :data:`HISTORY_POINTS` values of each metric for one call."""

    series: dict[str, deque[float]] = field(
        default_factory=lambda: {s.key: deque(maxlen=HISTORY_POINTS) for s in SCALES}
    )
    latest: dict[str, object] = field(default_factory=dict)

    def add(self, stats: Mapping[str, object]) -> None:
        self.latest = dict(stats)
        for scale in SCALES:
            value = stats.get(scale.key)
            if isinstance(value, int | float):
                self.series[scale.key].append(float(value))


LOCK = "\N{LOCK}"
_METHODS = {"sdes": "SRTP (SDES)", "dtls-srtp": "SRTP (DTLS)"}


def lock_text(encryption: str, suite: str | None) -> str:
    """ "🔒 SRTP (SDES) AES_CM_128_HMAC_SHA1_80" for an encrypted call; "" for plain RTP."""
    method = _METHODS.get(encryption)
    if method is None:
        return ""
    return " ".join(p for p in (LOCK, method, suite) if p)


def ice_text(stats: Mapping[str, object]) -> str:
    """ "ICE relay/host" (the selected pair's local and remote candidate types), "ICE checking"
    or "ICE failed" for a call that does ICE (RFC 8445); "" for one that does not."""
    state, pair = stats.get("ice"), stats.get("ice_pair")
    if state in (None, "off"):
        return ""
    return f"ICE {pair}" if state == "connected" and pair else f"ICE {state}"


def video_text(stats: Mapping[str, object]) -> str:
    """ "VP8 320x240 15 fps" for a call with video (the picture received, or sent when none
    comes), with its own ICE when it does ICE ("VP8 320x240 15 fps ICE host/srflx"); "video
    ICE failed" once its checks failed (the call goes on without); "" for one without."""
    codec, width, height = (
        stats.get("video_codec"),
        stats.get("video_width"),
        stats.get("video_height"),
    )
    ice = ice_text({"ice": stats.get("video_ice"), "ice_pair": stats.get("video_ice_pair")})
    if stats.get("video_ice") == "failed":
        return f"video {ice}"
    flowed = stats.get("video_frames_sent") or stats.get("video_frames_received")
    if not codec or not flowed:
        return ""
    size = f" {width}x{height}" if width and height else ""
    fps = stats.get("video_fps")
    rate = f" {fps:g} fps" if isinstance(fps, int | float) else ""
    return " ".join(p for p in (f"{codec}{size}{rate}", ice) if p)


def _value_text(value: object, unit: str) -> str:
    if not isinstance(value, int | float):
        return "-"
    text = f"{value:.2f}" if unit == "" else f"{value:.1f}"
    return f"{text} {unit}".rstrip()


def level_bar(dbfs: float | None, width: int) -> str:
    """A text meter: full at 0 dBFS, empty at -60 dBFS (or without audio)."""
    if dbfs is None or width <= 0:
        return "░" * max(0, width)
    fill = round((min(0.0, max(FLOOR_DBFS, dbfs)) - FLOOR_DBFS) / -FLOOR_DBFS * width)
    return "█" * fill + "░" * (width - fill)


class MetricSpark(Widget):
    """One metric's sparkline on its fixed scale, newest point at the right edge; coloured by
    grade. More points than cells: each cell shows the worst of the points it stands for."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "metric-spark--good",
        "metric-spark--fair",
        "metric-spark--bad",
    }
    DEFAULT_CSS = """
    MetricSpark { height: 1; width: 1fr; }
    MetricSpark > .metric-spark--good { color: $success; }
    MetricSpark > .metric-spark--fair { color: $warning; }
    MetricSpark > .metric-spark--bad { color: $error; }
    """

    def __init__(self, scale: Scale, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.scale = scale
        self.data: list[float] = []

    def set_data(self, data: Sequence[float]) -> None:
        self.data = list(data)
        self.refresh()

    def cells(self, width: int) -> list[tuple[int, Grade]]:
        """(bar level, grade) per cell, at most ``width`` of them, the newest last."""
        data = self.data
        if width <= 0 or not data:
            return []
        if len(data) > width:  # bucket the points into the cells, oldest first
            buckets = [
                data[i * len(data) // width : (i + 1) * len(data) // width] for i in range(width)
            ]
            data = [worst(bucket, self.scale) for bucket in buckets]
        levels = bar_levels(data, self.scale)
        return [
            (level, grade(value, self.scale)) for level, value in zip(levels, data, strict=True)
        ]

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if y != 0:
            return Strip.blank(width)
        styles: dict[Grade, Style] = {
            g: self.get_component_rich_style(f"metric-spark--{g}") for g in ("good", "fair", "bad")
        }
        cells = self.cells(width)
        segments = [Segment(" " * (width - len(cells)))]
        segments += [Segment(BARS[level], styles[g]) for level, g in cells]
        return Strip(segments, width)


class LevelMeter(Static):
    """``mic  ██████░░░░ -30 dB``."""

    DEFAULT_CSS = """
    LevelMeter { height: 1; width: 1fr; }
    """

    def __init__(self, label: str, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__("", id=id, classes=classes)
        self.label = label
        self.dbfs: float | None = None

    def set_level(self, dbfs: float | None) -> None:
        self.dbfs = dbfs
        self.refresh()

    def render(self) -> str:
        value = "   -  " if self.dbfs is None else f"{self.dbfs:4.0f} dB"
        width = max(0, self.size.width - len(self.label) - len(value) - 2)
        return f"{self.label} {level_bar(self.dbfs, width)} {value}"


class QualityPanel(Vertical):
    """Shows one call's quality (:meth:`show`) and levels (:meth:`show_levels`)."""

    DEFAULT_CSS = """
    QualityPanel {
        height: auto;
        border: round $primary-muted;
        border-title-color: $text-accent;
        padding: 0 1;
    }
    QualityPanel .quality-row { height: 1; }
    QualityPanel .metric { width: 1fr; height: 1; }
    QualityPanel .metric Label { width: 17; }
    QualityPanel .-left { margin-right: 3; }
    """

    def compose(self) -> ComposeResult:
        for left, right in (SCALES[:2], SCALES[2:]):
            with Horizontal(classes="quality-row"):
                for scale, side in ((left, "metric -left"), (right, "metric")):
                    with Horizontal(classes=side):
                        yield Label("", id=f"label-{scale.key}")
                        yield MetricSpark(scale, id=f"spark-{scale.key}")
        with Horizontal(classes="quality-row"):
            yield LevelMeter("mic", id="meter-mic", classes="-left")
            yield LevelMeter("spk", id="meter-speaker")

    def on_mount(self) -> None:
        self.show(None)

    def show(self, history: QualityHistory | None, *, title: str = "", lock: str = "") -> None:
        """``lock``: what protects the call's media (:func:`lock_text`), shown in the title."""
        if history is None:
            self.border_title = "Call quality · no call selected"
        else:
            ice, video = ice_text(history.latest), video_text(history.latest)
            parts = ("Call quality", title, lock, ice, video)
            self.border_title = " · ".join(p for p in parts if p)
        for scale in SCALES:
            latest = history.latest.get(scale.key) if history is not None else None
            self.query_one(f"#label-{scale.key}", Label).update(
                f"{scale.name:<7}{_value_text(latest, scale.unit):>9}"
            )
            spark = self.query_one(f"#spark-{scale.key}", MetricSpark)
            spark.set_data(history.series[scale.key] if history is not None else [])

    def show_levels(self, levels: tuple[float, float] | None) -> None:
        mic, speaker = levels if levels is not None else (None, None)
        self.query_one("#meter-mic", LevelMeter).set_level(mic)
        self.query_one("#meter-speaker", LevelMeter).set_level(speaker)

    @property
    def levels_shown(self) -> tuple[float | None, float | None]:
        return (
            self.query_one("#meter-mic", LevelMeter).dbfs,
            self.query_one("#meter-speaker", LevelMeter).dbfs,
        )
