"""Whether the far end's picture is good, as a call's video stream decodes it (pure: what the
decoder did and ``now`` in; whether to show a picture, and changes to report, out).

A broken stream (lost or truncated partitions, a frame of the wrong size, no key frame) must
never put garbage or a blank on the screen: the last good picture stays, the receiver asks for
a key frame (rtp/video_receiver.py, PLI at most every 0.5 s), and the front ends get a note
while the picture is broken (a change out of :meth:`PictureHealth.changes`).

Once the decoder failed, the pictures it still makes are predicted from broken references
(FFmpeg does not always flag them): they are withheld until a key frame decodes, or until
``max_freeze_s`` went by without one (a peer that never sends one: a moving picture beats a
frozen call). Before the first picture, units that cannot be decoded (no key frame yet) are
normal for a moment; after ``stall_s`` of them the picture counts as broken too.

States, inputs and the table below: every (state, input) pair has its entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, auto
from typing import Final

__all__ = ["TRANSITIONS", "PictureChange", "PictureHealth", "PictureInput", "PictureState"]

STALL_S: Final = 1.0
MAX_FREEZE_S: Final = 3.0


class PictureState(Enum):
    WAITING = auto()  # no picture yet
    GOOD = auto()  # pictures are shown as they come
    BROKEN = auto()  # the last good picture is held until a key frame


class PictureInput(Enum):
    KEY_PICTURE = auto()  # a picture decoded from a key frame
    PICTURE = auto()  # a picture decoded from an inter frame
    LATE_PICTURE = auto()  # an inter frame's picture after max_freeze_s without a key frame
    FAILED = auto()  # the decoder rejected a unit, or flagged or refused its picture
    UNUSABLE = auto()  # units that cannot be decoded yet (waiting for a key frame)
    STALLED = auto()  # UNUSABLE for stall_s before any picture


TRANSITIONS: Final[dict[tuple[PictureState, PictureInput], PictureState]] = {
    (PictureState.WAITING, PictureInput.KEY_PICTURE): PictureState.GOOD,
    (PictureState.WAITING, PictureInput.PICTURE): PictureState.GOOD,
    (PictureState.WAITING, PictureInput.LATE_PICTURE): PictureState.GOOD,
    (PictureState.WAITING, PictureInput.FAILED): PictureState.BROKEN,
    (PictureState.WAITING, PictureInput.UNUSABLE): PictureState.WAITING,
    (PictureState.WAITING, PictureInput.STALLED): PictureState.BROKEN,
    (PictureState.GOOD, PictureInput.KEY_PICTURE): PictureState.GOOD,
    (PictureState.GOOD, PictureInput.PICTURE): PictureState.GOOD,
    (PictureState.GOOD, PictureInput.LATE_PICTURE): PictureState.GOOD,
    (PictureState.GOOD, PictureInput.FAILED): PictureState.BROKEN,
    (PictureState.GOOD, PictureInput.UNUSABLE): PictureState.BROKEN,
    (PictureState.GOOD, PictureInput.STALLED): PictureState.BROKEN,
    (PictureState.BROKEN, PictureInput.KEY_PICTURE): PictureState.GOOD,
    (PictureState.BROKEN, PictureInput.PICTURE): PictureState.BROKEN,  # withheld
    (PictureState.BROKEN, PictureInput.LATE_PICTURE): PictureState.GOOD,
    (PictureState.BROKEN, PictureInput.FAILED): PictureState.BROKEN,
    (PictureState.BROKEN, PictureInput.UNUSABLE): PictureState.BROKEN,
    (PictureState.BROKEN, PictureInput.STALLED): PictureState.BROKEN,
}


@dataclass(frozen=True, slots=True)
class PictureChange:
    """The picture broke (``broken``, with ``reason``) or is good again."""

    broken: bool
    reason: str


class PictureHealth:
    """One received stream's picture state (see the module docstring). Counters: ``withheld``
    pictures not shown because they came from broken references."""

    def __init__(self, *, stall_s: float = STALL_S, max_freeze_s: float = MAX_FREEZE_S) -> None:
        self.state = PictureState.WAITING
        self.reason = ""
        self._stall_s = stall_s
        self._max_freeze_s = max_freeze_s
        self._unusable_since: float | None = None
        self._broken_since: float | None = None
        self._changes: list[PictureChange] = []
        self.withheld = 0

    def picture(self, now: float, *, keyframe: bool) -> bool:
        """A picture decoded from a key frame or not: True when it may be shown."""
        if keyframe:
            event = PictureInput.KEY_PICTURE
        elif self._broken_since is not None and now - self._broken_since >= self._max_freeze_s:
            event = PictureInput.LATE_PICTURE
        else:
            event = PictureInput.PICTURE
        self._apply(event, now, "")
        shown = self.state is PictureState.GOOD
        self.withheld += not shown
        return shown

    def failed(self, now: float, reason: str) -> None:
        """The decoder rejected a unit (or its picture was flagged corrupt or refused)."""
        self._apply(PictureInput.FAILED, now, reason)

    def unusable(self, now: float) -> None:
        """Units come that cannot be decoded: the depacketiser or decoder waits for a key frame."""
        if self._unusable_since is None:
            self._unusable_since = now
        stalled = now - self._unusable_since >= self._stall_s
        event = PictureInput.STALLED if stalled else PictureInput.UNUSABLE
        self._apply(event, now, "no key frame yet")

    def changes(self) -> list[PictureChange]:
        """What changed since the last call (drained)."""
        out, self._changes = self._changes, []
        return out

    def _apply(self, event: PictureInput, now: float, reason: str) -> None:
        before = self.state
        self.state = TRANSITIONS[(before, event)]
        if event in (PictureInput.KEY_PICTURE, PictureInput.PICTURE, PictureInput.LATE_PICTURE):
            self._unusable_since = None
        if self.state is PictureState.BROKEN and before is not PictureState.BROKEN:
            self._broken_since = now
            self.reason = reason
            self._changes.append(PictureChange(broken=True, reason=reason))
        elif before is PictureState.BROKEN and self.state is not PictureState.BROKEN:
            self._broken_since = None
            self.reason = ""
            self._changes.append(PictureChange(broken=False, reason="the picture is back"))
