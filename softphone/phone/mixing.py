"""A local three-way (or n-way) conference, mixed in the audio engine: :class:`Conference`.

Every call is a port on the engine (phone/audio.py) working at the engine's rate; each port
resamples to and from its own codec's rate and clock (G.711 at 8 kHz, Opus at 48 kHz, ...), so the
mixing here is plain addition of engine-rate arrays. In each pump tick the engine first renders
every port (what each far end says), hands the members' renders to :meth:`Conference.mix`, then
:meth:`Conference.capture` gives each member our microphone plus what the *other* members said
(never its own: a party does not hear itself back). The speaker gets the sum of all renders, as
without a conference.

The microphone and the renders of one tick need not have the same length (a sound card captures
and plays in its own blocks), so each member's "others" signal waits in a short queue until the
next microphone block takes it; the queue is bounded so that a stalled capture side cannot make
the parties hear each other ever later.

Pure: arrays in, calls on the members out; no clock but the ``now`` passed through.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

import numpy as np

__all__ = ["Conference", "ConferenceMember"]

Pcm = np.ndarray
MAX_LAG_MS = 200


class ConferenceMember(Protocol):
    """A call's port as a conference sees it (CallMedia fits)."""

    mixed: bool  # True while a conference feeds it: it records what the conference hears

    def capture(self, pcm: Pcm, now: float, *, others: Pcm | None = None) -> None:
        """Our microphone (silenced by the call's own mute) plus ``others``, to send."""

    def render(self, samples: int, now: float) -> Pcm: ...

    def hear(self, pcm: Pcm) -> None:
        """What we hear of the whole conference (for a recording of the call)."""


class Conference:
    """The members of one local conference at ``sample_rate`` (the engine's)."""

    def __init__(
        self,
        sample_rate: int,
        members: Iterable[ConferenceMember] = (),
        *,
        max_lag_ms: int = MAX_LAG_MS,
    ) -> None:
        self.sample_rate = sample_rate
        self._max_lag = sample_rate * max_lag_ms // 1000
        self._pending: dict[ConferenceMember, Pcm] = {}
        for member in members:
            self.add(member)

    @property
    def members(self) -> tuple[ConferenceMember, ...]:
        return tuple(self._pending)

    def __contains__(self, member: object) -> bool:
        return member in self._pending

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, member: ConferenceMember) -> None:
        if member not in self._pending:
            self._pending[member] = np.zeros(0, dtype=np.float32)
            member.mixed = True

    def remove(self, member: object) -> None:
        for known in self._pending:
            if known is member:
                del self._pending[known]
                known.mixed = False
                return

    def clear(self) -> None:
        for member in list(self._pending):
            self.remove(member)

    def mix(self, rendered: Mapping[object, Pcm]) -> None:
        """The members' renders of this tick (all the same length): queue for each member the
        sum of the others', and tell each what we hear (the sum of all)."""
        if not rendered:
            return
        blocks = {id(m): np.asarray(pcm, dtype=np.float32) for m, pcm in rendered.items()}
        length = len(next(iter(blocks.values())))
        heard = np.zeros(length, dtype=np.float32)
        for pcm in blocks.values():
            heard += pcm
        for member, queued in self._pending.items():
            # Summed without the member's own render (not subtracted): nothing of it leaks back.
            others = np.zeros(length, dtype=np.float32)
            for other, pcm in blocks.items():
                if other != id(member):
                    others += pcm
            queued = np.concatenate((queued, others)) if len(queued) else others
            if len(queued) > self._max_lag:
                queued = queued[len(queued) - self._max_lag :]
            self._pending[member] = queued
            member.hear(heard)

    def capture(self, mic: Pcm, now: float) -> None:
        """Our microphone block: each member sends it (per its own mute) plus the others."""
        count = len(mic)
        for member, queued in list(self._pending.items()):
            others, rest = queued[:count], queued[count:]
            if len(others) < count:
                others = np.concatenate((others, np.zeros(count - len(others), dtype=np.float32)))
            self._pending[member] = rest
            member.capture(mic, now, others=others)
