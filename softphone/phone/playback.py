"""A WAV file (a call recording) played on the call device, one at a time."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import numpy.typing as npt

from softphone.media.resample import resample
from softphone.media.wav import WavError, read_wav
from softphone.phone.audio import AudioProvider
from softphone.phone.errors import PhoneError

__all__ = ["FilePlayback", "FilePort"]


class FilePlayback:
    """Plays files through ``provider``'s call engine; a new file stops the one playing."""

    def __init__(self, provider: AudioProvider) -> None:
        self._provider = provider
        self._playing: asyncio.Future[None] | None = None

    async def play(self, path: Path) -> None:
        """Returns when the file has played or :meth:`stop` stopped it. Raises PhoneError."""
        try:
            mono, rate = await asyncio.to_thread(read_wav, path)
        except WavError as exc:
            raise PhoneError(f"cannot play the recording: {exc}") from None
        self.stop()
        provider = self._provider
        engine = provider.engine_for_call(0)
        if engine.silent_because is not None:  # it would "play" into nothing: say why
            provider.release(engine)
            raise PhoneError(f"no sound device: {engine.silent_because}")
        samples = resample(mono, rate, engine.sample_rate).astype(np.float32, copy=False)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        port = FilePort(samples, done)
        self._playing = done
        engine.attach(port)
        try:
            await done
        except asyncio.CancelledError:
            if not done.cancelled():
                raise
        finally:
            engine.detach(port)
            provider.release(engine)
            if self._playing is done:
                self._playing = None

    def stop(self) -> None:
        if self._playing is not None and not self._playing.done():
            self._playing.cancel()
        self._playing = None


class FilePort:
    """Plays samples once into an engine, then resolves ``done``; captures nothing."""

    def __init__(self, samples: npt.NDArray[np.float32], done: asyncio.Future[None]) -> None:
        self._samples = samples
        self._at = 0
        self._done = done

    def capture(self, pcm: object, now: float) -> None:
        pass

    def render(self, samples: int, now: float) -> npt.NDArray[np.float32]:
        out = np.zeros(samples, dtype=np.float32)
        chunk = self._samples[self._at : self._at + samples]
        out[: len(chunk)] = chunk
        self._at += len(chunk)
        if self._at >= len(self._samples) and not self._done.done():
            self._done.set_result(None)
        return out
