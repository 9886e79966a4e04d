"""Cutting a SIP byte stream (TCP/TLS) into messages, RFC 3261 §18.3, RFC 5626 §3.5.1.

Shaped like h11: ``receive_data()`` buffers bytes, ``next_event()`` hands back one whole message
(bytes for :func:`softphone.sip.message.parse_message`), a keep-alive, or None for "need more
data". On a stream, Content-Length is mandatory (§18.3, §20.14). After a ParseError the stream
cannot be resynchronised and the caller closes the connection.
"""

from __future__ import annotations

from dataclasses import dataclass

from softphone.sip.errors import ParseError
from softphone.sip.headers import canonical_name


@dataclass(frozen=True, slots=True, kw_only=True)
class KeepAlivePing:
    """A double CRLF between messages (RFC 5626 §3.5.1); answer with a single CRLF."""


@dataclass(frozen=True, slots=True, kw_only=True)
class KeepAlivePong:
    """A single CRLF between messages: the answer to our ping (RFC 5626 §3.5.1)."""


def _content_length(head: bytes) -> int:
    """The Content-Length (or ``l``) of a message head; folded lines are joined first."""
    values: list[bytes] = []
    current: bytes | None = None  # value of the header being read, when it is Content-Length
    for line in head.split(b"\n")[1:]:
        line = line.rstrip(b"\r")
        if line[:1] in (b" ", b"\t"):
            if current is not None:
                values[-1] += b" " + line.strip()
            continue
        name, colon, value = line.partition(b":")
        current = None
        if not colon:
            continue  # parse_message reports it
        try:
            key = canonical_name(name.strip().decode("ascii"))
        except UnicodeDecodeError:
            continue
        if key == "Content-Length":
            current = value.strip()
            values.append(current)
    if not values:
        raise ParseError("message on a stream transport without Content-Length (§18.3)")
    if len(values) > 1:
        raise ParseError("more than one Content-Length header")
    text = values[0].strip()
    if not text.isdigit() or len(text) > 10:
        raise ParseError(f"bad Content-Length {text[:20]!r}")
    return int(text)


class StreamFramer:
    """Frames SIP messages on a stream; see the module docstring."""

    def __init__(self, *, max_message_size: int = 65536) -> None:
        self._buffer = bytearray()
        self._max = max_message_size
        self._scanned = 0  # bytes of the buffer already searched for the end of the head
        self._failed: ParseError | None = None
        self._frame_size: int | None = None  # head + body length, once the head is complete

    def receive_data(self, data: bytes) -> None:
        self._buffer += data

    def next_event(self) -> bytes | KeepAlivePing | KeepAlivePong | None:
        if self._failed is not None:
            raise ParseError(f"stream unusable after an earlier error: {self._failed}")
        try:
            return self._next_event()
        except ParseError as exc:
            self._failed = exc
            raise

    def _next_event(self) -> bytes | KeepAlivePing | KeepAlivePong | None:
        buf = self._buffer
        if self._frame_size is None and self._scanned == 0:  # between messages
            while buf[:1] == b"\n":
                del buf[:1]  # bare LFs before a start line are ignored (liberal, §7.5)
            if buf[:1] == b"\r":
                return self._keep_alive()
        if self._frame_size is None:
            end = self._find_head_end()
            if end is None:
                if len(buf) > self._max:
                    raise ParseError(f"message head over {self._max} bytes", status_hint=513)
                return None
            head_end, body_start = end
            total = body_start + _content_length(bytes(buf[:head_end]))
            if total > self._max:
                raise ParseError(f"message of {total} bytes exceeds {self._max}", status_hint=513)
            self._frame_size = total
        total = self._frame_size
        if len(buf) < total:
            return None
        message = bytes(buf[:total])
        del buf[:total]
        self._scanned = 0
        self._frame_size = None
        return message

    def _keep_alive(self) -> KeepAlivePing | KeepAlivePong | None:
        """RFC 5626 §3.5.1: CRLFCRLF is a ping, a lone CRLF a pong.

        A CRLF followed by nothing is reported as a pong at once: waiting would stall every
        real pong, and a ping split after its first CRLF is not seen in practice.
        """
        buf = self._buffer
        if len(buf) < 2:
            return None
        if buf[1:2] != b"\n":
            raise ParseError("stray CR between messages")
        if len(buf) == 3 and buf[2:3] == b"\r":
            return None  # maybe the front of a ping
        if buf[:4] == b"\r\n\r\n":
            del buf[:4]
            return KeepAlivePing()
        del buf[:2]
        return KeepAlivePong()

    def _find_head_end(self) -> tuple[int, int] | None:
        """(end of the last header line, start of the body), or None if not buffered yet."""
        buf = self._buffer
        start = max(0, self._scanned - 3)
        crlf = buf.find(b"\r\n\r\n", start)
        lf = buf.find(b"\n\n", start)
        self._scanned = len(buf)
        # The first empty line ends the head, whether its line ends are CRLF or bare LF.
        found = [(crlf + 4, crlf)] if crlf >= 0 else []
        if lf >= 0:
            found.append((lf + 2, lf))
        if not found:
            return None
        body_start, head_end = min(found)
        return head_end, body_start
