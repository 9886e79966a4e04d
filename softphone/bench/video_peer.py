"""The softphone side of ``softphone bench video``: one phone in a child process that dials with
video or answers it, and logs what the benchmarks measure.

    python -m softphone.bench.video_peer dial URI --log OUT.json [--seconds S] [options]
    python -m softphone.bench.video_peer answer --log OUT.json [--sip-port P] [options]

It is the phone ``softphone dial --video`` / ``listen --video`` runs (phone/phone.py with the
headless audio, PCMU, and VP8 only), with the picture size, rate and bitrate of the benchmark
(the command line keeps 320x240 at 15 fps). Events go to stdout as JSON lines: ``ready`` (with
the SIP port), ``established``, ``ended``. The log written at the end holds:

- ``sent``: ``[counter, t]`` for each picture of our test pattern, ``t`` the monotonic instant
  the source made it (``--timing``; the source is wrapped for that: the pattern is unchanged);
- ``drawn``: ``[counter, t]`` for each picture the call decoded, ``t`` the instant it became the
  picture the call's pane would draw (``VideoStream.picture_listeners`` are told then), the
  counter read back from the picture (``--timing``);
- ``samples``: at random instants (``--sample-every S`` on average) the picture on show at that
  instant, its counter and its luma PSNR against the pattern picture of that counter: a broken
  picture (decoded from a damaged reference) scores low;
- ``stats``: the call's ``video_*`` statistics at its end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["main"]


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not WIDTHxHEIGHT") from None
    if w < 128 or h < 16 or w % 2 or h % 2:
        raise argparse.ArgumentTypeError("an even size of at least 128x16")
    return w, h


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m softphone.bench.video_peer")
    parser.add_argument("role", choices=("dial", "answer"))
    parser.add_argument("target", nargs="?", help="the URI to dial (role dial)")
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--sip-port", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=10.0, help="call length (dial)")
    parser.add_argument("--size", type=_size, default=(640, 360))
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--bitrate", type=int, default=1_000_000, metavar="BPS")
    parser.add_argument("--receive-only", action="store_true", help="send no video")
    parser.add_argument("--no-video", action="store_true", help="offer no video (audio only)")
    parser.add_argument(
        "--still", action="store_true", help="send the pattern's first picture over and over"
    )
    parser.add_argument("--timing", action="store_true", help="log sent and drawn pictures")
    parser.add_argument("--sample-every", type=float, default=0.0, metavar="S")
    parser.add_argument("--seed", type=int, default=1)
    return parser


class _Log:
    def __init__(self) -> None:
        self.sent: list[tuple[int, float]] = []
        self.drawn: list[tuple[int, float]] = []
        self.samples: list[dict[str, Any]] = []
        self.established_at: float | None = None
        self.ended_at: float | None = None
        self.stats: dict[str, object] = {}


def _say(**event: object) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def _wrap_the_source(log: _Log, *, timing: bool, still: bool) -> None:
    """Wrap the pattern the phone opens: each picture's making logged (``timing``), or one
    still picture sent over and over (``still``, as baresip's fakevideo sends)."""
    from softphone.media.video_source import TestPattern
    from softphone.phone import video_send

    class BenchPattern(TestPattern):
        _still: Any = None

        def read(self):  # type: ignore[no-untyped-def]
            index = self.index
            if still:
                if self._still is None:
                    self._still = self.picture(0)
                self.index += 1
                frame = self._still
            else:
                frame = super().read()
            if timing:
                log.sent.append((index, time.monotonic()))
            return frame

    original = video_send.open_source

    def open_source(settings: Any) -> Any:
        if settings.source == "pattern":
            return BenchPattern(settings.width, settings.height)
        return original(settings)

    video_send.open_source = open_source  # what VideoSender opens


def _watch(stream: Any, log: _Log) -> None:
    """Log each picture as it becomes the one the call would draw."""
    from softphone.media.video_source import read_counter

    def drawn(picture: Any) -> None:
        t = time.monotonic()
        log.drawn.append((read_counter(picture.frame), t))

    stream.picture_listeners.append(drawn)


def _sample(stream: Any, log: _Log, size: tuple[int, int]) -> None:
    """The picture on show now: its counter and PSNR against the pattern of that counter."""
    from softphone.bench.video_metrics import psnr
    from softphone.media.video_source import TestPattern, read_counter

    t = time.monotonic()
    picture = stream.last_picture
    if picture is None:
        log.samples.append({"t": t, "counter": None, "psnr": None})
        return
    counter = read_counter(picture.frame)
    luma = picture.frame.reformat(format="yuv420p").to_ndarray()[: picture.height]
    expected = TestPattern(*size).picture(counter).to_ndarray()[: size[1]]
    score = psnr(luma, expected) if luma.shape == expected.shape else 0.0
    log.samples.append({"t": t, "counter": counter, "psnr": min(score, 99.0)})


async def _run(args: argparse.Namespace, log: _Log) -> int:
    from softphone.config import Account, Config
    from softphone.phone import events as pe
    from softphone.phone.audio import NullAudio
    from softphone.phone.phone import Phone
    from softphone.phone.video import VideoSettings
    from softphone.sip.uri import SipUri

    if args.timing or args.still:
        _wrap_the_source(log, timing=args.timing, still=args.still)
    w, h = args.size
    video = VideoSettings(
        source=None if args.receive_only or args.no_video else "pattern",
        offer=not args.no_video,
        width=w,
        height=h,
        fps=args.fps,
        codecs=("VP8",),
        start_bitrate_bps=args.bitrate,
        max_bitrate_bps=args.bitrate,
        min_bitrate_bps=min(100_000, args.bitrate),
    )
    # Plain RTP, as baresip sends without mediaenc: SRTP on one side only would not compare.
    account = Account(
        name="bench",
        uri=SipUri(user="softphone", host=args.bind),
        media_encryption="none",
    )
    phone = Phone(
        Config(accounts=(account,), codecs=("pcmu",)),
        bind_host=args.bind,
        sip_port=args.sip_port,
        auto_answer=args.role == "answer",
        audio=NullAudio(),
        video=video,
    )
    await phone.start()
    rng = random.Random(args.seed)
    try:
        async with asyncio.timeout(10.0):
            while not (
                isinstance(ready := await phone.next_event(), pe.Listening)
                and ready.transport == "udp"
            ):
                pass
        _say(event="ready", sip_port=ready.port)
        call_id = await phone.dial(args.target) if args.role == "dial" else ""
        stream = None
        sampler: asyncio.Task[None] | None = None
        deadline = time.monotonic() + 30.0  # to be established; then the call's own length
        while True:
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                _say(event="timeout")
                return 1
            try:
                event = await asyncio.wait_for(phone.next_event(), timeout)
            except TimeoutError:
                if stream is not None and args.role == "dial":
                    await phone.hangup(call_id)
                    deadline = time.monotonic() + 10.0
                    continue
                _say(event="timeout")
                return 1
            if isinstance(event, pe.CallStateChanged) and event.state == "established":
                call_id = event.call_id
                log.established_at = time.monotonic()
                stream = phone._video.stream(call_id)  # the bench looks inside the call
                if stream is not None and args.timing:
                    _watch(stream, log)
                if stream is not None and args.sample_every > 0:
                    sampler = asyncio.create_task(_sampling(stream, log, args, rng))
                _say(event="established", t=log.established_at, video=stream is not None)
                if args.role == "dial":
                    deadline = time.monotonic() + args.seconds
                else:
                    deadline = time.monotonic() + 3600.0
            elif isinstance(event, pe.CallEnded):
                log.ended_at = time.monotonic()
                log.stats = dict(event.stats or {})
                if sampler is not None:
                    sampler.cancel()
                _say(event="ended", t=log.ended_at, status=event.status, reason=event.reason)
                return 0
    finally:
        await phone.stop()


async def _sampling(stream: Any, log: _Log, args: argparse.Namespace, rng: random.Random) -> None:
    while True:
        await asyncio.sleep(rng.uniform(0.5, 1.5) * args.sample_every)
        _sample(stream, log, args.size)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.role == "dial" and not args.target:
        print("video_peer: dial needs a URI", file=sys.stderr)
        return 2
    log = _Log()
    try:
        status = asyncio.run(_run(args, log))
    except KeyboardInterrupt:
        status = 1
    args.log.write_text(
        json.dumps(
            {
                "sent": log.sent,
                "drawn": log.drawn,
                "samples": log.samples,
                "established_at": log.established_at,
                "ended_at": log.ended_at,
                "stats": log.stats,
            }
        )
    )
    return status


if __name__ == "__main__":
    sys.exit(main())
