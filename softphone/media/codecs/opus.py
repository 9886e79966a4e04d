"""Opus (RFC 6716) through opuslib, with the RTP payload format's parameters (RFC 7587).

opuslib is imported lazily, inside :func:`probe` and the constructors: ``import opuslib`` raises
a bare ``Exception`` when libopus is missing, and that must never break importing the codec
registry. We call libopus through opuslib's ctypes bindings directly (``opuslib.api``), with
preallocated buffers, because opuslib's high-level setters for DTX and in-band FEC are broken.

What we do with the peer's fmtp (RFC 7587 §6.1, the receiver's preferences for what we send):
- ``useinbandfec=1``: in-band FEC on (LBRR in SILK/hybrid frames); we always advertise it.
- ``maxaveragebitrate``: our target bitrate, clamped to 6000..510000 (default 32000 b/s); an
  explicit ``EncoderOptions.bitrate`` is used instead but still capped by it.
- ``usedtx=1`` (or ``EncoderOptions.dtx``): DTX on; in silence encode() then returns 1-2 byte
  packets (RFC 7587 §3.1.3), which the sender may skip.
- ``cbr=1``: constant bitrate. ``maxplaybackrate``: caps the encoded audio bandwidth.
- ``stereo=1`` is only a preference: we always send mono (RFC 7587 §3.4 lets a mono sender), and
  our mono decoder downmixes stereo packets (libopus does it when created with one channel).
"""

from __future__ import annotations

import ctypes
from collections.abc import Mapping
from typing import Any, Final

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
)

SAMPLE_RATE: Final = 48000
MISSING_LIBRARY: Final = "libopus is not installed: sudo apt-get install libopus0"
DEFAULT_BITRATE: Final = 32000
MIN_BITRATE: Final = 6000  # RFC 7587 §6.1: maxaveragebitrate range 6000..510000
MAX_BITRATE: Final = 510000
FRAME_MS: Final = frozenset({10, 20, 40, 60})  # RFC 7587 §4.2 ptime values we send
MAX_PACKET: Final = 4000  # bytes; the libopus documentation's recommended output buffer
MAX_FRAME: Final = 5760  # samples: 120 ms at 48 kHz, the longest packet (RFC 6716 §3.2.5)
PLC_GRANULE: Final = 120  # PLC/FEC lengths must be multiples of 2.5 ms
# opus_defines.h request numbers and values.
APPLICATION_VOIP: Final = 2048
SET_BITRATE: Final = 4002
GET_BITRATE: Final = 4003
SET_MAX_BANDWIDTH: Final = 4004
GET_MAX_BANDWIDTH: Final = 4005
SET_VBR: Final = 4006
GET_VBR: Final = 4007
SET_INBAND_FEC: Final = 4012
GET_INBAND_FEC: Final = 4013
SET_PACKET_LOSS_PERC: Final = 4014
GET_PACKET_LOSS_PERC: Final = 4015
SET_DTX: Final = 4016
GET_DTX: Final = 4017
BANDWIDTH_BY_PLAYBACK_RATE: Final = ((8000, 1101), (12000, 1102), (16000, 1103), (24000, 1104))
BANDWIDTH_FULLBAND: Final = 1105


def _load() -> Any:
    """Import opuslib (and through it libopus); CodecError naming the Debian package if missing."""
    try:
        import opuslib  # loads libopus; raises a bare Exception when it is missing
        import opuslib.api.decoder
        import opuslib.api.encoder
        import opuslib.api.info
    except Exception as exc:
        raise CodecError(MISSING_LIBRARY) from exc
    return opuslib


def probe() -> str | None:
    """None when Opus works here, else why not (for ``unavailable_reasons``)."""
    try:
        _load()
    except CodecError as exc:
        return str(exc)
    return None


def _check(result: int, what: str) -> int:
    if result < 0:
        lib = _load()
        reason = lib.api.info.strerror(result).decode("ascii", "replace")
        raise CodecError(f"opus {what} failed: {reason}")
    return result


def _is_on(fmtp: Mapping[str, str], key: str) -> bool:
    return fmtp.get(key, "").strip() == "1"


def _int_param(fmtp: Mapping[str, str], key: str) -> int | None:
    try:
        return int(fmtp[key].strip())
    except (KeyError, ValueError):
        return None


def target_bitrate(options: EncoderOptions) -> int:
    """RFC 7587 §6.1: never above the peer's maxaveragebitrate; 32000 b/s by default."""
    peer_max = _int_param(options.fmtp, "maxaveragebitrate")
    if peer_max is not None:
        peer_max = min(max(peer_max, MIN_BITRATE), MAX_BITRATE)
    if options.bitrate is None:
        return peer_max if peer_max is not None else DEFAULT_BITRATE
    wanted = min(max(options.bitrate, MIN_BITRATE), MAX_BITRATE)
    return wanted if peer_max is None else min(wanted, peer_max)


LOSS_BITRATE_FACTOR: Final = 2.0
"""Per cent of bitrate added per per cent of loss reported (up to 25 % loss): the in-band FEC
(LBRR, a lower-rate copy of the previous frame) takes its bits out of the same budget, so
without more of it the frames that do arrive get worse exactly when some are lost."""


def loss_ceiling(options: EncoderOptions) -> int:
    """How far loss may raise the bitrate: the peer's maxaveragebitrate (RFC 7587 §6.1) or, when
    it gave none, half again our own target."""
    peer_max = _int_param(options.fmtp, "maxaveragebitrate")
    if peer_max is not None:
        return min(max(peer_max, MIN_BITRATE), MAX_BITRATE)
    return min(target_bitrate(options) * 3 // 2, MAX_BITRATE)


def loss_bitrate(bitrate: int, loss_percent: int, ceiling: int) -> int:
    """The bitrate for ``loss_percent`` reported lost: ``bitrate`` plus LOSS_BITRATE_FACTOR % per
    % of loss (25 % at most counts, as libopus's own FEC rule), never above ``ceiling``."""
    loss = min(max(loss_percent, 0), 25)
    raised = round(bitrate * (1.0 + LOSS_BITRATE_FACTOR * loss / 100.0))
    return max(bitrate if bitrate <= ceiling else ceiling, min(raised, ceiling))


def max_bandwidth(options: EncoderOptions) -> int:
    """RFC 7587 §6.1 maxplaybackrate -> OPUS_SET_MAX_BANDWIDTH (RFC 6716 §2 bandwidths)."""
    rate = _int_param(options.fmtp, "maxplaybackrate")
    if rate is None:
        return BANDWIDTH_FULLBAND
    for limit, bandwidth in BANDWIDTH_BY_PLAYBACK_RATE:
        if rate <= limit:
            return bandwidth
    return BANDWIDTH_FULLBAND


def packet_has_fec(packet: bytes) -> bool:
    """Does this packet carry LBRR (in-band FEC) data for the packet before it?

    libopus 1.3 has no opus_packet_has_lbrr(), so we read the bits. RFC 6716 §3.1: the TOC byte
    gives the mode (configs 0-11 SILK, 12-15 hybrid, 16-31 CELT-only, which has no LBRR), the
    stereo flag and the frame packing (codes 0-3, §3.2). §4.2.3: a SILK frame starts with one VAD
    flag per 20 ms SILK frame and then the LBRR flag, per channel (mid, then side), all coded with
    probability 1/2, which the range coder (§4.1) emits as the leading bits of the first byte.
    Only the first Opus frame matters: its LBRR covers the end of the previous packet.
    """
    if len(packet) < 2:
        return False
    toc = packet[0]
    config = toc >> 3
    if config >= 16:
        return False
    stereo = bool(toc & 0x04)
    if config < 12:
        silk_frames = (1, 1, 2, 3)[config & 0x03]  # 10, 20, 40, 60 ms
    else:
        silk_frames = 1  # hybrid: 10 or 20 ms
    start = _first_frame_offset(packet)
    if start is None or start >= len(packet):
        return False  # malformed, or an empty first frame (DTX / lost, §3.2.1)
    first = packet[start]
    lbrr = (first >> (7 - silk_frames)) & 1
    if stereo:
        lbrr |= (first >> (6 - 2 * silk_frames)) & 1
    return bool(lbrr)


def _first_frame_offset(packet: bytes) -> int | None:
    """Where the first compressed frame starts (RFC 6716 §3.2); None if malformed."""
    code = packet[0] & 0x03
    if code in (0, 1):
        return 1
    if code == 2:  # §3.2.4: a 1- or 2-byte length of the first frame follows the TOC
        if packet[1] == 0:
            return None
        return 2 if packet[1] < 252 else 3
    # code 3, §3.2.5: frame count byte, optional padding length, optional VBR lengths
    if len(packet) < 2:
        return None
    count_byte = packet[1]
    vbr, padded, count = bool(count_byte & 0x80), bool(count_byte & 0x40), count_byte & 0x3F
    offset = 2
    if padded:
        while True:
            if offset >= len(packet):
                return None
            value = packet[offset]
            offset += 1
            if value != 255:
                break
    if vbr:
        for _ in range(count - 1):
            if offset >= len(packet):
                return None
            offset += 1 if packet[offset] < 252 else 2
    return offset


class OpusEncoder:
    """48 kHz mono Opus encoder, application VOIP (RFC 7587)."""

    sample_rate = SAMPLE_RATE

    def __init__(self, options: EncoderOptions) -> None:
        if options.frame_ms not in FRAME_MS:
            raise CodecError(f"opus: unsupported frame duration {options.frame_ms} ms")
        lib = _load()
        self._lib = lib
        self._samples = samples_per_frame(SAMPLE_RATE, options.frame_ms)
        self._encoder = lib.Encoder(SAMPLE_RATE, 1, APPLICATION_VOIP)  # owns/destroys the state
        self._state = self._encoder.encoder_state
        self._out = ctypes.create_string_buffer(MAX_PACKET)
        self._bitrate = target_bitrate(options)
        self._ceiling = loss_ceiling(options)
        self._set(SET_BITRATE, self._bitrate)
        self._set(SET_MAX_BANDWIDTH, max_bandwidth(options))
        self._set(SET_INBAND_FEC, 1 if _is_on(options.fmtp, "useinbandfec") else 0)
        self._set(SET_DTX, 1 if options.dtx or _is_on(options.fmtp, "usedtx") else 0)
        self._set(SET_VBR, 0 if _is_on(options.fmtp, "cbr") else 1)

    def _set(self, request: int, value: int) -> None:
        ctl = self._lib.api.ctl.ctl_set(request)
        try:
            self._lib.api.encoder.encoder_ctl(self._state, ctl, value)
        except self._lib.OpusError as exc:
            raise CodecError(f"opus ctl {request}={value} failed: {exc}") from exc

    def get(self, request: int) -> int:
        """Read back an encoder setting (OPUS_GET_* request number), e.g. for tests."""
        ctl = self._lib.api.ctl.get(request, ctypes.c_int)
        return int(self._lib.api.encoder.encoder_ctl(self._state, ctl))

    def encode(self, pcm: Pcm) -> bytes:
        check_frame(pcm, self._samples, "opus")
        frame = np.ascontiguousarray(pcm, dtype=np.float32)
        pointer = frame.ctypes.data_as(self._lib.api.c_float_pointer)
        size = self._lib.api.encoder.libopus_encode_float(
            self._state, pointer, self._samples, self._out, MAX_PACKET
        )
        return self._out.raw[: _check(int(size), "encode")]

    def set_packet_loss(self, percent: int) -> None:
        """OPUS_SET_PACKET_LOSS_PERC: how much FEC (and robustness) to spend, 0..100; and the
        bitrate for it (:func:`loss_bitrate`)."""
        percent = min(max(int(percent), 0), 100)
        self._set(SET_PACKET_LOSS_PERC, percent)
        self._set(SET_BITRATE, loss_bitrate(self._bitrate, percent, self._ceiling))


class OpusDecoder:
    """48 kHz mono Opus decoder with libopus PLC and in-band FEC."""

    sample_rate = SAMPLE_RATE

    def __init__(self, options: DecoderOptions) -> None:
        lib = _load()
        self._lib = lib
        self._decoder = lib.Decoder(SAMPLE_RATE, 1)  # mono: stereo packets are downmixed
        self._state = self._decoder.decoder_state
        self._buffer = np.zeros(MAX_FRAME, dtype=np.float32)
        self._pointer = self._buffer.ctypes.data_as(lib.api.c_float_pointer)

    def _run(self, data: bytes | None, frame_size: int, fec: int) -> Pcm:
        length = 0 if data is None else len(data)
        count = self._lib.api.decoder.libopus_decode_float(
            self._state, data, length, self._pointer, frame_size, fec
        )
        n = _check(int(count), "decode")
        return self._buffer[:n].copy()

    def decode(self, payload: bytes) -> Pcm:
        if not payload:
            raise CodecError("opus: empty payload")
        return self._run(payload, MAX_FRAME, 0)

    def conceal(self, samples: int) -> Pcm | None:
        """libopus PLC (decode with no data, RFC 6716 §4.4).

        libopus only conceals whole 2.5 ms granules: other lengths are rounded up and the end cut.
        """
        return self._lost(None, samples)

    def decode_fec(self, next_payload: bytes, samples: int) -> Pcm | None:
        """Rebuild the last ``samples`` of the lost packet from ``next_payload``'s LBRR data.

        None when that payload carries none (:func:`packet_has_fec`): libopus would silently fall
        back to PLC, and the playout should know it got no FEC.
        """
        if not packet_has_fec(next_payload):
            return None
        return self._lost(next_payload, samples)

    def _lost(self, data: bytes | None, samples: int) -> Pcm:
        """PLC (data None) or FEC for ``samples``; gaps over 120 ms are PLC up to the last 120 ms."""
        if samples <= 0:
            return np.zeros(0, dtype=np.float32)
        total = -(-samples // PLC_GRANULE) * PLC_GRANULE
        out = np.empty(total, dtype=np.float32)
        done = 0
        while total - done > MAX_FRAME:
            out[done : done + MAX_FRAME] = self._run(None, MAX_FRAME, 0)
            done += MAX_FRAME
        last = self._run(data, total - done, 0 if data is None else 1)
        out[done : done + len(last)] = last
        out[done + len(last) :] = 0.0
        return out if total == samples else out[:samples].copy()


def _make_encoder(options: EncoderOptions) -> Encoder:
    return OpusEncoder(options)


def _make_decoder(options: DecoderOptions) -> Decoder:
    return OpusDecoder(options)


# RFC 7587 §6.2: "opus/48000/2" always, dynamic payload type.
OPUS: Final = CodecDescriptor(
    encoding="opus",
    clock_rate=SAMPLE_RATE,
    sample_rate=SAMPLE_RATE,
    channels=2,
    static_payload_type=None,
    fmtp="useinbandfec=1",
    has_plc=True,
    has_fec=True,
    make_encoder=_make_encoder,
    make_decoder=_make_decoder,
)
