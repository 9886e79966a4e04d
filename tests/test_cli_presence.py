"""``softphone listen`` and presence, run for real in subprocesses (the helpers and rules of
test_cli.py): a message-waiting NOTIFY a PBX sends unasked becomes an ``mwi`` JSON line and a
line for a person; ``--presence`` is an ``own_presence`` line; ``--presence`` and ``--watch``
refuse what is not a state or an address."""

from __future__ import annotations

import socket
from pathlib import Path

from cli_support import make_env
from test_cli import HOST, free_ports, listener_with, of_kind, run, softphone, stop_listener


def mwi_notify(port: int, body: bytes, source: int, n: int = 1) -> bytes:
    """An unsolicited NOTIFY as Asterisk sends it to a registered phone (no subscription)."""
    head = (
        f"NOTIFY sip:softphone@{HOST}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {HOST}:{source};branch=z9hG4bKpbx{n}\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:asterisk@127.0.0.1>;tag=pbx\r\n"
        f"To: <sip:softphone@{HOST}:{port}>\r\n"
        "Call-ID: mwi-1@pbx\r\n"
        f"CSeq: {100 + n} NOTIFY\r\n"
        "Event: message-summary\r\n"
        "Content-Type: application/simple-message-summary\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def test_unsolicited_message_waiting_is_an_mwi_line(tmp_path: Path) -> None:
    (port,) = free_ports(1)
    body = b"Messages-Waiting: yes\r\nMessage-Account: sip:asterisk@127.0.0.1\r\nVoice-Message: 3/5 (1/0)\r\n"
    with listener_with(tmp_path, port) as listener:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as pbx:
            pbx.bind((HOST, 0))
            pbx.settimeout(5.0)
            pbx.sendto(mwi_notify(port, body, pbx.getsockname()[1]), (HOST, port))
            answer = pbx.recv(65535)
            assert answer.startswith(b"SIP/2.0 200 ")
            got = listener.wait_for(lambda e: e["event"] == "mwi")
            # Tools outside the project read these names.
            assert got == {
                "event": "mwi",
                "account": "local",
                "waiting": True,
                "new": 3,
                "old": 5,
                "urgent_new": 1,
                "urgent_old": 0,
            }
            pbx.sendto(
                mwi_notify(port, b"Voice-Message: 3/5\r\n", pbx.getsockname()[1], 2), (HOST, port)
            )
            refused = pbx.recv(65535)
            assert refused.startswith(
                b"SIP/2.0 400 Bad simple-message-summary: message-summary: no"
            )
        stop_listener(listener)
    assert len(of_kind(listener.events, "mwi")) == 1  # the malformed one changed nothing
    assert "voicemail of local: 3 new, 1 urgent, 5 old\n" in listener.stderr


def test_listen_refuses_a_presence_that_is_not_a_state_or_an_address(tmp_path: Path) -> None:
    (port,) = free_ports(1)
    env = make_env(tmp_path)
    base = ("listen", "--bind", HOST, "--sip-port", str(port), "--duration", "5")
    result = run(softphone(tmp_path / "a.log", *base, "--presence", "asleep"), env, tmp_path)
    assert result.returncode == 2 and "invalid choice: 'asleep'" in result.stderr
    result = run(softphone(tmp_path / "b.log", *base, "--watch", "sip:"), env, tmp_path)
    assert result.returncode == 2, result.stderr
    assert "softphone: " in result.stderr and "Traceback" not in result.stderr


def test_listen_presence_prints_an_own_presence_line(tmp_path: Path) -> None:
    (port,) = free_ports(1)
    with listener_with(tmp_path, port, "--presence", "away") as listener:
        got = listener.wait_for(lambda e: e["event"] == "own_presence")
        # Tools outside the project read these names. Without a registrar the account publishes
        # nothing, but the choice is ours all the same (and dnd would refuse calls).
        assert got == {
            "event": "own_presence",
            "state": "away",
            "shown": "away",
            "note": None,
            "on_the_phone": False,
        }
        stop_listener(listener)
