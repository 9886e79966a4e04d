"""VP9 depacketiser (RFC 9628) and VP9 superframes (sans-IO).

Packets -> payload descriptor (RFC 9628 §4.2) -> layer frames -> pictures. A picture is every
packet of one RTP timestamp (§4.1); it holds one frame per spatial layer, each running from a
packet with the B bit (beginning of a frame) to one with the E bit (end of a frame); the marker
bit ends the picture. Both modes of the descriptor are read: flexible (F = 1: the reference
indices P_DIFF travel in each packet) and non-flexible (F = 0: TL0PICIDX, the references
described once in the scalability structure). The scalability structure (V, §4.2.1) is parsed
so that what follows it is found, and kept in ``scalability`` for information.

What comes out: a picture of one frame as the encoder wrote it; a picture of several spatial
layers as one VP9 superframe (the frames, then a superframe index: VP9 bitstream specification
Annex B), which is what FFmpeg's vp9 decoder and libvpx expect as one packet.

Key frames: the first frame of the picture is not inter-predicted (P = 0) and its uncompressed
header says KEY_FRAME (VP9 spec §6.2: frame_marker, profile, show_existing_frame = 0,
frame_type = 0, then the sync code 49 83 42).

Loss and damage, as the other video depacketisers: at the start, after ``lost_before`` > 0, or
after a picture that does not hold together (a frame without its B or E packet, a malformed
descriptor, a frame whose header is not VP9, a superframe index that does not add up), nothing
comes out until the next key picture (``waiting_for_keyframe``); the caller sends a PLI. A
receiver that keeps the references could decode on after some losses in flexible mode; we do not
try, one key frame costs less than the bookkeeping.

Bad bytes: :func:`parse_descriptor`, :func:`parse_frame_header` and :func:`split_superframe`
raise :class:`~softphone.rtp.depacketize.PayloadError`; ``push`` never raises and counts what it
drops in ``dropped_units``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from softphone.rtp.depacketize import AccessUnit, BitReader, PayloadError

if TYPE_CHECKING:
    from softphone.rtp.packet import RtpPacket

MAX_PICTURE_BYTES: Final = 8 << 20
MAX_LAYER_FRAMES: Final = 8  # N_S is 3 bits: at most 8 spatial layers
MAX_REFERENCES: Final = 3  # RFC 9628 §4.2: up to 3 P_DIFF in flexible mode
FRAME_SYNC_CODE: Final = 0x498342  # VP9 spec §7.2: frame_sync_code
CS_RGB: Final = 7  # VP9 spec §7.2: color_space


@dataclass(frozen=True, slots=True)
class ScalabilityStructure:
    """RFC 9628 §4.2.1: layer sizes and the picture group (references of non-flexible mode)."""

    spatial_layers: int
    sizes: tuple[tuple[int, int], ...]  # (width, height) per spatial layer, when Y is set
    group: tuple[tuple[int, bool, tuple[int, ...]], ...]  # (TID, U, P_DIFFs) per picture


@dataclass(frozen=True, slots=True)
class Vp9Descriptor:
    """The VP9 payload descriptor (RFC 9628 §4.2); absent optional fields are None."""

    size: int
    """Bytes the descriptor takes at the start of the payload."""
    inter_predicted: bool  # P
    flexible: bool  # F
    begins_frame: bool  # B
    ends_frame: bool  # E
    not_upper_reference: bool  # Z
    picture_id: int | None = None  # I: 7 or 15 bits (M)
    tid: int | None = None  # L: temporal layer
    switching_up: bool = False  # U
    sid: int = 0  # spatial layer
    inter_layer: bool = False  # D: depends on the spatial layer below
    tl0_pic_idx: int | None = None  # non-flexible mode with L
    references: tuple[int, ...] = ()  # P_DIFF, flexible mode
    scalability: ScalabilityStructure | None = None  # V


def _scalability(payload: bytes, pos: int) -> tuple[ScalabilityStructure, int]:
    """RFC 9628 §4.2.1, from ``pos``: | N_S |Y|G|-|-|-|, sizes, N_G, the picture group."""
    end = len(payload)

    def need(count: int, what: str) -> None:
        if pos + count > end:
            raise PayloadError(f"VP9: payload ends inside the scalability structure ({what})")

    need(1, "header")
    head = payload[pos]
    pos += 1
    layers = (head >> 5) + 1
    sizes: list[tuple[int, int]] = []
    if head & 0x10:  # Y: WIDTH and HEIGHT per spatial layer
        need(4 * layers, "sizes")
        for _ in range(layers):
            sizes.append(
                (
                    int.from_bytes(payload[pos : pos + 2], "big"),
                    int.from_bytes(payload[pos + 2 : pos + 4], "big"),
                )
            )
            pos += 4
    group: list[tuple[int, bool, tuple[int, ...]]] = []
    if head & 0x08:  # G: the picture group description
        need(1, "N_G")
        count = payload[pos]
        pos += 1
        for _ in range(count):
            need(1, "group entry")
            entry = payload[pos]
            pos += 1
            refs = (entry >> 2) & 3  # R
            need(refs, "P_DIFF")
            group.append((entry >> 5, bool(entry & 0x10), tuple(payload[pos : pos + refs])))
            pos += refs
    return ScalabilityStructure(layers, tuple(sizes), tuple(group)), pos


def parse_descriptor(payload: bytes) -> Vp9Descriptor:
    """The payload descriptor at the start of ``payload`` (RFC 9628 §4.2).

    ::

        |I|P|L|F|B|E|V|Z|   I: |M| PICTURE ID (7 or 15 bits) |   L: | TID |U| SID |D|
        non-flexible (F=0) with L: | TL0PICIDX |   flexible (F=1) with P: | P_DIFF |N| (<= 3)
        V: scalability structure (§4.2.1)

    Raises PayloadError when the payload ends inside the descriptor, flexible mode chains more
    than 3 references, or nothing follows the descriptor.
    """
    if not payload:
        raise PayloadError("VP9: empty payload")
    first = payload[0]
    inter, layer, flexible = bool(first & 0x40), bool(first & 0x20), bool(first & 0x10)
    pos = 1
    picture_id = tid = tl0 = None
    switching_up = inter_layer = False
    sid = 0
    refs: list[int] = []
    scal = None
    if first & 0x80:  # I
        if pos >= len(payload):
            raise PayloadError("VP9: payload ends inside the picture id")
        if payload[pos] & 0x80:  # M: 15 bits
            if pos + 2 > len(payload):
                raise PayloadError("VP9: payload ends inside the 15-bit picture id")
            picture_id = int.from_bytes(payload[pos : pos + 2], "big") & 0x7FFF
            pos += 2
        else:
            picture_id = payload[pos]
            pos += 1
    if layer:
        if pos >= len(payload):
            raise PayloadError("VP9: payload ends inside the layer indices")
        byte = payload[pos]
        tid, switching_up, sid, inter_layer = (
            byte >> 5,
            bool(byte & 0x10),
            byte >> 1 & 7,
            bool(byte & 1),
        )
        pos += 1
        if not flexible:
            if pos >= len(payload):
                raise PayloadError("VP9: payload ends inside TL0PICIDX")
            tl0 = payload[pos]
            pos += 1
    if flexible and inter:
        while True:
            if pos >= len(payload):
                raise PayloadError("VP9: payload ends inside the reference indices")
            byte = payload[pos]
            pos += 1
            refs.append(byte >> 1)
            if not byte & 1:
                break
            if len(refs) == MAX_REFERENCES:
                raise PayloadError("VP9: more than 3 reference indices")
    if first & 0x02:  # V
        scal, pos = _scalability(payload, pos)
    if pos >= len(payload):
        raise PayloadError("VP9: no VP9 payload after the descriptor")
    return Vp9Descriptor(
        size=pos,
        inter_predicted=inter,
        flexible=flexible,
        begins_frame=bool(first & 0x08),
        ends_frame=bool(first & 0x04),
        not_upper_reference=bool(first & 0x01),
        picture_id=picture_id,
        tid=tid,
        switching_up=switching_up,
        sid=sid,
        inter_layer=inter_layer,
        tl0_pic_idx=tl0,
        references=tuple(refs),
        scalability=scal,
    )


@dataclass(frozen=True, slots=True)
class Vp9FrameHeader:
    """The start of the uncompressed header of a VP9 frame (VP9 spec §6.2)."""

    profile: int
    show_existing_frame: bool
    keyframe: bool
    show_frame: bool
    width: int | None = None  # key frames only
    height: int | None = None


def parse_frame_header(frame: bytes) -> Vp9FrameHeader:
    """frame_marker, profile, show_existing_frame, frame_type, show_frame and, for a key frame,
    the sync code, colour config and frame size (VP9 spec §6.2, §6.2.1-§6.2.3).

    Raises PayloadError when the frame marker is not 2, the sync code is wrong or the header is
    truncated.
    """
    reader = BitReader(frame)
    try:
        if reader.u(2) != 2:
            raise PayloadError("VP9: frame_marker is not 2")
        profile = reader.u(1) | reader.u(1) << 1
        if profile == 3:
            reader.skip(1)  # reserved_zero
        if reader.u(1):  # show_existing_frame: a repeat of a decoded frame, never a key frame
            return Vp9FrameHeader(profile, True, False, True)
        keyframe = reader.u(1) == 0
        show = bool(reader.u(1))
        reader.skip(1)  # error_resilient_mode
        if not keyframe:
            return Vp9FrameHeader(profile, False, False, show)
        if reader.u(24) != FRAME_SYNC_CODE:
            raise PayloadError("VP9: key frame without the frame sync code")
        if profile >= 2:
            reader.skip(1)  # ten_or_twelve_bit
        if reader.u(3) != CS_RGB:  # color_space
            reader.skip(1)  # color_range
            if profile in (1, 3):
                reader.skip(3)  # subsampling_x, subsampling_y, reserved_zero
        elif profile in (1, 3):
            reader.skip(1)  # reserved_zero
        width = reader.u(16) + 1
        height = reader.u(16) + 1
    except EOFError as exc:
        raise PayloadError(f"VP9: truncated frame header ({exc})") from exc
    return Vp9FrameHeader(profile, False, True, show, width, height)


def split_superframe(data: bytes) -> list[bytes]:
    """The frames of a superframe (VP9 spec Annex B), or ``[data]`` when it is a single frame.

    The index is at the end: a marker byte 110 MM FFF (frame count - 1 in FFF, bytes per size
    - 1 in MM), the sizes (little-endian), the marker byte again. Raises PayloadError when the
    index is there but its sizes do not add up to the data before it.
    """
    if not data:
        raise PayloadError("VP9: empty frame")
    marker = data[-1]
    if marker & 0xE0 != 0xC0:
        return [data]
    frames = (marker & 7) + 1
    size_bytes = (marker >> 3 & 3) + 1
    index_size = 2 + size_bytes * frames
    if len(data) < index_size or data[-index_size] != marker:
        return [data]  # the last byte only looks like a marker; a frame can end that way
    sizes = [
        int.from_bytes(data[i : i + size_bytes], "little")
        for i in range(len(data) - index_size + 1, len(data) - 1, size_bytes)
    ]
    if sum(sizes) != len(data) - index_size or not all(sizes):
        raise PayloadError(f"VP9: superframe index sizes {sizes} do not match the data")
    out, pos = [], 0
    for size in sizes:
        out.append(data[pos : pos + size])
        pos += size
    return out


def build_superframe(frames: Sequence[bytes]) -> bytes:
    """One frame as is; several as a superframe (VP9 spec Annex B), sizes on as few bytes as fit."""
    if len(frames) == 1:
        return frames[0]
    if not 1 < len(frames) <= MAX_LAYER_FRAMES:
        raise PayloadError(f"VP9: a superframe holds 1-8 frames, not {len(frames)}")
    size_bytes = max(1, (max(len(f) for f in frames).bit_length() + 7) // 8)
    if size_bytes > 4:
        raise PayloadError("VP9: a frame too big for a superframe index")
    marker = bytes([0xC0 | (size_bytes - 1) << 3 | (len(frames) - 1)])
    sizes = b"".join(len(f).to_bytes(size_bytes, "little") for f in frames)
    return b"".join(frames) + marker + sizes + marker


class Vp9Depacketizer:
    """RFC 9628 pictures out of RTP packets in sequence order (see the module docstring).

    Besides the Depacketizer interface: ``dropped_units`` (pictures not output), ``picture_size``
    (width, height of the last key frame's first layer), ``scalability`` (the last scalability
    structure received) and ``picture_id`` (of the last picture out).
    """

    codec = "vp9"

    def __init__(self) -> None:
        self._frames: list[bytes] = []
        self._frame: list[bytes] | None = None  # the layer frame being assembled
        self._size = 0
        self._ts: int | None = None
        self._picture_id: int | None = None
        self._first_inter = True
        self._damaged_ts: int | None = None
        self._waiting = True
        self.dropped_units = 0
        self.picture_size: tuple[int, int] | None = None
        self.scalability: ScalabilityStructure | None = None
        self.picture_id: int | None = None

    @classmethod
    def from_sdp(cls, clock_rate: int, fmtp: Mapping[str, str], channels: int) -> Vp9Depacketizer:
        # RFC 9628 §6: profile-id (0-3), max-fr, max-fs: nothing a receiver has to set up; the
        # decoder reads the profile from each frame.
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
            if self._ts == ts:
                self._damage(ts, marker=False)
            else:
                self._discard()
        if self._damaged_ts is not None and self._damaged_ts != ts:
            self._damaged_ts = None
        if self._ts is not None and self._ts != ts:  # RFC 9628 §4.1: a new picture
            out.extend(self._finish())
        if self._damaged_ts == ts:
            if packet.marker:
                self._damaged_ts = None
            return out
        if not self._take(packet, ts):
            self._damage(ts, packet.marker)
            return out
        if packet.marker:  # the last packet of the picture
            out.extend(self._finish())
        return out

    def flush(self) -> list[AccessUnit]:
        return self._finish()

    # --- internals -------------------------------------------------------------------------
    def _take(self, packet: RtpPacket, ts: int) -> bool:
        """Add one packet to the picture; False when it shows the picture is broken."""
        try:
            desc = parse_descriptor(packet.payload)
        except PayloadError:
            return False
        if desc.scalability is not None:
            self.scalability = desc.scalability
        if self._ts is None:
            if not desc.begins_frame:  # joined mid-frame, or its first packet is gone
                return False
            self._ts = ts
            self._picture_id = desc.picture_id
            self._first_inter = desc.inter_predicted
        elif desc.picture_id != self._picture_id:
            return False
        if desc.begins_frame:
            if self._frame is not None or len(self._frames) == MAX_LAYER_FRAMES:
                return False  # the previous frame never ended, or too many layers
            self._frame = []
        elif self._frame is None:
            return False  # a middle packet of a frame whose beginning is gone
        body = packet.payload[desc.size :]
        self._frame.append(body)
        self._size += len(body)
        if self._size > MAX_PICTURE_BYTES:
            return False
        if desc.ends_frame:
            self._frames.append(b"".join(self._frame))
            self._frame = None
        return True

    def _reset(self) -> None:
        self._frames = []
        self._frame = None
        self._size = 0
        self._ts = None
        self._picture_id = None

    def _discard(self) -> None:
        if self._ts is not None:
            self.dropped_units += 1
        self._reset()
        self._waiting = True

    def _damage(self, ts: int, marker: bool) -> None:
        if self._ts is None:
            self.dropped_units += 1
        self._discard()
        self._damaged_ts = None if marker else ts

    def _finish(self) -> list[AccessUnit]:
        if self._ts is None:
            return []
        if self._frame is not None or not self._frames:  # its E packet never came
            self._discard()
            return []
        ts, frames, picture_id, first_inter = (
            self._ts,
            self._frames,
            self._picture_id,
            self._first_inter,
        )
        self._reset()
        try:
            layers = [f for frame in frames for f in split_superframe(frame)]
            header = parse_frame_header(layers[0])
            data = build_superframe(layers)
        except PayloadError:
            self.dropped_units += 1
            self._waiting = True
            return []
        keyframe = header.keyframe and not first_inter
        if self._waiting and not keyframe:
            self.dropped_units += 1
            return []
        self._waiting = False
        if header.width and header.height:
            self.picture_size = (header.width, header.height)
        self.picture_id = picture_id
        return [AccessUnit(data=data, timestamp=ts, keyframe=keyframe, codec=self.codec)]
