"""An account's own TLS certificate: both files or neither, readable, the key the certificate's,
checked when the config is read; the TLS port; the self-signed listener certificate."""

from __future__ import annotations

import datetime
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509

from softphone.config import ConfigError, config_to_dict, parse_config, parse_config_bytes
from softphone.files import write_file
from softphone.keys import pem_certificate, pem_private_key, self_signed
from softphone.transport.tls import (
    LISTENER_CERTIFICATE,
    LISTENER_KEY,
    client_context,
    listener_certificate,
    server_context,
)

NOW = datetime.datetime.now(datetime.UTC)


def key_pair(directory: Path, stem: str) -> tuple[Path, Path]:
    certificate, key = self_signed(stem, now=NOW, valid_days=30, names=["127.0.0.1"])
    cert_path, key_path = directory / f"{stem}.crt", directory / f"{stem}.key"
    write_file(cert_path, pem_certificate(certificate))
    write_file(key_path, pem_private_key(key))
    return cert_path, key_path


def account(**keys: object) -> dict[str, object]:
    return {"account": [{"name": "a", "uri": "sip:a@lab.test", "transport": "tls", **keys}]}


def test_a_matching_pair_loads_round_trips_and_serves_a_tls_context(tmp_path: Path) -> None:
    cert, key = key_pair(tmp_path, "mine")
    text = f"""sip_tls_port = 5071
[[account]]
name = "a"
uri = "sip:a@lab.test"
transport = "tls"
tls_certificate = "{cert}"
tls_private_key = "{key}"
"""
    config = parse_config_bytes(text.encode())
    acct = config.account()
    assert (acct.tls_certificate, acct.tls_private_key) == (cert, key)
    assert config.sip_tls_port == 5071
    again = parse_config(config_to_dict(config))
    assert again.account() == acct and again.sip_tls_port == 5071
    server_context(str(cert), str(key))  # what the listener loads
    client_context(None, (str(cert), str(key)))  # what a server asking for one sees


def test_without_certificate_both_keys_and_the_port_stay_unset() -> None:
    config = parse_config(account())
    assert config.account().tls_certificate is None and config.account().tls_private_key is None
    assert config.sip_tls_port is None
    assert "sip_tls_port" not in config_to_dict(config)
    assert "tls_certificate" not in config_to_dict(config)["account"][0]


@pytest.mark.parametrize("given", ["tls_certificate", "tls_private_key"])
def test_one_file_without_the_other_names_both_keys(tmp_path: Path, given: str) -> None:
    cert, key = key_pair(tmp_path, "mine")
    other = "tls_private_key" if given == "tls_certificate" else "tls_certificate"
    with pytest.raises(ConfigError, match=f"account 'a': {given} needs {other} too"):
        parse_config(account(**{given: str(cert if given == "tls_certificate" else key)}))


def test_a_missing_file_names_the_key_and_the_path(tmp_path: Path) -> None:
    cert, key = key_pair(tmp_path, "mine")
    missing = tmp_path / "nope.key"
    with pytest.raises(ConfigError, match=f"tls_private_key: {missing}: no such file"):
        parse_config(account(tls_certificate=str(cert), tls_private_key=str(missing)))
    with pytest.raises(ConfigError, match=f"tls_certificate: {missing}: no such file"):
        parse_config(account(tls_certificate=str(missing), tls_private_key=str(key)))


def test_an_unreadable_file_says_so(tmp_path: Path) -> None:
    cert, _ = key_pair(tmp_path, "mine")
    directory = tmp_path / "keys"  # read() fails on it as on a file we may not read
    directory.mkdir()
    with pytest.raises(ConfigError, match=r"tls_private_key: .*cannot read the private key"):
        parse_config(account(tls_certificate=str(cert), tls_private_key=str(directory)))


def test_a_key_of_another_certificate_is_refused_naming_the_key(tmp_path: Path) -> None:
    cert, _ = key_pair(tmp_path, "mine")
    _, other_key = key_pair(tmp_path, "theirs")
    with pytest.raises(
        ConfigError,
        match=f"account 'a': tls_private_key: {other_key} is not the private key of the "
        f"certificate {cert}",
    ):
        parse_config(account(tls_certificate=str(cert), tls_private_key=str(other_key)))


@pytest.mark.parametrize(
    ("swap", "says"),
    [
        ("certificate", "tls_certificate: .* not a PEM certificate"),
        ("key", "tls_private_key: .* not a PEM private key"),
    ],
)
def test_files_that_are_not_pem_are_named(tmp_path: Path, swap: str, says: str) -> None:
    cert, key = key_pair(tmp_path, "mine")
    (cert if swap == "certificate" else key).write_bytes(b"hello\n")
    with pytest.raises(ConfigError, match=says):
        parse_config(account(tls_certificate=str(cert), tls_private_key=str(key)))


def test_a_key_with_a_passphrase_is_refused_with_the_fix(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    certificate, key = self_signed("x", now=NOW, valid_days=30)
    cert_path, key_path = tmp_path / "x.crt", tmp_path / "x.key"
    write_file(cert_path, pem_certificate(certificate))
    write_file(
        key_path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"pw"),
        ),
    )
    with pytest.raises(ConfigError, match=r"tls_private_key: .*encrypted.*openssl pkey"):
        parse_config(account(tls_certificate=str(cert_path), tls_private_key=str(key_path)))


@pytest.mark.parametrize("value", [-1, 65536, "5061", True])
def test_a_bad_tls_port_names_the_key(value: object) -> None:
    with pytest.raises(ConfigError, match="sip_tls_port must be a port number"):
        parse_config({"sip_tls_port": value})


def test_the_listener_certificate_is_made_once_kept_private_and_reused(tmp_path: Path) -> None:
    names = ["127.0.0.1", "localhost"]
    made = listener_certificate(tmp_path, names)
    assert made.made and made.certificate == tmp_path / LISTENER_CERTIFICATE
    assert stat.S_IMODE(made.private_key.stat().st_mode) == 0o600
    assert b"PRIVATE KEY" not in made.certificate.read_bytes()  # the file to hand to callers
    first = made.certificate.read_bytes()
    again = listener_certificate(tmp_path, names)
    assert not again.made and again.certificate.read_bytes() == first
    made.private_key.chmod(0o644)
    listener_certificate(tmp_path, names)
    assert stat.S_IMODE(made.private_key.stat().st_mode) == 0o600
    san = x509.load_pem_x509_certificate(first).extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    assert [str(ip) for ip in san.value.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    # A client that trusts that one file verifies the listener by its address.
    context = client_context(str(made.certificate))
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname


def test_the_listener_certificate_is_remade_when_expiring_broken_or_missing_a_name(
    tmp_path: Path,
) -> None:
    first = listener_certificate(tmp_path, ["127.0.0.1"]).certificate.read_bytes()
    later = NOW + datetime.timedelta(days=900)
    assert listener_certificate(tmp_path, ["127.0.0.1"], now=later).made
    assert listener_certificate(tmp_path, ["127.0.0.1", "192.0.2.7"]).made
    assert listener_certificate(tmp_path, ["192.0.2.7"]).made is False  # a subset is covered
    (tmp_path / LISTENER_KEY).write_bytes(b"garbage")
    remade = listener_certificate(tmp_path, ["127.0.0.1"])
    assert remade.made and remade.certificate.read_bytes() != first
    assert stat.S_IMODE(remade.private_key.stat().st_mode) == 0o600
