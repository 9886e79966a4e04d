"""Certificates and private keys on disk: a configured pair checked, a self-signed one made.

Two users: the configuration (an account's ``tls_certificate`` and ``tls_private_key`` are read
and checked when the config is loaded, so a wrong file is a ConfigError, not a failed
handshake later) and the phone's own certificates (the TLS listener's when none is configured,
the DTLS one in srtp/certificate.py), which are made on first use and kept in the data
directory. A private key is written with mode 0600 from the start (never created readable and
then tightened), through a temporary file renamed into place, so a crash leaves no half key.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.x509.oid import NameOID

__all__ = [
    "KeyPairError",
    "check_key_pair",
    "pem_certificate",
    "pem_private_key",
    "self_signed",
]

PUBLIC_FILE_MODE: Final = 0o644


class KeyPairError(Exception):
    """A certificate or key file that cannot be used; ``str()`` says which file and why."""


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise KeyPairError(f"{path}: no such file") from None
    except OSError as exc:
        raise KeyPairError(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None


def check_key_pair(certificate: Path, private_key: Path) -> None:
    """Raise KeyPairError unless ``certificate`` holds a PEM certificate (the first of a chain
    is ours) and ``private_key`` an unencrypted PEM key whose public half is the certificate's.
    A key that does not match is the mistake TLS would otherwise report only at the handshake,
    as "key values mismatch"."""
    cert_data = _read(certificate, "certificate")
    key_data = _read(private_key, "private key")
    try:
        cert = x509.load_pem_x509_certificate(cert_data)
    except ValueError:
        raise KeyPairError(f"{certificate}: not a PEM certificate") from None
    try:
        key = serialization.load_pem_private_key(key_data, password=None)
    except TypeError:
        raise KeyPairError(
            f"{private_key}: the private key is encrypted (a key with a passphrase cannot be"
            " used unattended; decrypt it, e.g. openssl pkey -in KEY -out KEY.plain)"
        ) from None
    except ValueError:
        raise KeyPairError(f"{private_key}: not a PEM private key") from None
    if _public_der(key) != cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ):
        raise KeyPairError(f"{private_key} is not the private key of the certificate {certificate}")


def _public_der(key: PrivateKeyTypes) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def self_signed(
    common_name: str,
    *,
    now: datetime.datetime,
    valid_days: int,
    names: Sequence[str] = (),
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A new ECDSA P-256 key and a certificate for it, signed by itself. ``names`` go into the
    subjectAltName (IP addresses as IP entries, anything else as a DNS name): what a TLS
    client checks the host it connects to against (RFC 5922 §7.2)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=valid_days))
    )
    if names:
        entries: list[x509.GeneralName] = []
        for text in dict.fromkeys(names):
            try:
                entries.append(x509.IPAddress(ipaddress.ip_address(text)))
            except ValueError:
                entries.append(x509.DNSName(text))
        builder = builder.add_extension(x509.SubjectAlternativeName(entries), critical=False)
    return builder.sign(key, hashes.SHA256()), key


def pem_private_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def pem_certificate(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)
