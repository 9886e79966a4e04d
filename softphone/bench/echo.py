"""``softphone bench echo``: the echo canceller (media/echo.py) on a simulated room.

    softphone bench echo [--speech REF.wav] [--delay-ms 30 --delay-ms 60 ...] [--snr-db 30]
                         [--ser-db 0 --ser-db 20 ...] [--backend speex|webrtc] [--json]

The far end's speech plays through a synthetic room impulse response into the microphone: a
direct path after the echo path's delay, then exponentially decaying noise for the
reflections (RT60 0.3 s, an office), 10 dB weaker in all than the direct path (a laptop's
speaker and microphone a hand's width apart). For each delay (default 30, 60 and 120 ms):

- single talk: the microphone hears only the echo (and a -70 dBFS noise floor). ERLE, the
  echo return loss enhancement, is the microphone's power over the canceller's output power,
  once the canceller has converged (after ``--settle-s``, 3 s).
- double talk: the near end talks over the echo (``--ser-db``: near-end speech to echo power,
  0 dB by default; repeat it for a sweep, one row each) with room noise (pink, ``--snr-db``:
  near-end speech to noise, 30 dB). WB-PESQ (ITU-T P.862.2) scores the canceller's output
  against the clean near-end speech, from the moment the near end starts talking
  (``--settle-s`` in); the same score of the raw microphone (canceller off) is the
  comparison. With ``--ser-db 0`` the echo is as loud as the talker (a laptop at full
  volume); WB-PESQ is harsh on any speech left over: near-end speech with the far end's
  speech 20 dB under it scores 1.9, 30 dB under it 2.9, 40 dB under it 3.65.
- no echo: the same near end and noise through the canceller with the far end silent, the
  score a canceller that removed the echo perfectly and touched nothing else would get. It
  bounds the double-talk score: the noise alone costs that much (the raw near end in 30 dB
  of pink noise scores 2.8; the cancellers' noise suppressors lift it to 3.2-3.3, under the
  3.5 target whatever the echo).
- CPU: the process time the canceller took per second of audio (both directions).

Both talkers come from the same recording (``--speech``, 16 kHz mono: the tests' speech
sample): the far end from its first half (repeated to last the lead-in and the scored
seconds), the near end from its second half. Everything runs at 48 kHz, the rate a sound card runs the
engine at; the scores resample to 16 kHz. Targets: ERLE >= 25 dB, double-talk PESQ >= 3.5.
``--backend`` picks the canceller (media/echo.py): speex (the default) or webrtc.
Exit status: 0 every target met, 1 a target missed, 2 usage errors or a missing piece (the
livekit package or libspeexdsp, the pesq package, the speech file).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final, TextIO

import numpy as np
import numpy.typing as npt

COMMANDS: Final = ("echo",)
DEFAULT_SPEECH: Final = Path("tests/data/audio/speech16k.wav")
DEFAULT_DELAYS_MS: Final = (30, 60, 120)
RATE: Final = 48000
SCORE_RATE: Final = 16000
BLOCK: Final = 480  # what the engine hands the canceller per tick with a 10 ms device block
# A speaker and a microphone a hand's width apart in an office: the direct path dominates.
DRR_DB: Final = 10.0
RT60_S: Final = 0.3
MIN_ERLE_DB: Final = 25.0
MIN_PESQ: Final = 3.5
DEFAULT_SER_DB: Final = 0.0
EXIT_OK = 0
EXIT_TARGET_MISSED = 1
EXIT_ERROR = 2

F32 = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class EchoResult:
    delay_ms: int
    ser_db: float  # near-end speech to echo power at the microphone
    erle_db: float  # single talk
    pesq_on: float  # double talk, canceller on
    pesq_off: float  # double talk, the raw microphone
    pesq_no_echo: float  # the canceller's output with the far end silent: the room's bound
    cpu_s_per_s: float  # canceller CPU per second of audio
    met: bool


def add_commands(subparsers: Any) -> None:
    from softphone.media.echo import BACKENDS

    echo = subparsers.add_parser(
        "echo", help="echo cancellation: ERLE, double-talk PESQ and CPU on a simulated room"
    )
    echo.add_argument("--speech", type=Path, default=DEFAULT_SPEECH, metavar="REF.wav")
    echo.add_argument(
        "--delay-ms",
        type=int,
        action="append",
        metavar="MS",
        help="echo path delay (repeatable; default 30, 60 and 120)",
    )
    echo.add_argument("--snr-db", type=float, default=30.0, help="near speech to noise (30)")
    echo.add_argument(
        "--ser-db",
        type=float,
        action="append",
        metavar="DB",
        help="near speech to echo (repeatable for a sweep; default 0)",
    )
    echo.add_argument(
        "--backend", choices=BACKENDS, default=BACKENDS[0], help="the echo canceller (webrtc)"
    )
    echo.add_argument(
        "--settle-s", type=float, default=3.0, help="far-end-only lead-in before scoring (3)"
    )
    echo.add_argument("--seconds", type=float, default=8.0, help="scored audio (8)")
    echo.add_argument("--seed", type=int, default=1)
    echo.add_argument("--json", action="store_true", help="print the results as JSON")


def room_response(
    delay_s: float, rng: np.random.Generator, *, drr_db: float = DRR_DB, rate: int = RATE
) -> F32:
    """A direct path (gain 1) after ``delay_s``, then exponentially decaying reflections
    (RT60 ``RT60_S``) holding ``drr_db`` less energy than the direct path."""
    start, tail = int(delay_s * rate), int(RT60_S * rate)
    decay = np.exp(-6.9 * np.arange(1, tail) / tail)  # amplitude -60 dB at RT60
    reflections = rng.standard_normal(tail - 1) * decay
    reflections *= np.sqrt(10 ** (-drr_db / 10) / np.sum(reflections**2))
    response = np.zeros(start + tail, dtype=np.float64)
    response[start] = 1.0
    response[start + 1 :] = reflections
    return response.astype(np.float32)


def pink_noise(n: int, rng: np.random.Generator) -> F32:
    """Noise falling 3 dB an octave, like a room's (ventilation, traffic), not white hiss."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    spectrum[1:] /= np.sqrt(np.arange(1, len(spectrum)))
    spectrum[0] = 0.0
    return np.fft.irfft(spectrum, n).astype(np.float32)


def power(x: npt.NDArray[Any]) -> float:
    return float(np.mean(np.square(x, dtype=np.float64)))


def scaled(x: F32, to_power: float) -> F32:
    return (x * math.sqrt(to_power / max(power(x), 1e-20))).astype(np.float32)


def process(far: F32, mic: F32, backend: str) -> tuple[F32, float]:
    """The canceller's output for ``mic`` while ``far`` plays, in engine-sized blocks, and the
    CPU seconds it took."""
    from softphone.media.echo import EchoCanceller

    canceller = EchoCanceller(RATE, backend=backend)
    out = np.zeros_like(mic)
    done = 0
    started = time.process_time()
    for at in range(0, len(mic), BLOCK):
        canceller.render(far[at : at + BLOCK])
        cleaned = canceller.capture(mic[at : at + BLOCK])
        out[done : done + len(cleaned)] = cleaned
        done += len(cleaned)
    return out, time.process_time() - started


def wb_pesq(reference: F32, degraded_48k: F32) -> float:
    from pesq import pesq

    from softphone.media.resample import resample

    degraded = resample(degraded_48k, RATE, SCORE_RATE)
    n = min(len(reference), len(degraded))
    return float(pesq(SCORE_RATE, reference[:n], degraded[:n], "wb"))


def measure(
    speech_16k: F32,
    delay_ms: int,
    *,
    snr_db: float,
    ser_dbs: list[float],
    settle_s: float,
    seconds: float,
    seed: int,
    backend: str,
) -> list[EchoResult]:
    """One room (echo path delay ``delay_ms``): single talk once, then double talk at each
    near-end to echo ratio in ``ser_dbs``; one result per ratio."""
    from softphone.media.resample import resample

    rng = np.random.default_rng(seed + delay_ms)
    total = settle_s + seconds
    half = len(speech_16k) // 2
    if half < seconds * SCORE_RATE:
        raise ValueError(
            f"the speech sample is {len(speech_16k) / SCORE_RATE:.1f} s long; the near end's"
            f" {seconds:g} s come from its second half"
        )
    # The far end talks from the first half (repeated as needed), the near end from the second.
    far_16k = np.resize(speech_16k[:half], int(total * SCORE_RATE))
    far = resample(far_16k, SCORE_RATE, RATE)
    near_16k = speech_16k[half : half + int(seconds * SCORE_RATE)]
    near = resample(near_16k, SCORE_RATE, RATE)
    n = len(far)
    echo = np.convolve(far, room_response(delay_ms / 1000, rng))[:n].astype(np.float32)
    floor = (10 ** (-70 / 20) * rng.standard_normal(n)).astype(np.float32)

    single, cpu_single = process(far, echo + floor, backend)
    settled = slice(int(settle_s * RATE), n)
    erle = 10 * np.log10(power((echo + floor)[settled]) / max(power(single[settled]), 1e-20))

    # The near end starts talking once the canceller had the lead-in to converge.
    start = int(settle_s * RATE)
    talk = np.zeros(n, dtype=np.float32)
    talk[start : start + len(near)] = near[: n - start]
    speech_power = power(near)
    noise = scaled(pink_noise(n, rng), speech_power / 10 ** (snr_db / 10))
    # What the canceller makes of the near end alone (far end silent, no echo): no canceller
    # can do better in this room, whatever the echo; its noise suppression may do better
    # than the raw microphone.
    alone, _ = process(np.zeros_like(far), (talk + noise).astype(np.float32), backend)
    pesq_no_echo = wb_pesq(near_16k, alone[start:])
    results = []
    for ser_db in ser_dbs:
        echo_dt = scaled(echo, speech_power / 10 ** (ser_db / 10))
        mic = (talk + echo_dt + noise).astype(np.float32)
        cleaned, cpu_double = process(far, mic, backend)
        pesq_on = wb_pesq(near_16k, cleaned[start:])
        pesq_off = wb_pesq(near_16k, mic[start:])
        cpu = (cpu_single + cpu_double) / (2 * n / RATE)
        results.append(
            EchoResult(
                delay_ms=delay_ms,
                ser_db=ser_db,
                erle_db=round(float(erle), 1),
                pesq_on=round(pesq_on, 2),
                pesq_off=round(pesq_off, 2),
                pesq_no_echo=round(pesq_no_echo, 2),
                cpu_s_per_s=round(cpu, 4),
                met=bool(erle >= MIN_ERLE_DB and pesq_on >= MIN_PESQ),
            )
        )
    return results


def run(args: argparse.Namespace, *, out: TextIO) -> int:
    import sys

    from softphone.media.echo import EchoCanceller, EchoError
    from softphone.media.wav import WavError, read_wav

    try:
        import pesq  # noqa: F401
    except ImportError:
        print("softphone bench echo: needs the pesq package: pip install pesq", file=sys.stderr)
        return EXIT_ERROR
    try:
        EchoCanceller(RATE, backend=args.backend)
        pcm, rate = read_wav(args.speech)
    except (EchoError, WavError) as exc:
        print(f"softphone bench echo: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if rate != SCORE_RATE:
        from softphone.media.resample import resample

        pcm = resample(pcm, rate, SCORE_RATE)
    delays = args.delay_ms or list(DEFAULT_DELAYS_MS)
    ser_dbs = args.ser_db or [DEFAULT_SER_DB]
    try:
        results = [
            result
            for delay in delays
            for result in measure(
                pcm,
                delay,
                snr_db=args.snr_db,
                ser_dbs=ser_dbs,
                settle_s=args.settle_s,
                seconds=args.seconds,
                seed=args.seed,
                backend=args.backend,
            )
        ]
    except ValueError as exc:
        print(f"softphone bench echo: {exc}", file=sys.stderr)
        return EXIT_ERROR
    met = all(r.met for r in results)
    if args.json:
        report = {"backend": args.backend, "results": [asdict(r) for r in results], "met": met}
        out.write(json.dumps(report) + "\n")
    else:
        print(
            f"echo path: room response at 48 kHz, canceller {args.backend}, "
            f"near/noise {args.snr_db:g} dB; targets ERLE >= {MIN_ERLE_DB:g} dB, "
            f"double-talk WB-PESQ >= {MIN_PESQ:g}",
            file=out,
        )
        print(
            f"{'delay':>7s} {'SER dB':>7s} {'ERLE dB':>8s} {'PESQ on':>8s} {'PESQ off':>9s} "
            f"{'no echo':>8s} {'CPU s/s':>8s}  result",
            file=out,
        )
        for r in results:
            print(
                f"{r.delay_ms:5d}ms {r.ser_db:7g} {r.erle_db:8.1f} {r.pesq_on:8.2f} "
                f"{r.pesq_off:9.2f} {r.pesq_no_echo:8.2f} {r.cpu_s_per_s:8.4f}  "
                f"{'PASS' if r.met else 'FAIL'}",
                file=out,
            )
    return EXIT_OK if met else EXIT_TARGET_MISSED
