"""Kamailio's configuration without Kamailio: the template ships as package data, and every
placeholder in it is filled."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from softphone.lab import kamailio
from softphone.lab.kamailio import Kamailio, template_text
from softphone.lab.pki import CertPair, LabPki


def fake_pki(directory: Path) -> LabPki:
    def pair(stem: str) -> CertPair:
        return CertPair(cert=directory / f"{stem}.pem", key=directory / f"{stem}.key")

    return LabPki(
        ca_file=directory / "ca.pem",
        ca_key=directory / "ca.key",
        good=pair("server"),
        expired=pair("expired"),
        wrong_name=pair("wrong-name"),
    )


def test_the_template_is_package_data_with_placeholders() -> None:
    text = template_text()
    assert set(re.findall(r"@@([A-Z_0-9]+)@@", text)) == {
        "HOST",
        "FLOW_TIMER",
        "NAT_ALIASES",
        "PORT",
        "TLS_PORT",
        "LISTEN_V6",
        "DOMAIN",
        "MPATH",
        "TLS_CFG",
        "DBDIR",
        "CTL",
        "RTPENGINE_SOCK",
    }


def test_render_config_fills_every_placeholder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kamailio, "_mpath", lambda: "/usr/lib/kamailio/modules/")
    proxy = Kamailio(tmp_path, fake_pki(tmp_path / "pki"), tls_cert="expired")
    text = proxy.render_config()
    assert "@@" not in text
    assert proxy.udp_port == proxy.tcp_port == proxy.tls_port - 1 > 0
    assert f"127.0.0.1:{proxy.udp_port}" in text and f"127.0.0.1:{proxy.tls_port}" in text
    assert "expired.pem" in (tmp_path / "tls.cfg").read_text()
    subscribers = (tmp_path / "db" / "subscriber").read_text().splitlines()
    assert subscribers[1:] == [
        "1:alice:lab.test:alicepw",
        "2:bob:lab.test:bobpw",
        "3:carol:lab.test:carolpw",
        "4:dave:lab.test:davepw",
    ]


def test_a_kamailio_on_another_address_listens_there_and_can_ask_for_keep_alives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kamailio, "_mpath", lambda: "/usr/lib/kamailio/modules/")
    monkeypatch.setattr(kamailio, "free_port_pair", lambda host: 41000)
    proxy = Kamailio(tmp_path, fake_pki(tmp_path / "pki"), host="203.0.113.10", flow_timer_s=4)
    text = proxy.render_config()
    assert "listen=udp:203.0.113.10:41000" in text and "listen=tls:203.0.113.10:41001" in text
    assert "127.0.0.1" not in text and proxy.udp6_port is None
    assert 'append_to_reply("Flow-Timer: 4\\r\\n")' in text
    assert proxy.outbound_uri("tcp") == "sip:203.0.113.10:41000;transport=tcp"


def test_with_rtpengine_every_offer_and_answer_goes_through_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kamailio, "_mpath", lambda: "/usr/lib/kamailio/modules/")
    pki = fake_pki(tmp_path / "pki")
    plain = Kamailio(tmp_path, pki).render_config()
    assert "#!define WITH_RTPENGINE" not in plain
    anchored = Kamailio(tmp_path, pki, rtpengine="udp:203.0.113.40:2223", presence=True)
    text = anchored.render_config()
    assert text.startswith("#!KAMAILIO\n#!define WITH_PRESENCE\n#!define WITH_RTPENGINE\n")
    assert 'modparam("rtpengine", "rtpengine_sock", "udp:203.0.113.40:2223")' in text
    for call in ("rtpengine_offer(", "rtpengine_answer(", "rtpengine_delete("):
        assert call in text
    with pytest.raises(kamailio.LabError, match="udp:HOST:PORT"):
        Kamailio(tmp_path, pki, rtpengine='udp:x:1"; loadmodule "evil')


def test_nat_contacts_are_fixed_only_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kamailio, "_mpath", lambda: "/usr/lib/kamailio/modules/")
    pki = fake_pki(tmp_path / "pki")
    assert "#!define WITH_NAT_CONTACTS" not in Kamailio(tmp_path, pki).render_config()
    text = Kamailio(tmp_path, pki, nat_contacts=True).render_config()
    assert text.startswith("#!KAMAILIO\n#!define WITH_NAT_CONTACTS\n")
    assert "fix_nated_contact();" in text
