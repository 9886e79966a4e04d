"""PJSIP's adaptive jitter buffer (``pjmedia_jbuf``) replayed on the jitter bench's traces.

The library is PJSIP 2.15 as the ``pjsua2-python`` wheel ships it: its extension module
(``pjsua2/_pjsua2*.so``) exports the C API of pjlib and pjmedia, so ctypes drives the real
``jbuf.c`` in-process (nothing of it is rewritten here). The Python ``pjsua2`` module itself is
never imported: only the shared object is loaded.

Set-up, as pjmedia's audio stream (``pjmedia_stream_create`` in stream.c) does it with pjsua's
defaults (``jb_init``/``jb_min_pre``/``jb_max_pre``/``jb_max`` all -1, ``jb_discard_algo``
``PJMEDIA_JB_DISCARD_PROGRESSIVE``) and a 20 ms frame:

- capacity ``jb_max`` = 500 ms / 20 ms = 25 frames; ``pjmedia_jbuf_create(pool, name,
  frame_size, 20, 25)``;
- ``pjmedia_jbuf_set_adaptive(jb, init=0, min_pre=1, max_pre=25*4/5=20)``: init 0 means no
  prefetch (a frame is handed out as soon as there is one);
- ``pjmedia_jbuf_set_discard(jb, PJMEDIA_JB_DISCARD_PROGRESSIVE)``.

Replay (causal, like :func:`softphone.bench.jitter.run`):

- put: each packet at its arrival time, in arrival order (reordering and loss as in the trace),
  as stream.c's ``on_rx_rtp`` does: ``pjmedia_jbuf_put_frame3(jb, payload, size, 0, ext_seq,
  ts, &discarded)`` with ``ext_seq = ts / samples_per_frame`` (the frame's RTP timestamp
  divided by 960 at 48 kHz), and ``ts`` the RTP timestamp. Timestamps start just below the
  32-bit wrap, as in our replay, so pjmedia meets the wrap as it would in a call (``ext_seq``
  jumps back, which jbuf treats as a sequence restart: it renumbers the frames it holds to
  sit just before the new one, so a hole right before the wrap with nothing buffered ahead of
  it closes up; on the bench's traces the wrap moves PJSIP's figures by at most 0.02 points).
  The RTP-level checks that come before the jitter buffer in stream.c
  (``pjmedia_rtp_session_update``'s probation of the first packets) are not replayed: every
  arrived packet reaches the buffer.
- get: once per 20 ms tick of the receiver clock (the sound card's clock driving the conference
  bridge), ``pjmedia_jbuf_get_frame3``, after the puts of every packet that arrived by then.
  :func:`run` averages the figures over four tick phases (PHASES_MS).
  Payloads are opaque to the buffer, so they are dummy bytes (no codec runs).

Figures, from what get_frame3 actually returned:

- NORMAL frame: the packet whose RTP timestamp it carries is played at that tick;
- MISSING frame: its slot (the ``seq`` returned) is played as concealment at that tick (a lost
  packet, or the frame after a discarded one: jbuf plays PLC there to smooth the cut);
- ZERO_PREFETCH / ZERO_EMPTY: nothing was there; 20 ms of silence/PLC inserted, which is how
  this buffer grows its delay;
- mouth-to-ear: tick time minus send time over every played slot (NORMAL and MISSING), the
  same definition as ours (our concealed slots count too); a lost packet whose turn came while
  the buffer was empty (ZERO_EMPTY, no slot number) has no play time and is left out;
- late loss: packets that arrived but never came out as NORMAL (rejected at put as too late,
  removed by the progressive discard or by overflow, or consumed as MISSING after a discard),
  over the packets that arrived;
- discard: packets accepted at put that never came out at all (neither NORMAL nor MISSING
  slot): whole frames dropped to cut delay. PJSIP has no time-stretching; a discarded 20 ms
  frame is its way to shorten the delay, so ``discarded_pct`` (discarded ms over the trace's
  duration) stands where our stretched % does.
"""

from __future__ import annotations

import ctypes
import importlib.util
import math
import threading
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]

PACKAGE: Final = "pjsua2-python"
FRAME_MS: Final = 20
JB_MAX_FRAMES: Final = 500 // FRAME_MS
"""stream.c: ``jb_max = 500 / frm_ptime`` when pjsua leaves ``jb_max`` at -1."""
JB_INIT: Final = 0
JB_MIN_PRE: Final = 1
JB_MAX_PRE: Final = JB_MAX_FRAMES * 4 // 5
DISCARD_PROGRESSIVE: Final = 2
"""``PJMEDIA_JB_DISCARD_PROGRESSIVE`` (NONE = 0, STATIC = 1, PROGRESSIVE = 2 in jbuf.h)."""
FRAME_BYTES: Final = 1500
"""The buffer's slot size (PJMEDIA_MAX_MTU); our dummy payloads are far smaller."""
PAYLOAD: Final = bytes(80)
FIRST_TIMESTAMP: Final = (1 << 32) - 48_000 * 3
"""As softphone/bench/jitter.py: the RTP timestamps cross the 32-bit wrap in every run."""
DRAIN_MS: Final = 1000.0
PHASES_MS: Final = (0.0, 5.0, 10.0, 15.0)
"""Where PJSIP's 20 ms get ticks fall against the sender's 20 ms grid. A call's sound card has
an arbitrary phase; on a steady delay it decides up to 20 ms of PJSIP's wait (ours pulls every
5 ms), so the report averages four phases rather than pick one."""


class FrameType(IntEnum):
    """``pjmedia_jb_frame_type`` (jbuf.h)."""

    MISSING = 0
    NORMAL = 1
    ZERO_PREFETCH = 2
    ZERO_EMPTY = 3


class PjsipUnavailable(RuntimeError):
    """PJSIP's library cannot be loaded (the package is not installed, or lacks the API)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PjsipLog:
    """One replay: per packet index, and counts of what get_frame3 returned."""

    play_ms: F64  # tick at which the packet's slot was played (NaN: never)
    from_packet: npt.NDArray[np.bool_]  # played from its own packet (a NORMAL frame)
    rejected: npt.NDArray[np.bool_]  # put_frame3 said discarded (too late or duplicate)
    discarded: npt.NDArray[np.bool_]  # accepted, then dropped without being played at all
    counts: dict[FrameType, int]  # frames returned by type, from the first to the last NORMAL


@dataclass(frozen=True, slots=True, kw_only=True)
class PjsipScore:
    """The bench's figures for PJSIP (see the module docstring)."""

    late_loss_pct: float
    mean_ms: float
    p95_ms: float
    concealed_ms: float  # MISSING + ZERO frames between the first and the last NORMAL one
    discarded_pct: float  # discarded frames' ms over the trace's duration
    rejected: int
    phase_means_ms: tuple[float, ...] = ()  # run(): the mean at each phase of PHASES_MS


class _Api:
    """The C functions, typed. One per process: pj_init and the caching pool are global."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        c = ctypes
        self.lib = lib
        self.pj_log_set_level = self._fn("pj_log_set_level", None, [c.c_int])
        self.pj_init = self._fn("pj_init", c.c_int, [])
        self.pj_thread_is_registered = self._fn("pj_thread_is_registered", c.c_int, [])
        self.pj_thread_register = self._fn(
            "pj_thread_register", c.c_int, [c.c_char_p, c.c_void_p, c.POINTER(c.c_void_p)]
        )
        self.pj_caching_pool_init = self._fn(
            "pj_caching_pool_init", None, [c.c_void_p, c.c_void_p, c.c_size_t]
        )
        self.pj_pool_create = self._fn(
            "pj_pool_create",
            c.c_void_p,
            [c.c_void_p, c.c_char_p, c.c_size_t, c.c_size_t, c.c_void_p],
        )
        self.pj_pool_release = self._fn("pj_pool_release", None, [c.c_void_p])
        self.create = self._fn(
            "pjmedia_jbuf_create",
            c.c_int,
            [c.c_void_p, c.c_void_p, c.c_uint, c.c_uint, c.c_uint, c.POINTER(c.c_void_p)],
        )
        self.set_adaptive = self._fn(
            "pjmedia_jbuf_set_adaptive", c.c_int, [c.c_void_p, c.c_uint, c.c_uint, c.c_uint]
        )
        self.set_discard = self._fn("pjmedia_jbuf_set_discard", c.c_int, [c.c_void_p, c.c_int])
        self.put_frame3 = self._fn(
            "pjmedia_jbuf_put_frame3",
            None,
            [
                c.c_void_p,
                c.c_char_p,
                c.c_size_t,
                c.c_uint32,
                c.c_int,
                c.c_uint32,
                c.POINTER(c.c_int),
            ],
        )
        self.get_frame3 = self._fn(
            "pjmedia_jbuf_get_frame3",
            None,
            [
                c.c_void_p,
                c.c_void_p,
                c.POINTER(c.c_size_t),
                c.POINTER(c.c_char),
                c.POINTER(c.c_uint32),
                c.POINTER(c.c_uint32),
                c.POINTER(c.c_int),
            ],
        )
        self.destroy = self._fn("pjmedia_jbuf_destroy", c.c_int, [c.c_void_p])
        # pj_caching_pool is a few KB (its first member is the pj_pool_factory); a generous
        # buffer that lives as long as the process holds it.
        self.caching_pool = ctypes.create_string_buffer(64 * 1024)
        self.pj_log_set_level(0)  # jbuf.c traces at level 5 on every update
        status = self.pj_init()
        if status != 0:
            raise PjsipUnavailable(f"pj_init failed with status {status}")
        self.pj_caching_pool_init(ctypes.addressof(self.caching_pool), None, 0)
        self._threads = threading.local()

    def _fn(self, name: str, restype: object, argtypes: list[object]) -> Any:
        try:
            fn = getattr(self.lib, name)
        except AttributeError as exc:
            raise PjsipUnavailable(f"{self.lib._name} does not export {name}") from exc
        fn.restype = restype
        fn.argtypes = argtypes
        return fn

    def register_thread(self) -> None:
        """pjlib refuses calls from threads it does not know; introduce this one once."""
        if self.pj_thread_is_registered():
            return
        desc = ctypes.create_string_buffer(64 * ctypes.sizeof(ctypes.c_long))
        handle = ctypes.c_void_p()
        status = self.pj_thread_register(b"bench", desc, ctypes.byref(handle))
        if status != 0:
            raise PjsipUnavailable(f"pj_thread_register failed with status {status}")
        self._threads.desc = desc  # pjlib keeps a pointer into it for the thread's life


_api: _Api | None = None
_api_lock = threading.Lock()


def library_path() -> Path:
    """The extension module of the ``pjsua2-python`` wheel (found without importing it)."""
    spec = importlib.util.find_spec("pjsua2")
    if spec is None or not spec.submodule_search_locations:
        raise PjsipUnavailable(
            f"PJSIP's jitter buffer needs the {PACKAGE} package "
            f"(pip install '{PACKAGE}'; `make test` installs it)"
        )
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).glob("_pjsua2*.so"))
        if found:
            return found[0]
    raise PjsipUnavailable(f"{PACKAGE} is installed but has no _pjsua2 shared library")


def api() -> _Api:
    """The loaded library (loaded and initialised once per process)."""
    global _api
    with _api_lock:
        if _api is None:
            path = library_path()
            try:
                lib = ctypes.CDLL(str(path))
            except OSError as exc:
                raise PjsipUnavailable(f"cannot load {path}: {exc}") from exc
            _api = _Api(lib)
        _api.register_thread()
        return _api


def available() -> str | None:
    """None if PJSIP's jitter buffer can run here, otherwise why not."""
    try:
        api()
    except PjsipUnavailable as exc:
        return str(exc)
    return None


class JitterBuffer:
    """One ``pjmedia_jbuf`` with pjsua's settings; call :meth:`close` when done."""

    def __init__(self, *, frame_ms: int = FRAME_MS) -> None:
        self._api = api()
        self._pool = self._api.pj_pool_create(
            ctypes.addressof(self._api.caching_pool), b"jbuf-bench", 64 * 1024, 16 * 1024, None
        )
        if not self._pool:
            raise PjsipUnavailable("pj_pool_create failed")
        self._name = ctypes.create_string_buffer(b"bench-jb")
        # pj_str_t {char *ptr; pj_ssize_t slen}
        self._pj_str = (ctypes.c_void_p * 2)(ctypes.addressof(self._name), len(b"bench-jb"))
        jb = ctypes.c_void_p()
        max_frames = 500 // frame_ms
        status = self._api.create(
            self._pool, ctypes.addressof(self._pj_str), FRAME_BYTES, frame_ms, max_frames,
            ctypes.byref(jb),
        )  # fmt: skip
        if status != 0 or not jb:
            self._api.pj_pool_release(self._pool)
            raise PjsipUnavailable(f"pjmedia_jbuf_create failed with status {status}")
        self._jb = jb
        for name, status in (
            ("set_adaptive", self._api.set_adaptive(jb, JB_INIT, JB_MIN_PRE, max_frames * 4 // 5)),
            ("set_discard", self._api.set_discard(jb, DISCARD_PROGRESSIVE)),
        ):
            if status != 0:
                self.close()
                raise PjsipUnavailable(f"pjmedia_jbuf_{name} failed with status {status}")
        self._out = ctypes.create_string_buffer(FRAME_BYTES)
        self._size = ctypes.c_size_t()
        self._type = ctypes.c_char()
        self._bits = ctypes.c_uint32()
        self._ts = ctypes.c_uint32()
        self._seq = ctypes.c_int()
        self._discarded = ctypes.c_int()

    def put(self, payload: bytes, ext_seq: int, timestamp: int) -> bool:
        """Put one frame; False if the buffer discarded it (too late, or a duplicate)."""
        self._api.put_frame3(
            self._jb, payload, len(payload), 0, ext_seq, timestamp, ctypes.byref(self._discarded)
        )
        return not self._discarded.value

    def get(self) -> tuple[FrameType, int, int]:
        """One 20 ms frame: its type, RTP timestamp and jbuf sequence number."""
        self._size.value = FRAME_BYTES  # in: the output buffer's size; out: the frame's
        self._api.get_frame3(
            self._jb,
            self._out,
            ctypes.byref(self._size),
            ctypes.byref(self._type),
            ctypes.byref(self._bits),
            ctypes.byref(self._ts),
            ctypes.byref(self._seq),
        )
        return FrameType(self._type.value[0]), self._ts.value, self._seq.value

    def close(self) -> None:
        if self._jb:
            self._api.destroy(self._jb)
            self._jb = ctypes.c_void_p()
        if self._pool:
            self._api.pj_pool_release(self._pool)
            self._pool = None


def replay(
    send_ms: F64,
    arr_ms: F64,
    clock_rate: int = 48_000,
    *,
    first_timestamp: int = FIRST_TIMESTAMP,
    tick_phase_ms: float = 0.0,
) -> PjsipLog:
    """Replay one trace through PJSIP's jitter buffer (see the module docstring). The get
    ticks fall on ``tick_phase_ms`` + multiples of 20 ms of the trace's clock."""
    n = len(send_ms)
    span = clock_rate * FRAME_MS // 1000
    stamps = [(first_timestamp + i * span) & 0xFFFFFFFF for i in range(n)]
    ext = [ts // span for ts in stamps]
    # jbuf reports slots by its own sequence numbers: ext_seq before the wrap, and after it the
    # post-wrap numbering carried back onto the frames still buffered (origin = index - size).
    by_ext = {e: i for i, e in enumerate(ext)}
    wrap = next((i for i in range(1, n) if stamps[i] < stamps[i - 1]), n)

    def slot(seq: int) -> int | None:
        i = by_ext.get(seq)
        if i is None and wrap < n and seq < ext[0]:
            i = seq + wrap
        return i if i is not None and 0 <= i < n else None

    play_ms = np.full(n, np.nan)
    from_packet = np.zeros(n, dtype=bool)
    rejected = np.zeros(n, dtype=bool)
    accepted = np.zeros(n, dtype=bool)
    missing_slot = np.zeros(n, dtype=bool)
    counts = dict.fromkeys(FrameType, 0)
    arrived = ~np.isnan(arr_ms)
    order = np.flatnonzero(arrived)
    order = order[np.argsort(arr_ms[order], kind="stable")]
    if len(order) == 0:
        return PjsipLog(
            play_ms=play_ms,
            from_packet=from_packet,
            rejected=rejected,
            discarded=np.zeros(n, dtype=bool),
            counts=counts,
        )
    jb = JitterBuffer()
    try:
        first = float(arr_ms[order[0]]) - tick_phase_ms
        t = math.floor(first / FRAME_MS) * FRAME_MS + tick_phase_ms
        end = float(arr_ms[order[-1]]) + DRAIN_MS
        k = 0
        started = False
        pending: dict[FrameType, int] = dict.fromkeys(FrameType, 0)
        while t <= end:
            while k < len(order) and arr_ms[order[k]] <= t:
                i = int(order[k])
                ok = jb.put(PAYLOAD, ext[i], stamps[i])
                accepted[i] = ok
                rejected[i] = not ok
                k += 1
            kind, ts, seq = jb.get()
            if kind is FrameType.NORMAL:
                i = ((ts - first_timestamp) & 0xFFFFFFFF) // span
                if 0 <= i < n:
                    play_ms[i] = t
                    from_packet[i] = True
                started = True
                for key, value in pending.items():  # gaps between NORMAL frames count
                    counts[key] += value
                pending = dict.fromkeys(FrameType, 0)
                counts[kind] += 1
            elif started:
                pending[kind] += 1
                if kind is FrameType.MISSING:
                    j = slot(seq)
                    if j is not None and math.isnan(play_ms[j]):
                        play_ms[j] = t
                        missing_slot[j] = True
            if k == len(order) and kind is FrameType.ZERO_EMPTY:
                break  # everything arrived and the buffer ran dry
            t += FRAME_MS
    finally:
        jb.close()
    discarded = accepted & ~from_packet & ~missing_slot
    return PjsipLog(
        play_ms=play_ms,
        from_packet=from_packet,
        rejected=rejected,
        discarded=discarded,
        counts=counts,
    )


def run(send_ms: F64, arr_ms: F64, clock_rate: int = 48_000) -> PjsipScore:
    """The bench's figures for PJSIP, averaged over the four sound-card phases of PHASES_MS."""
    scores = [
        score(send_ms, arr_ms, replay(send_ms, arr_ms, clock_rate, tick_phase_ms=phase))
        for phase in PHASES_MS
    ]
    return PjsipScore(
        late_loss_pct=float(np.mean([s.late_loss_pct for s in scores])),
        mean_ms=float(np.mean([s.mean_ms for s in scores])),
        p95_ms=float(np.mean([s.p95_ms for s in scores])),
        concealed_ms=float(np.mean([s.concealed_ms for s in scores])),
        discarded_pct=float(np.mean([s.discarded_pct for s in scores])),
        rejected=round(float(np.mean([s.rejected for s in scores]))),
        phase_means_ms=tuple(s.mean_ms for s in scores),
    )


def score(send_ms: F64, arr_ms: F64, log: PjsipLog) -> PjsipScore:
    """The bench's figures (softphone/bench/jitter.py's ``score``, for PJSIP's log)."""
    arrived = ~np.isnan(arr_ms)
    late = arrived & ~log.from_packet
    played = ~np.isnan(log.play_ms)
    delays = log.play_ms[played] - send_ms[played]
    duration_ms = len(send_ms) * float(FRAME_MS)
    gaps = (
        log.counts[FrameType.MISSING]
        + log.counts[FrameType.ZERO_EMPTY]
        + log.counts[FrameType.ZERO_PREFETCH]
    )
    return PjsipScore(
        late_loss_pct=100.0 * float(late.sum()) / max(1, int(arrived.sum())),
        mean_ms=float(delays.mean()) if len(delays) else math.nan,
        p95_ms=float(np.percentile(delays, 95)) if len(delays) else math.nan,
        concealed_ms=float(gaps * FRAME_MS),
        discarded_pct=(
            100.0 * float(log.discarded.sum()) * FRAME_MS / duration_ms if duration_ms else 0.0
        ),
        rejected=int(log.rejected.sum()),
    )
