"""Turning what a person types into a SIP URI: ``1002``, ``bob``, ``bob@lab.test``,
``sip:bob@lab.test;transport=tcp``, ``tel:+15551234``, ``127.0.0.1:5070``."""

from __future__ import annotations

import re

from softphone.sip.errors import ParseError
from softphone.sip.uri import SipUri, TelUri, parse_uri

_NUMBER = re.compile(r"^\+?[0-9*#][0-9*#\-. ()]*$")
_USER = re.compile(r"^[A-Za-z0-9_.!~*'()&=+$,;?/%-]+$")


class TargetError(ValueError):
    """What was typed cannot be a call target; the message says why."""


def normalize_target(text: str, aor: SipUri) -> SipUri:
    """Numbers and bare user names become URIs on the account's domain (``aor.host``)."""
    raw = text.strip()
    if not raw:
        raise TargetError("nothing to call: the address is empty")
    lowered = raw.lower()
    if lowered.startswith(("sip:", "sips:", "tel:")):
        try:
            uri = parse_uri(raw)
        except ParseError as exc:
            raise TargetError(f"{raw!r} is not a valid SIP address: {exc}") from None
        if isinstance(uri, TelUri):
            number = re.sub(r"[\-. ()]", "", uri.number)
            return SipUri(user=number, host=aor.host, port=aor.port, params=(("user", "phone"),))
        if not isinstance(uri, SipUri):
            raise TargetError(f"{raw!r} is not a SIP address")
        return uri
    if _NUMBER.match(raw):
        number = re.sub(r"[\-. ()]", "", raw)
        return SipUri(user=number, host=aor.host, port=aor.port)
    if "@" in raw:
        try:
            uri = SipUri.parse("sip:" + raw)
        except ParseError as exc:
            raise TargetError(f"{raw!r} is not a valid SIP address: {exc}") from None
        return uri
    if _USER.match(raw) and ":" not in raw and "." not in raw:
        return SipUri(user=raw, host=aor.host, port=aor.port)
    try:  # a host or host:port (a direct call to a device)
        return SipUri.parse("sip:" + raw)
    except ParseError as exc:
        raise TargetError(
            f"{raw!r} is not a number, a user name or a SIP address ({exc})"
        ) from None


LOCAL_AOR = SipUri(user="softphone", host="localhost")  # no account: peer to peer


def target_uri(text: str, aor: SipUri | None = None) -> str:
    """:func:`normalize_target` as text, on ``aor``'s domain (``localhost`` without one): what a
    front end keys a party by before the phone has sent anything (TargetError as there)."""
    return str(normalize_target(text, aor or LOCAL_AOR))
