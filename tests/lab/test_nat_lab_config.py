"""The NAT lab's pieces that need no namespace or peer: each router mapping's nftables rules,
coturn's command line, the TURN Allocate's MESSAGE-INTEGRITY (RFC 5769's long-term sample),
baresip's media NAT account parameters, and the bencoding of rtpengine's ng protocol."""

from __future__ import annotations

from pathlib import Path

import pytest

from softphone.lab.baresip import Baresip
from softphone.lab.coturn import (
    MESSAGE_INTEGRITY,
    NONCE,
    REALM,
    USERNAME,
    Coturn,
    long_term_key,
    with_integrity,
)
from softphone.lab.netns import NatLab, _ruleset
from softphone.lab.process import LabError
from softphone.lab.rtpengine import bdecode, bencode
from softphone.stun import BINDING_REQUEST, StunMessage


def test_only_the_random_mapping_picks_public_ports_at_random_per_destination() -> None:
    assert 'oifname "ext0" masquerade random,fully-random\n' in _ruleset("random")
    assert 'oifname "ext0" masquerade\n' in _ruleset("endpoint-independent")


@pytest.mark.parametrize("option", ["mapping", "second_router"])
def test_an_unknown_mapping_is_refused_before_anything_is_made(option: str) -> None:
    with pytest.raises(LabError, match="mapping is one of"):
        NatLab.create(**{option: "symmetric"})  # type: ignore[arg-type]


def test_coturn_keeps_its_database_pid_and_log_in_its_workdir(tmp_path: Path) -> None:
    server = Coturn(tmp_path, host="203.0.113.30", users={"alice": "alicepw", "bob": "bobpw"})
    try:
        argv = server.argv()
    except LabError as exc:  # PeerMissing: the command line is all this test looks at
        pytest.skip(str(exc))
    assert {"--lt-cred-mech", "--realm=lab.test", "--no-cli", "--no-tls", "--no-dtls"} <= set(argv)
    assert {"--user=alice:alicepw", "--user=bob:bobpw", "--listening-port=3478"} <= set(argv)
    assert f"--userdb={tmp_path / 'turndb'}" in argv
    assert f"--pidfile={tmp_path / 'turnserver.pid'}" in argv
    assert server.stun_uri() == "stun:203.0.113.30:3478"
    assert server.turn_uri() == "turn:203.0.113.30:3478"


@pytest.mark.parametrize("users", [{}, {"alice": "a:b"}, {"al ice": "pw"}])
def test_coturn_refuses_users_its_command_line_cannot_hold(
    tmp_path: Path, users: dict[str, str]
) -> None:
    with pytest.raises(LabError, match="plain names"):
        Coturn(tmp_path, users=users)


# RFC 5769 §2.4: a request with long-term authentication (username "マトリックス", password
# "TheMatrIX" after SASLprep, realm "example.org").
RFC5769_LONG_TERM = bytes.fromhex(
    "000100602112a44278ad3433c6ad72c029da412e"
    "00060012e3839ee38388e383aae38383e382afe382b90000"
    "0015001c662f2f3439396b39353464364f4c33346f4c39465354767936347341"
    "0014000b6578616d706c652e6f726700"
    "00080014f67024656dd64a3e02b8e0712e85c9a28ca89666"
)


def test_message_integrity_matches_the_rfc_5769_long_term_sample() -> None:
    sample = StunMessage.parse(RFC5769_LONG_TERM)
    unsigned = StunMessage(
        BINDING_REQUEST,
        sample.transaction_id,
        tuple((k, v) for k, v in sample.attributes if k != MESSAGE_INTEGRITY),
    )
    assert [k for k, _ in unsigned.attributes] == [USERNAME, NONCE, REALM]
    key = long_term_key("マトリックス", "example.org", "TheMatrIX")
    assert with_integrity(unsigned, key) == RFC5769_LONG_TERM


def test_baresip_media_nat_goes_into_its_account_with_the_module_loaded(tmp_path: Path) -> None:
    ice = Baresip(tmp_path, medianat="ice", stun_server="stun:203.0.113.30:3478")
    assert ';medianat=ice;stunserver="stun:203.0.113.30:3478"' in ice.account_line()
    assert "stunuser" not in ice.account_line()
    assert "module\t\t\tice.so\n" in ice.config_text()
    turn = Baresip(
        tmp_path,
        medianat="turn",
        stun_server="turn:203.0.113.30:3478",
        stun_user="carol",
        stun_password="carolpw",
    )
    assert ';medianat=turn;stunserver="turn:203.0.113.30:3478";stunuser=carol;stunpass=carolpw' in (
        turn.account_line()
    )
    assert "module\t\t\tturn.so\n" in turn.config_text()
    plain = Baresip(tmp_path)
    assert "medianat" not in plain.account_line()
    assert "ice.so" not in plain.config_text() and "turn.so" not in plain.config_text()


def test_baresip_refuses_media_nat_without_a_server_or_with_unquotable_settings(
    tmp_path: Path,
) -> None:
    with pytest.raises(LabError, match="needs a stun_server"):
        Baresip(tmp_path, medianat="ice")
    with pytest.raises(LabError, match="accounts file can hold"):
        Baresip(tmp_path, medianat="turn", stun_server="turn:h:3478", stun_password='pw";x')


def test_ng_commands_are_bencoded_with_sorted_keys_and_answers_decode() -> None:
    command = {"command": "query", "call-id": "abc@h", "flags": ["a", "b"], "n": -3}
    encoded = bencode(command)
    assert encoded == b"d7:call-id5:abc@h7:command5:query5:flagsl1:a1:be1:ni-3ee"
    assert bdecode(encoded) == command
    assert bdecode(b"d6:result2:ok4:datad5:bytes3:\xff\x00\x01ee") == {
        "result": "ok",
        "data": {"bytes": b"\xff\x00\x01"},
    }


@pytest.mark.parametrize(
    "data", [b"", b"i12", b"ix3e", b"5:abc", b"d1:ae", b"di1ei2ee", b"l1:a", b"3:abcX", b"-1:"]
)
def test_malformed_bencoding_is_a_lab_error(data: bytes) -> None:
    with pytest.raises(LabError, match="bencode"):
        bdecode(data)
