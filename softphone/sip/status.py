"""Human-readable explanations of SIP final statuses (what a person sees when a call fails), and
the Warning header (RFC 3261 §20.43) that says why a session description was refused."""

from __future__ import annotations

import re
from typing import Final

WARN_AGENT: Final = "softphone"  # §20.43: a warn-agent may be a pseudonym
_WARNING: Final = re.compile(r'\s*([0-9]{3})\s+(\S+)\s+"((?:[^"\\]|\\.)*)"')

# What the status usually means for the person making the call (RFC 3261 §21, RFC 3398 practice).
EXPLANATIONS: Final[dict[int, str]] = {
    400: "the other side could not understand our request",
    401: "the server wants a password and the one configured was not accepted",
    403: "refused by the server (wrong password or not allowed)",
    404: "no such user or number",
    405: "the other side does not allow this request",
    407: "the proxy wants a password and the one configured was not accepted",
    408: "no answer in time (nobody reachable)",
    410: "the user is gone (no longer at this address)",
    415: "the other side cannot handle our message body",
    420: "the other side requires an extension we do not support",
    423: "registration interval too short",
    480: "temporarily unavailable (offline or do-not-disturb)",
    481: "the call no longer exists on the other side",
    482: "loop detected",
    483: "too many hops",
    484: "address incomplete",
    485: "ambiguous address",
    486: "busy",
    487: "cancelled",
    488: "no common codec or media format",
    491: "request pending (glare)",
    500: "server error on the other side",
    501: "not implemented by the other side",
    502: "bad gateway",
    503: "service unavailable (or could not reach the server)",
    504: "server time-out",
    505: "SIP version not supported",
    513: "message too large",
    600: "busy everywhere",
    603: "declined",
    604: "does not exist anywhere",
    606: "not acceptable",
}


def warning_header(code: int, text: str) -> str:
    """A Warning value, ``305 softphone "text"``: the text on one line, quotes made safe."""
    clean = " ".join(text.split()).replace("\\", "/").replace('"', "'")[:200]
    return f'{code} {WARN_AGENT} "{clean}"'


def warning_texts(values: list[str]) -> list[str]:
    """The warn-texts of Warning header values (several may share one header, comma-separated)."""
    texts: list[str] = []
    for value in values:
        texts += [m.group(3).replace('\\"', '"') for m in _WARNING.finditer(value)]
    return texts


def explain(status: int, reason: str, warning: str | None = None) -> str:
    """'486 Busy Here (busy)' — the status, the peer's phrase, and what it means for us; with a
    Warning's text (RFC 3261 §20.43) that says it better: '488 Not Acceptable Here: <text>'."""
    if status == 0:
        return reason
    text = f"{status} {reason}".strip()
    if warning:
        return f"{text}: {warning}"
    meaning = EXPLANATIONS.get(status) or EXPLANATIONS.get(status // 100 * 100)
    if meaning and meaning.lower() != reason.lower():
        return f"{text} ({meaning})"
    return text
