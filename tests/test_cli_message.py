"""``softphone message`` and the ``message`` lines of ``softphone listen --json``, run for real
in subprocesses (the helpers and rules of test_cli.py): a message reaches a listener and both
keep it, a refusal exits with its status's code, bad input is a usage error."""

from __future__ import annotations

from pathlib import Path

from cli_support import make_env
from test_cli import (
    HOST,
    free_ports,
    json_events,
    listener_with,
    of_kind,
    run,
    softphone,
    stop_listener,
)

from softphone.phone.book import Book


def message_argv(tmp_path: Path, uri: str, text: str, port: int, *extra: str) -> list[str]:
    return softphone(
        tmp_path / "message.log",
        "message",
        uri,
        text,
        "--json",
        "--bind",
        HOST,
        "--sip-port",
        str(port),
        *extra,
    )


def kept(env: dict[str, str], uri: str) -> list[tuple[str, str | None, str, bool]]:
    """(direction, text, state, read) of that process's messages with ``uri``, oldest first."""
    book = Book.open(Path(env["XDG_DATA_HOME"]) / "softphone" / "softphone.db")
    try:
        rows = book.messages.conversation([uri])
        return [(m.direction, m.text, m.state, m.read) for m in rows]
    finally:
        book.close()


def test_a_message_reaches_a_listener_which_prints_it_and_both_keep_it(tmp_path: Path) -> None:
    listen_port, send_port = free_ports(2)
    target = f"sip:softphone@127.0.0.1:{listen_port}"
    env = make_env(tmp_path / "sender")
    with listener_with(tmp_path, listen_port) as listener:
        result = run(message_argv(tmp_path, target, "héllo, listener", send_port), env, tmp_path)
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
        statuses = of_kind(json_events(result.stdout), "message_status")
        assert [(s["state"], s["status"]) for s in statuses] == [("sending", 0), ("delivered", 200)]
        assert statuses[1]["remote"] == target and statuses[1]["text"] == "héllo, listener"
        assert f"message to {target} delivered\n" in result.stderr
        got = listener.wait_for(lambda e: e["event"] == "message")
        # Tools outside the project read exactly these names.
        assert got == {
            "event": "message",
            "from": "sip:softphone@127.0.0.1",
            "to": target,
            "content_type": "text/plain",
            "text": "héllo, listener",
        }
        stop_listener(listener)
    assert "message from sip:softphone@127.0.0.1: héllo, listener\n" in listener.stderr
    assert kept(env, target) == [("out", "héllo, listener", "delivered", True)]
    listener_env = make_env(tmp_path / "listener")
    assert kept(listener_env, "sip:softphone@127.0.0.1") == [
        ("in", "héllo, listener", "received", False)
    ]


def test_a_message_to_a_user_that_is_not_there_exits_5_with_the_status(tmp_path: Path) -> None:
    listen_port, send_port = free_ports(2)
    nobody = f"sip:nobody@127.0.0.1:{listen_port}"
    env = make_env(tmp_path / "sender")
    with listener_with(tmp_path, listen_port) as listener:
        result = run(message_argv(tmp_path, nobody, "anyone?", send_port), env, tmp_path)
        assert result.returncode == 5, result.stderr
        (failed,) = [
            s
            for s in of_kind(json_events(result.stdout), "message_status")
            if s["state"] == "failed"
        ]
        assert (failed["status"], failed["reason"]) == (404, "Not Found")
        assert "failed: 404 Not Found (no such user or number)" in result.stderr
        stop_listener(listener)
    assert of_kind(listener.events, "message") == []
    assert kept(env, nobody) == [("out", "anyone?", "failed", True)]


def test_a_refused_connection_is_a_network_failure(tmp_path: Path) -> None:
    closed, send_port = free_ports(2)  # nothing listens on `closed`
    target = f"sip:softphone@127.0.0.1:{closed};transport=tcp"
    result = run(message_argv(tmp_path, target, "hello?", send_port), make_env(tmp_path), tmp_path)
    assert result.returncode == 7, result.stderr
    (failed,) = [
        s for s in of_kind(json_events(result.stdout), "message_status") if s["state"] == "failed"
    ]
    assert failed["status"] == 503 and failed["no_response"] is True
    assert "cannot connect to tcp:127.0.0.1:" in result.stderr


def test_bad_input_is_a_usage_error_and_nothing_is_sent(tmp_path: Path) -> None:
    (port,) = free_ports(1)
    empty = run(message_argv(tmp_path, "sip:bob@127.0.0.1", "", port), make_env(tmp_path), tmp_path)
    assert empty.returncode == 2 and "the message is empty" in empty.stderr
    bad = run(message_argv(tmp_path, "sip:", "hi", port), make_env(tmp_path), tmp_path)
    assert bad.returncode == 2, bad.stderr
    assert "softphone: cannot send the message to sip:" in bad.stderr
    assert "Traceback" not in bad.stderr + empty.stderr
    charset = run(
        message_argv(
            tmp_path, "sip:bob@127.0.0.1", "€", port, "--content-type", "text/plain;charset=ascii"
        ),
        make_env(tmp_path),
        tmp_path,
    )
    assert charset.returncode == 1 and "cannot be written in ascii" in charset.stderr
