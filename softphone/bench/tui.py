"""``softphone bench tui``: how fast a key press reaches the screen while a call runs and video
plays (the target: a key press reaches the screen within 50 ms).

``run_tui_bench(seconds)`` runs the real app headless (``App.run_test``, 160x48 cells, so the
side pane is open) against :class:`BenchPhone`, a scripted phone with one established call that
publishes CallStats every 0.5 s (ten times the real phone's rate) and answers ``levels()`` for the
10 Hz meters, while :class:`BenchPlayer` pushes 640x360 RGB pictures at 25 fps into the side
pane (scaled to the pane's box with numpy, as the real player's swscale would, on the same loop).

Every ``interval_s`` it presses ``m`` (mute toggle) and measures, with ``time.perf_counter``:

    key event posted (as the driver does)  ->  the phone's MuteChanged travelled the bridge, the calls
    list row shows (or no longer shows) "muted"  ->  the screen's next refresh has run
    (``Screen.call_after_refresh`` fires after the compositor's update)

so each sample covers key dispatch, the action, the event queue, the bridge worker, the table
update and one screen refresh. The condition is polled every 1 ms, so samples carry up to ~1 ms of
polling slack. (``Pilot.press`` is not used for the timed press: it waits for the app to be
idle, which with 25 fps video and 10 Hz meters adds ~100 ms of waiting that a user never sees.)
Headless means no terminal writes: the cost of the terminal itself (and of the
writer thread) is not in these figures. Reported: p50/p95/max in ms, the samples, and the video
pane's frames shown and dropped.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from softphone.config import Account, Config
from softphone.phone import events as pe
from softphone.phone.api import (
    ContactPresence,
    FlowSummary,
    OwnPresence,
    Registration,
    StreamSummary,
    TracedMessage,
    Voicemail,
)
from softphone.phone.errors import PhoneError
from softphone.phone.event_queue import EventReader

__all__ = ["BenchPhone", "BenchPlayer", "run_tui_bench"]

CALL_ID = "bench-1@127.0.0.1"


@dataclass(slots=True)
class BenchCall:
    """The one call (fits CallView)."""

    call_id: str = CALL_ID
    account: str = "bench"
    direction: Literal["outgoing", "incoming"] = "outgoing"
    remote: str = "sip:echo@127.0.0.1"
    state: pe.CallStateName = "established"
    started_at: float = 0.0
    established_at: float | None = 0.0
    local_hold: bool = False
    remote_hold: bool = False
    recording_path: Path | None = None
    display_name: str | None = "Echo"
    muted: bool = False
    conference: bool = False
    codec: str | None = "opus"
    encryption: Literal["none", "sdes", "dtls-srtp"] = "none"
    srtp_suite: str | None = None
    has_video: bool = False


class BenchPhone(EventReader):
    """A PhoneApi with one established call, statistics and levels; nothing else works."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[pe.PhoneEvent] = asyncio.Queue()
        self._call = BenchCall()
        self._task: asyncio.Task[None] | None = None
        self._tick = 0

    async def start(self) -> None:
        self._call.started_at = self._call.established_at = asyncio.get_running_loop().time()
        self._queue.put_nowait(
            pe.CallStateChanged(
                call_id=CALL_ID, state="established", direction="outgoing", remote=self._call.remote
            )
        )
        self._task = asyncio.create_task(self._stats())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _stats(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            self._tick += 1
            wobble = float(self._tick % 7)
            self._queue.put_nowait(
                pe.CallStats(
                    call_id=CALL_ID,
                    stats={
                        "codec": "opus",
                        "jitter_ms": 3.0 + wobble,
                        "loss_percent": wobble / 10,
                        "rtt_ms": 40.0 + wobble,
                        "mos": 4.4 - wobble / 20,
                    },
                )
            )

    @property
    def echo_cancellation(self) -> bool:
        return False  # no sound card in the bench

    def set_echo_cancellation(self, on: bool) -> None:
        pass

    @property
    def accounts(self) -> list[str]:
        return ["bench"]

    @property
    def registrations(self) -> dict[str, Registration]:
        return {
            "bench": Registration(
                account="bench", aor="sip:bench@127.0.0.1", transport="udp", state="none"
            )
        }

    @property
    def calls(self) -> Sequence[BenchCall]:
        return [self._call]

    def call(self, call_id: str) -> BenchCall:
        if call_id != CALL_ID:
            raise PhoneError(f"no call {call_id}")
        return self._call

    def call_stats(self, call_id: str) -> dict[str, object] | None:
        return None

    async def apply_accounts(self, accounts: Sequence[Account]) -> None:
        raise PhoneError("the bench phone has no accounts to change")

    async def dial(self, target: str, *, account: str | None = None) -> str:
        raise PhoneError("the bench phone does not dial")

    async def answer(self, call_id: str) -> None:
        raise PhoneError("nothing rings")

    async def reject(self, call_id: str, *, status: int = 486) -> None:
        raise PhoneError("nothing rings")

    async def hangup(self, call_id: str) -> None:
        raise PhoneError("the bench call stays up")

    async def hold(self, call_id: str) -> None:
        raise PhoneError("no hold in the bench")

    async def resume(self, call_id: str) -> None:
        raise PhoneError("no hold in the bench")

    async def set_video(self, call_id: str, on: bool) -> None:
        raise PhoneError("no call video in the bench (its video is the pane's stream)")

    def video_picture(self, call_id: str, width: int, height: int) -> npt.NDArray[np.uint8] | None:
        return None

    async def transfer(self, call_id: str, target: str) -> None:
        raise PhoneError("no transfer in the bench")

    async def attended_transfer(self, call_id: str, other_call_id: str) -> None:
        raise PhoneError("no transfer in the bench")

    async def join(self, call_id: str, other_call_id: str) -> None:
        raise PhoneError("one call in the bench")

    async def split(self, call_id: str) -> None:
        raise PhoneError("one call in the bench")

    async def send_dtmf(self, call_id: str, digits: str) -> str:
        return "rtp"

    async def send_message(
        self,
        target: str,
        text: str,
        *,
        account: str | None = None,
        content_type: str = "text/plain",
    ) -> str:
        raise PhoneError("no messages in the bench")

    def mute(self, call_id: str, muted: bool) -> None:
        self._call.muted = muted
        self._queue.put_nowait(pe.MuteChanged(call_id=call_id, muted=muted))

    def record(self, call_id: str, on: bool) -> Path | None:
        raise PhoneError("no recording in the bench")

    def silence(self, call_id: str) -> None:
        return None

    def levels(self, call_id: str) -> tuple[float, float] | None:
        phase = time.perf_counter() % 1.0
        return (-40.0 + 30.0 * phase, -30.0 + 20.0 * phase)

    def sip_flows(self) -> list[FlowSummary]:
        return []

    def sip_flow(self, flow_id: str) -> list[TracedMessage]:
        return []

    def rtp_streams(self, call_id: str) -> list[StreamSummary]:
        return []

    async def play_file(self, path: Path) -> None:
        raise PhoneError("no playback in the bench")

    def stop_playback(self) -> None:
        return None

    def set_presence(self, state: str, note: str | None = None) -> None:
        return None

    @property
    def presence(self) -> OwnPresence:
        return OwnPresence()

    def watch(self, uri: str) -> None:
        return None

    def unwatch(self, uri: str) -> None:
        return None

    @property
    def watched(self) -> Mapping[str, ContactPresence]:
        return {}

    @property
    def voicemail(self) -> Mapping[str, Voicemail]:
        return {}

    def config_warning(self) -> str | None:
        return None

    def protect_config(self) -> None:
        return None


class BenchPlayer:
    """Pushes 640x360 pictures at 25 fps, scaled into the pane's box (nearest neighbour)."""

    def __init__(self, url: str, *, fps: float = 25.0) -> None:
        self.url = url
        self.fps = fps
        self.on_picture: Callable[[np.ndarray], None] | None = None
        self.on_state: Callable[[], None] | None = None
        self.events: asyncio.Queue[pe.PhoneEvent] = asyncio.Queue()
        self.box: tuple[int, int] | None = None
        self.pictures = 0
        rng = np.random.default_rng(1)
        base = rng.integers(0, 256, (360, 640, 3), dtype=np.uint8)
        self._frames = [np.roll(base, 8 * i, axis=1) for i in range(25)]  # camera-like motion

    @property
    def title(self) -> str:
        return self.url

    @property
    def plain_url(self) -> str:
        return self.url

    @property
    def camera_name(self) -> str:
        return "bench"

    def set_video_box(self, width_px: int, height_px: int) -> None:
        self.box = (width_px, height_px)

    def set_video_decoding(self, enabled: bool) -> None:
        pass  # the bench pane is always shown

    def overlay(self) -> str:
        return f"bench H264 640x360 · {self.fps:.0f} fps"

    async def run(self, stop: asyncio.Event, *, duration_s: float | None = None) -> int:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while not stop.is_set():
            frame = self._frames[self.pictures % len(self._frames)]
            if self.on_picture is not None and self.box is not None:
                self.on_picture(_fit(frame, *self.box))
            self.pictures += 1
            next_at += 1.0 / self.fps
            try:
                async with asyncio.timeout(max(0.0, next_at - loop.time())):
                    await stop.wait()
            except TimeoutError:
                pass
        return 0


def _fit(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    scale = min(width / frame.shape[1], height / frame.shape[0], 1.0)
    w, h = max(1, int(frame.shape[1] * scale)), max(1, int(frame.shape[0] * scale))
    rows = np.arange(h) * frame.shape[0] // h
    cols = np.arange(w) * frame.shape[1] // w
    return np.ascontiguousarray(frame[rows][:, cols])


def _percentile(sorted_ms: list[float], q: float) -> float:
    index = min(len(sorted_ms) - 1, max(0, round(q * (len(sorted_ms) - 1))))
    return sorted_ms[index]


async def _bench(seconds: float, interval_s: float, threaded: bool) -> dict[str, Any]:
    from textual.events import Key

    from softphone.phone.threaded import ThreadedPhone
    from softphone.tui.app import make_app

    bench_phone = BenchPhone()
    phone: BenchPhone | ThreadedPhone = ThreadedPhone(bench_phone) if threaded else bench_phone
    players: list[BenchPlayer] = []

    def factory(url: str, config: Config, login: tuple[str, str] | None) -> BenchPlayer:
        players.append(BenchPlayer(url))
        return players[-1]

    app = make_app(Config(), phone, player_factory=factory, play_on_start="rtsp://bench.invalid/")
    samples: list[float] = []
    async with app.run_test(size=(160, 48)) as pilot:
        screen = app.main
        deadline = time.perf_counter() + 5.0
        while screen.calls_table.row_count == 0 or not players:
            if time.perf_counter() > deadline:
                raise RuntimeError("the app did not show the bench call")
            await asyncio.sleep(0.01)
        await pilot.press("escape")  # leave the dial bar: single keys act
        # The audio pump runs where the phone runs: its own thread's loop, or the UI's.
        phone_loop = phone.loop if isinstance(phone, ThreadedPhone) else None
        ticker = _AudioTicker(phone_loop or asyncio.get_running_loop())
        ticker.start()
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            await asyncio.sleep(interval_s)
            want_muted = not phone.call(CALL_ID).muted
            started = time.perf_counter()
            app.post_message(Key("m", "m"))  # what the driver posts; Pilot.press waits for idle
            while ("muted" in str(screen.calls_table.get_row_at(0)[-1])) != want_muted:
                if time.perf_counter() - started > 2.0:
                    raise RuntimeError("the mute flag did not reach the calls list in 2 s")
                await asyncio.sleep(0.001)
            refreshed = asyncio.Event()
            screen.call_after_refresh(refreshed.set)
            await refreshed.wait()
            samples.append((time.perf_counter() - started) * 1000.0)
        ticker.stop()
        view = screen.side.video
        shown, dropped = view.frames_shown, view.frames_dropped
        pictures = players[0].pictures if players else 0
    if isinstance(phone, ThreadedPhone):
        await phone.stop()
    ordered = sorted(samples)
    return {
        "what": "key press -> calls list updated -> next screen refresh (headless, 160x48)",
        "phone": "own thread (ThreadedPhone)" if threaded else "on the UI's loop",
        "seconds": seconds,
        "presses": len(samples),
        "p50_ms": round(statistics.median(ordered), 2) if ordered else None,
        "p95_ms": round(_percentile(ordered, 0.95), 2) if ordered else None,
        "max_ms": round(ordered[-1], 2) if ordered else None,
        "samples_ms": [round(s, 2) for s in samples],
        "video_pictures_pushed": pictures,
        "video_frames_shown": shown,
        "video_frames_dropped": dropped,
        **ticker.report(),
    }


class _AudioTicker:
    """The audio engine's pump runs on the phone's event loop (phone/audio.py: a ``call_at``
    every TICK_S): the phone thread's own loop with ThreadedPhone, else the UI's. This ticker
    runs the same schedule on ``loop`` and records how late each tick fires: a tick later than
    the speaker ring's fill (DeviceIO keeps 2 blocks of 10 ms) is an underrun on a real sound
    card."""

    RING_MS = 20.0

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        from softphone.phone.audio import TICK_S

        self._loop = loop
        self._tick_s = TICK_S
        self._next = 0.0
        self._handle: asyncio.TimerHandle | None = None
        self.late_ms: list[float] = []

    def start(self) -> None:
        self._loop.call_soon_threadsafe(self._first)

    def _first(self) -> None:
        self._next = self._loop.time() + self._tick_s
        self._handle = self._loop.call_at(self._next, self._tick)

    def _tick(self) -> None:
        now = self._loop.time()
        self.late_ms.append((now - self._next) * 1000.0)
        self._next = max(self._next + self._tick_s, now)
        self._handle = self._loop.call_at(self._next, self._tick)

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._cancel)

    def _cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def report(self) -> dict[str, Any]:
        ordered = sorted(self.late_ms)
        return {
            "audio_ticks": len(ordered),
            "audio_tick_late_p99_ms": round(_percentile(ordered, 0.99), 2) if ordered else None,
            "audio_tick_late_max_ms": round(ordered[-1], 2) if ordered else None,
            "audio_ticks_over_ring_ms": sum(1 for v in ordered if v > self.RING_MS),
            "audio_ring_ms": self.RING_MS,
        }


def run_tui_bench(
    seconds: float, *, interval_s: float = 0.2, threaded: bool = True
) -> dict[str, Any]:
    """Run the bench for ``seconds`` (a press every ``interval_s``); figures in ms. ``threaded``:
    the phone on its own thread (ThreadedPhone, as ``softphone`` runs it) or on the UI's loop."""
    return asyncio.run(_bench(seconds, interval_s, threaded))
