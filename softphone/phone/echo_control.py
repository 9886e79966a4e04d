"""Echo cancellation on the sound card: on by default, off for files, switched at run time.

A sound card's speaker is heard by its microphone; the far end would hear itself back a few
hundred milliseconds late. ``DeviceAudio`` (phone/audio.py) keeps one ``EchoControl``: when
its engine opens on a real device and echo cancellation is wanted (the config's
``echo_cancellation``, true by default), the engine gets an ``EchoCanceller``
(media/echo.py: speex's echo canceller and noise suppressor, or WebRTC's where libspeexdsp
is missing) between the audio it plays and the microphone. ``--play``/``--record`` (FileAudio), the headless phone
(NullAudio) and a silent fallback engine have no speaker to hear: nothing is done there.

When the canceller cannot run (neither libspeexdsp nor the livekit package loads), the phone says so
once (``on_problem``: a Notice) and goes on without it; switching it on by hand then raises
PhoneError with the same reason. Never a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from softphone.media.echo import EchoCanceller, EchoError
from softphone.phone.errors import PhoneError

if TYPE_CHECKING:
    from softphone.phone.audio import AudioEngine, AudioProvider

logger = logging.getLogger(__name__)

__all__ = ["EchoControl", "echo_enabled", "switch_echo"]

NOT_A_SOUND_CARD = "echo cancellation is for a sound card; this phone plays and records files"


def device_delay_ms(engine: AudioEngine) -> int | None:
    """What the sound card adds between playing and hearing: PortAudio's reported input and
    output latency plus the speaker buffer the engine keeps full (None when unknown)."""
    latency = getattr(engine.io, "latency_s", None)
    buffered = getattr(engine.io, "target", None)
    if latency is None:
        return None
    try:
        seconds = float(latency[0]) + float(latency[1])
    except (TypeError, ValueError, IndexError):
        return None
    if isinstance(buffered, int):
        seconds += buffered / engine.sample_rate
    return round(1000 * seconds)


class EchoControl:
    """Whether the sound card's microphone goes through the echo canceller, and putting it
    there (or taking it away) on the device engine."""

    def __init__(
        self,
        wanted: bool,
        on_problem: Callable[[str], None],
        *,
        make: Callable[..., EchoCanceller] = EchoCanceller,
    ) -> None:
        self._wanted = wanted
        self._on_problem = on_problem
        self._make = make
        self._engine: AudioEngine | None = None

    @property
    def on(self) -> bool:
        return self._wanted

    def attach(self, engine: AudioEngine) -> None:
        """The sound card's engine is open: give it a canceller now if one is wanted. A
        failure is said once (``on_problem``) and echo cancellation stays off."""
        self._engine = engine
        if not self._wanted:
            return
        try:
            self._start(engine)
        except EchoError as exc:
            self._wanted = False
            self._on_problem(f"echo cancellation is off: {exc}")

    def set(self, on: bool) -> None:
        """Switch it on or off now (for the calls up too); EchoError when it cannot run."""
        engine = self._engine
        if not on:
            self._wanted = False
            if engine is not None:
                engine.echo = None
            return
        if engine is not None:
            if engine.echo is None or not engine.echo.active:
                self._start(engine)
        else:
            # No call yet: try it now, so that the switch says at once when it cannot work.
            self._make(48000, processor=None)
        self._wanted = True

    def _start(self, engine: AudioEngine) -> None:
        engine.echo = self._make(
            engine.sample_rate, delay_ms=device_delay_ms(engine), on_failure=self._failed
        )

    def _failed(self, reason: str) -> None:
        """The canceller broke in a call: audio goes on untouched, said once."""
        self._wanted = False
        if self._engine is not None:
            self._engine.echo = None
        self._on_problem(reason)


def echo_enabled(provider: AudioProvider) -> bool:
    """Echo cancellation is on for ``provider`` (only a sound card has it)."""
    control = getattr(provider, "echo", None)
    return isinstance(control, EchoControl) and control.on


def switch_echo(provider: AudioProvider, on: bool) -> None:
    """Echo cancellation on or off for the sound card; PhoneError (with the reason) when it
    cannot be turned on: no sound card, or the canceller cannot run here."""
    control = getattr(provider, "echo", None)
    if not isinstance(control, EchoControl):
        if on:
            raise PhoneError(NOT_A_SOUND_CARD)
        return
    try:
        control.set(on)
    except EchoError as exc:
        raise PhoneError(f"echo cancellation cannot be turned on: {exc}") from None
