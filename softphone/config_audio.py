"""The sound card's audio processing in the config file: ``echo_cancellation`` (global).

    echo_cancellation = true          # the default: an echo canceller (speex's, else WebRTC's)
                                      # and noise suppressor on the sound card's microphone

Only a sound card has it: ``--play``/``--record`` files and the headless phone never process
their audio. The TUI's ``e`` key switches it for the calls up and saves the choice here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

DEFAULT_ECHO_CANCELLATION: Final = True
AUDIO_KEYS: Final = frozenset({"echo_cancellation"})


class AudioOptionError(ValueError):
    """An audio processing option the config cannot take; the text says why."""


def parse_audio_options(raw: Mapping[str, Any]) -> bool:
    """``echo_cancellation`` of the config's top level, the default filled in."""
    value = raw.get("echo_cancellation", DEFAULT_ECHO_CANCELLATION)
    if not isinstance(value, bool):
        raise AudioOptionError(f"echo_cancellation must be true or false (not {value!r})")
    return value


def audio_options_to_dict(echo_cancellation: bool) -> dict[str, Any]:
    """What the config file needs to say: nothing for the default."""
    if echo_cancellation == DEFAULT_ECHO_CANCELLATION:
        return {}
    return {"echo_cancellation": echo_cancellation}
