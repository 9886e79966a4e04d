"""VP8 depacketiser (RFC 7741) (sans-IO).

Packets -> payload descriptor (RFC 7741 §4.2) -> frames. A frame is every packet of one RTP
timestamp (§4.1); it starts with a packet whose S bit is set and partition index is 0, and ends
at the marker bit (or, for a sender that never sets it, when the timestamp changes). What comes
out is the VP8 frame as the encoder wrote it (RFC 6386 §9), which FFmpeg's vp8 decoder takes.

Key frames (§4.3, RFC 6386 §9.1): the P bit of the first byte of the VP8 payload header is 0,
and the key frame header that follows holds the start code 9d 01 2a and the picture size.

Loss and damage, as the H.264 depacketiser: at the start, after ``lost_before`` > 0, or after
a frame that does not hold together (its first packet missing, a malformed descriptor, a first
partition whose size overruns the frame, a key frame without its start code), nothing comes out
until the next key frame (``waiting_for_keyframe``); the caller asks for one with a PLI.

Bad bytes: :func:`parse_descriptor` and :func:`parse_frame_header` raise
:class:`~softphone.rtp.depacketize.PayloadError` (a RtpParseError); ``push`` never raises, it
counts what it drops in ``dropped_units``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from softphone.rtp.depacketize import AccessUnit, PayloadError

if TYPE_CHECKING:
    from softphone.rtp.packet import RtpPacket

MAX_FRAME_BYTES: Final = 8 << 20  # a 4K VP8 key frame is a few hundred KB; more is junk
KEY_FRAME_START_CODE: Final = b"\x9d\x01\x2a"  # RFC 6386 §9.1
FRAME_HEADER_SIZE: Final = 3  # RFC 6386 §9.1: frame tag (3 bytes)
KEY_FRAME_HEADER_SIZE: Final = 10  # frame tag, start code, 2 x 16-bit size and scale


@dataclass(frozen=True, slots=True)
class Vp8Descriptor:
    """The VP8 payload descriptor (RFC 7741 §4.2); absent optional fields are None."""

    size: int
    """Bytes the descriptor takes at the start of the payload."""
    non_reference: bool  # N: no other frame references this one
    start: bool  # S: the first packet of a partition
    partition: int  # PID: 0-7
    picture_id: int | None = None  # I: 7 or 15 bits
    picture_id_bits: int = 0  # 7 or 15 when present
    tl0_pic_idx: int | None = None  # L
    tid: int | None = None  # T: temporal layer index
    layer_sync: bool = False  # Y
    key_idx: int | None = None  # K

    @property
    def starts_frame(self) -> bool:
        """RFC 7741 §4.2: S = 1 and PID = 0 is the first packet of a frame."""
        return self.start and self.partition == 0


def parse_descriptor(payload: bytes) -> Vp8Descriptor:
    """The payload descriptor at the start of ``payload`` (RFC 7741 §4.2).

    ::

        |X|R|N|S|R| PID |     X: |I|L|T|K| RSV |   I: |M| PictureID (7 or 15 bits) |
        L: | TL0PICIDX |      T/K: |TID|Y| KEYIDX  |

    Raises PayloadError when the payload ends inside the descriptor or holds nothing after it.
    The reserved bits are ignored (§4.2: receivers MUST ignore them).
    """
    if not payload:
        raise PayloadError("VP8: empty payload")
    first = payload[0]
    pos = 1
    picture_id = tl0 = tid = key_idx = None
    bits = 0
    sync = False
    if first & 0x80:  # X: the extension byte follows
        if len(payload) < 2:
            raise PayloadError("VP8: payload ends inside the descriptor extension")
        ext = payload[1]
        pos = 2
        if ext & 0x80:  # I: picture id, M says 7 or 15 bits
            if pos >= len(payload):
                raise PayloadError("VP8: payload ends inside the picture id")
            if payload[pos] & 0x80:
                if pos + 2 > len(payload):
                    raise PayloadError("VP8: payload ends inside the 15-bit picture id")
                picture_id = int.from_bytes(payload[pos : pos + 2], "big") & 0x7FFF
                bits = 15
                pos += 2
            else:
                picture_id = payload[pos] & 0x7F
                bits = 7
                pos += 1
        if ext & 0x40:  # L: TL0PICIDX
            if pos >= len(payload):
                raise PayloadError("VP8: payload ends inside TL0PICIDX")
            tl0 = payload[pos]
            pos += 1
        if ext & 0x30:  # T or K: one byte shared by TID/Y and KEYIDX
            if pos >= len(payload):
                raise PayloadError("VP8: payload ends inside TID/KEYIDX")
            byte = payload[pos]
            if ext & 0x20:
                tid = byte >> 6
                sync = bool(byte & 0x20)
            if ext & 0x10:
                key_idx = byte & 0x1F
            pos += 1
    if pos >= len(payload):
        raise PayloadError("VP8: no VP8 payload after the descriptor")
    return Vp8Descriptor(
        size=pos,
        non_reference=bool(first & 0x20),
        start=bool(first & 0x10),
        partition=first & 0x07,
        picture_id=picture_id,
        picture_id_bits=bits,
        tl0_pic_idx=tl0,
        tid=tid,
        layer_sync=sync,
        key_idx=key_idx,
    )


@dataclass(frozen=True, slots=True)
class Vp8FrameHeader:
    """The start of a VP8 frame (RFC 6386 §9.1, RFC 7741 §4.3)."""

    keyframe: bool
    version: int
    show_frame: bool
    first_partition_size: int
    width: int | None = None  # key frames only
    height: int | None = None


def parse_frame_header(frame: bytes) -> Vp8FrameHeader:
    """The frame tag (3 bytes: |Size0|H|VER|P|, Size1, Size2) and, for a key frame, the start
    code and the picture size (RFC 6386 §9.1, RFC 7741 §4.3).

    Raises PayloadError when the frame is shorter than its header, a key frame lacks the start
    code or has a zero size, or the first partition is bigger than the frame ("wrong sizes":
    a decoder would read past its end).
    """
    if len(frame) < FRAME_HEADER_SIZE:
        raise PayloadError(f"VP8: a {len(frame)}-byte frame is shorter than its frame tag")
    tag = int.from_bytes(frame[:3], "little")
    keyframe = not tag & 1  # P: 0 for a key frame (the "inverse key frame flag")
    version = tag >> 1 & 7
    show = bool(tag >> 4 & 1)
    size = tag >> 5
    header = KEY_FRAME_HEADER_SIZE if keyframe else FRAME_HEADER_SIZE
    width = height = None
    if keyframe:
        if len(frame) < KEY_FRAME_HEADER_SIZE:
            raise PayloadError("VP8: key frame shorter than its header")
        if frame[3:6] != KEY_FRAME_START_CODE:
            raise PayloadError(f"VP8: key frame start code is {frame[3:6].hex()}, not 9d012a")
        width = int.from_bytes(frame[6:8], "little") & 0x3FFF
        height = int.from_bytes(frame[8:10], "little") & 0x3FFF
        if not width or not height:
            raise PayloadError(f"VP8: key frame of size {width}x{height}")
    if version > 3:  # RFC 6386 §9.1: versions above 3 are not defined
        raise PayloadError(f"VP8: version {version}")
    if header + size > len(frame):
        raise PayloadError(
            f"VP8: first partition of {size} bytes overruns the {len(frame)}-byte frame"
        )
    return Vp8FrameHeader(keyframe, version, show, size, width, height)


class Vp8Depacketizer:
    """RFC 7741 frames out of RTP packets in sequence order (see the module docstring).

    Besides the Depacketizer interface: ``dropped_units`` (frames not output: damaged or while
    waiting for a key frame), ``picture_size`` (width, height of the last key frame) and
    ``picture_id`` (of the last frame out, None when the sender sends none).
    """

    codec = "vp8"

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._size = 0
        self._ts: int | None = None
        self._started = False  # the first packet of the frame was seen
        self._picture_id: int | None = None
        self._damaged_ts: int | None = None
        self._waiting = True
        self.dropped_units = 0
        self.picture_size: tuple[int, int] | None = None
        self.picture_id: int | None = None

    @classmethod
    def from_sdp(cls, clock_rate: int, fmtp: Mapping[str, str], channels: int) -> Vp8Depacketizer:
        # RFC 7741 §6.1: max-fr / max-fs are what the receiver can take; nothing to set up.
        return cls()

    @property
    def extradata(self) -> bytes | None:
        return None

    @property
    def waiting_for_keyframe(self) -> bool:
        return self._waiting

    def push(self, packet: RtpPacket, *, lost_before: int = 0) -> list[AccessUnit]:
        out: list[AccessUnit] = []
        ts = packet.timestamp
        if lost_before > 0:
            if self._ts == ts:  # the lost packets were part of this frame
                self._damage(ts, marker=False)
            else:
                self._discard()
        if self._damaged_ts is not None and self._damaged_ts != ts:
            self._damaged_ts = None
        if self._ts is not None and self._ts != ts:  # RFC 7741 §4.1: a new frame
            out.extend(self._finish())
        if self._damaged_ts == ts:
            if packet.marker:
                self._damaged_ts = None
            return out
        try:
            desc = parse_descriptor(packet.payload)
        except PayloadError:
            self._damage(ts, packet.marker)
            return out
        if self._ts is None:
            if not desc.starts_frame:  # joined mid-frame, or its first packet is gone
                self._damage(ts, packet.marker)
                return out
            self._ts = ts
            self._picture_id = desc.picture_id
        elif desc.starts_frame or desc.picture_id != self._picture_id:
            self._damage(ts, packet.marker)  # a second frame under one timestamp
            return out
        body = packet.payload[desc.size :]
        self._parts.append(body)
        self._size += len(body)
        if self._size > MAX_FRAME_BYTES:
            self._damage(ts, packet.marker)
            return out
        if packet.marker:  # RFC 7741 §4.1: the last packet of the frame
            out.extend(self._finish())
        return out

    def flush(self) -> list[AccessUnit]:
        """End of stream: a frame still without its marker is dropped, not returned. RFC 7741
        §4.1 makes senders mark the last packet, and nothing else shows whether the frame is
        whole (a stream cut in the middle of a frame would hand the decoder half of one)."""
        if self._ts is not None:
            self._discard()
        return []

    # --- internals -------------------------------------------------------------------------
    def _reset(self) -> None:
        self._parts = []
        self._size = 0
        self._ts = None
        self._picture_id = None

    def _discard(self) -> None:
        if self._ts is not None:
            self.dropped_units += 1
        self._reset()
        self._waiting = True

    def _damage(self, ts: int, marker: bool) -> None:
        """This frame is broken: drop it and the rest of its packets (up to its marker)."""
        if self._ts is None:
            self.dropped_units += 1  # nothing of it assembled; _discard would not count it
        self._discard()
        self._damaged_ts = None if marker else ts

    def _finish(self) -> list[AccessUnit]:
        if self._ts is None:
            return []
        ts, frame, picture_id = self._ts, b"".join(self._parts), self._picture_id
        self._reset()
        try:
            header = parse_frame_header(frame)
        except PayloadError:
            self.dropped_units += 1
            self._waiting = True
            return []
        if self._waiting and not header.keyframe:
            self.dropped_units += 1
            return []
        self._waiting = False
        if header.width and header.height:
            self.picture_size = (header.width, header.height)
        self.picture_id = picture_id
        return [AccessUnit(data=frame, timestamp=ts, keyframe=header.keyframe, codec=self.codec)]
