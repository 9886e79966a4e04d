"""Addresses as the store keeps them: contact URIs in canonical form, the keys that recognise a
caller, and the remote party of a call (a display name and a URI, apart).

Recognising a caller compares URIs, never header text. A SIP URI compares by user and host
(RFC 3261 §19.1.4: the user part case-sensitive, the host not; scheme, port and parameters left
to the caller). A telephone number compares by its digits: ``tel:`` URIs (RFC 3966), SIP URIs
with ``user=phone`` (RFC 3261 §19.1.6) and SIP users that are numbers all give the key
``tel:<digits>``, with visual separators (spaces, dashes, dots, parentheses) dropped and a
leading ``00`` read as the international ``+``. A SIP URI whose user is a number has both keys,
so ``sip:1002@pbx`` finds the contact ``sip:1002@pbx`` and ``sip:+4930123@gw`` finds
``tel:+49 30 123``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Final

from softphone.sip.errors import ParseError
from softphone.sip.headers import NameAddr
from softphone.sip.uri import SipUri, TelUri, parse_uri
from softphone.store.errors import ContactError

__all__ = ["Party", "match_keys", "normalise_uri", "parse_party", "uri_match_key"]

_VISUAL_SEPARATORS: Final = frozenset("-.() ")
_DIAL_CHARS: Final = frozenset("0123456789*#")
_TEL_PREFIX: Final = "tel:"


def normalise_uri(text: str) -> str:
    """A contact URI in canonical form, or ContactError saying what is wrong with it."""
    text = text.strip()
    if not text:
        raise ContactError("a URI is empty")
    scheme, colon, rest = text.partition(":")
    scheme = scheme.lower() if colon else ""
    if scheme == "tel":
        # People write numbers with spaces; RFC 3966 §5.1.1's visual separators do not include
        # the space, so it goes before parsing.
        text = "tel:" + rest.replace(" ", "")
    elif scheme not in ("sip", "sips"):
        if "@" in text and "/" not in text and not text.startswith("@"):
            text = "sip:" + text  # bare user@host (a colon after "@" is a port)
        else:
            raise ContactError(
                f"{text!r} is not a SIP address: use sip:user@host, sips:, tel:+number or user@host"
            )
    try:
        uri = parse_uri(text)
    except ParseError as exc:
        raise ContactError(f"{text!r} is not a valid URI: {exc}") from exc
    if isinstance(uri, SipUri) and uri.headers:
        raise ContactError(f"{text!r}: a contact URI cannot carry headers (?…)")
    return str(uri)


def _host_key(host: str) -> str:
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host).compressed
        except ValueError:
            pass
    return host.lower().rstrip(".")


def _number(text: str) -> str | None:
    """The digits of a telephone number (``+`` kept, ``00`` read as ``+``, separators dropped),
    or None when ``text`` is not one."""
    digits = "".join(c for c in text if c not in _VISUAL_SEPARATORS)
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    body = digits.removeprefix("+")
    if not body or not all(c in _DIAL_CHARS for c in body):
        return None
    return digits


def match_keys(uri: str) -> tuple[str, ...]:
    """The keys under which ``uri`` finds a contact, best first (ParseError if it is no URI).

    A SIP URI with ``user=phone`` or a user like ``+4930123`` / ``004930123`` is a telephone
    number first and a SIP user second; a user of bare digits (an extension, ``1002``) is a SIP
    user first and a number second; any other user is only a SIP user."""
    parsed = parse_uri(uri)
    if isinstance(parsed, TelUri):
        number = _number(parsed.number)
        if number is None:  # local numbers may hold hex digits (RFC 3966 §3): keep them as written
            number = "".join(c for c in parsed.number if c not in _VISUAL_SEPARATORS).lower()
        return (_TEL_PREFIX + number,)
    if isinstance(parsed, SipUri):
        user = parsed.user or ""
        sip_key = f"{user}@{_host_key(parsed.host)}"
        # A telephone-subscriber user may carry its own parameters (";isub=", ";phone-context=").
        number = _number(user.split(";", 1)[0]) if user else None
        if number is None:
            return (sip_key,)
        if parsed.param("user") == "phone" or number.startswith("+"):
            return (_TEL_PREFIX + number, sip_key)
        return (sip_key, _TEL_PREFIX + number)
    return (str(parsed),)


def uri_match_key(uri: str) -> str:
    """The key a stored contact URI is indexed under: its best :func:`match_keys`."""
    return match_keys(uri)[0]


@dataclass(frozen=True, slots=True)
class Party:
    """The other end of a call: the URI to call back, and the name it gave (or None)."""

    uri: str
    name: str | None = None


def parse_party(text: str) -> Party | None:
    """The party in ``text`` as earlier versions stored it, or None when it holds none.

    The shapes seen in stored rows: a bare URI (``sip:bob@x``), a name-addr (``"Bob" <sip:bob@x>``,
    ``bob <sip:bob@x>``), and a name-addr whose closing ``>`` was cut off by stripping ``<>``
    from the ends (``bob <sip:bob@lab.test``). Only sip:, sips: and tel: URIs count."""
    text = text.strip()
    if "<" not in text:
        # A bare URI keeps its parameters (";user=phone"): parsed as a name-addr, they would be
        # read as header parameters and dropped (RFC 3261 §20.10).
        try:
            uri = parse_uri(text)
        except ParseError:
            return None
        return Party(uri=str(uri)) if isinstance(uri, SipUri | TelUri) else None
    candidates = [text] if ">" in text else [text + ">"]
    for candidate in candidates:
        try:
            addr = NameAddr.parse(candidate)
        except ParseError:
            continue
        if not isinstance(addr.uri, SipUri | TelUri):
            return None
        return Party(uri=str(addr.uri), name=addr.display_name or None)
    return None
