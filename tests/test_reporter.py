"""The CLI's Reporter: a batch of events (flush=False) is written at once on flush, and nothing
is lost or reordered around it."""

from __future__ import annotations

import io
import json

from softphone.phone import events as pe
from softphone.report import Reporter


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
