"""A glance at a call's RTP streams, one per direction: SSRC, both addresses, codec and payload
type, packets, loss, jitter and (for what we receive) the jitter buffer's delay.

:func:`stream_lines` is the text, pure and width-aware: one line per stream under a header when
there is room (:data:`WIDE`), else two lines per stream. :class:`RtpStreamsView` shows it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from rich.text import Text
from textual.widgets import Static

from softphone.phone.api import StreamSummary

__all__ = ["WIDE", "RtpStreamsView", "stream_lines"]

_HEADER: Final = (
    f"{'RTP':<11} {'SSRC':<10}  {'sender → receiver':<45} {'codec/pt':<11}"
    f" {'packets':>8} {'lost':>6} {'loss':>7} {'jitter':>9} {'buffer':>9}"
)
WIDE: Final = len(_HEADER)  # columns the one-line layout needs (IPv6 addresses may need more)
_ARROWS: Final = {"sent": "▶ sent", "received": "◀ received"}


def _ssrc(stream: StreamSummary) -> str:
    return f"0x{stream.ssrc:08x}" if stream.ssrc is not None else "-"


def _codec(stream: StreamSummary) -> str:
    return (
        f"{stream.codec}/{stream.payload_type}" if stream.payload_type is not None else stream.codec
    )


def _path(stream: StreamSummary) -> str:
    """Sender → receiver."""
    remote = stream.remote or "?"
    if stream.direction == "sent":
        return f"{stream.local} → {remote}"
    return f"{remote} → {stream.local}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} %"


def _count(value: int | None) -> str:
    return "-" if value is None else str(value)


def stream_lines(streams: Sequence[StreamSummary], width: int) -> list[str]:
    """The streams as lines at most ``width`` wide (the narrow layout cuts the address line)."""
    if not streams:
        return []
    if width >= WIDE:
        lines = [_HEADER]
        for s in streams:
            lines.append(
                f"{_ARROWS[s.direction]:<11} {_ssrc(s):<10}  {_path(s):<45} {_codec(s):<11}"
                f" {s.packets:>8} {_count(s.lost):>6} {_percent(s.loss_percent):>7}"
                f" {_ms(s.jitter_ms):>9} {_ms(s.jitter_buffer_ms):>9}"
            )
        return lines
    lines = []
    for s in streams:
        first = f"{_ARROWS[s.direction]:<11} {_ssrc(s)}  {_codec(s)}  {_path(s)}"
        second = (
            f"{'':<11} packets {s.packets}  lost {_count(s.lost)} ({_percent(s.loss_percent)})"
            f"  jitter {_ms(s.jitter_ms)}"
        )
        if s.direction == "received":
            second += f"  buffer {_ms(s.jitter_buffer_ms)}"
        lines += [first[:width], second[:width]]
    return lines


class RtpStreamsView(Static):
    """The streams of one call; :meth:`show` replaces them (hidden while there are none)."""

    DEFAULT_CSS = """
    RtpStreamsView { height: auto; padding: 0 1; border-top: solid $primary; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id, markup=False)
        self.streams: list[StreamSummary] = []
        self.display = False

    def show(self, streams: Sequence[StreamSummary]) -> None:
        self.streams = list(streams)
        self.display = bool(self.streams)
        self._draw()

    def on_resize(self) -> None:
        self._draw()

    def _draw(self) -> None:
        width = max(20, (self.content_region.width or self.app.size.width) - 1)
        lines = stream_lines(self.streams, width)
        text = Text()
        for n, line in enumerate(lines):
            if n:
                text.append("\n")
            header = n == 0 and width >= WIDE
            text.append(line, style="bold" if header else "")
        self.update(text)
