"""Import PyAV and numpy on a thread while an RTSP player connects (phone/player.py).

``softphone play`` needs neither before PLAY is answered, and after PLAY it waits for the first
key frame (50-80 ms against a live encoder on loopback). Importing them costs about as much as
that wait (PyAV ~35 ms, numpy ~50 ms, measured inside ``softphone play`` on the 2-core lab
machine), so the player starts the import here when it opens the connection and the two overlap
instead of adding up.

The decoders import what they need themselves, as usual: a module being imported here is simply
waited for (Python's per-module import locks), so nothing depends on this having run, only the
time to the first picture. Where PyAV and numpy are loaded already (the TUI), :func:`start` is a
no-op. Import errors are left for the real import to raise where it is handled.

The GIL lets only one thread run Python at a time; while the import runs, the interpreter's switch
interval is lowered so that the main thread, woken by an RTSP answer, gets the GIL within a
millisecond instead of five.

The cyclic garbage collector is paused for the same start-up (:func:`hold_gc`): the imports on the
way to PLAY allocate enough to run it ~40 times, about 5 ms on the lab machine, and nothing they
make is garbage. It runs again with the first picture, a second after PLAY, or when the command
ends (:func:`release_gc`).
"""

from __future__ import annotations

import gc
import importlib
import logging
import sys
import threading
from typing import Final

logger = logging.getLogger(__name__)

# In the order they are needed: the video decoder first, then what audio decoding and playback use.
MODULES: Final = ("softphone.media.video", "numpy", "softphone.phone.audio", "softphone.phone.stream_audio")
SWITCH_INTERVAL_S: Final = 0.001
GC_HOLD_AFTER_PLAY_S: Final = 1.0  # the collector runs again this long after PLAY at the latest

_lock = threading.Lock()
_thread: threading.Thread | None = None
_done = threading.Event()
_gc_held = False


def start() -> None:
    """Begin importing MODULES on a daemon thread (once per process)."""
    global _thread
    with _lock:
        if _thread is not None or _done.is_set():
            return
        if all(name in sys.modules for name in MODULES):
            _done.set()  # loaded already (the TUI): nothing to do
            return
        _thread = threading.Thread(target=_run, name="media-preload", daemon=True)
        _thread.start()


def ready() -> bool:
    """True once :func:`start`'s imports are done (or failed, to be raised where used). A module
    being imported is in ``sys.modules`` before it is complete, so that alone proves nothing."""
    return _done.is_set()


def wait(timeout: float | None = None) -> bool:
    """Block until :func:`ready` (for tests and tools; the player never blocks on it)."""
    return _done.wait(timeout)


def _run() -> None:
    previous = sys.getswitchinterval()
    sys.setswitchinterval(min(previous, SWITCH_INTERVAL_S))
    try:
        for name in MODULES:
            try:
                importlib.import_module(name)
            except Exception:  # the real import, where it is used, raises and reports it
                logger.debug("preloading %s failed", name, exc_info=True)
    finally:
        sys.setswitchinterval(previous)
        _done.set()


def hold_gc() -> None:
    """Pause the cyclic garbage collector for start-up, unless someone else already has."""
    global _gc_held
    if gc.isenabled():
        gc.disable()
        _gc_held = True


def release_gc() -> None:
    """Undo :func:`hold_gc` (only what it did: a collector paused by someone else stays so)."""
    global _gc_held
    if _gc_held:
        _gc_held = False
        gc.enable()
