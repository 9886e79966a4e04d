"""The side pane's life cycle, as a table: one stream at a time.

::

    IDLE ─OPEN→ OPENING ─PLAYED→ PLAYING ─STOP→ CLOSING ─RUN_ENDED→ CLOSED ─OPEN→ OPENING ...
                   │ UNAUTHORIZED → LOGIN ─OPEN (with the login)→ OPENING
                   │ FAILED → FAILED ─OPEN→ OPENING

A new stream is OPEN only from a state in which no player runs (IDLE, LOGIN, FAILED, CLOSED):
the pane STOPs the player it has and waits for its run to end (TEARDOWN sent, its tasks and
decoder threads done) before it opens the next one, so two sessions never play into one pane
and a picture of the old stream never shows under the new title. A pair missing from
:data:`TRANSITIONS` is a bug of the pane (:class:`PaneStateError`).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum, auto
from typing import Final

__all__ = ["RUNNING", "TRANSITIONS", "PaneInput", "PaneState", "PaneStateError", "next_state"]


class PaneState(Enum):
    IDLE = auto()  # nothing opened yet
    OPENING = auto()  # a player runs; its PLAY is not answered yet
    PLAYING = auto()  # PLAY answered (reconnects and pauses are the player's own business)
    LOGIN = auto()  # the camera answered 401: credentials are asked for; nothing runs
    FAILED = auto()  # the player gave up; the reason is said in full; nothing runs
    CLOSING = auto()  # the player is being stopped: TEARDOWN, its tasks awaited
    CLOSED = auto()  # stopped, or the server ended the stream; nothing runs


class PaneInput(Enum):
    OPEN = auto()  # a stream to play (allowed only when nothing runs)
    PLAYED = auto()  # the player's PLAY was answered (again, after a reconnect)
    UNAUTHORIZED = auto()  # the player gave up on a 401
    FAILED = auto()  # the player gave up for another reason (or could not be made)
    STOP = auto()  # the stop key, another stream to open, the app quitting
    RUN_ENDED = auto()  # the player's run() has returned
    LOGIN_CANCELLED = auto()  # the credentials prompt was dismissed


class PaneStateError(Exception):
    """An input the pane's table has no transition for: a bug of the pane."""


S, In = PaneState, PaneInput
TRANSITIONS: Final[Mapping[tuple[PaneState, PaneInput], PaneState]] = {
    (S.IDLE, In.OPEN): S.OPENING,
    (S.IDLE, In.STOP): S.IDLE,
    (S.OPENING, In.PLAYED): S.PLAYING,
    (S.OPENING, In.UNAUTHORIZED): S.LOGIN,
    (S.OPENING, In.FAILED): S.FAILED,
    (S.OPENING, In.STOP): S.CLOSING,
    (S.OPENING, In.RUN_ENDED): S.CLOSED,  # the server ended it before anything played
    (S.PLAYING, In.PLAYED): S.PLAYING,
    (S.PLAYING, In.UNAUTHORIZED): S.LOGIN,
    (S.PLAYING, In.FAILED): S.FAILED,
    (S.PLAYING, In.STOP): S.CLOSING,
    (S.PLAYING, In.RUN_ENDED): S.CLOSED,  # the server ended the presentation
    (S.LOGIN, In.OPEN): S.OPENING,
    (S.LOGIN, In.LOGIN_CANCELLED): S.FAILED,
    (S.LOGIN, In.STOP): S.CLOSED,
    (S.LOGIN, In.RUN_ENDED): S.LOGIN,  # the refused player's run returns after its event
    (S.FAILED, In.OPEN): S.OPENING,
    (S.FAILED, In.STOP): S.CLOSED,
    (S.FAILED, In.RUN_ENDED): S.FAILED,
    # What the player says while it is being stopped changes nothing.
    (S.CLOSING, In.PLAYED): S.CLOSING,
    (S.CLOSING, In.UNAUTHORIZED): S.CLOSING,
    (S.CLOSING, In.FAILED): S.CLOSING,
    (S.CLOSING, In.STOP): S.CLOSING,
    (S.CLOSING, In.RUN_ENDED): S.CLOSED,
    (S.CLOSED, In.OPEN): S.OPENING,
    (S.CLOSED, In.STOP): S.CLOSED,
}

RUNNING: Final = frozenset({S.OPENING, S.PLAYING, S.CLOSING})  # a player's run() is going on


def next_state(state: PaneState, event: PaneInput) -> PaneState:
    """The state after ``event`` in ``state``; :class:`PaneStateError` for a pair not listed."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise PaneStateError(
            f"{event.name} is not allowed while the pane is {state.name}"
        ) from None
