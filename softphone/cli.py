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
from softphone.report import EXIT_NETWORK

if TYPE_CHECKING:
    from softphone.phone import events as pe
    from softphone.phone.audio import AudioEngine, AudioProvider
    from softphone.phone.phone import Phone
    from softphone.phone.player import Player, PlayerOptions
    from softphone.report import Reporter

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130
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


async def _settle_registration(
    phone: Phone, reporter: Reporter, stop: asyncio.Event, deadline: float
) -> str | None:
    """Report the registration's events until every account with a registrar has its answer
    (registered or failed), or until a registrar has stayed silent long enough to say so
    (NoAnswerYet). Then dial goes on: an outgoing call does not need the registration (RFC 3261
    §10 registers where we can be reached; the proxy checks an INVITE with a challenge of its
    own), so a refused or silent registrar is reported and the call's own outcome says the
    rest. Returns why not to go on: "stopped" (Ctrl-C), "timeout" (--timeout ran out)."""
    from softphone.phone import events as pe

    while any(r.state == "registering" for r in phone.registrations.values()):
        event = await _next(phone, stop, deadline)
        if event is None:
            return "stopped" if stop.is_set() else "timeout"
        reporter.event(event)
        if isinstance(event, pe.NoAnswerYet):
            reporter.say("softphone: calling anyway (a call does not need the registration)")
            return None
    return None


def _silent_server(phone: Phone, invite: pe.NoAnswerYet | None) -> str | None:
    """The server that never answered, "host:port over udp": the INVITE's next hop when it was
    told silent, else a registrar that never answered; None when every one answered."""
    if invite is not None:
        return f"{invite.server} over {invite.transport}"
    for reg in phone.registrations.values():
        if reg.state != "registered" and reg.no_answer and reg.server:
            return f"{reg.server} over {reg.transport}"
    return None


def _no_network_answer(server: str | None, timeout_s: float) -> str:
    """Why dial gave up after --timeout, naming the server that never answered."""
    where = f" from {server}" if server else ""
    return (
        f"softphone: no answer{where} in {timeout_s:g} s (--timeout): is the registrar or "
        "proxy up, and on that port and transport?"
    )


async def run_dial(config: Config, args: argparse.Namespace, reporter: Reporter) -> int:
    """Call, follow the call, hang up. The network gets --timeout seconds to answer (the
    registrar, then the call ringing or failing): after that dial gives up with EXIT_NETWORK.
    --duration is talk time, counted from the answer."""
    from softphone.phone import events as pe  # not imported by `play`: faster start
    from softphone.phone.errors import PhoneError

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    network_deadline = loop.time() + args.timeout
    with _interrupts(stop):
        phone = await _start(config, args, reporter)
        if phone is None:
            return EXIT_FAILED
        try:
            await _drain(phone, reporter)
            why = await _settle_registration(phone, reporter, stop, network_deadline)
            if why == "stopped":
                return EXIT_INTERRUPTED
            if why == "timeout":
                reporter.say(_no_network_answer(_silent_server(phone, None), args.timeout))
                return EXIT_NETWORK
            try:
                call_id = await phone.dial(args.uri, account=args.account)
            except PhoneError as exc:
                reporter.say(f"softphone: cannot call {args.uri}: {exc}")
                return EXIT_FAILED
            deadline: float | None = None
            hung_up = False
            dtmf_sent = False
            progressed = False  # the call rang or was answered: the network answered
            silent: pe.NoAnswerYet | None = None  # the INVITE's next hop said nothing at all
            while True:
                waiting = not progressed and not hung_up
                event = await _next(phone, stop, network_deadline if waiting else deadline)
                if event is None and waiting and not stop.is_set():  # --timeout ran out
                    server = _silent_server(phone, silent)
                    if server is not None:
                        reporter.say(_no_network_answer(server, args.timeout))
                    else:  # every server answered (100 Trying...), then nothing came
                        reporter.say(
                            f"softphone: the call neither rang nor failed in {args.timeout:g} s"
                            " (--timeout); giving up"
                        )
                    try:
                        await phone.hangup(call_id)  # CANCEL, should the INVITE be answered
                    except PhoneError:
                        pass
                    return EXIT_NETWORK if server is not None else EXIT_FAILED
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
                if isinstance(event, pe.NoAnswerYet) and event.call_id == call_id:
                    silent = event
                if isinstance(event, pe.CallStateChanged) and event.call_id == call_id:
                    progressed = progressed or event.state not in ("calling", "ended")
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
                    # The INVITE timed out unanswered: the network, not the far end.
                    return EXIT_NETWORK if silent is not None and not progressed else EXIT_FAILED
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
                player_factory=lambda text: _side_pane_player(
                    config, text, options, started_at, pane_audio
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


def _side_pane_player(
    config: Config, text: str, options: PlayerOptions, started_at: float, audio: AudioProvider
) -> Player:
    """A player for the TUI's side pane with the command line's options (transport, TLS); a
    camera name brings its credentials."""
    from dataclasses import replace

    from softphone.phone.player import Player

    source = config.camera_source(text, match_host=False)
    return Player(
        source.url,
        config=config,
        options=replace(options, credentials=source.credentials or options.credentials),
        audio=audio,
        started_at=started_at,
    )


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
