"""The call quality panel: jitter, loss, RTT and MOS of the selected call, with sparklines over
the last minutes (one point per CallStats, every ~5 s: 60 points are 5 minutes), and microphone /
speaker level meters (dBFS, polled by the screen at 10 Hz while the call has audio)."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Label, Sparkline, Static

__all__ = ["LevelMeter", "QualityHistory", "QualityPanel", "level_bar"]

HISTORY_POINTS: Final = 60
METRICS: Final = (
    ("jitter_ms", "jitter", "ms"),
    ("loss_percent", "loss", "%"),
    ("rtt_ms", "RTT", "ms"),
    ("mos", "MOS", ""),
)
FLOOR_DBFS: Final = -60.0


@dataclass(slots=True)
class QualityHistory:
    """The last :data:`HISTORY_POINTS` values of each metric for one call."""

    series: dict[str, deque[float]] = field(
        default_factory=lambda: {key: deque(maxlen=HISTORY_POINTS) for key, _, _ in METRICS}
    )
    latest: dict[str, object] = field(default_factory=dict)

    def add(self, stats: Mapping[str, object]) -> None:
        self.latest = dict(stats)
        for key, _, _ in METRICS:
            value = stats.get(key)
            if isinstance(value, int | float):
                self.series[key].append(float(value))


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


class LevelMeter(Static):
    """``mic  ██████░░░░ -30 dB``."""

    DEFAULT_CSS = """
    LevelMeter { height: 1; width: 1fr; }
    """

    def __init__(self, label: str, *, id: str | None = None) -> None:
        super().__init__("", id=id)
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
    QualityPanel .metric { height: 1; }
    QualityPanel .metric Label { width: 18; }
    QualityPanel .metric Sparkline { width: 1fr; height: 1; }
    QualityPanel #quality-empty { color: $text-muted; }
    """

    def compose(self) -> ComposeResult:
        yield Label("No call selected.", id="quality-empty")
        for key, _, _ in METRICS:
            with Horizontal(classes="metric"):
                yield Label("", id=f"label-{key}")
                yield Sparkline([], id=f"spark-{key}")
        yield LevelMeter("mic", id="meter-mic")
        yield LevelMeter("spk", id="meter-speaker")

    def on_mount(self) -> None:
        self.border_title = "Call quality"
        self.show(None)

    def show(self, history: QualityHistory | None, *, title: str = "") -> None:
        self.border_title = f"Call quality · {title}" if title else "Call quality"
        self.query_one("#quality-empty", Label).display = history is None or not history.latest
        for key, name, unit in METRICS:
            latest = history.latest.get(key) if history is not None else None
            self.query_one(f"#label-{key}", Label).update(
                f"{name:<7}{_value_text(latest, unit):>9}"
            )
            spark = self.query_one(f"#spark-{key}", Sparkline)
            spark.data = list(history.series[key]) if history is not None else []

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
