"""Header values of RTSP responses (RFC 2326 §12): Transport, Session, RTP-Info and Range.

Readers, not validators: cameras get these wrong in many small ways (each marked ``quirk:``), and
what cannot be read is None rather than an error, except a Session header without an id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

from softphone.rtsp.errors import ParseError

DEFAULT_SESSION_TIMEOUT_S: Final = 60.0  # RFC 2326 §12.37: "the default is 60 seconds"

TransportName: TypeAlias = Literal["udp", "tcp"]  # the lower transport of RTP (§12.39)


_NPT_CLOCK: Final = re.compile(r"(?:([0-9]+):)?([0-9]{1,2}):([0-9]{1,2}(?:\.[0-9]*)?)")


def _npt_time(text: str) -> float | None:
    """npt-time (RFC 2326 §3.6): "now", seconds ("12.5") or hh:mm:ss(.frac)."""
    text = text.strip()
    if not text or text == "now":
        return None
    if (clock := _NPT_CLOCK.fullmatch(text)) is not None:
        hours = int(clock.group(1)) if clock.group(1) else 0
        return hours * 3600 + int(clock.group(2)) * 60 + float(clock.group(3))
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value >= 0 and value != float("inf") else None


def parse_range(value: str | None) -> tuple[float | None, float | None]:
    """``npt=9.984-20`` -> (9.984, 20.0) (RFC 2326 §12.29, §3.6); other units -> (None, None)."""
    if value is None:
        return None, None
    spec = value.split(";")[0].strip()
    unit, eq, times = spec.partition("=")
    if not eq or unit.strip().lower() != "npt":
        return None, None
    start, _, end = times.partition("-")
    return _npt_time(start), _npt_time(end)


def _int(text: str | None, *, base: int = 10) -> int | None:
    if text is None:
        return None
    text = text.strip()
    try:
        value = int(text, base)
    except ValueError:
        return None
    return value if value >= 0 else None


def _ssrc(text: str | None) -> int | None:
    # quirk: a leading space in "ssrc= 1A2B3C4D" (stripped by _int).
    value = _int(text, base=16)
    return value if value is not None and value <= 0xFFFFFFFF else None


def _pair(text: str | None) -> tuple[int, int] | None:
    """``"5000-5001"`` -> (5000, 5001); a single number n -> (n, n + 1) (RFC 2326 §12.39)."""
    if text is None:
        return None
    first, dash, second = text.partition("-")
    a, b = _int(first), _int(second) if dash else None
    if a is None or a > 65535:
        return None
    return (a, b if b is not None and b <= 65535 else a + 1)


@dataclass(frozen=True, slots=True, kw_only=True)
class TransportReply:
    """The server's Transport header (RFC 2326 §12.39), first spec only."""

    transport: TransportName
    interleaved: tuple[int, int] | None
    server_ports: tuple[int, int] | None
    client_ports: tuple[int, int] | None
    source: str | None
    ssrc: int | None


def parse_transport(value: str, *, asked: TransportName = "udp") -> TransportReply:
    """Read the Transport reply; ``asked`` decides when the protocol field is unreadable."""
    spec = value.split(",")[0]
    parts = [p.strip() for p in spec.split(";")]
    protocol = parts[0].upper() if parts else ""
    params: dict[str, str] = {}
    for part in parts[1:]:
        name, _, val = part.partition("=")
        params.setdefault(name.strip().lower(), val.strip())
    transport: TransportName
    if protocol.startswith("RTP/AVP/TCP") or protocol.endswith("/TCP"):
        transport = "tcp"
    elif protocol in ("RTP/AVP", "RTP/AVP/UDP"):
        transport = "udp"
    else:
        transport = asked
    return TransportReply(
        transport=transport,
        interleaved=_pair(params.get("interleaved")),
        server_ports=_pair(params.get("server_port")),
        client_ports=_pair(params.get("client_port")),
        source=params.get("source") or None,
        ssrc=_ssrc(params.get("ssrc")),
    )


def parse_session(value: str) -> tuple[str, float]:
    """``Session: 12345678;timeout=60`` -> ("12345678", 60.0) (RFC 2326 §12.37)."""
    session_id, *params = (p.strip() for p in value.split(";"))
    timeout = DEFAULT_SESSION_TIMEOUT_S
    for param in params:
        name, _, val = param.partition("=")
        if name.strip().lower() == "timeout":
            try:
                parsed = float(val.strip())
            except ValueError:
                continue
            if 0 < parsed < float("inf"):
                timeout = parsed
    if not session_id:
        raise ParseError(f"empty session id in {value!r}")
    return session_id, timeout


def parse_rtp_info(value: str) -> list[tuple[str, int | None, int | None, int | None]]:
    """RTP-Info entries (RFC 2326 §12.33) as (url, seq, rtptime, ssrc)."""
    entries: list[tuple[str, int | None, int | None, int | None]] = []
    for item in value.split(","):
        params: dict[str, str] = {}
        # quirk: a trailing ";" ("url=...;seq=1;rtptime=2;"), and rtptime left out.
        for part in item.split(";"):
            name, eq, val = part.strip().partition("=")
            if eq:
                params.setdefault(name.strip().lower(), val.strip())
        if "url" not in params:
            continue
        seq = _int(params.get("seq"))
        rtptime = _int(params.get("rtptime"))
        entries.append(
            (
                params["url"],
                seq if seq is not None and seq <= 0xFFFF else None,
                rtptime if rtptime is not None and rtptime <= 0xFFFFFFFF else None,
                _ssrc(params.get("ssrc")),  # quirk: SSRC given only here, not in Transport
            )
        )
    return entries
