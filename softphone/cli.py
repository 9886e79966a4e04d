"""The headless commands ``dial``, ``listen`` and ``play``: a Phone (or a Player) driven from the
command line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from softphone.config import Config, ConfigError

if TYPE_CHECKING:
    from softphone.phone import events as pe
    from softphone.phone.audio import AudioEngine, AudioProvider
    from softphone.phone.phone import Phone
    from softphone.report import Reporter

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130
REGISTER_WAIT_S = 10.0
HANGUP_WAIT_S = 8.0
PLAYER_STOP_S = 3.0  # a stopped player's TEARDOWN waits at most 1 s for its answer


@contextlib.contextmanager
def _interrupts(stop: asyncio.Event) -> Iterator[None]:
    """Ctrl-C / SIGTERM set ``stop`` so the command hangs up and unregisters cleanly."""
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
        except (NotImplementedError, RuntimeError):
            pass
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


async def _ended(*tasks: asyncio.Task[Any]) -> None:
    """Cancel the tasks still running and wait until every one has ended: no task started for
    a wait outlives it."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _next(phone: Phone, stop: asyncio.Event, deadline: float | None) -> pe.PhoneEvent | None:
    """The next phone event, or None when ``stop`` is set or the deadline passes."""
    loop = asyncio.get_running_loop()
    timeout = None if deadline is None else max(deadline - loop.time(), 0.0)
    get = asyncio.create_task(phone.next_event(), name="next-event")
    stopped = asyncio.create_task(stop.wait(), name="stop-wait")
    try:
        done, _ = await asyncio.wait(
            {get, stopped}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        await _ended(get, stopped)  # a finished get keeps its event
    if get in done:
        return get.result()
    return None


async def _start(
    config: Config, args: argparse.Namespace, reporter: Reporter, *, auto_answer: bool = False
) -> Phone | None:
    from softphone.phone.audio import FileAudio, NullAudio

    audio: AudioProvider | None = None
    if args.play is not None or args.record is not None:
        audio = FileAudio(args.play, args.record)
    elif args.no_audio:
        audio = NullAudio()
    from softphone.phone.errors import PhoneError  # not imported by `play`: faster start
    from softphone.phone.phone import Phone

    phone = Phone(
        config, bind_host=args.bind, sip_port=args.sip_port, auto_answer=auto_answer, audio=audio
    )
    try:
        await phone.start()
    except PhoneError as exc:
        reporter.say(f"softphone: {exc}")
        await phone.stop()
        return None
    return phone


async def _drain(phone: Phone, reporter: Reporter) -> None:
    while (event := phone.next_event_nowait()) is not None:
        reporter.event(event)


async def run_dial(config: Config, args: argparse.Namespace, reporter: Reporter) -> int:
    from softphone.phone import events as pe  # not imported by `play`: faster start
    from softphone.phone.errors import PhoneError

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    with _interrupts(stop):
        phone = await _start(config, args, reporter)
        if phone is None:
            return EXIT_FAILED
        try:
            await phone.wait_registered(REGISTER_WAIT_S)
            await _drain(phone, reporter)
            try:
                call_id = await phone.dial(args.uri, account=args.account)
            except PhoneError as exc:
                reporter.say(f"softphone: cannot call {args.uri}: {exc}")
                return EXIT_FAILED
            deadline: float | None = None
            hung_up = False
            dtmf_sent = False
            while True:
                event = await _next(phone, stop, deadline)
                if event is None:  # Ctrl-C, or the talk time is over
                    if hung_up:
                        reporter.say("softphone: the other side did not confirm the hang-up")
                        return EXIT_FAILED
                    hung_up = True
                    stop.clear()  # a second Ctrl-C cuts the wait for the hang-up short
                    await phone.hangup(call_id)
                    deadline = loop.time() + HANGUP_WAIT_S
                    continue
                reporter.event(event)
                if isinstance(event, pe.CallStateChanged) and event.call_id == call_id:
                    if (
                        event.state == "established"
                        and args.duration is not None
                        and not hung_up
                        and deadline is None
                    ):
                        deadline = loop.time() + args.duration
                    if event.state == "established" and args.dtmf and not dtmf_sent:
                        dtmf_sent = True
                        try:
                            method = await phone.send_dtmf(call_id, args.dtmf)
                            reporter.say(f"sending DTMF {args.dtmf} ({method})")
                        except PhoneError as exc:
                            reporter.say(f"softphone: cannot send DTMF: {exc}")
                if isinstance(event, pe.CallEnded) and event.call_id == call_id:
                    if event.answered:
                        return EXIT_OK
                    reporter.say(
                        f"softphone: call failed: {event.reason}"
                        + (f" (SIP {event.status})" if event.status else "")
                    )
                    return EXIT_FAILED
        finally:
            await phone.stop()
            await _drain(phone, reporter)


async def run_listen(config: Config, args: argparse.Namespace, reporter: Reporter) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    with _interrupts(stop):
        phone = await _start(config, args, reporter, auto_answer=args.auto_answer)
        if phone is None:
            return EXIT_FAILED
        deadline = None if args.duration is None else loop.time() + args.duration
        try:
            while True:
                event = await _next(phone, stop, deadline)
                if event is None:
                    return EXIT_OK
                reporter.event(event)
        finally:
            await phone.stop()
            await _drain(phone, reporter)


EXIT_USAGE = 2


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
        return EXIT_USAGE
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
        return EXIT_USAGE
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
    stop = asyncio.Event()
    with _interrupts(stop):
        run = asyncio.create_task(player.run(stop, duration_s=args.duration), name="player-run")
        getter: asyncio.Task[Any] | None = None
        try:
            while True:
                getter = asyncio.create_task(player.events.get(), name="player-event")
                done, _ = await asyncio.wait({run, getter}, return_when=asyncio.FIRST_COMPLETED)
                if getter in done:
                    reporter.event(getter.result())
                    continue
                await _ended(getter)
                while (event := player.next_event_nowait()) is not None:
                    reporter.event(event)
                return run.result()
        finally:
            if not run.done():
                # Cancelled from outside: stop the player as Ctrl-C does (it tears the session
                # down); it is cancelled only if it does not end by itself soon.
                stop.set()
                await asyncio.wait({run}, timeout=PLAYER_STOP_S)
            await _ended(run, *([getter] if getter is not None else []))
