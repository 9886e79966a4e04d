"""The local conference as the phone sees it: :class:`LocalConference` joins calls, splits them
and notices when one leaves.

The mixing itself is phone/mixing.py, in the audio engine all the calls share: each party hears
the others and us, and we hear all of them. Like a desk phone's conference key:

- ``join(a, b)``: both calls must be up and on the same engine (a sound card, or the headless
  engine; per-call WAV files are separate engines and cannot be mixed). A held call is resumed
  (a re-INVITE back to sendrecv, RFC 3264 §8.4) so its party hears the others. Joining a call
  to a conference that exists adds it.
- ``split(keep)``: the conference ends; ``keep`` stays active and the other calls are put on
  hold, back to ordinary calls.
- A party that hangs up (or is put on hold) leaves; with one call left there is no conference,
  just that call with us.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from softphone.phone import events as pe
from softphone.phone.audio import AudioEngine
from softphone.phone.call_info import CallInfo
from softphone.phone.errors import PhoneError
from softphone.phone.mixing import Conference

__all__ = ["LocalConference"]

_UP = ("established", "held")


class LocalConference:
    """The phone's one local conference (none, or a set of calls on one engine)."""

    def __init__(
        self,
        *,
        calls: Callable[[], Iterable[CallInfo]],
        emit: Callable[[pe.PhoneEvent], None],
    ) -> None:
        self._calls = calls
        self._emit = emit
        self._engine: AudioEngine | None = None
        self._members: list[CallInfo] = []

    @property
    def call_ids(self) -> list[str]:
        return [info.call_id for info in self._members]

    def mute(self, info: CallInfo, muted: bool) -> None:
        """Mute (or unmute) our microphone in ``info``, or, when it is in the conference, in
        every call of it: we are silent to all, the parties still hear each other (mixing.py)."""
        if info.state == "ended":
            raise PhoneError("the call has ended")
        for leg in list(self._members) if info in self._members else [info]:
            if leg.audio is not None:
                leg.audio.muted = muted
            if leg.muted != muted:
                leg.muted = muted
                self._emit(pe.MuteChanged(call_id=leg.call_id, muted=muted))

    async def join(
        self,
        info: CallInfo,
        other: CallInfo,
        resume: Callable[[str], Awaitable[None]],
    ) -> None:
        """Mix ``info`` and ``other`` (and any call already conferenced with either)."""
        if info is other:
            raise PhoneError("a conference needs two different calls")
        for leg in (info, other):
            if leg.state not in _UP:
                raise PhoneError(f"the call with {leg.remote} is not established ({leg.state})")
            if leg.audio is None or leg.engine is None:
                raise PhoneError(f"the call with {leg.remote} has no audio to mix")
        engine = info.engine
        if other.engine is not engine or (self._engine is not None and self._engine is not engine):
            raise PhoneError(
                "these calls play on separate audio (per-call files): they cannot be mixed"
            )
        assert engine is not None
        if engine.conference is None:
            engine.conference = Conference(engine.sample_rate)
        self._engine = engine
        for leg in (info, other):
            if leg not in self._members:
                self._members.append(leg)
                assert leg.audio is not None
                engine.conference.add(leg.audio)
        self._changed()
        for leg in (info, other):
            if leg.local_hold:
                await resume(leg.call_id)

    async def split(self, keep: CallInfo, hold: Callable[[str], Awaitable[None]]) -> None:
        """End the conference: ``keep`` stays active, the other calls go on hold."""
        if keep not in self._members:
            raise PhoneError("this call is not in a conference")
        others = [leg for leg in self._members if leg is not keep]
        self._dissolve()
        for leg in others:
            if leg.state in _UP and not leg.local_hold:
                await hold(leg.call_id)

    def leave(self, info: CallInfo) -> None:
        """``info`` ended, lost its audio or went on hold: it leaves; one call alone is no
        conference."""
        if info not in self._members:
            return
        self._members.remove(info)
        if self._engine is not None and self._engine.conference is not None:
            self._engine.conference.remove(info.audio)
        if len(self._members) < 2:
            self._dissolve()
        else:
            self._changed()

    def _dissolve(self) -> None:
        if self._engine is not None and self._engine.conference is not None:
            self._engine.conference.clear()
            self._engine.conference = None
        self._engine = None
        self._members = []
        self._changed()

    def _changed(self) -> None:
        ids = self.call_ids
        for info in self._calls():
            info.conference = info.call_id in ids
        self._emit(pe.ConferenceChanged(call_ids=ids))
