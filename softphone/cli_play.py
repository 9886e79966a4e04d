"""``softphone play URL``: a Player driven from the command line: the viewer app, the
phone's TUI with the stream in its side pane, or ``--headless`` with events on stdout."""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from softphone.cli_stop import Stop, end_tasks, interrupts
from softphone.config import Config, ConfigError
from softphone.report import ExitCode

if TYPE_CHECKING:
    from softphone.phone.audio import AudioEngine, AudioProvider
    from softphone.report import Reporter

__all__ = ["AudioLater", "run_play"]

logger = logging.getLogger(__name__)

PLAYER_STOP_S = 3.0  # a stopped player's TEARDOWN waits at most 1 s for its answer


def run_play(
    config: Config, args: argparse.Namespace, reporter: Reporter, *, started_at: float
) -> int:
    """``softphone play URL``: the viewer app, or ``--headless`` without a UI."""
    from softphone.phone.player import Player, PlayerOptions
    from softphone.rtsp.errors import RtspError

    try:
        source = config.camera_source(args.url, match_host=False)
    except ConfigError as exc:
        reporter.say(f"softphone: {exc}")
        return ExitCode.USAGE
    options = PlayerOptions(
        transport=args.transport,
        credentials=source.credentials,
        snapshot=args.snapshot,
        record=args.record,
        ca_file=args.ca_file,
        insecure=args.insecure,
    )

    def stream_audio() -> AudioProvider:
        from softphone.phone import player_events as pe
        from softphone.phone.audio import DeviceAudio, NullAudio

        if args.no_audio:
            return NullAudio()
        return DeviceAudio(
            config.input_device,
            config.output_device,
            on_problem=lambda text: reporter.event(
                pe.Notice(level="warning", text=f"{text} (the stream plays silently)")
            ),
        )

    audio = AudioLater(stream_audio)
    try:
        player = Player(
            source.url, config=config, options=options, audio=audio, started_at=started_at
        )
    except RtspError as exc:
        names = ", ".join(c.name for c in config.cameras)
        hint = f" (cameras in the config: {names})" if names else ""
        reporter.say(f"softphone: {args.url!r} is not an RTSP URL: {exc}{hint}")
        return ExitCode.USAGE
    viewer = (
        args.viewer or args.duration is not None or args.snapshot or args.record or args.stats_out
    )
    if not args.headless and not viewer:
        # The phone's TUI with the stream in its side pane (calls work beside it).
        from softphone.phone import preload
        from softphone.phone.audio import DeviceAudio, NullAudio
        from softphone.phone.player import player_for
        from softphone.tui.app import run_tui

        preload.release_gc()  # a long-running app: the collector runs as usual

        pane_audio: AudioProvider = NullAudio()
        if not args.no_audio:  # problems go to the log: printed, they would land over the screen
            pane_audio = DeviceAudio(
                config.input_device,
                config.output_device,
                on_problem=lambda text: logger.warning("stream audio: %s", text),
            )
        try:
            return run_tui(
                config,
                config_path=config.path,
                play=args.url,
                player_factory=lambda text, pane_config, login: player_for(
                    text, config=pane_config, options=options, login=login, audio=pane_audio
                ),
            )
        finally:
            pane_audio.close()
    if not args.headless:
        from softphone.phone import preload
        from softphone.tui.player_app import run_player_app

        preload.release_gc()  # a long-running app: the collector runs as usual
        try:
            return run_player_app(
                player, duration_s=args.duration, stats_out=args.stats_out, video_mode=args.video
            )
        finally:
            audio.close()
    try:
        return asyncio.run(_play_headless(player, args, reporter))
    finally:
        audio.close()


class AudioLater:
    """An AudioProvider made when a stream first has audio to play. ``softphone play`` thus
    connects without importing numpy and the audio stack (phone/preload.py loads them after the
    first picture), and opens the sound device only for streams that have sound."""

    def __init__(self, make: Callable[[], AudioProvider]) -> None:
        self._make = make
        self._provider: AudioProvider | None = None

    def _made(self) -> AudioProvider:
        if self._provider is None:
            self._provider = self._make()
        return self._provider

    def engine_for_call(self, call_number: int) -> AudioEngine:
        return self._made().engine_for_call(call_number)

    def release(self, engine: AudioEngine) -> None:
        self._made().release(engine)

    def tones(self, *, ringback: bool, ring: bool) -> None:
        if self._provider is not None:
            self._provider.tones(ringback=ringback, ring=ring)

    def close(self) -> None:
        if self._provider is not None:
            self._provider.close()


async def _play_headless(player: object, args: argparse.Namespace, reporter: Reporter) -> int:
    from softphone.phone.player import Player

    assert isinstance(player, Player)
    stop = Stop()
    with interrupts(stop):
        run = asyncio.create_task(
            player.run(stop.event, duration_s=args.duration), name="player-run"
        )
        getter: asyncio.Task[Any] | None = None
        try:
            while True:
                getter = asyncio.create_task(player.events.get(), name="player-event")
                done, _ = await asyncio.wait({run, getter}, return_when=asyncio.FIRST_COMPLETED)
                if getter in done:
                    reporter.event(getter.result())
                    continue
                await end_tasks(getter)
                while (event := player.next_event_nowait()) is not None:
                    reporter.event(event)
                return run.result()
        finally:
            if not run.done():
                # Cancelled from outside: stop the player as Ctrl-C does (it tears the session
                # down); it is cancelled only if it does not end by itself soon.
                stop.event.set()
                await asyncio.wait({run}, timeout=PLAYER_STOP_S)
            await end_tasks(run, *([getter] if getter is not None else []))
