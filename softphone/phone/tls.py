"""TLS both ways for the phone: what the listener presents, and what each outgoing connection
trusts and shows.

The listener (RFC 3261 §26.2.1, port 5061 unless the config's ``sip_tls_port`` says otherwise)
presents the first account's ``tls_certificate``; without one, a self-signed certificate made
on first use in the data directory (transport/tls.py ``listener_certificate``), announced once
with where the certificate file is, since a caller must trust it to reach us.

Outgoing connections always verify (transport/tls.py ``client_context``). Each account's
``tls_ca_file`` is trusted for its own servers, and its ``tls_certificate`` shown to them when
they ask (mutual TLS). A connection to anywhere else (a direct call to ``sips:bob@192.0.2.7``)
uses the settings of the first account without a registrar or proxy: a peer-to-peer user
trusts the phones they call by naming their certificates in that account's ``tls_ca_file``.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from softphone.config import Account
from softphone.phone import events as pe
from softphone.phone.errors import PhoneError
from softphone.sip.account import AccountConfig
from softphone.sip.address import Address
from softphone.transport.tls import client_context, listener_certificate, server_context

logger = logging.getLogger(__name__)

__all__ = [
    "LOOPBACK_NAMES",
    "ClientTls",
    "Listener",
    "client_tls",
    "listener",
    "listener_context",
    "wants_listener",
]

# Always in a self-signed certificate's names, beside the advertised address: a phone on the
# same machine (or a test) reaches us there.
LOOPBACK_NAMES = ("127.0.0.1", "::1", "localhost")


@dataclass(frozen=True, slots=True)
class _Settings:
    ca_file: str | None = None
    certificate: tuple[str, str] | None = None


def _settings(acct: Account) -> _Settings:
    certificate = None
    if acct.tls_certificate is not None and acct.tls_private_key is not None:
        certificate = (str(acct.tls_certificate), str(acct.tls_private_key))
    return _Settings(str(acct.tls_ca_file) if acct.tls_ca_file else None, certificate)


@dataclass(frozen=True, slots=True)
class ClientTls:
    """Per (host, port) of an account's servers, what to trust and show; ``direct`` for the
    rest."""

    by_hop: dict[tuple[str, int], _Settings] = field(default_factory=dict)
    direct: _Settings = _Settings()

    def context(self, address: Address) -> ssl.SSLContext:
        settings = self.by_hop.get((address.host, address.port), self.direct)
        return client_context(settings.ca_file, settings.certificate)


def client_tls(accounts: Sequence[Account], resolved: Sequence[AccountConfig]) -> ClientTls:
    by_name = {r.name: r for r in resolved}
    by_hop: dict[tuple[str, int], _Settings] = {}
    direct = _Settings()
    for acct in accounts:
        settings = _settings(acct)
        if acct.registrar is None and acct.proxy is None:
            if direct == _Settings():
                direct = settings
            continue
        resolved_acct = by_name.get(acct.name)
        if resolved_acct is None or settings == _Settings():
            continue
        for hop in (*resolved_acct.targets, resolved_acct.outbound):
            if hop is not None:
                by_hop[(hop.host, hop.port)] = settings
    return ClientTls(by_hop, direct)


def wants_listener(accounts: Sequence[Account]) -> bool:
    """A TLS listener when an account uses TLS or has a certificate of its own."""
    return any(a.transport == "tls" or a.tls_certificate is not None for a in accounts)


@dataclass(frozen=True, slots=True)
class Listener:
    context: ssl.SSLContext
    notice: pe.Notice | None = None  # a certificate was just made: say where it is


def listener(accounts: Sequence[Account], data_dir: Path, advertised: str) -> Listener:
    """The listener's server context (blocking: reads or makes files). Raises PhoneError."""
    own = next((a for a in accounts if a.tls_certificate and a.tls_private_key), None)
    notice = None
    if own is not None:
        assert own.tls_certificate is not None and own.tls_private_key is not None
        certificate, key = own.tls_certificate, own.tls_private_key
    else:
        names = list(dict.fromkeys((advertised, *LOOPBACK_NAMES)))
        try:
            made = listener_certificate(data_dir, names)
        except OSError as exc:
            raise PhoneError(
                f"cannot make a TLS certificate in {data_dir}: {exc.strerror or exc}"
            ) from None
        certificate, key = made.certificate, made.private_key
        if made.made:
            notice = pe.Notice(
                level="warning",
                text=(
                    f"made a self-signed TLS certificate for {', '.join(names)}: {certificate}. "
                    "Phones that call us over TLS must trust it (give them that file for their "
                    "tls_ca_file; the key stays here), or set tls_certificate and "
                    "tls_private_key on the account"
                ),
            )
    try:
        context = server_context(str(certificate), str(key))
    except (OSError, ssl.SSLError) as exc:
        raise PhoneError(f"cannot use the TLS certificate {certificate}: {exc}") from None
    return Listener(context, notice)


async def listener_context(
    accounts: Sequence[Account],
    data_dir: Path,
    advertised: str,
    emit: Callable[[pe.PhoneEvent], None],
) -> ssl.SSLContext | None:
    """The TLS listener's context when an account wants one (made off the loop: it may write
    a certificate), telling ``emit`` and the log when a certificate was made. Raises
    PhoneError."""
    if not wants_listener(accounts):
        return None
    made = await asyncio.to_thread(listener, accounts, data_dir, advertised)
    if made.notice is not None:
        logger.warning("%s", made.notice.text)
        emit(made.notice)
    return made.context
