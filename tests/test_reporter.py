"""The CLI's Reporter: a batch of events (flush=False) is written at once on flush, nothing is
lost or reordered around it, and with its streams written by threads (listen) a stopped reader
never holds up the caller."""

from __future__ import annotations

import io
import json
import threading

import pytest

from softphone.phone import events as pe
from softphone.report import BackgroundWriter, Reporter


class CountingStream(io.StringIO):
    """A stream that counts its writes (each would be a system call when unbuffered)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def ended(n: int) -> pe.CallEnded:
    return pe.CallEnded(
        call_id=f"c{n}",
        status=200,
        reason="hung up",
        outcome="answered",
        duration_s=1.0,
        answered=True,
        stats={"packets_sent": 50},
    )


def test_a_batch_is_one_write_per_stream_and_every_event_is_in_it() -> None:
    out, err = CountingStream(), CountingStream()
    reporter = Reporter(as_json=True, out=out, err=err)
    for n in range(5):
        reporter.event(ended(n), flush=False)
    assert out.getvalue() == ""  # held until the batch is flushed
    reporter.flush()
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["call_id"] for line in lines] == [f"c{n}" for n in range(5)]
    assert all(line == ended(n).to_json() for n, line in enumerate(lines))
    assert out.writes == 1
    assert len(err.getvalue().splitlines()) == 5 and err.writes == 1


def test_what_is_said_and_written_after_a_batch_comes_after_it() -> None:
    out, err = CountingStream(), CountingStream()
    reporter = Reporter(as_json=True, out=out, err=err)
    reporter.event(ended(1), flush=False)
    reporter.say("softphone: something to say")
    reporter.event(ended(2), flush=False)
    reporter.json({"summary": True})
    said = err.getvalue().splitlines()
    line = "call ended after 1.0 s: hung up"
    assert said == [line, "softphone: something to say", line]
    written = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [w.get("call_id", w.get("summary")) for w in written] == ["c1", "c2", True]


def test_an_event_flushed_at_once_is_written_at_once() -> None:
    out, err = CountingStream(), CountingStream()
    reporter = Reporter(as_json=False, out=out, err=err)
    reporter.event(ended(3))
    assert out.getvalue() == "" and err.getvalue().endswith("\n") and err.writes == 1


class HeldStream(io.StringIO):
    """A stream whose writes wait until it is let go: a reader that stopped reading a pipe."""

    def __init__(self) -> None:
        super().__init__()
        self.let_go = threading.Event()
        self.entered = threading.Event()

    def write(self, text: str) -> int:
        self.entered.set()
        if not self.let_go.wait(10):
            raise AssertionError("never let go")
        return super().write(text)


def test_a_background_writer_returns_while_the_reader_is_stopped_and_loses_nothing() -> None:
    stream = HeldStream()
    writer = BackgroundWriter(stream, name="test")
    writer.write("first\n")
    assert stream.entered.wait(5)  # the thread is stuck in the stream's write now
    for n in range(1000):  # the caller is not: these return at once, held for the reader
        writer.write(f"line {n}\n")
    writer.flush()
    assert stream.getvalue() == ""
    stream.let_go.set()
    writer.close()  # returns once everything is written
    assert stream.getvalue() == "first\n" + "".join(f"line {n}\n" for n in range(1000))


def test_a_background_writer_waits_for_a_reader_far_behind() -> None:
    # Memory stays bounded: beyond max_pending characters, write() waits as a full pipe would.
    stream = HeldStream()
    writer = BackgroundWriter(stream, name="test", max_pending=10)
    writer.write("0123456789")
    returned = threading.Event()

    def write_more() -> None:
        writer.write("more\n")
        returned.set()

    more = threading.Thread(target=write_more)
    more.start()
    assert not returned.wait(0.3)  # bounded: it is still waiting for room
    stream.let_go.set()
    assert returned.wait(5)
    more.join(5)
    writer.close()
    assert stream.getvalue() == "0123456789more\n"


class GoneStream(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_failed_background_write_is_raised_to_the_writer() -> None:
    writer = BackgroundWriter(GoneStream(), name="test")
    writer.write("lost\n")
    writer.close()  # ends: nothing more can be written
    with pytest.raises(BrokenPipeError):
        writer.write("more\n")
    with pytest.raises(BrokenPipeError):
        writer.flush()


def test_the_reporter_written_by_threads_writes_everything_when_the_block_ends() -> None:
    out, err = HeldStream(), HeldStream()
    reporter = Reporter(as_json=True, out=out, err=err)
    with reporter.written_by_threads():
        for n in range(3):
            reporter.event(ended(n))  # each flushed: would wait for the held streams if direct
        reporter.say("softphone: said")
        assert out.getvalue() == "" and err.getvalue() == ""
        out.let_go.set()
        err.let_go.set()
    assert [json.loads(line)["call_id"] for line in out.getvalue().splitlines()] == [
        "c0",
        "c1",
        "c2",
    ]
    assert err.getvalue().splitlines()[-1] == "softphone: said"
    reporter.event(ended(9))  # afterwards it writes directly again
    assert json.loads(out.getvalue().splitlines()[-1])["call_id"] == "c9"
