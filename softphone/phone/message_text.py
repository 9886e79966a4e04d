"""What an instant message's bytes say, and the bytes of what we send.

A text/plain body is read by its ``charset`` parameter (RFC 2046 §4.1.2); without one, as
UTF-8 (a superset of RFC 2046's US-ASCII default, and what SIP phones send). A charset Python
does not know, or bytes that are not valid in it, never fail: the text is shown with
replacement characters (U+FFFD) and a note says why. Any other media type is not shown: it
becomes an attachment line, ``[image/png, 2.3 kB]``.

Text from the network may carry terminal control sequences; :func:`printable` replaces them
before a line is printed on a terminal (the stored text stays as it came).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from softphone.phone.errors import PhoneError
from softphone.sip.errors import ParseError
from softphone.sip.media_type import MediaType

__all__ = [
    "DEFAULT_CHARSET",
    "Decoded",
    "attachment_line",
    "decode_body",
    "encode_text",
    "format_size",
    "printable",
]

DEFAULT_CHARSET: Final = "utf-8"
TEXT_TYPE: Final = "text/plain"
_CONTROLS: Final = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@dataclass(frozen=True, slots=True)
class Decoded:
    """A body as shown: ``text`` (the decoded text, or the attachment line), ``is_text``
    (False: an attachment), and ``note`` when the text is not exactly what was sent."""

    text: str
    is_text: bool
    note: str | None = None


def format_size(size: int) -> str:
    """``512 B``, ``2.3 kB``, ``1.4 MB`` (decimal units, one decimal)."""
    if size < 1000:
        return f"{size} B"
    if size < 1_000_000:
        return f"{size / 1000:.1f} kB"
    return f"{size / 1_000_000:.1f} MB"


def attachment_line(content_type: str, size: int) -> str:
    return f"[{content_type}, {format_size(size)}]"


def decode_body(content_type: str, charset: str | None, body: bytes) -> Decoded:
    """``body`` as a person sees it (module docstring); never raises."""
    if content_type.lower() != TEXT_TYPE:
        return Decoded(attachment_line(content_type.lower(), len(body)), is_text=False)
    wanted = (charset or DEFAULT_CHARSET).strip()
    try:
        return Decoded(body.decode(wanted), is_text=True)
    except LookupError:  # unknown to Python, or not a text encoding at all (base64...)
        text = body.decode(DEFAULT_CHARSET, "replace")
        return Decoded(text, is_text=True, note=f"unknown charset {wanted!r}: shown as UTF-8")
    except UnicodeDecodeError:
        text = body.decode(wanted, "replace")
        return Decoded(
            text, is_text=True, note=f"not valid {wanted}: undecodable bytes shown as \ufffd"
        )


def encode_text(text: str, content_type: str) -> tuple[bytes, str]:
    """The body and Content-Type for ``text`` sent as ``content_type``: encoded in its charset
    (UTF-8 when it names none, then said in a ``charset`` parameter for text types). PhoneError
    for an empty text, a content type that does not parse, or a charset that cannot hold it."""
    if not text:
        raise PhoneError("nothing to send: the message is empty")
    try:
        media = MediaType.parse(content_type)
    except ParseError as exc:
        raise PhoneError(f"{content_type!r} is not a content type: {exc}") from None
    charset = media.charset
    if charset is None:
        charset = DEFAULT_CHARSET
        if media.type == "text":
            media = media.with_param("charset", "UTF-8")
    try:
        body = text.encode(charset)
    except LookupError:
        raise PhoneError(f"unknown charset {charset!r}") from None
    except UnicodeEncodeError as exc:
        bad = text[exc.start : exc.end]
        raise PhoneError(f"{bad!r} cannot be written in {charset}") from None
    return body, str(media)


def printable(text: str) -> str:
    """``text`` safe to print on a terminal: control characters (Unicode Cc: escape
    sequences, carriage returns, bells) become U+FFFD; line feeds and tabs stay."""
    return _CONTROLS.sub("\ufffd", text)
