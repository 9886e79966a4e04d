"""The headless phone commands ``dial``, ``listen`` and ``message``: a Phone driven from the
command line. ``play`` drives a Player (cli_play.py); both stop on Ctrl-C and SIGTERM through
cli_stop.py."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Literal

from softphone.cli_stop import Stop, end_tasks, interrupts
from softphone.config import Config
from softphone.report import ExitCode

if TYPE_CHECKING:
    from softphone.phone import events as pe
    from softphone.phone.audio import AudioProvider
    from softphone.phone.book import Book
    from softphone.phone.call_log import CallLog
    from softphone.phone.message_log import MessageLog
    from softphone.phone.phone import Phone
    from softphone.phone.voicemail_log import VoicemailLog
    from softphone.report import Reporter

HANGUP_WAIT_S = 8.0
HISTORY_WAIT_S = 2.0  # at the end, for the last rows of the call history to be written
LISTEN_BATCH = 256  # listen: events written with one flush

HangupCause = Literal["signal", "ring_timeout", "duration"]


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
        await end_tasks(get, stopped)  # a finished get keeps its event
    if get in done:
        return get.result()
    return None


async def _start(
    config: Config, args: argparse.Namespace, reporter: Reporter, *, auto_answer: bool = False
) -> Phone | ExitCode:
    from softphone.phone.audio import FileAudio, NullAudio

    audio: AudioProvider | None = None
    if args.play is not None or args.record is not None:
        audio = FileAudio(args.play, args.record)
    elif args.no_audio:
        audio = NullAudio()
    from softphone.cli_video import video_settings
    from softphone.phone.errors import NetworkError, PhoneError  # not imported by `play`
    from softphone.phone.phone import Phone

    phone = Phone(
        config,
        bind_host=args.bind,
        sip_port=args.sip_port,
        auto_answer=auto_answer,
        audio=audio,
        video=video_settings(config, args),
    )
    try:
        await phone.start()
    except PhoneError as exc:
        reporter.say(f"softphone: {exc}")
        await phone.stop()
        return ExitCode.NETWORK if isinstance(exc, NetworkError) else ExitCode.FAILED
    return phone


@contextlib.asynccontextmanager
async def _quiet_collector(phone: Phone) -> AsyncIterator[None]:
    """Full garbage collections while no call is up (phone/gc_policy.py): under load their
    pauses delayed every answer and the audio of every call."""
    from softphone.phone.gc_policy import IDLE_COLLECT_S, QuietCollector

    loop = asyncio.get_running_loop()
    collector = QuietCollector()
    collector.start(loop.time())

    def idle() -> bool:
        return all(c.state == "ended" for c in phone.calls)

    async def run() -> None:
        while True:
            await asyncio.sleep(IDLE_COLLECT_S)
            collector.collect_if(idle, loop.time())

    task = asyncio.create_task(run(), name="quiet-collector")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        collector.stop()


class CommandHistory:
    """The call history for a headless command: the calls it makes or takes are written as
    they happen (phone/call_log.py), and so are the messages it sends or takes
    (phone/message_log.py). Without a usable database the command runs on and says so once."""

    def __init__(
        self,
        book: Book | None,
        log: CallLog | None,
        messages: MessageLog | None = None,
        voicemail: VoicemailLog | None = None,
    ) -> None:
        self.book = book
        self.log = log
        self.messages = messages
        self.voicemail = voicemail  # what the answering machine records (voicemail_log.py)

    @classmethod
    async def open(cls, reporter: Reporter) -> CommandHistory:
        from softphone.phone.book import Book, StoreError
        from softphone.phone.call_log import CallLog
        from softphone.phone.message_log import MessageLog
        from softphone.phone.voicemail_log import VoicemailLog

        try:
            book = await Book.open_async()
        except StoreError as exc:
            reporter.say(f"softphone: the call history is not available: {exc}")
            return cls(None, None)
        loop = asyncio.get_running_loop()
        log = CallLog(
            book.history, mono=loop.time, on_error=lambda t: reporter.say(f"softphone: {t}")
        )
        messages = MessageLog(book.messages, on_error=lambda t: reporter.say(f"softphone: {t}"))
        voicemail = VoicemailLog(
            book.voicemails, on_error=lambda t: reporter.say(f"softphone: {t}")
        )
        return cls(book, log, messages, voicemail)

    def observe(self, event: pe.PhoneEvent, phone: Phone) -> None:
        if self.log is not None:
            self.log.observe(event, phone.call)
        if self.messages is not None:
            self.messages.observe(event)
        if self.voicemail is not None:
            self.voicemail.observe(event)

    async def close(self) -> None:
        if self.log is not None:
            await self.log.settle(HISTORY_WAIT_S)
        if self.messages is not None:
            await self.messages.settle(HISTORY_WAIT_S)
        if self.voicemail is not None:
            await self.voicemail.settle(HISTORY_WAIT_S)
        if self.book is not None:
            await self.book.close_async()


def _queued(phone: Phone, limit: int) -> list[pe.PhoneEvent]:
    """The events already queued, at most ``limit``."""
    found: list[pe.PhoneEvent] = []
    while len(found) < limit and (event := phone.next_event_nowait()) is not None:
        found.append(event)
    return found


async def _drain(phone: Phone, reporter: Reporter, history: CommandHistory) -> None:
    """Every event left in the phone's queue (the phone has stopped), written and flushed."""
    try:
        while (event := phone.next_event_nowait()) is not None:
            reporter.event(event, flush=False)
            history.observe(event, phone)
    finally:
        reporter.flush()  # what was reported so far is written even if observing failed


async def _settle_registration(
    phone: Phone, reporter: Reporter, stop: Stop, deadline: float, timeout_s: float
) -> ExitCode | None:
    """Report the registration's events until every account with a registrar has its answer
    (registered or failed), or until a registrar has stayed silent long enough to say so
    (NoAnswerYet). Then dial goes on: an outgoing call does not need the registration (RFC 3261
    §10 registers where we can be reached; the proxy checks an INVITE with a challenge of its
    own), so a refused or silent registrar is reported and the call's own outcome says the
    rest. Returns the exit code when not to go on: Ctrl-C / SIGTERM, or --timeout
    (``timeout_s``) ran out, which it explains."""
    from softphone.phone import events as pe

    while any(r.state == "registering" for r in phone.registrations.values()):
        event = await _next(phone, stop.event, deadline)
        if event is None:
            if stop.event.is_set():
                return stop.exit_code
            reporter.say(_no_network_answer(_silent_server(phone, None), timeout_s))
            return ExitCode.NETWORK
        reporter.event(event)
        if isinstance(event, pe.NoAnswerYet):
            reporter.say("softphone: calling anyway (a call does not need the registration)")
            break
    return stop.exit_code if stop.event.is_set() else None


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
    """``softphone dial``: call, follow the call, hang up; the exit code says how it went
    (:class:`~softphone.report.ExitCode`). The network gets --timeout seconds to answer (the
    registrar, then the call ringing or failing); --duration is talk time, from the answer."""
    from softphone.phone.errors import AddressError, NetworkError, PhoneError

    stop = Stop()
    network_deadline = asyncio.get_running_loop().time() + args.timeout
    last_words: list[str] = []
    with interrupts(stop):
        history = await CommandHistory.open(reporter)
        try:
            phone = await _start(config, args, reporter)
            if isinstance(phone, ExitCode):
                return phone
            try:
                await _drain(phone, reporter, history)
                refused = await _settle_registration(
                    phone, reporter, stop, network_deadline, args.timeout
                )
                if refused is not None:
                    return refused
                try:
                    call_id = await phone.dial(args.uri, account=args.account)
                except PhoneError as exc:
                    reporter.say(f"softphone: cannot call {args.uri}: {exc}")
                    if isinstance(exc, AddressError):
                        return ExitCode.USAGE
                    return ExitCode.NETWORK if isinstance(exc, NetworkError) else ExitCode.FAILED
                return await _follow_call(
                    phone, call_id, args, reporter, stop, history, network_deadline, last_words
                )
            finally:
                await phone.stop()
                await _drain(phone, reporter, history)
                for line in last_words:  # why we gave up comes after the call's own end
                    reporter.say(line)
        finally:
            await history.close()


async def _follow_call(
    phone: Phone,
    call_id: str,
    args: argparse.Namespace,
    reporter: Reporter,
    stop: Stop,
    history: CommandHistory,
    network_deadline: float,
    last_words: list[str],
) -> ExitCode:
    """Report the call's events until it ends. We hang up on Ctrl-C / SIGTERM, when
    --ring-timeout runs out before an answer, when --duration runs out after one, and when the
    network never answered the INVITE within --timeout (it neither rang nor failed): why goes
    into ``last_words``, said once the cancelled call's end has been reported."""
    from softphone.phone import events as pe  # not imported by `play`: faster start
    from softphone.phone.errors import PhoneError
    from softphone.phone.text import describe

    loop = asyncio.get_running_loop()
    ring_timeout: float | None = args.ring_timeout
    deadline = None if ring_timeout is None else loop.time() + ring_timeout
    cause: HangupCause | None = None
    answered = dtmf_sent = progressed = False  # progressed: it rang (the network answered)
    silent: pe.NoAnswerYet | None = None  # the INVITE's next hop said nothing at all
    while True:
        waiting = not progressed and cause is None
        wake = deadline
        if waiting:
            wake = network_deadline if deadline is None else min(deadline, network_deadline)
        event = await _next(phone, stop.event, wake)
        if event is None and waiting and not stop.event.is_set():
            if loop.time() >= network_deadline:  # --timeout ran out before it rang
                server = _silent_server(phone, silent)
                if server is not None:
                    last_words.append(_no_network_answer(server, args.timeout))
                else:  # every server answered (100 Trying...), then nothing came
                    last_words.append(
                        f"softphone: the call neither rang nor failed in {args.timeout:g} s"
                        " (--timeout); giving up"
                    )
                with contextlib.suppress(PhoneError):
                    await phone.hangup(call_id)  # CANCEL, should the INVITE be answered
                return ExitCode.NETWORK if server is not None else ExitCode.NO_ANSWER
        if event is None:
            if cause is not None:  # a second Ctrl-C, or the hang-up was never confirmed
                if stop.signal is not None:
                    return stop.exit_code
                reporter.say("softphone: the other side did not confirm the hang-up")
                return ExitCode.NETWORK
            if stop.event.is_set():
                cause = "signal"
            elif answered:
                cause = "duration"
            else:
                cause = "ring_timeout"
                reporter.say(f"softphone: no answer within {ring_timeout:g} s; hanging up")
            stop.event.clear()  # a second Ctrl-C cuts the wait for the hang-up short
            await phone.hangup(call_id)
            deadline = loop.time() + HANGUP_WAIT_S
            continue
        history.observe(event, phone)
        ours = getattr(event, "call_id", None) == call_id
        if ours and isinstance(event, pe.NoAnswerYet):
            silent = event
        if ours and isinstance(event, pe.CallStateChanged):
            progressed = progressed or event.state not in ("calling", "ended")
        if ours and isinstance(event, pe.CallEnded):
            code = _exit_code(event, cause, stop)
            failed = code not in (ExitCode.OK, ExitCode.INTERRUPTED, ExitCode.TERMINATED)
            reporter.event(event, line=not failed)
            if failed:
                line = describe(event)
                if cause == "ring_timeout":
                    line = f"call failed: no answer within {ring_timeout:g} s"
                reporter.say(f"softphone: {line}")
            return code
        reporter.event(event)
        if ours and isinstance(event, pe.CallStateChanged) and event.state == "established":
            if not answered and cause is None:
                answered = True
                deadline = None if args.duration is None else loop.time() + args.duration
            if args.dtmf and not dtmf_sent:
                dtmf_sent = True
                try:
                    method = await phone.send_dtmf(call_id, args.dtmf)
                    reporter.say(f"sending DTMF {args.dtmf} ({method})")
                except PhoneError as exc:
                    reporter.say(f"softphone: cannot send DTMF: {exc}")


def _exit_code(ended: pe.CallEnded, cause: HangupCause | None, stop: Stop) -> ExitCode:
    if cause == "signal":
        return stop.exit_code
    if ended.answered:
        return ExitCode.OK
    if cause == "ring_timeout":
        return ExitCode.NO_ANSWER
    return ExitCode.for_outcome(ended.outcome)


async def run_listen(config: Config, args: argparse.Namespace, reporter: Reporter) -> int:
    """``softphone listen``: wait for calls (answering or refusing them when asked) until
    --duration or Ctrl-C; exits 0 then."""
    from softphone.phone.errors import PhoneError

    stop = Stop()
    loop = asyncio.get_running_loop()
    # Events are written by threads: a slow reader of them never holds up the calls.
    with interrupts(stop), reporter.written_by_threads():
        history = await CommandHistory.open(reporter)
        try:
            phone = await _start(config, args, reporter, auto_answer=args.auto_answer)
            if isinstance(phone, ExitCode):
                return phone
            for acct in config.accounts:  # what happens to calls, said once (cli_forwarding.py)
                if (diverted := acct.forwarding.summary()) is not None:
                    reporter.say(f"softphone: {acct.name}: {diverted}")
            try:
                if args.presence is not None:
                    phone.set_presence(args.presence)
                for uri in args.watch:
                    phone.watch(uri)
            except PhoneError as exc:
                reporter.say(f"softphone: {exc}")
                await phone.stop()
                return ExitCode.USAGE
            deadline = None if args.duration is None else loop.time() + args.duration
            try:
                async with _quiet_collector(phone):
                    await _listen(phone, args, reporter, history, stop, deadline)
                return ExitCode.OK
            finally:
                # Ctrl-C, SIGTERM, --duration: stop() hangs up every call and waits for the
                # answers, so that each call's call_ended is among the events written here.
                await phone.stop()
                await _drain(phone, reporter, history)
        finally:
            await history.close()


async def _listen(
    phone: Phone,
    args: argparse.Namespace,
    reporter: Reporter,
    history: CommandHistory,
    stop: Stop,
    deadline: float | None,
) -> None:
    """``listen``'s loop: events out, calls refused when asked, until --duration or Ctrl-C."""
    from softphone.phone import events as pe
    from softphone.phone.errors import PhoneError

    while True:
        event = await _next(phone, stop.event, deadline)
        if event is None:
            return
        # With many calls events come in bursts: take what is queued with it and
        # write it with one flush, so the output keeps up with the phone.
        batch = [event, *_queued(phone, LISTEN_BATCH)]
        try:
            for event in batch:
                reporter.event(event, flush=False)
                history.observe(event, phone)
        finally:
            reporter.flush()  # the batch so far is written even if observing an event failed
        for event in batch:
            if isinstance(event, pe.IncomingCall) and args.reject is not None:
                try:
                    await phone.reject(event.call_id, status=args.reject)
                except PhoneError as exc:
                    reporter.say(f"softphone: cannot reject the call: {exc}")


async def run_message(config: Config, args: argparse.Namespace, reporter: Reporter) -> int:
    """``softphone message URI TEXT``: send one instant message (RFC 3428) and wait for its
    outcome. Exits 0 when the far end (or its server) accepted it; otherwise with the code of
    the status, as a call refused with that status would (:class:`~softphone.report.ExitCode`:
    404 not found 5, no response or 503 network 7, ...). --timeout bounds the wait for the
    network, registration included."""
    from softphone.phone import events as pe
    from softphone.phone.errors import AddressError, NetworkError, PhoneError
    from softphone.phone.outcome import call_outcome

    stop = Stop()
    deadline = asyncio.get_running_loop().time() + args.timeout
    with interrupts(stop):
        history = await CommandHistory.open(reporter)
        try:
            phone = await _start(config, args, reporter)
            if isinstance(phone, ExitCode):
                return phone
            try:
                await _drain(phone, reporter, history)
                refused = await _settle_registration(phone, reporter, stop, deadline, args.timeout)
                if refused is not None:
                    return refused
                try:
                    message_id = await phone.send_message(
                        args.uri, args.text, content_type=args.content_type
                    )
                except PhoneError as exc:
                    reporter.say(f"softphone: cannot send the message to {args.uri}: {exc}")
                    if isinstance(exc, AddressError):
                        return ExitCode.USAGE
                    return ExitCode.NETWORK if isinstance(exc, NetworkError) else ExitCode.FAILED
                while True:
                    event = await _next(phone, stop.event, deadline)
                    if event is None:
                        if stop.event.is_set():
                            return stop.exit_code
                        reporter.say(f"softphone: no answer in {args.timeout:g} s (--timeout)")
                        return ExitCode.NETWORK
                    history.observe(event, phone)
                    reporter.event(event)
                    if (
                        isinstance(event, pe.MessageStatusChanged)
                        and event.message_id == message_id
                        and event.state != "sending"
                    ):
                        if event.state == "delivered":
                            return ExitCode.OK
                        outcome = call_outcome(
                            direction="outgoing",
                            answered=False,
                            status=event.status,
                            no_response=event.no_response,
                        )
                        return ExitCode.for_outcome(outcome)
            finally:
                await phone.stop()
                await _drain(phone, reporter, history)
        finally:
            await history.close()
