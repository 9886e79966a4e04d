"""The measuring JACK client of ``softphone bench mouth-to-ear`` (the ``JACK-Client`` package).

:class:`JackMeasurer` joins a JACK server (softphone/lab/jack.py: the dummy driver, paced in
real time) with one output port, ``mouth``, and one input port, ``ear``. Once :meth:`route`
has wired ``mouth`` to the caller's capture port and the callee's playback port to ``ear`` (and
cut every other connection the two peers have: PortAudio and baresip's jack module connect
themselves to ``system:*``), :meth:`measure` writes clicks into ``mouth`` at chosen JACK frame
positions and records ``ear`` by frame position; bench/m2e_clicks.py finds the clicks again.

Inside one process cycle JACK runs its clients in the order of the graph: the callee's client,
then the measurer, then the caller's. A click written in the measurer's cycle starting at frame
F is what the caller's client captures in that same cycle, and what the callee plays in the
cycle starting at G reaches ``ear`` in that cycle: G - F is what the two peers add between
their capture buffer and their playback buffer, in frames of the one clock. The card's own
period buffering (what the dummy driver would hold before a DAC) is outside it, and is the
same for any program on the card.

Which client is whose: PortAudio names every JACK client it opens "PortAudio" (JACK makes a
second one "PortAudio-01"); :func:`jack_clients_of_process` finds the names a process holds
through the socket jack2's client library binds for each client it opens
(``/dev/shm/jack_<client>_<uid>_<n>``, seen in ``/proc/net/unix`` against the process's file
descriptors). baresip's jack module takes its name from ``jack_client_name``.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from softphone.bench.call_latency import click
from softphone.bench.m2e_clicks import ClickDelays, ClickWriter, FrameRecorder, click_delays

MEASURER: Final = "m2e-measurer"
JACK_MISSING: Final = "the JACK-Client package is not installed: pip install JACK-Client"
_SOCKET = re.compile(r"/jack_(?P<name>.+)_\d+_\d+$")


class MeasurerError(Exception):
    """The measurer cannot join the server, or a peer's ports are not where expected."""


def _jack() -> Any:
    try:
        import jack
    except (ImportError, OSError) as exc:  # OSError: libjack itself is missing
        raise MeasurerError(f"{JACK_MISSING} ({exc})") from exc
    return jack


def jack_clients_of_process(pid: int, *, proc: Path = Path("/proc")) -> set[str]:
    """Names of the JACK clients process ``pid`` has open (jack2's per-client sockets)."""
    inodes: set[str] = set()
    try:
        fds = list((proc / str(pid) / "fd").iterdir())
    except OSError:
        return set()
    for fd in fds:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    names: set[str] = set()
    try:
        lines = (proc / "net" / "unix").read_text().splitlines()[1:]
    except OSError:
        return set()
    for line in lines:
        fields = line.split()
        if len(fields) >= 8 and fields[6] in inodes and (m := _SOCKET.search(fields[7])):
            names.add(m["name"])
    return names


@dataclass(frozen=True, slots=True, kw_only=True)
class Take:
    """One measurement: where the clicks were written, what came back, and the delays."""

    written: tuple[int, ...]
    recorded_start: int
    found: ClickDelays
    cycles: int  # process cycles the measurer ran during the take
    xruns: int  # the server's xruns during the take


class JackMeasurer:
    """A JACK client with ports ``mouth`` (out) and ``ear`` (in) on server ``server``."""

    def __init__(self, server: str, *, name: str = MEASURER) -> None:
        jack = _jack()
        try:
            self.client = jack.Client(name, no_start_server=True, servername=server)
        except jack.JackError as exc:
            raise MeasurerError(f"cannot join JACK server {server}: {exc}") from exc
        self.rate = int(self.client.samplerate)
        self.template = click(self.rate)
        self.mouth = self.client.outports.register("mouth")
        self.ear = self.client.inports.register("ear")
        # Swapped whole by the main thread; the process callback reads it once per cycle.
        self._take: tuple[ClickWriter, FrameRecorder] | None = None
        self.cycles = 0
        self.xruns = 0
        self.client.set_process_callback(self._process)
        self.client.set_xrun_callback(self._xrun)
        self.client.activate()

    def _xrun(self, delay_usecs: float) -> None:
        self.xruns += 1

    def _process(self, frames: int) -> None:
        # The JACK thread: copies only, into buffers made before the take.
        first = int(self.client.last_frame_time)
        out = self.mouth.get_array()
        take = self._take
        self.cycles += 1
        if take is None:
            out.fill(0.0)
            return
        writer, recorder = take
        writer.render(first, out)
        recorder.store(first, self.ear.get_array())

    @property
    def frame_time(self) -> int:
        return int(self.client.frame_time)

    def ports_of(self, client: str) -> tuple[list[str], list[str]]:
        """(capture, playback) audio port names of ``client``: its inputs and its outputs."""
        pattern = "^" + re.escape(client) + ":"
        ins = self.client.get_ports(pattern, is_audio=True, is_input=True)
        outs = self.client.get_ports(pattern, is_audio=True, is_output=True)
        return [p.name for p in ins], [p.name for p in outs]

    def route(self, *, mouth_to: Iterable[str], ear_from: str, peers: Iterable[str]) -> None:
        """Cut every connection of the ports of ``peers`` (client names), then connect
        ``mouth`` to each of ``mouth_to`` and ``ear_from`` to ``ear``: the callee captures
        silence, the caller's playback goes nowhere."""
        for peer in peers:
            ins, outs = self.ports_of(peer)
            for name in [*ins, *outs]:
                port = self.client.get_port_by_name(name)
                for other in self.client.get_all_connections(port):
                    if port.is_input:
                        self.client.disconnect(other, port)
                    else:
                        self.client.disconnect(port, other)
        for target in mouth_to:
            self.client.connect(self.mouth, target)
        self.client.connect(ear_from, self.ear)

    def connections(self) -> tuple[list[str], list[str]]:
        """What ``mouth`` feeds and what feeds ``ear``."""
        return (
            [p.name for p in self.client.get_all_connections(self.mouth)],
            [p.name for p in self.client.get_all_connections(self.ear)],
        )

    def measure(self, positions: list[int], *, window: int, timeout_s: float) -> Take:
        """Write clicks at ``positions`` (future frame positions), record until ``window``
        frames after the last one, and pair what came back."""
        if not positions:
            raise MeasurerError("no clicks to write")
        end = positions[-1] + window
        start = self.frame_time
        if positions[0] <= start:
            raise MeasurerError(f"clicks must lie ahead of frame {start}, not at {positions[0]}")
        writer = ClickWriter(positions, self.template)
        recorder = FrameRecorder(start, end - start)
        cycles0, xruns0 = self.cycles, self.xruns
        self._take = (writer, recorder)
        deadline = time.monotonic() + timeout_s
        try:
            while self.frame_time < end:
                if time.monotonic() >= deadline:
                    raise MeasurerError(
                        f"the JACK clock did not reach frame {end} within {timeout_s:.0f} s"
                    )
                time.sleep(min(0.1, max(0.0, (end - self.frame_time) / self.rate)))
        finally:
            self._take = None
        found = click_delays(
            positions, recorder.recorded(), recorder.start, window=window, template=self.template
        )
        return Take(
            written=tuple(positions),
            recorded_start=recorder.start,
            found=found,
            cycles=self.cycles - cycles0,
            xruns=self.xruns - xruns0,
        )

    def close(self) -> None:
        self._take = None
        try:
            self.client.deactivate()
        finally:
            self.client.close()
