"""TLS for SIP (RFC 3261 §26.2.1, RFC 5922): SSL contexts and readable certificate errors.

Client contexts always verify the peer: the certificate chain against the system trust store (plus
an account's private CA when one is configured) and the host name against the certificate's
subjectAltName (RFC 5922 §7.2). There is no switch to turn verification off; a private CA is
trusted by naming its certificate in the account's ``tls_ca_file`` instead.

The context builders let ``OSError`` (``FileNotFoundError``, ``ssl.SSLError``) escape when a file
cannot be read: they run while the configuration is loaded, and the caller reports the file.
"""

from __future__ import annotations

import ssl
from typing import Final

from softphone.sip.address import Address

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


def client_context(ca_file: str | None) -> ssl.SSLContext:
    """A context for outgoing TLS connections, verification always on.

    Trusts the system store, plus ``ca_file`` (PEM) when given. TLS 1.2 is the floor
    (RFC 3261 §26.3.1 asks for TLS; RFC 8996 retired 1.0 and 1.1).
    """
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # create_default_context already sets these; restated so the guarantee is visible here.
    context.verify_mode = ssl.CERT_REQUIRED
    context.check_hostname = True
    if ca_file is not None:
        context.load_verify_locations(cafile=ca_file)
    return context


def server_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """A context for a TLS listener presenting ``cert_file`` (PEM chain) with ``key_file``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile=cert_file, keyfile=key_file)
    return context


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
        return f"{where} failed during the TLS handshake: {detail}"
    return f"{where} failed: {exc}"
