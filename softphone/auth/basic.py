"""HTTP Basic authentication (RFC 7617), as RTSP uses it (RFC 2326 §D.1 points at HTTP's).

Works on header values, like :mod:`softphone.auth.digest`::

    challenge = BasicChallenge.parse('Basic realm="IP Camera"')
    value = basic_authorization("admin", "p@ss")        # -> 'Basic YWRtaW46cEBzcw=='

Basic sends the password in the clear (base64 is an encoding): a client prefers Digest when
the server offers both (RFC 7617 §4, RFC 7616 §5.7).
"""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass

from softphone.auth.errors import ParseError

__all__ = ["BasicChallenge", "basic_authorization", "parse_basic_credentials", "verify_basic"]


@dataclass(frozen=True, slots=True)
class BasicChallenge:
    """``Basic realm="..."[, charset="UTF-8"]`` (RFC 7617 §2, §2.1)."""

    realm: str
    charset: str | None = None

    @classmethod
    def parse(cls, value: str) -> BasicChallenge:
        """Parse a WWW-Authenticate value; raises ParseError (and nothing else)."""
        scheme, _, rest = value.strip().partition(" ")
        if scheme.lower() != "basic":
            raise ParseError(f"not a Basic auth header (scheme {scheme!r})")
        params: dict[str, str] = {}
        for part in _split_params(rest):
            name, eq, raw = part.partition("=")
            if not eq or not name.strip():
                raise ParseError(f"bad Basic auth-param {part!r}")
            params[name.strip().lower()] = _unquote(raw.strip())
        # RFC 7617 §2: realm is required; cameras that omit it are answered anyway.
        return cls(realm=params.get("realm", ""), charset=params.get("charset"))

    def __str__(self) -> str:
        charset = f', charset="{self.charset}"' if self.charset else ""
        return f'Basic realm="{_escape(self.realm)}"{charset}'


def _split_params(text: str) -> list[str]:
    """Comma-separated auth-params, commas inside quoted-strings kept (RFC 7235 §2.1)."""
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    if quoted:
        raise ParseError("unterminated quoted-string in Basic auth header")
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] == '"':
        inner = text[1:-1]
        out: list[str] = []
        i = 0
        while i < len(inner):
            if inner[i] == "\\" and i + 1 < len(inner):
                i += 1
            out.append(inner[i])
            i += 1
        return "".join(out)
    return text


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def basic_authorization(username: str, password: str) -> str:
    """The Authorization value: ``Basic base64(user-id ":" password)`` in UTF-8 (RFC 7617 §2,
    §2.1). A user-id with a colon cannot be expressed (§2)."""
    if ":" in username:
        raise ParseError("a Basic user-id cannot contain ':' (RFC 7617 §2)")
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def parse_basic_credentials(value: str) -> tuple[str, str]:
    """(user-id, password) of a Basic Authorization value; raises ParseError."""
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "basic":
        raise ParseError(f"not Basic credentials (scheme {scheme!r})")
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise ParseError("Basic credentials are not base64 of UTF-8 text") from None
    username, colon, password = decoded.partition(":")
    if not colon:
        raise ParseError("Basic credentials have no ':' between user-id and password")
    return username, password


def verify_basic(value: str, *, username: str, password: str) -> bool:
    """Server side (tests): does the Authorization value carry these credentials?"""
    claimed_user, claimed_password = parse_basic_credentials(value)
    same_user = hmac.compare_digest(claimed_user.encode(), username.encode())
    return hmac.compare_digest(claimed_password.encode(), password.encode()) and same_user
