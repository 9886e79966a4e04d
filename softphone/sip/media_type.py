"""Content-Type values (RFC 3261 §20.15, media types of RFC 2045 §5.1), sans-IO.

``type "/" subtype *( ";" parameter )``: the type and subtype are tokens compared without case,
parameter names too; a value is a token or a quoted string. MESSAGE bodies (RFC 3428) are the
first users: ``text/plain;charset=ISO-8859-1`` says how to read the bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from softphone.sip.errors import ParseError
from softphone.sip.headers import is_token, parse_header_params

__all__ = ["MediaType"]


@dataclass(frozen=True, slots=True)
class MediaType:
    """``type/subtype`` in lower case, and the parameters (names lower case, values unquoted)."""

    type: str
    subtype: str
    params: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, text: str) -> MediaType:
        """ParseError naming what is wrong: no ``/``, a part that is not a token, a parameter
        without a value."""
        head, _, rest = text.strip(" \t").partition(";")
        kind, slash, sub = head.strip(" \t").partition("/")
        if not slash:
            raise ParseError(f"media type {text!r} has no '/' (type/subtype, RFC 2045 §5.1)")
        if not is_token(kind) or not is_token(sub):
            raise ParseError(f"media type {text!r}: type and subtype must be tokens")
        params: list[tuple[str, str]] = []
        if rest:
            for name, value in parse_header_params(";" + rest, "Content-Type"):
                if value is None:
                    raise ParseError(f"media type parameter {name!r} has no value")
                params.append((name.lower(), _unquote(value)))
        return cls(kind.lower(), sub.lower(), tuple(params))

    @property
    def essence(self) -> str:
        """``type/subtype`` without parameters: what decides how a body is handled."""
        return f"{self.type}/{self.subtype}"

    def param(self, name: str) -> str | None:
        wanted = name.lower()
        return next((value for key, value in self.params if key == wanted), None)

    @property
    def charset(self) -> str | None:
        return self.param("charset")

    def with_param(self, name: str, value: str) -> MediaType:
        kept = tuple(p for p in self.params if p[0] != name.lower())
        return MediaType(self.type, self.subtype, (*kept, (name.lower(), value)))

    def __str__(self) -> str:
        return self.essence + "".join(f";{k}={_quote(v)}" for k, v in self.params)


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        out: list[str] = []
        escaped = False
        for c in value[1:-1]:
            if c == "\\" and not escaped:
                escaped = True
                continue
            out.append(c)
            escaped = False
        return "".join(out)
    return value


def _quote(value: str) -> str:
    if is_token(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
