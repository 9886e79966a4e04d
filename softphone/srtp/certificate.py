"""The phone's DTLS certificate: self-signed, made on first use, kept in the data directory.

DTLS-SRTP authenticates the handshake by the certificate's fingerprint in SDP (RFC 5763 §5), so
no CA is involved and a self-signed certificate is what every phone uses. One key pair serves
every call; its file holds the private key, so it is created with mode 0600 and never widened.
An ECDSA P-256 key keeps the handshake's certificate message small (no IP fragmentation).
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from softphone.files import write_file
from softphone.keys import pem_certificate, pem_private_key, self_signed
from softphone.sdp.crypto import Fingerprint

__all__ = ["CERTIFICATE_FILENAME", "DtlsCertificate", "load_or_create"]

logger = logging.getLogger(__name__)

CERTIFICATE_FILENAME: Final = "dtls-certificate.pem"
VALID_DAYS: Final = 365
_HASHES: Final[dict[str, hashes.HashAlgorithm]] = {
    "sha-1": hashes.SHA1(),
    "sha-224": hashes.SHA224(),
    "sha-256": hashes.SHA256(),
    "sha-384": hashes.SHA384(),
    "sha-512": hashes.SHA512(),
}


def certificate_fingerprint(certificate: x509.Certificate, algorithm: str) -> Fingerprint:
    """RFC 8122 §5: the hash of the DER certificate, with the hash ``a=fingerprint`` names."""
    return Fingerprint(algorithm, certificate.fingerprint(_HASHES[algorithm]))


@dataclass(frozen=True, slots=True)
class DtlsCertificate:
    certificate: x509.Certificate
    private_key: ec.EllipticCurvePrivateKey

    @property
    def fingerprint(self) -> Fingerprint:
        """What our ``a=fingerprint`` says (SHA-256, RFC 8122 §5 recommends it)."""
        return certificate_fingerprint(self.certificate, "sha-256")

    def __repr__(self) -> str:  # never the key
        return f"DtlsCertificate({self.fingerprint})"


def _make(now: datetime.datetime) -> DtlsCertificate:
    return DtlsCertificate(*self_signed("softphone", now=now, valid_days=VALID_DAYS))


def _read(path: Path) -> DtlsCertificate | None:
    try:
        data = path.read_bytes()
        key = serialization.load_pem_private_key(data, password=None)
        certificate = x509.load_pem_x509_certificate(data)
    except (OSError, ValueError) as exc:
        logger.warning("DTLS certificate %s is unreadable (%s): making a new one", path, exc)
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        return None
    return DtlsCertificate(certificate, key)


def load_or_create(directory: Path, *, now: datetime.datetime | None = None) -> DtlsCertificate:
    """The certificate in ``directory``, made (mode 0600) when missing, unreadable or expiring
    within a day."""
    now = now or datetime.datetime.now(datetime.UTC)
    path = directory / CERTIFICATE_FILENAME
    existing = _read(path) if path.exists() else None
    if existing is not None:
        if existing.certificate.not_valid_after_utc > now + datetime.timedelta(days=1):
            if path.stat().st_mode & 0o077:
                path.chmod(0o600)  # it holds the private key
            return existing
    made = _make(now)
    write_file(path, pem_private_key(made.private_key) + pem_certificate(made.certificate))
    logger.info("made a DTLS certificate %s (%s)", path, made.fingerprint)
    return made
