"""What the headless commands tell the world (``softphone dial``, ``listen``, ``play
--headless``): a line a person reads on stderr for every event, with ``--json`` one JSON object
per event on stdout (the event's ``to_json()``, ``"event"`` naming its kind), and the exit code
(:class:`ExitCode`, the one table of them; ``softphone dial --help`` prints it)."""

from __future__ import annotations

import contextlib
import json
import sys
import threading
from collections.abc import Iterator
from enum import IntEnum
from typing import TYPE_CHECKING, Any, Final, Protocol, TextIO

if TYPE_CHECKING:
    from softphone.phone.events import PhoneEvent
    from softphone.phone.outcome import Outcome

__all__ = ["EXIT_CODE_MEANINGS", "BackgroundWriter", "ExitCode", "Reporter", "exit_code_table"]

# What a BackgroundWriter holds for a reader that has fallen behind before write() waits for it:
# at ~300 characters an event, a minute of events at 80 calls a second.
MAX_PENDING_CHARS: Final = 16 * 1024 * 1024


class ExitCode(IntEnum):
    """How a command ended, for scripts: each class of call failure has its own code."""

    OK = 0
    FAILED = 1
    USAGE = 2
    BUSY = 3
    DECLINED = 4
    NOT_FOUND = 5
    NO_ANSWER = 6
    NETWORK = 7
    INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C
    TERMINATED = 143  # 128 + SIGTERM

    @classmethod
    def for_outcome(cls, outcome: Outcome) -> ExitCode:
        """The code of a call that ended with ``outcome`` (phone/outcome.py)."""
        return _BY_OUTCOME.get(outcome, cls.FAILED)


_BY_OUTCOME: Final[dict[str, ExitCode]] = {
    "answered": ExitCode.OK,
    "busy": ExitCode.BUSY,
    "declined": ExitCode.DECLINED,
    "not_found": ExitCode.NOT_FOUND,
    "no_answer": ExitCode.NO_ANSWER,
    "network": ExitCode.NETWORK,
}

EXIT_CODE_MEANINGS: Final[dict[ExitCode, str]] = {
    ExitCode.OK: "the call was answered and ended normally (either side hung up, or --duration "
    "ran out)",
    ExitCode.FAILED: "any other failure (e.g. 488 no common codec, 403 forbidden, the phone "
    "could not start)",
    ExitCode.USAGE: "bad arguments, config or address",
    ExitCode.BUSY: "busy (486 Busy Here, 600 Busy Everywhere)",
    ExitCode.DECLINED: "declined (603 Decline)",
    ExitCode.NOT_FOUND: "no such user or number (404 Not Found, 410 Gone, 604 Does Not Exist "
    "Anywhere)",
    ExitCode.NO_ANSWER: "no answer (408 Request Timeout or 480 Temporarily Unavailable from the "
    "far side, or --ring-timeout ran out)",
    ExitCode.NETWORK: "network or transport failure (no response at all, a connection or DNS "
    "failure, 502/503/504)",
    ExitCode.INTERRUPTED: "interrupted with Ctrl-C (SIGINT); the call was hung up",
    ExitCode.TERMINATED: "terminated by SIGTERM; the call was hung up",
}


def exit_code_table(width: int = 79) -> str:
    """The exit codes and what each means, one per line (``softphone dial --help``)."""
    import textwrap

    return "\n".join(
        textwrap.fill(
            EXIT_CODE_MEANINGS[code],
            width=width,
            initial_indent=f"  {int(code):>3}  ",
            subsequent_indent=" " * 7,
        )
        for code in ExitCode
    )


class Stream(Protocol):
    def write(self, text: str, /) -> int: ...

    def flush(self) -> None: ...


class BackgroundWriter:
    """A text stream whose writing is done by a thread: :meth:`write` and :meth:`flush` hand the
    text over and return, and the thread writes and flushes it, in order.

    Whoever reads a phone's events (a pipe, a terminal, a script) may be slow or stopped for a
    while; written from the event loop, a full pipe stopped the loop with it, and with it every
    call's audio and every answer (a reader pausing half a second each second took ``listen``'s
    INVITE-to-200 p99 at 80 calls/s from 8 ms to 88 ms). What the reader has not taken yet is
    held here, up to ``max_pending`` characters: beyond that :meth:`write` waits for it, so that
    memory stays bounded and nothing is dropped. :meth:`close` returns once everything is
    written. A write that fails (the reader went away) is raised by the next write or flush.
    """

    def __init__(self, stream: Stream, *, name: str, max_pending: int = MAX_PENDING_CHARS) -> None:
        self._stream = stream
        self._max_pending = max_pending
        self._cond = threading.Condition()
        self._pending: list[str] = []
        self._size = 0  # characters handed over and not written yet (pending or being written)
        self._closing = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"output-{name}", daemon=True)
        self._thread.start()

    def write(self, text: str) -> int:
        with self._cond:
            self._raise_failure()
            while self._size >= self._max_pending and self._error is None:
                self._cond.wait()  # the reader is far behind: wait for it, as a pipe would
            self._raise_failure()
            self._pending.append(text)
            self._size += len(text)
            self._cond.notify_all()
        return len(text)

    def flush(self) -> None:
        """Nothing to wait for: the thread flushes after each piece it writes."""
        with self._cond:
            self._raise_failure()

    def close(self) -> None:
        """Return once everything handed over is written and flushed (or writing failed)."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join()

    def _raise_failure(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closing:
                    self._cond.wait()
                if not self._pending:
                    return  # closing, and all written
                text, self._pending = "".join(self._pending), []
            try:
                self._stream.write(text)
                self._stream.flush()
            except (OSError, ValueError) as exc:  # the reader went away, or the stream closed
                with self._cond:
                    self._error, self._pending, self._size = exc, [], 0
                    self._cond.notify_all()
                return
            with self._cond:
                self._size -= len(text)
                self._cond.notify_all()


class Reporter:
    """Prints events: JSON lines on stdout with --json, and a human line on stderr always."""

    def __init__(
        self, *, as_json: bool, out: TextIO = sys.stdout, err: TextIO = sys.stderr
    ) -> None:
        self.as_json = as_json
        self._out: Stream = out
        self._err: Stream = err
        # Lines of a batch (flush=False) not written yet: one write per stream per batch, since
        # a stream may write through (PYTHONUNBUFFERED) and then each write is a system call.
        self._pending_out: list[str] = []
        self._pending_err: list[str] = []

    def event(self, event: PhoneEvent, *, line: bool = True, flush: bool = True) -> None:
        """The event as JSON (with --json) and, unless ``line`` is False, as a human line.
        ``flush=False`` leaves the output buffered until :meth:`flush`: a command writing a
        batch of events flushes once (listen with many calls keeps up with its events)."""
        if self.as_json:
            self._pending_out.append(json.dumps(event.to_json(), separators=(",", ":")) + "\n")
        if line:
            from softphone.phone.text import describe

            text = describe(event)
            if text:
                self._pending_err.append(text + "\n")
        if flush:
            self.flush()

    def _write_pending(self) -> None:
        if self._pending_out:
            text, self._pending_out = "".join(self._pending_out), []
            self._out.write(text)
        if self._pending_err:
            text, self._pending_err = "".join(self._pending_err), []
            self._err.write(text)

    def say(self, text: str) -> None:
        if text:
            self._write_pending()  # in the order it was said
            self._err.write(text + "\n")
            self._err.flush()

    def flush(self) -> None:
        self._write_pending()
        if self.as_json:
            self._out.flush()
        self._err.flush()

    def json(self, payload: dict[str, Any]) -> None:
        if self.as_json:
            self._write_pending()
            self._out.write(json.dumps(payload, separators=(",", ":")) + "\n")
            self._out.flush()

    @contextlib.contextmanager
    def written_by_threads(self) -> Iterator[None]:
        """While the block runs, stdout and stderr are written by threads (BackgroundWriter):
        the event loop never waits for whoever reads them. Everything is written when it ends."""
        streams = self._out, self._err
        writers = (
            BackgroundWriter(self._out, name="stdout"),
            BackgroundWriter(self._err, name="stderr"),
        )
        self._out, self._err = writers
        try:
            yield
        finally:
            with contextlib.suppress(OSError, ValueError):  # a failed write was raised already
                self._write_pending()
            self._out, self._err = streams
            for writer in writers:
                writer.close()
