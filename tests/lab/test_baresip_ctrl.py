"""baresip's ctrl_tcp protocol as the lab speaks it, without baresip: the netstring decoder on
its own, and BaresipCtrl against a stand-in server on 127.0.0.1 that splits its frames."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from softphone.lab.baresip import Baresip, BaresipCtrl, NetstringDecoder, netstring
from softphone.lab.process import HOST, LabError

STEP_S = 5.0


def frame(message: dict[str, object]) -> bytes:
    return netstring(json.dumps(message).encode())


# --------------------------------------------------------------------------- the decoder


def test_a_frame_split_at_every_byte_comes_out_once_and_whole() -> None:
    data = frame({"event": True, "type": "CALL_RINGING"}) + frame({"event": True, "type": "X"})
    decoder = NetstringDecoder()
    payloads = [p for i in range(len(data)) for p in decoder.feed(data[i : i + 1])]
    assert [json.loads(p)["type"] for p in payloads] == ["CALL_RINGING", "X"]


def test_several_frames_in_one_read_and_an_empty_one() -> None:
    decoder = NetstringDecoder()
    assert decoder.feed(b"3:abc,0:,2:x") == [b"abc", b""]
    assert decoder.feed(b"y,") == [b"xy"]
    assert decoder.feed(b"") == []


@pytest.mark.parametrize(
    ("data", "says"),
    [(b"3:abc;", "terminator"), (b"x3:abc,", "length"), (b"3a:abc,", "length")],
    ids=["bad-terminator", "garbage-before-length", "garbage-in-length"],
)
def test_malformed_frames_are_a_lab_error(data: bytes, says: str) -> None:
    with pytest.raises(LabError, match=f"bad netstring {says}"):
        NetstringDecoder().feed(data)


# --------------------------------------------------------------------------- over a socket


class FakeCtrl:
    """One ctrl_tcp connection on 127.0.0.1: the test scripts what it sends and when."""

    def __init__(self) -> None:
        self._listener = socket.create_server((HOST, 0))
        self.port = int(self._listener.getsockname()[1])
        self.conn: socket.socket | None = None
        self._accepted = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self.conn, _ = self._listener.accept()
        self.conn.settimeout(STEP_S)
        self._accepted.set()

    def connection(self) -> socket.socket:
        assert self._accepted.wait(STEP_S), "the client never connected"
        assert self.conn is not None
        return self.conn

    def read_command(self) -> dict[str, str]:
        decoder, conn = NetstringDecoder(), self.connection()
        while True:
            chunk = conn.recv(65536)
            assert chunk, "the client closed its connection"
            if payloads := decoder.feed(chunk):
                message: dict[str, str] = json.loads(payloads[0])
                return message

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self._listener.close()


@pytest.fixture
def server() -> Iterator[FakeCtrl]:
    fake = FakeCtrl()
    yield fake
    fake.close()


@pytest.fixture
def client(server: FakeCtrl) -> Iterator[BaresipCtrl]:
    ctrl = BaresipCtrl(server.port, name="fake")
    yield ctrl
    ctrl.close()


def in_thread(work: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


def test_events_split_across_reads_and_a_response_between_them(
    server: FakeCtrl, client: BaresipCtrl
) -> None:
    ringing = frame({"event": True, "type": "CALL_RINGING", "id": "c1"})
    established = frame({"event": True, "type": "CALL_ESTABLISHED", "id": "c1"})

    def script() -> None:
        conn = server.connection()
        conn.sendall(ringing[:7])  # the length and the start of the JSON only
        command = server.read_command()  # the client asked meanwhile: the half frame is out
        response = frame(
            {"response": True, "ok": True, "data": "1 call", "token": command["token"]}
        )
        conn.sendall(ringing[7:] + response[:5])
        conn.sendall(response[5:] + established)

    worker = in_thread(script)
    response = client.command("listcalls", timeout_s=STEP_S)
    worker.join(STEP_S)
    assert response["ok"] is True and response["data"] == "1 call"
    found = client.wait_event("CALL_ESTABLISHED", STEP_S)
    assert found["id"] == "c1"
    assert client.event_types() == ["CALL_RINGING", "CALL_ESTABLISHED"]
    # Past events count unless ``since`` says otherwise.
    assert client.wait_event("CALL_RINGING", STEP_S)["type"] == "CALL_RINGING"
    assert client.find_event("CALL_RINGING", 0.0, since=2) is None


def test_a_wait_ends_with_a_lab_error_when_baresip_goes_away(
    server: FakeCtrl, client: BaresipCtrl
) -> None:
    server.connection().sendall(frame({"event": True, "type": "REGISTER_OK"}))
    assert client.wait_event("REGISTER_OK", STEP_S)["type"] == "REGISTER_OK"
    server.connection().close()
    with pytest.raises(LabError, match="closed while waiting for CALL_CLOSED"):
        client.wait_event("CALL_CLOSED", 30.0)
    with pytest.raises(LabError, match="ctrl_tcp is closed; 'hangup' not sent"):
        client.command("hangup", timeout_s=30.0)


def test_malformed_output_ends_the_connection_instead_of_hanging_a_wait(
    server: FakeCtrl, client: BaresipCtrl
) -> None:
    server.connection().sendall(b"not a netstring")
    with pytest.raises(LabError, match="closed while waiting"):
        client.wait_event("CALL_INCOMING", 30.0)


def test_a_display_name_goes_before_the_accounts_address(tmp_path: Path) -> None:
    named = Baresip(tmp_path, user="bob", display_name="Bob Baresip")
    assert named.account_line().startswith('"Bob Baresip" <sip:bob@127.0.0.1;transport=udp>;')
    assert Baresip(tmp_path, user="bob").account_line().startswith("<sip:bob@")
    with pytest.raises(LabError, match="display name"):
        Baresip(tmp_path, display_name='say "hi"')


def test_video_codecs_go_on_the_account_line_and_only_when_asked(tmp_path: Path) -> None:
    assert ";video_codecs=H264;" in Baresip(tmp_path, video_codecs="H264").account_line()
    assert "video_codecs" not in Baresip(tmp_path).account_line()
    with pytest.raises(LabError, match="video codecs"):
        Baresip(tmp_path, video_codecs="H264;answermode=auto")


def test_contacts_and_the_console_are_configured_only_when_asked(tmp_path: Path) -> None:
    plain = Baresip(tmp_path, user="bob").config_text()
    assert "contact.so" not in plain and "cons.so" not in plain
    chatty = Baresip(tmp_path, user="bob", contacts=("sip:alice@lab.test",), console=True)
    chatty.cons_port = 5599
    text = chatty.config_text()
    assert "module_app\t\tcontact.so\n" in text
    assert f"module\t\t\tcons.so\ncons_listen\t\t{HOST}:5599\n" in text
    with pytest.raises(LabError, match="bare URIs"):
        Baresip(tmp_path, contacts=("<sip:alice@lab.test>",))
    with pytest.raises(LabError, match="only message its contacts"):
        Baresip(tmp_path).send_message("hi")


def test_a_jack_baresip_uses_unconnected_float_jack_ports_of_its_own_name(tmp_path: Path) -> None:
    """The mouth-to-ear bench's baresips: microphone and speaker on JACK under a chosen
    client name, left unconnected for the measurer to wire; others keep their source."""
    text = Baresip(tmp_path, user="bob", jack_client="m2e-bob").config_text()
    for line in (
        "audio_source\t\tjack\n",
        "audio_player\t\tjack\n",
        "ausrc_format\t\tfloat\nauplay_format\t\tfloat\n",
        "ausrc_srate\t\t48000\nausrc_channels\t\t1\n",
        "jack_client_name\tm2e-bob\njack_connect_ports\tno\n",
        "module\t\t\tjack.so\n",
    ):
        assert line in text
    plain = Baresip(tmp_path, user="bob").config_text()
    assert "jack.so" not in plain and "jack_client_name" not in plain
    assert "audio_source\t\tausine,440\n" in plain
    assert "ausrc_format\t\ts16\n" in plain
    assert "jitter_buffer_delay\t5-10\n" in plain  # baresip's own default
    short = Baresip(tmp_path, jitter_frames=(1, 10)).config_text()
    assert "jitter_buffer_delay\t1-10\n" in short
    with pytest.raises(LabError, match="jitter buffer"):
        Baresip(tmp_path, jitter_frames=(3, 2))
    with pytest.raises(LabError, match="JACK client name"):
        Baresip(tmp_path, jack_client="two words")


def test_the_console_reader_waits_for_what_baresip_says_across_reads() -> None:
    """cons sends what baresip shows its user in pieces, with colours: a wait matches the
    text without them, whatever the split, and says what it saw when the match never comes."""
    from softphone.lab.baresip import BaresipConsole

    with socket.create_server((HOST, 0)) as listener:
        port = listener.getsockname()[1]
        console = BaresipConsole(port, name="bob")
        conn, _ = listener.accept()
        with conn:
            conn.sendall(b'\rsip:alice@lab.test: "h\x1b[32m')
            conn.sendall(b'ello"\n')
            found = console.wait_for(r'sip:alice@lab\.test: "hello"', STEP_S)
            assert found.group(0) == 'sip:alice@lab.test: "hello"'
            with pytest.raises(LabError, match="never said"):
                console.wait_for("goodbye", 0.05)
        console.close()
