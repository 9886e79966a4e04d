"""Offer/answer for media security: which RTP profile and attributes we offer, how an offer's
security is answered, and what an answer leaves negotiated (sans-IO, keys passed in).

Two keying methods:

- **SDES** (RFC 4568): each side writes the key it will *send* with into ``a=crypto`` lines.
  The offerer lists one line per suite, most preferred first, each with its own tag and key; the
  answerer picks the first line it can use and answers with the same tag and suite and its own
  key (§7.1.1, §7.1.2). Offered in RTP/SAVP(F) (§3.1.4), or inside RTP/AVP as best effort.
- **DTLS-SRTP** (RFC 5763, RFC 5764): UDP/TLS/RTP/SAVP(F) with ``a=fingerprint`` and ``a=setup``;
  the keys come out of the DTLS handshake on the media port. The offerer says ``actpass``, the
  answerer ``active`` (it becomes the DTLS client, RFC 5763 §5) unless the offer forces a role.

The account's :class:`MediaEncryption` policy decides what is offered and what is accepted:

============== ================================ ====================================
policy         offers                           accepts
============== ================================ ====================================
none           RTP/AVP                          RTP/AVP(F) (a=crypto in it ignored)
srtp-optional  RTP/AVP with a=crypto            anything below we can key, or plain
srtp           RTP/SAVP with a=crypto           SDES or DTLS-SRTP; never plain RTP
dtls-srtp      UDP/TLS/RTP/SAVP                 SDES or DTLS-SRTP; never plain RTP
============== ================================ ====================================

A refusal raises :class:`SecurityRefused`, which carries the RFC 3261 §20.43 warn-code for the
488 that SIP answers with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Final, Literal

from softphone.sdp.crypto import CryptoAttribute, Fingerprint, Setup, usable_crypto
from softphone.sdp.errors import SdpError, SdpParseError
from softphone.sdp.session import MediaDescription, SessionDescription

__all__ = [
    "DTLS_PROTOS",
    "PLAIN_PROTOS",
    "RTP_PROTOS",
    "SDES_PROTOS",
    "LocalSecurity",
    "MediaEncryption",
    "NegotiatedSecurity",
    "SecurityRefused",
    "answer_security",
    "answered_security",
    "offer_security",
]

PLAIN_PROTOS: Final = frozenset({"RTP/AVP", "RTP/AVPF"})
SDES_PROTOS: Final = frozenset({"RTP/SAVP", "RTP/SAVPF"})  # RFC 3711 §12, RFC 5124
DTLS_PROTOS: Final = frozenset({"UDP/TLS/RTP/SAVP", "UDP/TLS/RTP/SAVPF"})  # RFC 5764 §8
RTP_PROTOS: Final = PLAIN_PROTOS | SDES_PROTOS | DTLS_PROTOS

# RFC 3261 §20.43 warn-codes.
WARN_TRANSPORT: Final = 302  # "Incompatible transport protocol": the m= profile
WARN_ATTRIBUTE: Final = 306  # "Attribute not understood": no a=crypto / a=fingerprint we can use


class MediaEncryption(Enum):
    """An account's ``media_encryption`` setting (the config file's words are the values)."""

    NONE = "none"
    SRTP_OPTIONAL = "srtp-optional"
    SRTP = "srtp"
    DTLS_SRTP = "dtls-srtp"

    @property
    def mandatory(self) -> bool:
        return self in (MediaEncryption.SRTP, MediaEncryption.DTLS_SRTP)


class SecurityRefused(SdpError):
    """The media security of an offer or answer is not acceptable. ``warning_code``: the
    RFC 3261 §20.43 code for the Warning header of the 488."""

    def __init__(self, message: str, *, warning_code: int) -> None:
        super().__init__(message)
        self.warning_code = warning_code


@dataclass(frozen=True, slots=True)
class LocalSecurity:
    """Our side: the policy, our SDES keys (one per suite, preference order, tags from 1) and our
    certificate's fingerprint (DTLS-SRTP; None when no certificate is at hand)."""

    policy: MediaEncryption
    crypto: tuple[CryptoAttribute, ...] = ()
    fingerprint: Fingerprint | None = None


@dataclass(frozen=True, slots=True)
class NegotiatedSecurity:
    """What protects the stream. SDES: the suite and both keys (ours to send, theirs to receive);
    DTLS-SRTP: the peer's fingerprint and our role; the suite and keys come from the handshake."""

    method: Literal["sdes", "dtls-srtp"]
    suite: str | None = None
    local_key: bytes = field(default=b"", repr=False)
    remote_key: bytes = field(default=b"", repr=False)
    remote_mki_length: int = 0  # bytes of MKI in each packet the peer sends (RFC 3711 §3.1)
    remote_fingerprint: Fingerprint | None = None
    dtls_role: Literal["client", "server"] | None = None


def offer_security(local: LocalSecurity | None) -> tuple[str, list[tuple[str, str | None]]]:
    """The m= profile and the attributes of our offer."""
    if local is None or local.policy is MediaEncryption.NONE:
        return "RTP/AVP", []
    if local.policy is MediaEncryption.DTLS_SRTP:
        if local.fingerprint is None:
            raise SdpError("DTLS-SRTP needs a certificate fingerprint")
        return "UDP/TLS/RTP/SAVP", [
            ("fingerprint", str(local.fingerprint)),
            ("setup", Setup.ACTPASS.value),  # RFC 5763 §5
        ]
    crypto: list[tuple[str, str | None]] = [("crypto", str(c)) for c in local.crypto]
    if local.policy is MediaEncryption.SRTP:
        return "RTP/SAVP", crypto
    return "RTP/AVP", crypto  # RFC 4568 best effort: a=crypto inside RTP/AVP


def _crypto_lines(m: MediaDescription) -> tuple[list[CryptoAttribute], list[str]]:
    """The a=crypto lines we could read, and why the others could not be."""
    read: list[CryptoAttribute] = []
    problems: list[str] = []
    for value in m.attribute_all("crypto"):
        try:
            read.append(CryptoAttribute.parse(value or ""))
        except SdpParseError as exc:
            problems.append(str(exc))
    return read, problems


def _fingerprint(session: SessionDescription, m: MediaDescription) -> Fingerprint:
    """RFC 8122 §5: media level wins over session level."""
    text = m.attribute("fingerprint") or session.attribute("fingerprint")
    if not text:
        raise SecurityRefused(
            "the DTLS-SRTP offer has no a=fingerprint", warning_code=WARN_ATTRIBUTE
        )
    try:
        return Fingerprint.parse(text)
    except SdpParseError as exc:
        raise SecurityRefused(str(exc), warning_code=WARN_ATTRIBUTE) from None


def _setup(session: SessionDescription, m: MediaDescription, default: Setup) -> Setup:
    text = m.attribute("setup") or session.attribute("setup")
    if not text:
        return default  # RFC 4145 §4: absent means active; RFC 5763 §5 asks for it anyway
    try:
        return Setup.parse(text)
    except SdpParseError as exc:
        raise SecurityRefused(str(exc), warning_code=WARN_ATTRIBUTE) from None


def _answer_sdes(
    offered: Sequence[CryptoAttribute], local: LocalSecurity
) -> tuple[list[tuple[str, str | None]], NegotiatedSecurity] | None:
    """§7.1.2: the first offered line we can use, answered with our key for its suite."""
    ours = {c.suite: c for c in local.crypto}
    for theirs in offered:
        if usable_crypto(theirs) is not None or theirs.suite not in ours:
            continue
        mine = ours[theirs.suite]
        answer = CryptoAttribute(theirs.tag, theirs.suite, mine.key)
        return [("crypto", str(answer))], NegotiatedSecurity(
            method="sdes",
            suite=theirs.suite,
            local_key=mine.key,
            remote_key=theirs.key,
            remote_mki_length=theirs.mki_length,
        )
    return None


def _no_common_suite(offered: Sequence[CryptoAttribute], problems: Sequence[str]) -> str:
    names = ", ".join(c.suite for c in offered) or "none readable"
    why = [f"{c.suite}: {r}" for c in offered if (r := usable_crypto(c)) is not None]
    detail = "; ".join([*why, *problems])
    return f"no common SRTP crypto suite (offered: {names})" + (f" [{detail}]" if detail else "")


def answer_security(
    offer: SessionDescription, m: MediaDescription, local: LocalSecurity | None
) -> tuple[str, list[tuple[str, str | None]], NegotiatedSecurity | None]:
    """Our answer's m= profile and attributes for the offered stream ``m``, and the security
    it negotiates (None: plain RTP). Raises SecurityRefused when the policy or the offer's
    security cannot be met."""
    policy = local.policy if local is not None else MediaEncryption.NONE
    proto = m.proto.upper()
    if proto in PLAIN_PROTOS:
        if local is not None and policy is not MediaEncryption.NONE and m.has_attribute("crypto"):
            offered, problems = _crypto_lines(m)
            answered = _answer_sdes(offered, local)
            if answered is not None:
                return m.proto, answered[0], answered[1]
            if policy.mandatory:
                raise SecurityRefused(
                    _no_common_suite(offered, problems), warning_code=WARN_ATTRIBUTE
                )
        elif policy.mandatory:
            raise SecurityRefused(
                f"plain RTP ({m.proto}) refused: this account requires media encryption "
                f'(media_encryption = "{policy.value}")',
                warning_code=WARN_TRANSPORT,
            )
        return m.proto, [], None
    if policy is MediaEncryption.NONE or local is None:
        raise SecurityRefused(
            f"the offer requires encrypted media ({m.proto}) and media encryption is off "
            'for this account (media_encryption = "none")',
            warning_code=WARN_TRANSPORT,
        )
    if proto in SDES_PROTOS:
        offered, problems = _crypto_lines(m)
        answered = _answer_sdes(offered, local)
        if answered is None:
            raise SecurityRefused(_no_common_suite(offered, problems), warning_code=WARN_ATTRIBUTE)
        return m.proto, answered[0], answered[1]
    if proto in DTLS_PROTOS:
        fingerprint = _fingerprint(offer, m)
        if local.fingerprint is None:
            raise SecurityRefused("no DTLS certificate to answer with", warning_code=WARN_TRANSPORT)
        # RFC 5763 §5: answer actpass with active (we are the DTLS client); mirror a forced role.
        theirs = _setup(offer, m, Setup.ACTIVE)
        if theirs is Setup.HOLDCONN:
            raise SecurityRefused(
                "a=setup:holdconn: no DTLS connection wanted", warning_code=WARN_ATTRIBUTE
            )
        ours = Setup.PASSIVE if theirs is Setup.ACTIVE else Setup.ACTIVE
        attributes: list[tuple[str, str | None]] = [
            ("fingerprint", str(local.fingerprint)),
            ("setup", ours.value),
        ]
        role: Literal["client", "server"] = "client" if ours is Setup.ACTIVE else "server"
        return (
            m.proto,
            attributes,
            NegotiatedSecurity(method="dtls-srtp", remote_fingerprint=fingerprint, dtls_role=role),
        )
    raise SecurityRefused(f"media profile {m.proto} is not supported", warning_code=WARN_TRANSPORT)


def answered_security(
    offer: SessionDescription,
    ours: MediaDescription,
    answer: SessionDescription,
    theirs: MediaDescription,
    local: LocalSecurity | None,
) -> NegotiatedSecurity | None:
    """The security an answer to our offer negotiates (None: plain RTP). Raises SecurityRefused
    when it is not what our offer allowed, or our policy needs encryption and it has none."""
    policy = local.policy if local is not None else MediaEncryption.NONE
    proto = theirs.proto.upper()
    if local is None or policy is MediaEncryption.NONE:
        return None
    if ours.proto.upper() in DTLS_PROTOS:
        if proto not in DTLS_PROTOS:
            raise SecurityRefused(
                f"the answer's profile {theirs.proto} is not DTLS-SRTP", warning_code=WARN_TRANSPORT
            )
        fingerprint = _fingerprint(answer, theirs)
        setup = _setup(answer, theirs, Setup.ACTIVE)
        if setup not in (Setup.ACTIVE, Setup.PASSIVE):  # RFC 5763 §5
            raise SecurityRefused(
                f"the answer's a=setup:{setup.value} is not active or passive",
                warning_code=WARN_ATTRIBUTE,
            )
        return NegotiatedSecurity(
            method="dtls-srtp",
            remote_fingerprint=fingerprint,
            dtls_role="server" if setup is Setup.ACTIVE else "client",
        )
    offered = {c.tag: c for c in local.crypto}
    answered, problems = _crypto_lines(theirs)
    if not answered:
        if policy.mandatory:
            reason = "; ".join(problems) or "no a=crypto"
            raise SecurityRefused(
                f"the answer has no usable key ({reason})", warning_code=WARN_ATTRIBUTE
            )
        return None  # best effort (RFC 4568 in RTP/AVP): the peer answered plain RTP
    chosen = answered[0]
    mine = offered.get(chosen.tag)
    if mine is None or mine.suite != chosen.suite or usable_crypto(chosen) is not None:
        raise SecurityRefused(
            f"the answer's a=crypto:{chosen.tag} {chosen.suite} matches no line we offered",
            warning_code=WARN_ATTRIBUTE,
        )
    return NegotiatedSecurity(
        method="sdes",
        suite=chosen.suite,
        local_key=mine.key,
        remote_key=chosen.key,
        remote_mki_length=chosen.mki_length,
    )
