"""Speex's echo canceller as a second engine for media/echo.py.

libspeexdsp's canceller is a different design from WebRTC's AEC3: an adaptive linear filter
(the multi-delay block frequency-domain filter, MDF) that models the echo path and subtracts
its estimate, then a preprocessor that suppresses the residual echo and the noise. AEC3
suppresses much harder: on ``softphone bench echo`` it removes more echo while only the far
end talks, but it takes the near end's speech down with the echo while both talk; speex keeps
more of the talker. The engine is picked by ``EchoCanceller(backend=...)``.

The library is reached through ctypes (Debian's ``libspeexdsp1``, which baresip also uses),
loaded when a canceller is made: a machine without it gets ``EchoError`` with the fix.

The canceller object here is what ``EchoCanceller`` drives (its ``Processor``): 10 ms int16
frames, the speaker's in ``process_reverse_stream`` and the microphone's in
``process_stream`` (cleaned in place). Speaker frames wait in a queue, one taken for each
microphone frame: what the engine hands the speaker ahead (its buffer) stays queued, so the
frame taken is the one the speaker plays while the microphone records. The filter
(``tail_ms`` long) covers the rest of the echo path's delay (the device's converters, the
air) and its reverberation. The device delay hint is not used: it counts the engine's buffer,
which the queue already accounts for, and holding the speaker's frames back any further than
the real delay would put the echo before its reference, where nothing can cancel it.

A longer filter converges more slowly: with 500 ms the bench's room (120 ms delay, RT60
0.3 s) took 6 s to reach 25 dB of ERLE, with 300 ms 3 s.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections import deque
from typing import Any, Final

SPEEX_MISSING: Final = "the speexdsp library is not installed: apt install libspeexdsp1"
DEFAULT_TAIL_MS: Final = 300  # the echo path's delay plus an office's reverberation
# Speaker frames kept waiting at most (1 s): far more than any speaker buffer; only a
# microphone that stopped delivering leaves more, and then the oldest go.
MAX_QUEUED_FRAMES: Final = 100

# speex/speex_echo.h and speex/speex_preprocess.h
_ECHO_SET_SAMPLING_RATE: Final = 24
_PP_SET_DENOISE: Final = 0
_PP_SET_AGC: Final = 2
_PP_SET_ECHO_STATE: Final = 24

_lib: ctypes.CDLL | None = None


class SpeexError(Exception):
    """libspeexdsp is missing or refused the settings."""


def _library() -> ctypes.CDLL:
    global _lib
    if _lib is not None:
        return _lib
    name = ctypes.util.find_library("speexdsp") or "libspeexdsp.so.1"
    try:
        lib = ctypes.CDLL(name)
    except OSError as exc:
        raise SpeexError(SPEEX_MISSING) from exc
    p, i = ctypes.c_void_p, ctypes.c_int
    for fn, args, res in (
        ("speex_echo_state_init", [i, i], p),
        ("speex_echo_state_destroy", [p], None),
        ("speex_echo_cancellation", [p, p, p, p], None),
        ("speex_echo_ctl", [p, i, p], i),
        ("speex_preprocess_state_init", [i, i], p),
        ("speex_preprocess_state_destroy", [p], None),
        ("speex_preprocess_ctl", [p, i, p], i),
        ("speex_preprocess_run", [p, p], i),
    ):
        try:
            function = getattr(lib, fn)
        except AttributeError as exc:
            raise SpeexError(f"the speexdsp library has no {fn}: too old?") from exc
        function.argtypes, function.restype = args, res
    _lib = lib
    return lib


def frame(data: bytearray, rate: int, samples: int) -> Any:
    """The frame the canceller works on: ``data``'s memory, as a C array of int16."""
    return (ctypes.c_int16 * samples).from_buffer(data)


class SpeexCanceller:
    """libspeexdsp's echo canceller and preprocessor (residual echo and noise suppression)
    on one mono stream of 10 ms frames."""

    def __init__(
        self,
        sample_rate: int,
        *,
        noise_suppression: bool = True,
        auto_gain: bool = False,
        tail_ms: int = DEFAULT_TAIL_MS,
    ) -> None:
        lib = _library()
        self.samples = sample_rate // 100
        self._lib = lib
        self._echo = lib.speex_echo_state_init(self.samples, sample_rate * tail_ms // 1000)
        self._pre = lib.speex_preprocess_state_init(self.samples, sample_rate)
        if not self._echo or not self._pre:
            self.close()
            raise SpeexError(f"speexdsp refused {sample_rate} Hz")
        rate = ctypes.c_int(sample_rate)
        lib.speex_echo_ctl(self._echo, _ECHO_SET_SAMPLING_RATE, ctypes.byref(rate))
        lib.speex_preprocess_ctl(self._pre, _PP_SET_ECHO_STATE, ctypes.c_void_p(self._echo))
        for request, on in ((_PP_SET_DENOISE, noise_suppression), (_PP_SET_AGC, auto_gain)):
            flag = ctypes.c_int(int(on))
            lib.speex_preprocess_ctl(self._pre, request, ctypes.byref(flag))
        self._queue: deque[ctypes.Array[ctypes.c_int16]] = deque(maxlen=MAX_QUEUED_FRAMES)
        self._silence = (ctypes.c_int16 * self.samples)()
        self._out = (ctypes.c_int16 * self.samples)()

    def process_reverse_stream(self, data: Any) -> None:
        """A speaker frame: kept (a copy) for the microphone frame recorded with it."""
        self._check(data)
        self._queue.append((ctypes.c_int16 * self.samples).from_buffer_copy(data))

    def process_stream(self, data: Any) -> None:
        """A microphone frame, cleaned in place. With no speaker frame waiting (the speaker
        is late, or silent), the filter sees silence as what was played."""
        self._check(data)
        played = self._queue.popleft() if self._queue else self._silence
        self._lib.speex_echo_cancellation(self._echo, data, played, self._out)
        self._lib.speex_preprocess_run(self._pre, self._out)
        ctypes.memmove(data, self._out, ctypes.sizeof(self._out))

    def set_stream_delay_ms(self, delay_ms: int) -> None:
        """Not needed here (see the module's docstring): the queue and the filter's tail
        find the delay."""

    def _check(self, data: Any) -> None:
        if ctypes.sizeof(data) != 2 * self.samples:
            raise SpeexError(f"a frame of {ctypes.sizeof(data) // 2} samples, not {self.samples}")

    def close(self) -> None:
        """Free the library's state (done when the canceller is collected, too)."""
        if getattr(self, "_pre", None):
            self._lib.speex_preprocess_state_destroy(self._pre)
        if getattr(self, "_echo", None):
            self._lib.speex_echo_state_destroy(self._echo)
        self._pre = self._echo = None

    def __del__(self) -> None:
        if getattr(self, "_lib", None) is not None:
            self.close()
