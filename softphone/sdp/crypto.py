"""The SDP attributes that key SRTP: SDES ``a=crypto`` (RFC 4568), and DTLS-SRTP's
``a=fingerprint`` (RFC 8122 §5) and ``a=setup`` (RFC 4145 §4, RFC 5763 §5).

Parsing is strict about what would make keys wrong and tolerant of what does not matter to us:

- ``a=crypto``: the tag (1-9 digits), a suite name, and ``inline:<base64(key‖salt)>`` whose
  length must be the suite's (RFC 4568 §6.1, RFC 7714 §12). A key lifetime (``|2^31``) and an MKI
  (``|1:4``) are read and kept; more than one key parameter (several MKIs, §9.2) keeps the first.
  Session parameters are kept as text: :func:`usable_crypto` decides whether we can honour them.
- ``a=fingerprint``: a hash function name and colon-separated hex pairs.

A malformed value raises :class:`~softphone.sdp.errors.SdpParseError` naming what is wrong, so
a refusal can say it. Keys never appear in ``repr`` (a log or a traceback must not show them).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Final

from softphone.sdp.errors import SdpParseError

__all__ = [
    "SUITES",
    "CryptoAttribute",
    "CryptoSuite",
    "Fingerprint",
    "Setup",
    "usable_crypto",
]


@dataclass(frozen=True, slots=True)
class CryptoSuite:
    """An SRTP crypto suite as SDES names it: master key and salt lengths in bytes."""

    name: str
    key_length: int
    salt_length: int

    @property
    def key_salt_length(self) -> int:
        return self.key_length + self.salt_length


# Our preference order. RFC 4568 §6.2 defines the two AES-CM suites (SRTCP keeps an 80-bit tag
# with _32, §6.2.2); RFC 7714 §12 adds AES-GCM, whose salt is 12 bytes.
SUITES: Final[dict[str, CryptoSuite]] = {
    s.name: s
    for s in (
        CryptoSuite("AES_CM_128_HMAC_SHA1_80", 16, 14),
        CryptoSuite("AES_CM_128_HMAC_SHA1_32", 16, 14),
        CryptoSuite("AEAD_AES_128_GCM", 16, 12),
    )
}

_TAG: Final = re.compile(r"[0-9]{1,9}")  # RFC 4568 §9.1
_LIFETIME: Final = re.compile(r"(?:2\^([0-9]{1,2})|([0-9]{1,20}))")
_MKI: Final = re.compile(r"([0-9]{1,20}):([0-9]{1,3})")
_BASE64: Final = re.compile(r"[A-Za-z0-9+/]+={0,2}")
# Session parameters (RFC 4568 §6.3) that change what is protected, or how keys are derived,
# in ways libsrtp's policy through pylibsrtp cannot follow: a line carrying one is not used.
_UNSUPPORTED_PARAMS: Final = ("UNENCRYPTED_SRTP", "UNENCRYPTED_SRTCP", "UNAUTHENTICATED_SRTP")


@dataclass(frozen=True, slots=True)
class CryptoAttribute:
    """``a=crypto:<tag> <suite> inline:<key‖salt>[|<lifetime>][|<mki>:<length>] [<params>]``.

    ``key`` is the master key followed by the master salt, decoded. ``mki_length`` is the MKI
    field's size in bytes on the wire (0: none)."""

    tag: int
    suite: str
    key: bytes = field(repr=False)
    lifetime: int | None = None  # packets (RFC 4568 §6.1: "2^20" is written as a power of two)
    mki: int | None = None
    mki_length: int = 0
    session_params: tuple[str, ...] = ()

    @classmethod
    def parse(cls, value: str) -> CryptoAttribute:
        parts = value.split()
        if len(parts) < 3:
            raise SdpParseError(f"a=crypto needs a tag, a suite and a key, got {len(parts)} fields")
        tag_text, suite, key_params, *params = parts
        if _TAG.fullmatch(tag_text) is None:
            raise SdpParseError(f"a=crypto tag is not 1-9 digits: {tag_text!r}")
        first = key_params.split(";")[0]  # §9.2: several keys differ by MKI; we use the first
        method, colon, info = first.partition(":")
        if not colon or method.lower() != "inline":
            raise SdpParseError(
                f"a=crypto key method must be inline: (RFC 4568 §6.1), not {method!r}"
            )
        key_text, *extras = info.split("|")
        if _BASE64.fullmatch(key_text) is None:
            raise SdpParseError("a=crypto key is not base64")
        try:
            key = base64.b64decode(key_text + "=" * (-len(key_text) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise SdpParseError("a=crypto key is not base64") from None
        known = SUITES.get(suite)
        if known is not None and len(key) != known.key_salt_length:
            raise SdpParseError(
                f"a=crypto {suite} needs {known.key_salt_length} bytes of key and salt, "
                f"got {len(key)}"
            )
        lifetime: int | None = None
        mki: int | None = None
        mki_length = 0
        for extra in extras:
            if (m := _MKI.fullmatch(extra)) is not None:
                mki, mki_length = int(m.group(1)), int(m.group(2))
                if not 1 <= mki_length <= 128:
                    raise SdpParseError(f"a=crypto MKI length {mki_length} is not 1-128")
            elif (m := _LIFETIME.fullmatch(extra)) is not None:
                lifetime = 2 ** int(m.group(1)) if m.group(1) is not None else int(m.group(2))
            else:
                raise SdpParseError(f"a=crypto key parameter not understood: {extra!r}")
        return cls(int(tag_text), suite, key, lifetime, mki, mki_length, tuple(params))

    @property
    def known_suite(self) -> CryptoSuite | None:
        return SUITES.get(self.suite)

    def __str__(self) -> str:
        text = f"{self.tag} {self.suite} inline:{base64.b64encode(self.key).decode()}"
        if self.lifetime is not None:
            exponent = self.lifetime.bit_length() - 1
            text += f"|2^{exponent}" if self.lifetime == 1 << exponent else f"|{self.lifetime}"
        if self.mki_length:
            text += f"|{self.mki or 0}:{self.mki_length}"
        return " ".join([text, *self.session_params])


def usable_crypto(attribute: CryptoAttribute) -> str | None:
    """None when we can key SRTP from ``attribute``; otherwise why not, in words."""
    if attribute.known_suite is None:
        return f"suite {attribute.suite} is not supported"
    for param in attribute.session_params:
        name, _, value = param.partition("=")
        if name in _UNSUPPORTED_PARAMS:
            return f"session parameter {name} is not supported"
        if name == "KDR" and value not in ("", "0"):  # §6.3.1: a key derivation rate
            return "a key derivation rate (KDR) is not supported"
    return None


_HASHES: Final = frozenset({"sha-1", "sha-224", "sha-256", "sha-384", "sha-512"})  # RFC 8122 §5
_HEX_PAIRS: Final = re.compile(r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2})*")


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """``a=fingerprint:<hash-func> <AB:CD:...>`` (RFC 8122 §5): the hash of the certificate the
    peer will present in the DTLS handshake."""

    algorithm: str  # lower case: "sha-256"
    value: bytes

    @classmethod
    def parse(cls, text: str) -> Fingerprint:
        algorithm, _, hex_text = text.strip().partition(" ")
        algorithm = algorithm.lower()
        if algorithm not in _HASHES:
            raise SdpParseError(f"a=fingerprint hash function not supported: {algorithm!r}")
        hex_text = hex_text.strip()
        if _HEX_PAIRS.fullmatch(hex_text) is None:
            raise SdpParseError("a=fingerprint value is not colon-separated hex pairs")
        return cls(algorithm, bytes.fromhex(hex_text.replace(":", "")))

    def __str__(self) -> str:
        return f"{self.algorithm} {self.value.hex(':').upper()}"


class Setup(Enum):
    """``a=setup`` (RFC 4145 §4): who opens the connection, here who is the DTLS client."""

    ACTIVE = "active"
    PASSIVE = "passive"
    ACTPASS = "actpass"
    HOLDCONN = "holdconn"

    @classmethod
    def parse(cls, text: str) -> Setup:
        try:
            return cls(text.strip().lower())
        except ValueError:
            raise SdpParseError(f"a=setup value not understood: {text.strip()!r}") from None
