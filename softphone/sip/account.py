"""What the user agent core knows of an account, and where its requests go, sans-IO.

Next hops are Addresses (IP literals). Name resolution (RFC 3263) happens in the phone layer
before a request is started; a hop that would need DNS inside a dialog goes to the account's
outbound proxy, or fails with a clear reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from softphone.sip.address import Address, TransportName
from softphone.sip.dialog import Dialog
from softphone.sip.errors import LocalProtocolError
from softphone.sip.reliable import PrackMode
from softphone.sip.uri import SipUri, Uri

_IP4 = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")


@dataclass(frozen=True, slots=True)
class AccountConfig:
    """What the core needs to know of an account. The phone layer builds it from the config."""

    name: str
    aor: SipUri
    username: str
    password: str | None = None
    display_name: str | None = None
    registrar: SipUri | None = None  # None: no registration (peer-to-peer)
    outbound: Address | None = None  # resolved next hop for out-of-dialog requests
    # Every target RFC 3263 found for that hop, in the order to try them (outbound first);
    # requests fail over along it (sip/failover.py). Empty: ``outbound`` alone.
    targets: tuple[Address, ...] = ()
    transport: TransportName = "udp"
    expires: int = 3600
    # Every this many seconds while registered, ask the registrar for our binding (a REGISTER
    # without Contact, RFC 3261 §10.2.3) and register again if it is gone; None never asks.
    binding_check_s: float | None = None
    # Out-of-dialog requests only from the registrar or outbound proxy (accepts_source).
    only_from_proxy: bool = False
    # RFC 5626 §4.1: this phone's instance (a UUID, the same across restarts), None for none
    instance_id: str | None = None
    # RFC 3262: "off" (no 100rel; an INVITE requiring it gets 420), "supported" (we PRACK
    # reliable 1xx; our 1xx are reliable when the INVITE requires it), "required" (our INVITE
    # requires 100rel; every 1xx of ours is reliable and an INVITE without 100rel gets 421).
    prack: PrackMode = "supported"
    # RFC 4028: the session interval we ask for and accept, 0 for no session timer.
    session_expires_s: int = 1800


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountChanges:
    """What ``UserAgent.update_accounts`` did: account names, in the new order where they have
    one. ``registering``: a REGISTER went out (a new account, or a changed one). ``unregistering``:
    a REGISTER with Expires: 0 went out, for a removed account or one that no longer has a
    registrar."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    registering: tuple[str, ...] = ()
    unregistering: tuple[str, ...] = ()


def same_binding(old: AccountConfig, new: AccountConfig) -> bool:
    """Whether ``new`` keeps ``old``'s binding: the same address of record at the same registrar,
    reached through the same hop and transport. Then a refresh of the binding carries what else
    changed (credentials, interval, display name); otherwise the old binding is removed and a new
    one made, with a new Call-ID (RFC 3261 §10.2.4: one Call-ID per binding)."""
    return (old.aor, old.registrar, old.outbound, old.transport) == (
        new.aor,
        new.registrar,
        new.outbound,
        new.transport,
    )


def account_for_uri(
    accounts: Iterable[AccountConfig],
    uri: Uri,
    registered_contact: Callable[[str], SipUri | None],
) -> AccountConfig | None:
    """Whose request this is (§8.2.2.1), or None (answered 404, nothing rings):

    - the account whose registered Contact the Request-URI is (what a registrar's proxy
      sends us), or whose address of record it is, user and host (a proxy that does not
      rewrite the Request-URI);
    - an account without a registrar (peer-to-peer) also takes its user at any host, and a
      Request-URI without a user part (a direct call to our address) goes to the first such
      account.

    A registered account does not take its user at another host, nor a URI without a user:
    those reach us only when someone bypasses the registrar (a scanner guessing users)."""
    if not isinstance(uri, SipUri):
        return None
    accounts = list(accounts)
    for acct in accounts:
        contact = registered_contact(acct.name)
        if (
            contact is not None
            and uri.user == contact.user
            and (uri.host == contact.host and (uri.port or 5060) == (contact.port or 5060))
        ):
            return acct
    for acct in accounts:
        if uri.user is not None and uri.user == acct.aor.user and uri.host == acct.aor.host:
            return acct
    peer_to_peer = [acct for acct in accounts if acct.registrar is None]
    for acct in peer_to_peer:
        if uri.user is not None and uri.user == acct.aor.user:
            return acct
    if uri.user is None and peer_to_peer:
        return peer_to_peer[0]
    return None


def accepts_source(
    accounts: Iterable[AccountConfig], acct: AccountConfig | None, source: Address
) -> bool:
    """``only_from_proxy``: whether an out-of-dialog request from ``source`` may go on (else
    403, and nothing rings). A request for an account that has it must come from that account's
    outbound proxy or registrar (host and port: a phone that calls us directly may share their
    host). One for no account (a guessed user, a ping without one) is refused when every account
    has it and it comes from none of their servers."""
    if acct is not None:
        return not acct.only_from_proxy or source_is_server(acct, source)
    accounts = list(accounts)
    if accounts and all(a.only_from_proxy for a in accounts):
        return any(source_is_server(a, source) for a in accounts)
    return True


def source_is_server(acct: AccountConfig, source: Address) -> bool:
    """Whether ``source`` is ``acct``'s outbound proxy (resolved) or its registrar (when an IP
    literal; a registrar by name is reached through ``outbound``, which holds its address)."""
    servers = [(hop.host, hop.port) for hop in (*acct.targets, acct.outbound) if hop is not None]
    if acct.registrar is not None and is_ip_literal(acct.registrar.host):
        try:
            hop = address_for_uri(acct.registrar, acct.transport)
        except LocalProtocolError:
            hop = None
        if hop is not None:
            servers.append((hop.host, hop.port))
    return (source.host, source.port) in servers


def is_ip_literal(host: str) -> bool:
    return bool(_IP4.match(host)) or ":" in host


def address_for_uri(uri: SipUri, default_transport: TransportName) -> Address:
    """Next hop for a URI whose host is an IP literal (RFC 3263 §4.2 without DNS)."""
    transport = (uri.transport or ("tls" if uri.scheme == "sips" else default_transport)).lower()
    if transport not in ("udp", "tcp", "tls"):
        raise LocalProtocolError(f"unsupported transport {transport!r} in {uri}")
    if not is_ip_literal(uri.host):
        raise LocalProtocolError(f"{uri.host} needs a DNS look-up; resolve it first")
    port = uri.port or (5061 if transport == "tls" else 5060)
    return Address(transport, uri.host, port, server_name=uri.host)  # type: ignore[arg-type]


def server_targets(acct: AccountConfig) -> tuple[Address, ...]:
    """Where ``acct``'s out-of-dialog requests may go, in order (RFC 3263 §4.3): its resolved
    targets, else its outbound hop alone, else nothing (requests go where their URI says)."""
    if acct.targets:
        return acct.targets
    return (acct.outbound,) if acct.outbound is not None else ()


def hop_for(dialog: Dialog, acct: AccountConfig) -> Address:
    """Where an in-dialog request goes: the first route, else the remote target (§12.2.1.1)."""
    uri = dialog.route_set[0].uri if dialog.route_set else dialog.remote_target
    if isinstance(uri, SipUri):
        if is_ip_literal(uri.host):
            return address_for_uri(uri, acct.transport)
    if acct.outbound is not None:
        return acct.outbound
    raise LocalProtocolError(f"cannot reach {uri} without a DNS look-up")
