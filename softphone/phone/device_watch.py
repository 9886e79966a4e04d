"""A sound card that goes away under a call: the call goes on, and comes back to the card.

The engine calls :meth:`DeviceWatch.check` after every tick with the loop's time. When the
device's stream has stopped (``DeviceIO.stalled``: its JACK server shut down, its USB headset
was pulled), the engine goes on with a silent device paced by the loop clock, so the calls keep
sending RTP (silence) and stay up, and the user hears why once. Every ``RETRY_S`` the configured
device is opened again at the engine's rate; when it opens, the engine moves onto it and the
user hears that too.

Bounds: PortAudio 19.6's JACK host does not let go of a stream whose server has gone (its close
waits up to 10 minutes, and re-initialising PortAudio closes it again), so after a JACK server
stops the lost stream is left to close on its own thread and PortAudio is not re-initialised
while it does: a device PortAudio already knows can be used, a restarted JACK server cannot,
and the notice says to restart softphone for it. An ALSA card that comes back closes normally,
and PortAudio is re-initialised to find it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Final, Protocol

from softphone.media.device import AudioDeviceError, AudioIO, NullIO

__all__ = ["RETRY_S", "DeviceWatch"]

logger = logging.getLogger(__name__)

# How often the stream's progress is looked at (the engine's timer ticks every 5 to 50 ms).
CHECK_S: Final = 0.2
RETRY_S: Final = 1.0  # how often the lost device is tried again


class WatchedEngine(Protocol):
    io: AudioIO
    sample_rate: int

    def replace_io(self, io: AudioIO, *, silent_because: str | None = None) -> AudioIO: ...


class LosableIO(Protocol):
    def stalled(self, now: float) -> str | None: ...

    def abandon(self) -> None: ...


class DeviceWatch:
    """Moves ``engine`` off a lost device and back onto ``reopen(rate)`` when it opens again.

    ``reopen`` raises ``AudioDeviceError`` while the device is not there; ``say`` tells the
    user (a notice), once per loss, once per return, and once for the first failed retry."""

    def __init__(
        self,
        engine: WatchedEngine,
        reopen: Callable[[int], AudioIO],
        say: Callable[[str], None],
    ) -> None:
        self._engine = engine
        self._reopen = reopen
        self._say = say
        self._next_check = 0.0
        self._lost_at: float | None = None
        self._next_try = 0.0
        self._said_waiting = False
        self.losses = 0
        self.returns = 0

    @property
    def lost(self) -> bool:
        return self._lost_at is not None

    def check(self, now: float) -> None:
        if now < self._next_check:
            return
        self._next_check = now + CHECK_S
        if self._lost_at is None:
            self._look(now)
        elif now >= self._next_try:
            self._next_try = now + RETRY_S
            self._retry(now)

    def _look(self, now: float) -> None:
        io = self._engine.io
        stalled = getattr(io, "stalled", None)
        if stalled is None:
            return  # a null or file device never goes away
        why = stalled(now)
        if why is None:
            return
        losable: LosableIO = io  # type: ignore[assignment]
        losable.abandon()
        rate = self._engine.sample_rate
        self._engine.replace_io(NullIO(rate), silent_because=f"the audio device went away: {why}")
        self._lost_at, self._next_try, self._said_waiting = now, now + RETRY_S, False
        self.losses += 1
        logger.warning("audio device lost: %s", why)
        self._say(
            f"audio device lost ({why}): calls go on without sound; "
            f"trying it again every {RETRY_S:.0f} s"
        )

    def _retry(self, now: float) -> None:
        try:
            io = self._reopen(self._engine.sample_rate)
        except AudioDeviceError as exc:
            if not self._said_waiting:
                self._said_waiting = True
                self._say(f"audio device still missing: {exc}")
            return
        try:
            self._engine.replace_io(io).close()  # the silent stand-in
        except AudioDeviceError as exc:  # it opened but would not start
            io.close()
            if not self._said_waiting:
                self._said_waiting = True
                self._say(f"audio device still missing: {exc}")
            return
        away = now - self._lost_at if self._lost_at is not None else 0.0
        self._lost_at = None
        self.returns += 1
        self._say(f"audio device back after {away:.1f} s")
