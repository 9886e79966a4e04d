"""RTP depacketisers: RTP packets in, whole access units (frames) out (sans-IO).

One depacketiser per RTP stream, built by :func:`make_depacketizer` from the SDP ``rtpmap`` and
``fmtp`` of the stream. Packets go in in sequence order (after :class:`~softphone.rtp.reorder.
ReorderBuffer`), each with ``lost_before``: how many packets the reorder buffer gave up on right
before it. Video depacketisers then drop the damaged access unit and everything up to the next key
frame (``waiting_for_keyframe``), so that a decoder never sees smeared frames.

What comes out (what the decoders and the recorder of softphone.media expect):

- H.264 / H.265 (``h264.py``, ``h265.py``): Annex-B with 4-byte start codes; the parameter sets
  are put in band before every key frame.
- VP8 / VP9 (``vp8.py``, ``vp9.py``): the frame as the encoder wrote it; for VP9 a picture of
  several spatial layers comes out as one superframe (VP9 bitstream spec Annex B).
- MJPEG (``jpeg.py``): a complete JFIF image rebuilt from the RFC 2435 headers.
- AAC (``aac.py``): one raw AAC frame (no ADTS) per unit, ``extradata`` = AudioSpecificConfig.
- PCMU / PCMA / L16 / Opus (``audio.py``): the RTP payload, one unit per packet.

The registry is a dict keyed by the SDP encoding name (case-insensitive), not an if/elif chain.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeAlias

from softphone.rtp.errors import RtpError, RtpParseError

if TYPE_CHECKING:  # the RTP packet module loads with the RTP session, after PLAY
    from softphone.rtp.packet import RtpPacket


@dataclass(frozen=True, slots=True, kw_only=True)
class AccessUnit:
    """One decodable unit: a video picture or an audio frame."""

    data: bytes
    """H.264/H.265: Annex-B (00 00 00 01 + NAL ...), parameter sets in band before every key
    frame; MJPEG: a complete JFIF image; AAC: one raw AAC frame (no ADTS); PCMU/PCMA/L16/Opus:
    the RTP payload."""
    timestamp: int
    """RTP timestamp (clock ticks)."""
    keyframe: bool
    """IDR (H.264) / IRAP (H.265) / key frame (VP8, VP9); always True for MJPEG and audio."""
    codec: str
    """FFmpeg's name: h264, hevc, vp8, vp9, mjpeg, aac, pcm_mulaw, pcm_alaw, pcm_s16be, opus."""


class Depacketizer(Protocol):
    """What every depacketiser offers; its users rely on nothing else."""

    def push(self, packet: RtpPacket, *, lost_before: int = 0) -> list[AccessUnit]:
        """Take the next packet in sequence order; return the units it completed."""
        ...

    def flush(self) -> list[AccessUnit]:
        """End of stream: return a unit still being assembled if it is usable."""
        ...

    @property
    def extradata(self) -> bytes | None:
        """Codec configuration for decoders and muxers (Annex-B parameter sets, AAC
        AudioSpecificConfig), None when not known (yet)."""
        ...

    @property
    def waiting_for_keyframe(self) -> bool:
        """Video: True from the start and after a loss until the next key frame is out."""
        ...


class UnsupportedCodec(RtpError):
    """No depacketiser for this encoding (or for this variant of it, ``reason`` says which)."""

    def __init__(self, encoding: str, reason: str = "") -> None:
        self.encoding = encoding
        self.reason = reason
        super().__init__(f"no depacketiser for {encoding}" + (f" ({reason})" if reason else ""))


class PayloadError(RtpParseError):
    """A payload descriptor or codec header that does not parse (VP8, VP9). Raised by the
    codec modules' parse functions; a depacketiser's ``push`` catches it and drops the frame."""


class BitReader:
    """Most-significant-bit-first reader over bytes (H.264/H.265 headers, AAC configs).

    Reading past the end raises EOFError; callers turn that into "drop it", never let it out.
    """

    def __init__(self, data: bytes, bit_offset: int = 0) -> None:
        self._data = data
        self.position = bit_offset  # in bits

    @property
    def remaining(self) -> int:
        return 8 * len(self._data) - self.position

    def u(self, bits: int) -> int:
        """An unsigned integer of ``bits`` bits (H.264 §7.2 ``u(n)``)."""
        if bits > self.remaining:
            raise EOFError(f"{bits} bits wanted, {self.remaining} left")
        value = 0
        for _ in range(bits):
            byte = self._data[self.position >> 3]
            value = value << 1 | (byte >> (7 - (self.position & 7))) & 1
            self.position += 1
        return value

    def ue(self) -> int:
        """An unsigned Exp-Golomb code (H.264 §9.1 ``ue(v)``)."""
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 31:
                raise EOFError("Exp-Golomb code longer than 32 bits")
        return (1 << zeros) - 1 + self.u(zeros)

    def skip(self, bits: int) -> None:
        if bits > self.remaining:
            raise EOFError(f"{bits} bits to skip, {self.remaining} left")
        self.position += bits

    def bits_as_bytes(self, start: int, end: int) -> bytes:
        """The bits ``start:end`` (bit positions) as bytes, the last one padded with zeros."""
        copy = BitReader(self._data, start)
        out = bytearray()
        while end - copy.position >= 8:
            out.append(copy.u(8))
        if left := end - copy.position:
            out.append(copy.u(left) << (8 - left))
        return bytes(out)


Factory: TypeAlias = Callable[[int, Mapping[str, str], int], Depacketizer]
"""``(clock_rate, fmtp with lower-case keys, channels) -> Depacketizer``."""


def make_depacketizer(
    encoding: str, clock_rate: int, fmtp: Mapping[str, str], channels: int = 1
) -> Depacketizer:
    """The depacketiser for an SDP ``a=rtpmap`` encoding name (any case) and its ``a=fmtp``.

    fmtp parameter names are case-insensitive (RFC 3640 §4.1 writes ``sizeLength``); keys are
    lower-cased and values stripped (a trailing ``;`` or blanks in the SDP are harmless). Raises
    UnsupportedCodec for an unknown encoding or an unsupported variant.
    """
    factory = _REGISTRY.get(encoding.strip().lower())
    if factory is None:
        raise UnsupportedCodec(encoding)
    params = {k.strip().lower(): v.strip().rstrip(";").strip() for k, v in fmtp.items()}
    return factory(clock_rate, params, channels)


def supported_encodings() -> list[str]:
    """The encoding names make_depacketizer knows (lower case)."""
    return sorted(_REGISTRY)


# The codec modules import AccessUnit from this module, so they are imported after it is defined.
from softphone.rtp.depacketize import aac, audio, h264, h265, jpeg, vp8, vp9  # noqa: E402

_REGISTRY: Mapping[str, Factory] = {
    "h264": h264.H264Depacketizer.from_sdp,
    "h265": h265.H265Depacketizer.from_sdp,
    "jpeg": jpeg.JpegDepacketizer.from_sdp,
    "mpeg4-generic": aac.Mpeg4GenericDepacketizer.from_sdp,
    "mp4a-latm": aac.LatmDepacketizer.from_sdp,
    "pcmu": audio.PayloadDepacketizer.pcmu,
    "pcma": audio.PayloadDepacketizer.pcma,
    "l16": audio.PayloadDepacketizer.l16,
    "opus": audio.PayloadDepacketizer.opus,
    "vp8": vp8.Vp8Depacketizer.from_sdp,
    "vp9": vp9.Vp9Depacketizer.from_sdp,
}

__all__ = [
    "AccessUnit",
    "BitReader",
    "Depacketizer",
    "Factory",
    "PayloadError",
    "UnsupportedCodec",
    "make_depacketizer",
    "supported_encodings",
]
