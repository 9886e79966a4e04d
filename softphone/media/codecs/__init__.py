"""Audio codecs: a registry of descriptors keyed by encoding name (no if/elif factory).

    >>> codec = get_codec("PCMU")
    >>> encoder = codec.make_encoder(EncoderOptions(frame_ms=20))

``CODECS`` lists every codec we know; ``available_codecs()`` leaves out those whose library is
missing here (Opus without libopus, G.722 without PyAV's FFmpeg codec), and
``unavailable_reasons()`` says why, naming the package to install. Importing this package never
needs those libraries: they are loaded when a codec is probed or built.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Final

from softphone.media.codecs import g722, opus
from softphone.media.codecs.base import (
    CodecDescriptor,
    CodecError,
    Decoder,
    DecoderOptions,
    Encoder,
    EncoderOptions,
    Pcm,
    Pcm16,
)
from softphone.media.codecs.g711 import PCMA, PCMU
from softphone.media.codecs.telephone_event import TELEPHONE_EVENT

__all__ = [
    "CODECS",
    "DEFAULT_OFFER_ORDER",
    "CodecDescriptor",
    "CodecError",
    "Decoder",
    "DecoderOptions",
    "Encoder",
    "EncoderOptions",
    "Pcm",
    "Pcm16",
    "available_codecs",
    "get_codec",
    "unavailable_reasons",
]

CODECS: Final[Mapping[str, CodecDescriptor]] = MappingProxyType(
    {codec.encoding.lower(): codec for codec in (opus.OPUS, g722.G722, PCMU, PCMA, TELEPHONE_EVENT)}
)

DEFAULT_OFFER_ORDER: Final = ("opus", "G722", "PCMU", "PCMA")

# Codecs that need a library that may be missing: key -> probe (None = fine, else the reason).
_PROBES: Final[Mapping[str, Callable[[], str | None]]] = MappingProxyType(
    {"opus": opus.probe, "g722": g722.probe}
)


def get_codec(encoding: str) -> CodecDescriptor:
    """The descriptor for an SDP encoding name, case-insensitively (RFC 8866 §6.6)."""
    try:
        return CODECS[encoding.lower()]
    except KeyError:
        raise CodecError(f"unknown codec {encoding!r}") from None


def unavailable_reasons() -> dict[str, str]:
    """Codecs that cannot work here, keyed like CODECS, with what to install."""
    reasons: dict[str, str] = {}
    for key, probe in _PROBES.items():
        reason = probe()
        if reason is not None:
            reasons[key] = reason
    return reasons


def available_codecs() -> dict[str, CodecDescriptor]:
    """CODECS without those whose library is missing, in CODECS order."""
    missing = unavailable_reasons()
    return {key: codec for key, codec in CODECS.items() if key not in missing}
