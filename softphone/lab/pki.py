"""TLS material for the lab: a throwaway CA and server certificates, made with ``openssl``.

:func:`make_pki` issues three server certificates signed by one CA: a good one (SAN IP
127.0.0.1, IP ::1, DNS lab.test, DNS localhost), an expired one with the same names, and one
for ``wrong.invalid`` only, so that a client's verification can be seen failing either way.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from softphone.lab.process import HOST, LabError, find_binary

__all__ = ["DOMAIN", "CertKind", "CertPair", "LabPki", "make_pki"]

DOMAIN: Final = "lab.test"

CertKind = Literal["good", "expired", "wrong_name"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CertPair:
    cert: Path
    key: Path

    @property
    def combined(self) -> Path:
        """Certificate followed by its key in one PEM (what baresip's sip_certificate wants)."""
        return self.cert.with_name(self.cert.stem + "-combined.pem")


@dataclass(frozen=True, slots=True, kw_only=True)
class LabPki:
    ca_file: Path
    ca_key: Path
    good: CertPair  # SAN IP:127.0.0.1, IP:::1, DNS:lab.test, DNS:localhost
    expired: CertPair  # same names, notAfter in the past
    wrong_name: CertPair  # SAN DNS:wrong.invalid only

    def server(self, kind: CertKind) -> CertPair:
        return {"good": self.good, "expired": self.expired, "wrong_name": self.wrong_name}[kind]


def _openssl(openssl: str, *args: str, cwd: Path) -> None:
    result = subprocess.run(
        [openssl, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    if result.returncode != 0:
        raise LabError(f"openssl {' '.join(args)} failed:\n{result.stdout}{result.stderr}")


def make_pki(directory: Path) -> LabPki:
    """A throwaway test CA and three server certificates signed by it, via ``openssl``."""
    openssl = find_binary("openssl", "openssl")
    directory.mkdir(parents=True, exist_ok=True)
    ca = directory / "ca.pem"
    ca_key = directory / "ca.key"
    _openssl(
        openssl,
        "req", "-x509", "-newkey", "rsa:2048", "-nodes",
        "-keyout", ca_key.name, "-out", ca.name, "-days", "3",
        "-subj", "/CN=softphone interop lab CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=directory,
    )  # fmt: skip

    def issue(stem: str, cn: str, san: str, days: str, serial: str) -> CertPair:
        pair = CertPair(cert=directory / f"{stem}.pem", key=directory / f"{stem}.key")
        ext = directory / f"{stem}.ext"
        ext.write_text(
            f"subjectAltName={san}\nbasicConstraints=CA:FALSE\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\n"
            "extendedKeyUsage=serverAuth,clientAuth\n"
        )
        _openssl(
            openssl,
            "req", "-newkey", "rsa:2048", "-nodes",
            "-keyout", pair.key.name, "-out", f"{stem}.csr", "-subj", f"/CN={cn}",
            cwd=directory,
        )  # fmt: skip
        # A negative -days puts notAfter before notBefore: already expired when issued.
        _openssl(
            openssl,
            "x509", "-req", "-in", f"{stem}.csr",
            "-CA", ca.name, "-CAkey", ca_key.name, "-set_serial", serial,
            "-days", days, "-extfile", ext.name, "-out", pair.cert.name,
            cwd=directory,
        )  # fmt: skip
        pair.combined.write_text(pair.cert.read_text() + pair.key.read_text())
        return pair

    names = f"IP:{HOST},IP:::1,DNS:{DOMAIN},DNS:localhost"
    return LabPki(
        ca_file=ca,
        ca_key=ca_key,
        good=issue("server", DOMAIN, names, "3", "2"),
        expired=issue("expired", DOMAIN, names, "-1", "3"),
        wrong_name=issue("wrong-name", "wrong.invalid", "DNS:wrong.invalid", "3", "4"),
    )
