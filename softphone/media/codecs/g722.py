"""G.722 (ITU-T G.722, 64 kbit/s SB-ADPCM) through PyAV's FFmpeg codec.

RFC 3551 §4.5.2: the RTP clock rate is 8000 although the codec samples at 16000 Hz (a historical
mistake kept for compatibility); the descriptor says so, the PCM side is 16 kHz.

G.722 turns every two 16 kHz samples into one byte, with no look-ahead, so a frame of N samples
must give exactly N/2 bytes. PyAV, however, sends audio through a FIFO sized to the encoder's
frame_size (320 samples, not settable): a 10 ms frame would come out one call late. We therefore
accept only multiples of 20 ms, and each encode() checks that exactly N/2 bytes came out
(CodecError otherwise), so buffering can never slip in unnoticed. Each byte decodes to 2 samples.
PyAV is imported lazily so that a missing or codec-less FFmpeg only disables G.722.
"""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING, Final, Literal

import numpy as np

from softphone.media.codecs.base import (
    CodecDescriptor,
    CodecError,
    Decoder,
    DecoderOptions,
    Encoder,
    EncoderOptions,
    Pcm,
    check_frame,
    samples_per_frame,
    to_float,
    to_int16,
)

if TYPE_CHECKING:
    from av.audio.codeccontext import AudioCodecContext

SAMPLE_RATE: Final = 16000
CLOCK_RATE: Final = 8000  # RFC 3551 §4.5.2
FIFO_FRAME: Final = 320  # FFmpeg's g722 encoder frame size: 20 ms
MISSING_LIBRARY: Final = "PyAV is not installed: pip install av"
MISSING_CODEC: Final = "this PyAV's FFmpeg has no G.722 codec"


def probe() -> str | None:
    """None when G.722 works here, else why not (for ``unavailable_reasons``)."""
    try:
        import av
    except Exception:
        return MISSING_LIBRARY
    try:
        av.Codec("g722", "w")
        av.Codec("g722", "r")
    except Exception:
        return MISSING_CODEC
    return None


def _context(mode: Literal["r", "w"]) -> AudioCodecContext:
    reason = probe()
    if reason is not None:
        raise CodecError(reason)
    import av

    try:
        context = av.CodecContext.create("g722", mode)
    except av.FFmpegError as exc:
        raise CodecError(f"G722: cannot create the codec: {exc}") from exc
    context.sample_rate = SAMPLE_RATE
    context.layout = "mono"
    if mode == "w":
        context.format = "s16"
        context.time_base = Fraction(1, SAMPLE_RATE)
    try:
        context.open()
    except av.FFmpegError as exc:
        raise CodecError(f"G722: cannot open the codec: {exc}") from exc
    return context


class G722Encoder:
    """16 kHz mono float32 frame (a multiple of 20 ms) -> samples/2 bytes of G.722."""

    sample_rate = SAMPLE_RATE

    def __init__(self, options: EncoderOptions) -> None:
        self._samples = samples_per_frame(SAMPLE_RATE, options.frame_ms)
        if self._samples % FIFO_FRAME:
            raise CodecError(
                f"G722: frame duration must be a multiple of 20 ms, not {options.frame_ms}"
            )
        self._context = _context("w")
        self._pts = 0

    def encode(self, pcm: Pcm) -> bytes:
        import av

        check_frame(pcm, self._samples, "G722")
        frame = av.AudioFrame.from_ndarray(
            to_int16(pcm).reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._pts
        self._pts += self._samples
        try:
            packets = self._context.encode(frame)
        except av.FFmpegError as exc:
            raise CodecError(f"G722 encode failed: {exc}") from exc
        payload = b"".join(bytes(packet) for packet in packets)
        if len(payload) != self._samples // 2:
            raise CodecError(f"G722: {self._samples} samples gave {len(payload)} bytes")
        return payload

    def set_packet_loss(self, percent: int) -> None:
        """G.722 has nothing to tune for loss."""


class G722Decoder:
    """G.722 payload of N bytes -> 2N samples at 16 kHz."""

    sample_rate = SAMPLE_RATE

    def __init__(self, options: DecoderOptions) -> None:
        self._context = _context("r")

    def decode(self, payload: bytes) -> Pcm:
        import av

        if not payload:  # an empty packet would put FFmpeg into draining mode
            raise CodecError("G722: empty payload")
        try:
            frames = self._context.decode(av.Packet(payload))
        except av.FFmpegError as exc:
            raise CodecError(f"G722 decode failed: {exc}") from exc
        pcm = (
            np.concatenate([frame.to_ndarray().reshape(-1) for frame in frames]) if frames else None
        )
        if pcm is None or pcm.dtype != np.int16 or len(pcm) != 2 * len(payload):
            raise CodecError(
                f"G722: {len(payload)} bytes did not decode to {2 * len(payload)} samples"
            )
        return to_float(pcm)

    def conceal(self, samples: int) -> Pcm | None:
        return None

    def decode_fec(self, next_payload: bytes, samples: int) -> Pcm | None:
        return None


def _make_encoder(options: EncoderOptions) -> Encoder:
    return G722Encoder(options)


def _make_decoder(options: DecoderOptions) -> Decoder:
    return G722Decoder(options)


# RFC 3551 Table 4: G722 is static payload type 9, "G722/8000".
G722: Final = CodecDescriptor(
    encoding="G722",
    clock_rate=CLOCK_RATE,
    sample_rate=SAMPLE_RATE,
    channels=1,
    static_payload_type=9,
    fmtp=None,
    has_plc=False,
    has_fec=False,
    make_encoder=_make_encoder,
    make_decoder=_make_decoder,
)
