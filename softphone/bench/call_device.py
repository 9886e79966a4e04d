"""``softphone bench device``: the real device path against a paced virtual sound card.

A JACK server with the dummy driver (``jackd -n NAME -d dummy -r 48000 -p 480``, Debian's
jackd2) plays the sound card: it runs in real time, so PortAudio's callbacks come at the pace a
card would give them. A Phone in this process uses ``DeviceAudio`` on the JACK "system" device
(``JACK_DEFAULT_SERVER`` is set and PortAudio re-initialised before the device is opened) and
calls a baresip on 127.0.0.1 that talks looped speech over Opus, for ``seconds``.

Counted over the established call only (differences of the device's counters between the
established moment and the hang-up): PortAudio status flags (input/output under- and overflows),
the rings' under/overruns, callback errors, samples played as zeros because the speaker ring was
short, and frames played against the elapsed wall-clock time (1.00 = the device ran in real time
and the phone kept up with it). Also the CPU seconds over the same span: this process's (the
phone, its device callbacks and the bench's twice-a-second looks; ``time.process_time``, all
threads) and the baresip's at the other end of the call (``/proc``; headless, its ``aufile``
microphone, encoding Opus as we do: 32 kbit/s mono).
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from softphone.bench.call_peers import cpu_seconds, looped_wav
from softphone.config import Config
from softphone.lab.baresip import OPUS_AS_SOFTPHONE, Baresip
from softphone.lab.jack import JackServer
from softphone.lab.process import LabError
from softphone.media.device import DeviceIO, rescan_devices
from softphone.phone import events as pe
from softphone.phone.audio import DeviceAudio
from softphone.phone.phone import Phone
from softphone.transport.resolver import StubBackend

JACK_DEVICE = "system"


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceCounters:
    callbacks: int
    frames_played: int
    frames_captured: int
    input_underflows: int
    input_overflows: int
    output_underflows: int
    output_overflows: int
    ring_underruns: int
    ring_overruns: int
    missing_samples: int
    dropped_samples: int
    callback_errors: int

    @staticmethod
    def read(io: DeviceIO) -> DeviceCounters:
        ex = io.exchange
        return DeviceCounters(
            callbacks=ex.callbacks,
            frames_played=ex.frames_played,
            frames_captured=ex.frames_captured,
            input_underflows=ex.input_underflows,
            input_overflows=ex.input_overflows,
            output_underflows=ex.output_underflows,
            output_overflows=ex.output_overflows,
            ring_underruns=ex.speaker.underruns,
            ring_overruns=ex.speaker.overruns + ex.microphone.overruns,
            missing_samples=ex.speaker.missing_samples,
            dropped_samples=ex.speaker.dropped_samples + ex.microphone.dropped_samples,
            callback_errors=ex.callback_errors,
        )

    def __sub__(self, other: DeviceCounters) -> DeviceCounters:
        a, b = asdict(self), asdict(other)
        return DeviceCounters(**{k: a[k] - b[k] for k in a})


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceReport:
    seconds: float
    sample_rate: int
    block: int
    latency_s: tuple[float, float]
    counts: DeviceCounters
    speaker_dbfs: float
    packets_received: int
    packets_sent: int
    cpu_s: float = 0.0
    peer_cpu_s: float = 0.0

    @property
    def xruns(self) -> int:
        c = self.counts
        return (
            c.input_underflows
            + c.input_overflows
            + c.output_underflows
            + c.output_overflows
            + c.ring_underruns
            + c.ring_overruns
        )

    @property
    def pace(self) -> float:
        return self.counts.frames_played / (self.seconds * self.sample_rate)

    def to_json(self) -> dict[str, Any]:
        return {
            "benchmark": "device",
            "seconds": round(self.seconds, 3),
            "sample_rate": self.sample_rate,
            "block": self.block,
            "latency_s": list(self.latency_s),
            "xruns": self.xruns,
            "frames_played_per_elapsed": round(self.pace, 4),
            **asdict(self.counts),
            "speaker_dbfs": round(self.speaker_dbfs, 1),
            "packets_received": self.packets_received,
            "packets_sent": self.packets_sent,
            "cpu_s": round(self.cpu_s, 3),
            "baresip_cpu_s": round(self.peer_cpu_s, 3),
            "ratio_cpu_vs_baresip": round(self.cpu_s / max(self.peer_cpu_s, 1e-9), 3),
        }

    def table(self) -> str:
        c = self.counts
        return "\n".join(
            [
                f"device: JACK dummy 'system' at {self.sample_rate} Hz, {self.block}-sample blocks, "
                f"PortAudio latency in/out {1000 * self.latency_s[0]:.1f}/{1000 * self.latency_s[1]:.1f} ms",
                f"call: {self.seconds:.1f} s established, Opus to baresip; received {self.packets_received}, "
                f"sent {self.packets_sent} RTP packets; loudest speaker block seen {self.speaker_dbfs:.1f} dBFS",
                f"xruns: {self.xruns}  (PortAudio flags: output underflow {c.output_underflows}, "
                f"output overflow {c.output_overflows}, input underflow {c.input_underflows}, "
                f"input overflow {c.input_overflows}; rings: underruns {c.ring_underruns}, "
                f"overruns {c.ring_overruns})",
                f"zeros played for lack of audio: {c.missing_samples} samples; dropped: {c.dropped_samples}; "
                f"callback errors: {c.callback_errors}; callbacks: {c.callbacks}",
                f"frames played {c.frames_played} in {self.seconds:.2f} s = {self.pace:.4f} x real time "
                f"(captured {c.frames_captured})",
                f"CPU s: softphone on the device {self.cpu_s:.2f}, the baresip it talked to "
                f"(headless) {self.peer_cpu_s:.2f}; ratio {self.cpu_s / max(self.peer_cpu_s, 1e-9):.2f}",
            ]
        )


async def _expect(phone: Phone, match: Any, timeout_s: float) -> pe.PhoneEvent | None:
    """The first matching event, or None when ``timeout_s`` passes first."""
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                event = await phone.next_event()
                if match(event):
                    return event
    except TimeoutError:
        return None


def _established(e: pe.PhoneEvent) -> bool:
    return isinstance(e, pe.CallStateChanged) and e.state == "established"


async def _call_on_device(uri: str, seconds: float, peer_pid: int) -> DeviceReport:
    notices: list[str] = []
    audio = DeviceAudio(JACK_DEVICE, JACK_DEVICE, on_problem=notices.append)
    phone = Phone(
        Config(codecs=("opus",)),
        bind_host="127.0.0.1",
        sip_port=0,
        rng=random.Random(8),
        dns=StubBackend(),
        audio=audio,
    )
    await phone.start()
    try:
        call_id = await phone.dial(uri)
        if await _expect(phone, _established, 20.0) is None:
            raise LabError("the call to baresip was not established")
        engine = phone.call(call_id).engine
        if engine is None or not isinstance(engine.io, DeviceIO):
            raise LabError(
                f"the call is not on the JACK device: {'; '.join(notices) or 'no engine'}"
            )
        io = engine.io
        before, t0 = DeviceCounters.read(io), time.monotonic()
        cpu0, peer0 = time.process_time(), cpu_seconds(peer_pid)
        level = -200.0  # loudest 10 ms block seen at the twice-a-second looks: is sound coming out?
        while (remaining := seconds - (time.monotonic() - t0)) > 0:
            if await _expect(phone, lambda e: isinstance(e, pe.CallEnded), min(remaining, 0.5)):
                raise LabError(f"the call ended before {seconds:.0f} s")
            level = max(level, engine.speaker_level.last.rms_dbfs)
        after, elapsed = DeviceCounters.read(io), time.monotonic() - t0
        cpu, peer_cpu = time.process_time() - cpu0, cpu_seconds(peer_pid) - peer0
        await phone.hangup(call_id)
        ended = await _expect(phone, lambda e: isinstance(e, pe.CallEnded), 10.0)
        stats = ended.stats if isinstance(ended, pe.CallEnded) and ended.stats else {}
        return DeviceReport(
            seconds=elapsed,
            sample_rate=io.sample_rate,
            block=io.block,
            latency_s=io.latency_s,
            counts=after - before,
            speaker_dbfs=level,
            packets_received=int(str(stats.get("packets_received", 0))),
            packets_sent=int(str(stats.get("packets_sent", 0))),
            cpu_s=cpu,
            peer_cpu_s=peer_cpu,
        )
    finally:
        await phone.stop()


def run_device(workdir: Path, speech: Path, seconds: float) -> DeviceReport:
    """Start jackd and baresip, point PortAudio at the JACK server, call for ``seconds``."""
    wav = looped_wav(speech, workdir / "speech48k.wav", seconds + 60.0)
    jack = JackServer(workdir / "jack").start()
    saved = {key: os.environ.get(key) for key in jack.client_env()}
    try:
        os.environ.update(jack.client_env())  # read by PortAudio's JACK host API at initialise
        rescan_devices()
        bob = Baresip(
            workdir / "baresip",
            user="bench",
            audio=wav,
            codecs="opus/48000/1",
            extra_config=OPUS_AS_SOFTPHONE,
            auto_answer=True,
        ).start()
        try:
            return asyncio.run(_call_on_device(bob.uri, seconds, bob.pid))
        finally:
            bob.stop()
            # PortAudio must let go of the JACK server while it still runs (its JACK host API
            # asserts at exit otherwise); the next initialise must not look for it (nor start one).
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            os.environ.setdefault("JACK_NO_START_SERVER", "1")
            rescan_devices()
    finally:
        jack.stop()
