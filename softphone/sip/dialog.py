"""Dialog state (RFC 3261 §12): identifiers, CSeq spaces, route set and remote target.

A dialog is made from the request and the response that establish it (§12.1.1 UAS side, §12.1.2
UAC side) and builds the requests sent inside it (§12.2.1.1). Target refresh (§12.2) updates the
remote target. The state machine is small and explicit: EARLY -> CONFIRMED -> TERMINATED.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum, auto
from typing import Final

from softphone.sip.errors import LocalProtocolError, RemoteProtocolError
from softphone.sip.headers import NameAddr
from softphone.sip.message import Headers, SipRequest, SipResponse
from softphone.sip.uri import SipUri, Uri


class DialogState(Enum):
    EARLY = auto()
    CONFIRMED = auto()
    TERMINATED = auto()


class DialogInput(Enum):
    RECV_1XX = auto()  # provisional with a To tag (UAC) / sent (UAS)
    RECV_2XX = auto()
    ACK_OR_2XX_SENT = auto()
    FAILED = auto()  # non-2xx final to the INVITE
    BYE = auto()


D, DI = DialogState, DialogInput
# RFC 3261 §12.1 (creation), §12.3 (termination). Pairs not listed are ignored (stay put).
DIALOG_TRANSITIONS: Final[dict[tuple[DialogState, DialogInput], DialogState]] = {
    (D.EARLY, DI.RECV_1XX): D.EARLY,
    (D.EARLY, DI.RECV_2XX): D.CONFIRMED,
    (D.EARLY, DI.ACK_OR_2XX_SENT): D.CONFIRMED,
    (D.EARLY, DI.FAILED): D.TERMINATED,
    (D.EARLY, DI.BYE): D.TERMINATED,
    (D.CONFIRMED, DI.RECV_2XX): D.CONFIRMED,  # 2xx retransmissions
    (D.CONFIRMED, DI.ACK_OR_2XX_SENT): D.CONFIRMED,
    (D.CONFIRMED, DI.BYE): D.TERMINATED,
}


@dataclass(slots=True)
class Dialog:
    call_id: str
    local_tag: str
    remote_tag: str
    local_uri: NameAddr  # our From (UAC) / To (UAS), tag included
    remote_uri: NameAddr
    remote_target: Uri
    route_set: list[NameAddr] = field(default_factory=list)
    local_seq: int = 0
    remote_seq: int | None = None
    secure: bool = False
    state: DialogState = DialogState.EARLY

    @property
    def id(self) -> tuple[str, str, str]:
        return (self.call_id, self.local_tag, self.remote_tag)

    def apply(self, event: DialogInput) -> DialogState:
        self.state = DIALOG_TRANSITIONS.get((self.state, event), self.state)
        return self.state

    # -- creation -------------------------------------------------------------------------------
    @classmethod
    def from_uac(cls, request: SipRequest, response: SipResponse) -> Dialog:
        """§12.1.2: the UAC side, from our request and a 1xx/2xx carrying a To tag."""
        remote_tag = response.to.tag
        if not remote_tag:
            raise RemoteProtocolError("dialog-creating response without a To tag")
        contacts = response.contacts
        if not contacts:
            raise RemoteProtocolError("dialog-creating response without Contact")
        # Route set: Record-Route in reverse order (§12.1.2).
        route_set = list(reversed(response.record_routes))
        uri = request.uri
        return cls(
            call_id=request.call_id,
            local_tag=request.from_.tag or "",
            remote_tag=remote_tag,
            local_uri=request.from_,
            remote_uri=response.to,
            remote_target=contacts[0].uri,
            route_set=route_set,
            local_seq=request.cseq.seq,
            secure=isinstance(uri, SipUri) and uri.scheme == "sips",
            state=DialogState.CONFIRMED if 200 <= response.status < 300 else DialogState.EARLY,
        )

    @classmethod
    def from_uas(cls, request: SipRequest, local_tag: str) -> Dialog:
        """§12.1.1: the UAS side, from the dialog-creating request we answer with ``local_tag``."""
        contacts = request.contacts
        if not contacts:
            raise RemoteProtocolError("dialog-creating request without Contact")
        return cls(
            call_id=request.call_id,
            local_tag=local_tag,
            remote_tag=request.from_.tag or "",
            local_uri=request.to.with_param("tag", local_tag),
            remote_uri=request.from_,
            remote_target=contacts[0].uri,
            route_set=list(request.record_routes),  # same order (§12.1.1)
            remote_seq=request.cseq.seq,
            secure=isinstance(request.uri, SipUri) and request.uri.scheme == "sips",
        )

    # -- in-dialog requests (§12.2.1.1) ---------------------------------------------------------
    def next_seq(self) -> int:
        self.local_seq += 1
        return self.local_seq

    def build_request(self, method: str, *, seq: int | None = None) -> SipRequest:
        """A request inside this dialog, without Via/Contact/Max-Forwards (the UA adds those).

        With a loose-routing first hop (``;lr``) the Request-URI is the remote target and the
        route set goes into Route headers; with a strict router the first route becomes the
        Request-URI and the remote target is appended (§12.2.1.1).
        """
        if self.state is DialogState.TERMINATED and method not in ("ACK", "BYE"):
            raise LocalProtocolError(f"{method} in a terminated dialog")
        if seq is None:
            seq = self.next_seq()
        headers = Headers()
        uri: Uri = self.remote_target
        routes = list(self.route_set)
        if routes and isinstance(routes[0].uri, SipUri) and not routes[0].uri.has_param("lr"):
            uri = routes[0].uri
            routes = [*routes[1:], NameAddr(uri=self.remote_target)]
        for route in routes:
            headers.add("Route", str(route))
        headers.add("From", str(self.local_uri))
        headers.add("To", str(self.remote_uri))
        headers.add("Call-ID", self.call_id)
        headers.add("CSeq", f"{seq} {method}")
        return SipRequest(method=method, uri=uri, headers=headers)

    def receive_request(self, request: SipRequest) -> None:
        """§12.2.2: check the remote CSeq; out of order requests get 500 (RemoteProtocolError)."""
        seq = request.cseq.seq
        if request.method in ("ACK", "CANCEL"):
            return
        if self.remote_seq is not None and seq <= self.remote_seq:
            raise RemoteProtocolError(f"CSeq {seq} is not above {self.remote_seq}", status_hint=500)
        self.remote_seq = seq

    def refresh_target(self, message: SipRequest | SipResponse) -> None:
        """Target refresh (§12.2): a re-INVITE or its 2xx replaces the remote target."""
        contacts = message.contacts
        if contacts:
            self.remote_target = contacts[0].uri
