"""A single-producer / single-consumer float32 ring buffer for the audio callback.

The PortAudio callback and the event-loop pump exchange audio through two of these (speaker and
microphone). Neither side ever allocates a buffer, takes a lock or raises on the data path:

- the storage is preallocated once;
- ``write()`` copies from the caller's array into the ring with at most two ``np.copyto`` calls
  (the wrap-around splits the copy), ``read_into()`` copies into a caller-provided array;
- each side publishes progress by bumping its own monotonically increasing counter (``_written``
  by the producer, ``_read`` by the consumer). Under the GIL an attribute store is atomic, and
  each counter has exactly one writer, so no lock is needed: the consumer sees either the old or
  the new fill level, never a torn one, and data is copied before the counter that publishes it.

A write that does not fit is truncated (the newest samples are dropped) and counted as an
overrun; a read that asks for more than is buffered gets the rest zero-filled and counts an
underrun (only once the ring has been written to: a ring not yet started is not "running dry").
"""

from __future__ import annotations

from typing import TypeAlias

import numpy as np
import numpy.typing as npt

Pcm: TypeAlias = npt.NDArray[np.float32]


class Ring:
    """Preallocated SPSC ring of float32 samples (mono)."""

    __slots__ = (
        "_buf",
        "_read",
        "_written",
        "capacity",
        "dropped_samples",
        "missing_samples",
        "overruns",
        "underruns",
    )

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError(f"ring capacity must be positive, not {capacity}")
        self.capacity = capacity
        self._buf: Pcm = np.zeros(capacity, dtype=np.float32)
        self._written = 0  # total samples ever written (producer-owned)
        self._read = 0  # total samples ever read (consumer-owned)
        self.overruns = 0  # writes that did not fit (producer-owned)
        self.dropped_samples = 0
        self.underruns = 0  # reads that found too little (consumer-owned)
        self.missing_samples = 0

    def available(self) -> int:
        """Samples buffered and ready to read."""
        return self._written - self._read

    def space(self) -> int:
        """Samples that can be written without an overrun."""
        return self.capacity - (self._written - self._read)

    @property
    def total_written(self) -> int:
        return self._written

    @property
    def total_read(self) -> int:
        return self._read

    def write(self, pcm: npt.NDArray[np.floating]) -> int:
        """Producer side: append as much of ``pcm`` (1-D) as fits; return how many were taken."""
        count = int(pcm.shape[0])
        free = self.capacity - (self._written - self._read)
        if count > free:
            self.overruns += 1
            self.dropped_samples += count - free
            count = free
        if count == 0:
            return 0
        start = self._written % self.capacity
        first = min(count, self.capacity - start)
        np.copyto(self._buf[start : start + first], pcm[:first], casting="same_kind")
        if first < count:
            np.copyto(self._buf[: count - first], pcm[first:count], casting="same_kind")
        self._written += count  # publish only after the data is in place
        return count

    def read_into(self, out: Pcm) -> int:
        """Consumer side: fill ``out`` (1-D float32); zero-fill any shortfall.

        Returns how many samples came from the ring. A shortfall counts as an underrun once the
        ring has ever been written to.
        """
        wanted = int(out.shape[0])
        count = min(wanted, self._written - self._read)
        if count > 0:
            start = self._read % self.capacity
            first = min(count, self.capacity - start)
            np.copyto(out[:first], self._buf[start : start + first])
            if first < count:
                np.copyto(out[first:count], self._buf[: count - first])
            self._read += count  # release the space only after copying out
        if count < wanted:
            out[count:] = 0.0
            if self._written > 0:
                self.underruns += 1
                self.missing_samples += wanted - count
        return count

    def read_available(self) -> Pcm:
        """Consumer side, off the audio thread: everything buffered, as a new array."""
        out: Pcm = np.empty(self._written - self._read, dtype=np.float32)
        self.read_into(out)
        return out
