"""AAC depacketisers: RFC 3640 (mpeg4-generic, AAC-hbr / AAC-lbr) and RFC 6416 (MP4A-LATM).

Output: one raw AAC frame per AccessUnit (no ADTS header); ``extradata`` is the
AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1) that a decoder or muxer needs.

- RFC 3640 §3.2: AU-headers-length (16 bits), AU headers (AU-size, AU-Index / AU-Index-delta,
  optional CTS/DTS deltas, RAP flag, stream state), an optional auxiliary section, then the
  access units. Several AUs per packet; one AU fragmented over several packets (each fragment
  repeats the AU header with the size of the whole AU, the last one has the marker, §3.2.3).
  ``config=`` hex is the AudioSpecificConfig (§4.1). The AU-Index deltas give each AU's time:
  AU n is ``index(n) * frame length`` after the RTP timestamp (§3.2.1.1).
- RFC 6416 §7.3 with ``cpresent=0``: ``config=`` hex is a StreamMuxConfig (ISO/IEC 14496-3
  §1.7.3.1) holding the AudioSpecificConfig; the payload is audioMuxElements (one, several, or a
  fragment of one ending at the marker) of PayloadLengthInfo (a run of 255 bytes plus a last
  byte, summed) and PayloadMux per subframe.
- Quirk: AAC wrapped in ADTS inside RTP (a whole payload of ADTS frames, or an ADTS header inside
  each RFC 3640 AU): the ADTS header (ISO/IEC 14496-3 §1.A.2.2) is stripped, and the
  AudioSpecificConfig is built from it when the SDP gave none.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

from softphone.rtp.depacketize import AccessUnit, BitReader, UnsupportedCodec

if TYPE_CHECKING:  # the RTP packet module loads with the RTP session, after PLAY
    from softphone.rtp.packet import RtpPacket

# ISO/IEC 14496-3 Table 1.18 samplingFrequencyIndex.
SAMPLE_RATES: Final = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000,
                       11025, 8000, 7350)  # fmt: skip
# Audio object types with a GASpecificConfig (ISO/IEC 14496-3 §1.6.2.1).
_GA_OBJECT_TYPES: Final = frozenset({1, 2, 3, 4, 6, 7, 17, 19, 20, 21, 22, 23})
_SBR, _PS = 5, 29
MAX_AU_BYTES: Final = 1 << 16  # an AAC frame is at most 6144 bits per channel


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class AudioSpecificConfig:
    """The fields of an AudioSpecificConfig we use; ``raw`` is the config itself (bytes)."""

    object_type: int
    sample_rate: int
    channels: int
    frame_length: int  # samples per frame: 1024, or 960 with frameLengthFlag
    raw: bytes


def read_audio_specific_config(reader: BitReader) -> AudioSpecificConfig:
    """Parse an AudioSpecificConfig at the reader's position (ISO/IEC 14496-3 §1.6.2.1), leaving
    the reader after it. Raises EOFError or ValueError on junk."""
    start = reader.position

    def object_type() -> int:
        aot = reader.u(5)
        return 32 + reader.u(6) if aot == 31 else aot

    def sample_rate() -> int:
        index = reader.u(4)
        if index == 15:
            return reader.u(24)
        if index >= len(SAMPLE_RATES):
            raise ValueError(f"reserved samplingFrequencyIndex {index}")
        return SAMPLE_RATES[index]

    aot = object_type()
    rate = sample_rate()
    channels = reader.u(4)
    if aot in (_SBR, _PS):  # explicit hierarchical SBR/PS signalling: the core comes next
        sample_rate()
        aot = object_type()
    frame_length = 1024
    if aot in _GA_OBJECT_TYPES:  # GASpecificConfig, §4.4.1
        if reader.u(1):
            frame_length = 960
        if reader.u(1):  # dependsOnCoreCoder
            reader.skip(14)
        extension = reader.u(1)
        if channels == 0:
            raise ValueError("program_config_element configs are not supported")
        if aot in (6, 20):
            reader.skip(3)  # layerNr
        if extension:
            if aot == 22:
                reader.skip(16)  # numOfSubFrame, layer_length
            if aot in (17, 19, 20, 23):
                reader.skip(3)  # resilience flags
            reader.skip(1)  # extensionFlag3
    raw = reader.bits_as_bytes(start, reader.position)
    return AudioSpecificConfig(
        object_type=aot, sample_rate=rate, channels=channels, frame_length=frame_length, raw=raw
    )


def parse_config_hex(text: str) -> AudioSpecificConfig | None:
    """``config=`` of RFC 3640 (hex AudioSpecificConfig); None when missing or junk."""
    try:
        raw = bytes.fromhex(text)
        if not raw:
            return None
        parsed = read_audio_specific_config(BitReader(raw))
    except (ValueError, EOFError):
        return None
    # The whole config is the extradata, extensions after the core fields included.
    return dataclasses.replace(parsed, raw=raw)


def adts_header_size(frame: bytes) -> int:
    """Size of the ADTS header that starts ``frame`` (7, or 9 with CRC), 0 if there is none
    (ISO/IEC 14496-3 §1.A.2.2: syncword 0xFFF, layer 0)."""
    if len(frame) < 7 or frame[0] != 0xFF or frame[1] & 0xF6 != 0xF0:
        return 0
    return 7 if frame[1] & 0x01 else 9


def adts_frame_length(frame: bytes) -> int:
    """The 13-bit aac_frame_length of an ADTS header (header included)."""
    return (frame[3] & 0x03) << 11 | frame[4] << 3 | frame[5] >> 5


def config_from_adts(frame: bytes) -> bytes:
    """A 2-byte AudioSpecificConfig equal to an ADTS header's profile, rate and channels."""
    object_type = (frame[2] >> 6) + 1
    rate_index = (frame[2] >> 2) & 0x0F
    channels = (frame[2] & 0x01) << 2 | frame[3] >> 6
    return (object_type << 11 | rate_index << 7 | channels << 3).to_bytes(2, "big")


class _AacBase:
    codec = "aac"

    def __init__(self, config: AudioSpecificConfig | None, frame_length: int | None = None) -> None:
        self._config = config.raw if config else None
        self.frame_length = frame_length or (config.frame_length if config else 1024)
        self.dropped_frames = 0

    @property
    def extradata(self) -> bytes | None:
        return self._config

    @property
    def waiting_for_keyframe(self) -> bool:
        return False

    def _unit(self, data: bytes, timestamp: int) -> AccessUnit | None:
        """An AccessUnit from one AAC frame, ADTS header stripped (the quirk)."""
        header = adts_header_size(data)
        if header and adts_frame_length(data) == len(data):
            if self._config is None:
                self._config = config_from_adts(data)
            data = data[header:]
        if not data:
            return None
        return AccessUnit(
            data=data, timestamp=timestamp & 0xFFFF_FFFF, keyframe=True, codec=self.codec
        )

    def _adts_units(self, payload: bytes, timestamp: int) -> list[AccessUnit] | None:
        """A payload that is a run of ADTS frames; None when it is not one."""
        units: list[AccessUnit] = []
        pos = 0
        while pos < len(payload):
            frame = payload[pos:]
            if not adts_header_size(frame):
                return None
            length = adts_frame_length(frame)
            if length < adts_header_size(frame) or length > len(frame):
                return None
            unit = self._unit(frame[:length], timestamp + len(units) * self.frame_length)
            if unit is not None:
                units.append(unit)
            pos += length
        return units


class Mpeg4GenericDepacketizer(_AacBase):
    """RFC 3640 mpeg4-generic audio, modes AAC-hbr and AAC-lbr."""

    def __init__(
        self,
        *,
        config: AudioSpecificConfig | None = None,
        size_length: int = 13,
        index_length: int = 3,
        index_delta_length: int = 3,
        cts_delta_length: int = 0,
        dts_delta_length: int = 0,
        random_access_indication: bool = False,
        stream_state_indication: int = 0,
        auxiliary_data_size_length: int = 0,
        frame_length: int | None = None,
    ) -> None:
        super().__init__(config, frame_length)
        self.size_length = size_length
        self.index_length = index_length
        self.index_delta_length = index_delta_length
        self.cts_delta_length = cts_delta_length
        self.dts_delta_length = dts_delta_length
        self.random_access_indication = random_access_indication
        self.stream_state_indication = stream_state_indication
        self.auxiliary_data_size_length = auxiliary_data_size_length
        self._fragment: bytearray | None = None
        self._fragment_size = 0
        self._fragment_ts = 0
        self._damaged_ts: int | None = None  # fragments of an AU already given up on

    @classmethod
    def from_sdp(
        cls, clock_rate: int, fmtp: Mapping[str, str], channels: int
    ) -> Mpeg4GenericDepacketizer:
        """RFC 3640 §4.1 parameters (keys already lower-case)."""
        mode = fmtp.get("mode", "").lower()
        defaults = {"aac-hbr": (13, 3, 3), "aac-lbr": (6, 2, 2), "": (0, 0, 0)}.get(mode)
        if defaults is None:
            raise UnsupportedCodec("MPEG4-GENERIC", f"mode={fmtp['mode']}")
        if fmtp.get("streamtype", "5") != "5":
            raise UnsupportedCodec("MPEG4-GENERIC", f"streamtype={fmtp['streamtype']}")

        def number(name: str, default: int = 0, limit: int = 32) -> int:
            """A field width (at most 32 bits) or count; junk gives the default."""
            try:
                return min(max(int(fmtp.get(name, "") or default), 0), limit)
            except ValueError:
                return default

        return cls(
            config=parse_config_hex(fmtp.get("config", "")),
            size_length=number("sizelength", defaults[0]),
            index_length=number("indexlength", defaults[1]),
            index_delta_length=number("indexdeltalength", defaults[2]),
            cts_delta_length=number("ctsdeltalength"),
            dts_delta_length=number("dtsdeltalength"),
            random_access_indication=number("randomaccessindication") == 1,
            stream_state_indication=number("streamstateindication"),
            auxiliary_data_size_length=number("auxiliarydatasizelength"),
            frame_length=number("constantduration", limit=1 << 16) or None,
        )

    def push(self, packet: RtpPacket, *, lost_before: int = 0) -> list[AccessUnit]:
        payload, ts = packet.payload, packet.timestamp
        if self._fragment is not None and (lost_before or ts != self._fragment_ts):
            if lost_before and ts == self._fragment_ts:
                self._damaged_ts = ts  # the rest of this AU's fragments are useless
            self._drop_fragment()
        if not payload:
            return []
        if self._fragment is None and adts_header_size(payload):
            # AAC in ADTS in RTP: an AU-headers-length of 0xFFFx bits cannot fit a packet.
            adts = self._adts_units(payload, ts)
            if adts is not None:
                return adts
        try:
            headers, data = self._parse(payload)
        except EOFError:
            self.dropped_frames += 1
            return []
        if not headers:  # no AU header section: the payload is one AU
            headers = [(len(data), 0)]
        if len(headers) == 1 and headers[0][0] > len(data):  # §3.2.3: a fragment of an AU
            return self._fragment_of(headers[0][0], data, ts, packet.marker)
        if self._fragment is not None:
            self._drop_fragment()
        units: list[AccessUnit] = []
        pos = 0
        for size, offset in headers:
            if pos + size > len(data):
                self.dropped_frames += 1
                break
            unit = self._unit(data[pos : pos + size], ts + offset * self.frame_length)
            if unit is not None:
                units.append(unit)
            pos += size
        return units

    def flush(self) -> list[AccessUnit]:
        if self._fragment is not None:
            self._drop_fragment()
        return []

    def _parse(self, payload: bytes) -> tuple[list[tuple[int, int]], bytes]:
        """RFC 3640 §3.2.1: the AU headers as (size, index relative to the first AU), and the
        Access Unit Data Section (after the auxiliary section, §3.2.2)."""
        headers: list[tuple[int, int]] = []
        pos = 0
        if self.size_length or self.index_length or self.index_delta_length:
            reader = BitReader(payload)
            section_bits = reader.u(16)
            pos = 2 + (section_bits + 7) // 8
            if pos > len(payload):
                raise EOFError("AU header section longer than the packet")
            end = 16 + section_bits
            index = 0
            while reader.position < end:
                size = reader.u(self.size_length)
                if headers:
                    index += reader.u(self.index_delta_length) + 1
                else:
                    reader.skip(self.index_length)
                if self.cts_delta_length and reader.u(1):
                    reader.skip(self.cts_delta_length)
                if self.dts_delta_length and reader.u(1):
                    reader.skip(self.dts_delta_length)
                reader.skip(int(self.random_access_indication) + self.stream_state_indication)
                if reader.position > end:
                    raise EOFError("AU header runs past the AU header section")
                headers.append((size, index))
        if self.auxiliary_data_size_length:  # §3.2.2: skipped
            reader = BitReader(payload, 8 * pos)
            aux_bits = reader.u(self.auxiliary_data_size_length)
            pos += (self.auxiliary_data_size_length + aux_bits + 7) // 8
        return headers, payload[pos:]

    def _fragment_of(self, size: int, data: bytes, ts: int, marker: bool) -> list[AccessUnit]:
        if self._damaged_ts == ts:
            if marker:
                self._damaged_ts = None
            return []
        self._damaged_ts = None
        if self._fragment is None:
            if size > MAX_AU_BYTES:
                self.dropped_frames += 1
                return []
            self._fragment, self._fragment_size, self._fragment_ts = bytearray(), size, ts
        elif size != self._fragment_size:
            self._drop_fragment()
            return []
        self._fragment += data
        if len(self._fragment) < size:
            if marker:  # the last fragment came, but bytes are missing
                self._drop_fragment()
            return []
        frame = bytes(self._fragment)
        self._fragment = None
        if len(frame) != size:
            self.dropped_frames += 1
            return []
        unit = self._unit(frame, ts)
        return [unit] if unit is not None else []

    def _drop_fragment(self) -> None:
        self._fragment = None
        self.dropped_frames += 1


class LatmDepacketizer(_AacBase):
    """RFC 6416 MP4A-LATM with out-of-band configuration (``cpresent=0``)."""

    def __init__(self, config: AudioSpecificConfig, *, sub_frames: int = 1) -> None:
        super().__init__(config)
        self.sub_frames = sub_frames
        self._buffer = bytearray()
        self._buffer_ts: int | None = None

    @classmethod
    def from_sdp(cls, clock_rate: int, fmtp: Mapping[str, str], channels: int) -> LatmDepacketizer:
        if fmtp.get("cpresent", "") == "1":
            raise UnsupportedCodec("MP4A-LATM", "cpresent=1 (in-band StreamMuxConfig)")
        try:
            config, sub_frames = parse_stream_mux_config(bytes.fromhex(fmtp.get("config", "")))
        except (ValueError, EOFError) as exc:
            raise UnsupportedCodec("MP4A-LATM", f"config: {exc}") from None
        return cls(config, sub_frames=sub_frames)

    def push(self, packet: RtpPacket, *, lost_before: int = 0) -> list[AccessUnit]:
        units: list[AccessUnit] = []
        if lost_before or (self._buffer_ts is not None and packet.timestamp != self._buffer_ts):
            units = self._complete() if not lost_before else self._drop()
        self._buffer += packet.payload
        self._buffer_ts = packet.timestamp
        if len(self._buffer) > MAX_AU_BYTES:
            return units + self._drop()
        if packet.marker:  # RFC 6416 §7.3: the last (or only) packet of the audioMuxElement(s)
            units += self._complete()
        return units

    def flush(self) -> list[AccessUnit]:
        return self._complete()

    def _drop(self) -> list[AccessUnit]:
        if self._buffer:
            self.dropped_frames += 1
        self._buffer = bytearray()
        self._buffer_ts = None
        return []

    def _complete(self) -> list[AccessUnit]:
        data, ts = bytes(self._buffer), self._buffer_ts
        self._buffer = bytearray()
        self._buffer_ts = None
        if ts is None or not data:
            return []
        units: list[AccessUnit] = []
        pos = 0
        while pos < len(data):  # audioMuxElements, each numSubFrames + 1 subframes
            for _ in range(self.sub_frames):
                length = 0
                while pos < len(data) and data[pos] == 0xFF:  # PayloadLengthInfo, §1.7.3.2
                    length += 255
                    pos += 1
                if pos >= len(data) or pos + 1 + length + data[pos] > len(data):
                    self.dropped_frames += 1
                    return units
                length += data[pos]
                pos += 1
                unit = self._unit(data[pos : pos + length], ts + len(units) * self.frame_length)
                if unit is not None:
                    units.append(unit)
                pos += length
        return units


def parse_stream_mux_config(data: bytes) -> tuple[AudioSpecificConfig, int]:
    """StreamMuxConfig (ISO/IEC 14496-3 §1.7.3.1) -> (AudioSpecificConfig, subframes per
    audioMuxElement). One program, one layer, all streams with the same time framing."""
    reader = BitReader(data)
    version = reader.u(1)
    if version and reader.u(1):  # audioMuxVersionA
        raise ValueError("audioMuxVersionA=1 is reserved")
    if version:
        _latm_value(reader)  # taraBufferFullness
    if not reader.u(1):
        raise ValueError("allStreamsSameTimeFraming=0 is not supported")
    sub_frames = reader.u(6) + 1
    if reader.u(4) or reader.u(3):  # numProgram, numLayer (both minus one)
        raise ValueError("only one program with one layer is supported")
    if version:
        length = _latm_value(reader)
        start = reader.position
        config = read_audio_specific_config(reader)
        reader.position = start + length
    else:
        config = read_audio_specific_config(reader)
    # quirk: GStreamer's rtpmp4apay (1.22) cuts the config off right after the
    # AudioSpecificConfig (config=40002420); what is missing is frameLengthType, read as 0.
    if reader.remaining >= 3 and reader.u(3) != 0:  # 0: PayloadLengthInfo with 8-bit runs
        raise ValueError("only frameLengthType 0 is supported")
    return config, sub_frames


def _latm_value(reader: BitReader) -> int:
    """LatmGetValue (ISO/IEC 14496-3 §1.7.3.1)."""
    value = 0
    for _ in range(reader.u(2) + 1):
        value = value << 8 | reader.u(8)
    return value
