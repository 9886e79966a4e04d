"""Start-up speed of ``softphone play``: PyAV and numpy load on a thread, and the garbage
collector waits, until the first picture (phone/player_session.py, phone/player_media.py).

``softphone play`` needs neither PyAV nor numpy to send PLAY, and after PLAY it waits for the
first key frame (50-80 ms against a live encoder on loopback). So the player starts the import
here when PLAY is answered, and it runs during that wait instead of before PLAY. It goes in two
steps: PyAV (~35 ms on the 2-core lab machine), which the video decoder needs; then, once the
first picture is out (or ``REST_AFTER_S`` later at the latest), numpy and the audio modules
(~40 ms), which audio decoding and playback need. Importing numpy during the wait made the first
picture ~5 ms later: it took the CPU from the decoder and from the server's encoder on the same
two cores. Audio that arrives meanwhile is kept, not lost (phone/player_media.py). A stream
without video imports everything at once.

The decoders import what they need themselves, as usual: a module being imported here is simply
waited for (Python's per-module import locks), so nothing depends on this having run, only the
time to the first picture. Where PyAV and numpy are loaded already (the TUI), :func:`start` is a
no-op. Import errors are left for the real import to raise where it is handled.

The GIL lets only one thread run Python at a time; while the import runs, the interpreter's switch
interval is lowered so that the main thread, woken by an RTSP answer, gets the GIL within a
millisecond instead of five.

The cyclic garbage collector is paused for the same start-up (:func:`hold_gc`): the imports on the
way to PLAY allocate enough to run it ~40 times, about 5 ms on the lab machine, and nothing they
make is garbage. It runs again after the first picture, a second after PLAY, or when the command
ends (:func:`release_gc`). What start-up made is frozen first (``gc.freeze``): modules, classes
and functions that live as long as the process, which the collector then never walks again;
otherwise its first run after the pause would go through all of them at once, ~10 ms just when
the pictures start.
"""

from __future__ import annotations

import gc
import importlib
import logging
import sys
import threading
from typing import Final

logger = logging.getLogger(__name__)

VIDEO_MODULES: Final = ("softphone.media.video",)  # the video decoder: PyAV
REST_MODULES: Final = ("numpy", "softphone.phone.audio", "softphone.phone.stream_audio")  # audio
MODULES: Final = VIDEO_MODULES + REST_MODULES
REST_AFTER_S: Final = 0.5  # at the latest, after the video modules, when no picture comes
SWITCH_INTERVAL_S: Final = 0.001
GC_HOLD_AFTER_PLAY_S: Final = 1.0  # the collector runs again this long after PLAY at the latest

_lock = threading.Lock()
_thread: threading.Thread | None = None
_done = threading.Event()
_picture_shown = threading.Event()
_gc_held = False


def start(*, video: bool = False) -> None:
    """Begin importing MODULES on a daemon thread (once per process). With ``video``, the
    modules after VIDEO_MODULES wait for :func:`picture_shown` (at most REST_AFTER_S)."""
    global _thread
    with _lock:
        if _thread is not None or _done.is_set():
            return
        if all(name in sys.modules for name in MODULES):
            _done.set()  # loaded already (the TUI): nothing to do
            return
        _thread = threading.Thread(target=_run, args=(video,), name="media-preload", daemon=True)
        _thread.start()


def picture_shown() -> None:
    """The first picture is out: what audio needs may load now."""
    _picture_shown.set()


def ready() -> bool:
    """True once :func:`start`'s imports are done (or failed, to be raised where used). A module
    being imported is in ``sys.modules`` before it is complete, so that alone proves nothing."""
    return _done.is_set()


def wait(timeout: float | None = None) -> bool:
    """Block until :func:`ready` (for tests and tools; the player never blocks on it)."""
    return _done.wait(timeout)


def _run(video: bool) -> None:
    previous = sys.getswitchinterval()
    fast = min(previous, SWITCH_INTERVAL_S)
    try:
        sys.setswitchinterval(fast)
        _import(VIDEO_MODULES)
        if video:
            sys.setswitchinterval(previous)  # nothing is being imported while we wait
            _picture_shown.wait(REST_AFTER_S)
            sys.setswitchinterval(fast)
        _import(REST_MODULES)
    finally:
        sys.setswitchinterval(previous)
        _done.set()


def _import(names: tuple[str, ...]) -> None:
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:  # the real import, where it is used, raises and reports it
            logger.debug("preloading %s failed", name, exc_info=True)


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
        gc.freeze()
        gc.enable()
