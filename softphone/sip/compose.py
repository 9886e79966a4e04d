"""Message helpers of the user agent, sans-IO: responses (RFC 3261 §8.2.6), where they go
(§18.2.1-2, RFC 3581), the 400 for a request that does not parse (§8.2), copies of requests."""

from __future__ import annotations

from collections.abc import Sequence

from softphone.sip.address import Address, TransportName
from softphone.sip.errors import ParseError
from softphone.sip.headers import NameAddr, Via
from softphone.sip.message import (
    Headers,
    SipMessage,
    SipRequest,
    SipResponse,
    parse_message,
    reason_phrase,
)
from softphone.sip.uri import SipUri


def build_response(
    req: SipRequest,
    status: int,
    *,
    to_tag: str | None,
    contact: SipUri | None,
    server: str,
    allow: str,
    sdp: bytes | None = None,
    extra: Sequence[tuple[str, str]] = (),
    reason: str | None = None,
) -> SipResponse:
    """§8.2.6.2: Via (all, in order), From, Call-ID, CSeq copied; To gets ``to_tag`` when it has
    none (never on a 100, §8.2.6.1)."""
    headers = Headers()
    for line in req.headers.get_lines("Via"):
        headers.add("Via", line)
    headers.add("From", req.headers.get_lines("From")[0])
    to = req.to
    headers.add(
        "To", str(to.with_param("tag", to_tag) if to_tag is not None and not to.tag else to)
    )
    headers.add("Call-ID", req.call_id)
    headers.add("CSeq", str(req.cseq))
    if req.method == "INVITE" and 100 < status < 300:
        for line in req.headers.get_lines("Record-Route"):  # §12.1.1
            headers.add("Record-Route", line)
    if contact is not None:
        headers.add("Contact", str(NameAddr(uri=contact)))
    for name, value in extra:
        headers.add(name, value)
    if status != 100:
        headers.add("Server", server)
    if sdp is not None:
        headers.add("Content-Type", "application/sdp")
        if "Allow" not in headers:
            headers.add("Allow", allow)
    return SipResponse(
        status=status, reason=reason or reason_phrase(status), headers=headers, body=sdp or b""
    )


def copy_request(request: SipRequest) -> SipRequest:
    return SipRequest(
        method=request.method,
        uri=request.uri,
        headers=request.headers.copy(),
        body=request.body,
    )


def sdp_body(message: SipMessage) -> bytes | None:
    """The body when it is an SDP offer or answer, else None."""
    return message.body if message.content_type == "application/sdp" and message.body else None


def stamp_via(req: SipRequest, source: Address) -> SipRequest:
    """§18.2.1 received, RFC 3581 rport: record where the request really came from."""
    vias = req.vias
    top = vias[0]
    changed = top
    if top.host != source.host or (top.received is not None and top.received != source.host):
        changed = changed.with_param("received", source.host)
    if top.param("rport") is not None:
        changed = changed.with_param("rport", str(source.port))
    if changed is not top:
        vias[0] = changed
        req.headers.set("Via", ", ".join(str(v) for v in vias))
    return req


def response_address(via: Via, source: Address) -> Address:
    """§18.2.2 + RFC 3581 §4: reliable -> the same connection; else the source IP at rport, or
    the sent-by port. Never a name that needs DNS."""
    if source.reliable:
        return source
    # received is always the source IP (we stamp it, §18.2.1); rport asks for the source port.
    port = source.port if via.param("rport") is not None else (via.port or 5060)
    return Address(source.transport, source.host, port)


def secure_request(req: SipRequest) -> bool:
    """Whether our answer's Contact must be a SIPS URI (RFC 3261 §12.1.1, RFC 5630 §3.1.3):
    the Request-URI is SIPS, or the top Record-Route is, or (no Record-Route) the Contact is."""
    if _sips(req.uri):
        return True
    record_routes = req.record_routes
    if record_routes:
        return _sips(record_routes[0].uri)
    contacts = req.contacts
    return bool(contacts) and _sips(contacts[0].uri)


def _sips(uri: object) -> bool:
    return isinstance(uri, SipUri) and uri.scheme == "sips"


def reply_transport(req: SipRequest) -> TransportName:
    t = req.top_via.transport.lower()
    return t if t in ("udp", "tcp", "tls") else "udp"  # type: ignore[return-value]


def answer_to_garbage(
    data: bytes, source: Address, exc: ParseError
) -> tuple[bytes, Address] | None:
    """A malformed request gets a 400 when the headers a response needs can be found (§8.2);
    otherwise None: it is dropped (the transport logs it)."""
    head = data.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    raw_lines = head.replace(b"\r\n", b"\n").split(b"\n")
    if not raw_lines or raw_lines[0].startswith(b"SIP/"):
        return None
    lines: list[bytes] = []
    for line in raw_lines:  # unfold (§7.3.1) before picking headers out
        if line[:1] in (b" ", b"\t") and lines:
            lines[-1] += b" " + line.strip()
        else:
            lines.append(line)
    wanted: dict[str, list[str]] = {
        "via": [],
        "v": [],
        "from": [],
        "f": [],
        "to": [],
        "t": [],
        "call-id": [],
        "i": [],
        "cseq": [],
    }
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        key = name.strip().decode("latin-1").lower()
        if sep and key in wanted:
            wanted[key].append(value.strip().decode("utf-8", "replace"))
    via = wanted["via"] + wanted["v"]
    frm, to = wanted["from"] + wanted["f"], wanted["to"] + wanted["t"]
    cid, cseq = wanted["call-id"] + wanted["i"], wanted["cseq"]
    if not (via and frm and to and cid and cseq):
        return None
    phrase = str(exc).replace("\r", " ").replace("\n", " ")[:100]
    body = "\r\n".join(
        [f"SIP/2.0 {exc.status_hint} {reason_phrase(exc.status_hint)}"]
        + [f"Via: {v}" for v in via]
        + [
            f"From: {frm[0]}",
            f"To: {to[0]}",
            f"Call-ID: {cid[0]}",
            f"CSeq: {cseq[0]}",
            f'Warning: 399 softphone "{phrase.replace(chr(34), chr(39))}"',
            "Content-Length: 0",
            "",
            "",
        ]
    ).encode()
    try:
        parse_message(body)  # never answer junk with junk
        dest = response_address(Via.parse(via[0].split(",")[0]), source)
    except ParseError:
        return None
    return body, dest
