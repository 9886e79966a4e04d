"""TLS for SIP (RFC 3261 §26.2.1, RFC 5922): SSL contexts and readable certificate errors.

Client contexts always verify the peer: the certificate chain against the system trust store (plus
an account's private CA when one is configured) and the host name against the certificate's
subjectAltName (RFC 5922 §7.2). There is no switch to turn verification off; a private CA is
trusted by naming its certificate in the account's ``tls_ca_file`` instead.

The listener presents the user's certificate (an account's ``tls_certificate`` and
``tls_private_key``) or, without one, a self-signed certificate made on first use and kept in the
data directory (:func:`listener_certificate`): a caller trusts it by naming its certificate file
(never the key) in its own ``tls_ca_file``. The user's certificate is also what the phone shows a
server that asks its clients for one (mutual TLS).

The context builders let ``OSError`` (``FileNotFoundError``, ``ssl.SSLError``) escape when a file
cannot be read: they run while the configuration is loaded, and the caller reports the file.
"""

from __future__ import annotations

import datetime
import logging
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography import x509

from softphone.files import write_file
from softphone.keys import (
    PUBLIC_FILE_MODE,
    KeyPairError,
    check_key_pair,
    pem_certificate,
    pem_private_key,
    self_signed,
)
from softphone.sip.address import Address

logger = logging.getLogger(__name__)

LISTENER_CERTIFICATE: Final = "tls-certificate.pem"
LISTENER_KEY: Final = "tls-key.pem"
LISTENER_VALID_DAYS: Final = 825  # the longest lifetime clients commonly accept for a leaf

# OpenSSL X509_V_ERR_* codes carried by ssl.SSLCertVerificationError.verify_code.
CERT_NOT_YET_VALID: Final = 9
CERT_HAS_EXPIRED: Final = 10
DEPTH_ZERO_SELF_SIGNED_CERT: Final = 18
SELF_SIGNED_CERT_IN_CHAIN: Final = 19
UNABLE_TO_GET_ISSUER_CERT_LOCALLY: Final = 20
UNABLE_TO_VERIFY_LEAF_SIGNATURE: Final = 21
HOSTNAME_MISMATCH: Final = 62
IP_ADDRESS_MISMATCH: Final = 64

UNKNOWN_CA_CODES: Final = frozenset(
    {
        DEPTH_ZERO_SELF_SIGNED_CERT,
        SELF_SIGNED_CERT_IN_CHAIN,
        UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
        UNABLE_TO_VERIFY_LEAF_SIGNATURE,
    }
)

TRUST_HINT: Final = (
    'If the server uses a private CA, set tls_ca_file = "/path/ca.pem" on the account.'
)


def client_context(
    ca_file: str | None, certificate: tuple[str, str] | None = None
) -> ssl.SSLContext:
    """A context for outgoing TLS connections, verification always on.

    Trusts the system store, plus ``ca_file`` (PEM) when given. TLS 1.2 is the floor
    (RFC 3261 §26.3.1 asks for TLS; RFC 8996 retired 1.0 and 1.1). ``certificate`` is
    (certificate file, key file): shown to a server that asks for a client certificate
    (RFC 5922 §7.3, mutual TLS); a server that does not ask never sees it.
    """
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # create_default_context already sets these; restated so the guarantee is visible here.
    context.verify_mode = ssl.CERT_REQUIRED
    context.check_hostname = True
    if ca_file is not None:
        context.load_verify_locations(cafile=ca_file)
    if certificate is not None:
        context.load_cert_chain(certfile=certificate[0], keyfile=certificate[1])
    return context


def server_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """A context for a TLS listener presenting ``cert_file`` (PEM chain) with ``key_file``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile=cert_file, keyfile=key_file)
    return context


@dataclass(frozen=True, slots=True)
class ListenerCertificate:
    """The files the TLS listener presents; ``made``: just now, for the first time."""

    certificate: Path
    private_key: Path
    made: bool = False


def listener_certificate(
    directory: Path, names: Sequence[str], *, now: datetime.datetime | None = None
) -> ListenerCertificate:
    """The self-signed listener certificate in ``directory`` (certificate and key in separate
    files, so the certificate can be handed to callers; the key 0600), made when missing,
    unusable, expiring within a day or not valid for one of ``names`` (the addresses callers
    reach us at: a client checks the address against the certificate, RFC 5922 §7.2).
    Raises OSError when the directory cannot be written."""
    now = now or datetime.datetime.now(datetime.UTC)
    cert_path, key_path = directory / LISTENER_CERTIFICATE, directory / LISTENER_KEY
    if _still_good(cert_path, key_path, names, now):
        if key_path.stat().st_mode & 0o077:
            key_path.chmod(0o600)
        return ListenerCertificate(cert_path, key_path)
    certificate, key = self_signed(
        "softphone", now=now, valid_days=LISTENER_VALID_DAYS, names=names
    )
    write_file(key_path, pem_private_key(key))
    write_file(cert_path, pem_certificate(certificate), mode=PUBLIC_FILE_MODE)
    logger.info("made a self-signed TLS certificate %s for %s", cert_path, ", ".join(names))
    return ListenerCertificate(cert_path, key_path, made=True)


def _still_good(
    cert_path: Path, key_path: Path, names: Sequence[str], now: datetime.datetime
) -> bool:
    if not (cert_path.exists() and key_path.exists()):
        return False
    try:
        check_key_pair(cert_path, key_path)
        certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (KeyPairError, OSError, ValueError) as exc:
        logger.warning("TLS certificate %s is unusable (%s): making a new one", cert_path, exc)
        return False
    if certificate.not_valid_after_utc <= now + datetime.timedelta(days=1):
        return False
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return not names
    covered = {str(v) for v in san.get_values_for_type(x509.IPAddress)}
    covered |= set(san.get_values_for_type(x509.DNSName))
    return set(names) <= covered


def describe_tls_error(exc: BaseException, address: Address) -> str:
    """One or two sentences a person can act on, for a failed TLS connection to ``address``."""
    expected = address.server_name or address.host
    where = f"TLS connection to {address}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        code = exc.verify_code
        if code == CERT_HAS_EXPIRED:
            problem = f"the certificate of {expected} has expired"
        elif code == CERT_NOT_YET_VALID:
            problem = (
                f"the certificate of {expected} is not yet valid (check this computer's clock)"
            )
        elif code in (HOSTNAME_MISMATCH, IP_ADDRESS_MISMATCH):
            problem = f"the server's certificate is not valid for the expected name {expected!r}"
        elif code in UNKNOWN_CA_CODES:
            problem = (
                f"the certificate of {expected} was issued by an unknown certificate authority"
                f" ({exc.verify_message})"
            )
        else:
            problem = f"the certificate of {expected} was rejected ({exc.verify_message})"
        return f"{where} failed: {problem}. {TRUST_HINT}"
    if isinstance(exc, ssl.SSLError):
        detail = getattr(exc, "reason", None) or exc
        if "CERTIFICATE_REQUIRED" in str(detail).upper():
            # TLS 1.3 ends the handshake before the server checks ours: its alert arrives on
            # the first read, after the request went out.
            return (
                f"{where} failed: {address.host_port} asks for a client certificate (mutual"
                " TLS); set tls_certificate and tls_private_key for this account"
            )
        return f"{where} failed during the TLS handshake: {detail}"
    return f"{where} failed: {exc}"
