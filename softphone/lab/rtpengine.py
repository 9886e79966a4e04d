"""rtpengine (Debian ``rtpengine-daemon``) as a provider's media relay beside the lab's Kamailio.

:class:`RtpEngine` runs the daemon in userspace only (``--table=-1``: no kernel forwarding
table, so no kernel module is needed), with no configuration file, in the foreground, logging
to stderr (kept by :class:`LabProcess` in ``rtpengine.log`` in its workdir), its pid file there
too. One media interface, ``host`` (``RTPENGINE_HOST`` 203.0.113.40 in the relay namespace of
:mod:`softphone.lab.netns`), ports ``port_min``-``port_max``; its control protocol ("ng") on
``host``:``ng_port`` UDP, where Kamailio's ``rtpengine`` module sends its offers and answers
(``Kamailio(rtpengine=engine.ng_socket)``).

The ng protocol (rtpengine's docs, "ng Control Protocol"): each datagram is a cookie, a space,
and a bencoded dictionary; the answer carries the same cookie. :meth:`RtpEngine.ng` sends one
command and returns the answer; ``ping`` is the readiness check, ``query`` says what a call's
streams carried (the tests' proof that media went through the relay).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import socket
import time
from pathlib import Path
from typing import ClassVar, Final

from softphone.lab.netns import entered, netns_argv
from softphone.lab.process import HOST, LabError, LabProcess, OneProcessPeer, find_binary

__all__ = ["NG_PORT", "Bencoded", "RtpEngine", "bdecode", "bencode"]

NG_PORT: Final = 2223
Bencoded = int | bytes | str | list["Bencoded"] | dict[str, "Bencoded"]


def bencode(value: Bencoded) -> bytes:
    """BitTorrent's bencoding (BEP 3): what ng speaks. Dictionary keys are sorted."""
    if isinstance(value, bool):
        raise LabError("bencode has no booleans")
    if isinstance(value, int):
        return b"i%de" % value
    if isinstance(value, str):
        value = value.encode()
    if isinstance(value, bytes):
        return b"%d:%s" % (len(value), value)
    if isinstance(value, list):
        return b"l" + b"".join(bencode(v) for v in value) + b"e"
    items = sorted((k.encode(), v) for k, v in value.items())
    return b"d" + b"".join(bencode(k) + bencode(v) for k, v in items) + b"e"


def bdecode(data: bytes) -> Bencoded:
    """The one bencoded value ``data`` holds (strings as str when UTF-8, else bytes); LabError
    on anything else."""
    value, end = _decode(data, 0)
    if end != len(data):
        raise LabError(f"bencode: {len(data) - end} bytes after the value")
    return value


def _decode(data: bytes, at: int) -> tuple[Bencoded, int]:
    if at >= len(data):
        raise LabError("bencode: truncated")
    lead = data[at : at + 1]
    if lead == b"i":
        end = data.find(b"e", at)
        if end < 0 or not re.fullmatch(rb"-?\d+", data[at + 1 : end]):
            raise LabError(f"bencode: bad integer at {at}")
        return int(data[at + 1 : end]), end + 1
    if lead in (b"l", b"d"):
        at += 1
        items: list[Bencoded] = []
        while data[at : at + 1] != b"e":
            item, at = _decode(data, at)
            items.append(item)
        if lead == b"l":
            return items, at + 1
        if len(items) % 2 or not all(isinstance(k, str) for k in items[::2]):
            raise LabError("bencode: a dictionary needs string keys, each with a value")
        return {str(k): v for k, v in zip(items[::2], items[1::2], strict=True)}, at + 1
    colon = data.find(b":", at)
    if colon < 0 or not data[at:colon].isdigit():
        raise LabError(f"bencode: bad string length at {at}")
    end = colon + 1 + int(data[at:colon])
    if end > len(data):
        raise LabError("bencode: truncated string")
    raw = data[colon + 1 : end]
    try:
        return raw.decode(), end
    except UnicodeDecodeError:
        return raw, end


class RtpEngine(OneProcessPeer):
    """``rtpengine`` on ``host`` (media and ng control), inside ``netns`` when given."""

    peer_name: ClassVar[str] = "rtpengine"

    def __init__(
        self,
        workdir: Path,
        *,
        host: str = HOST,
        netns: str | None = None,
        ng_port: int = NG_PORT,
        port_min: int = 40000,
        port_max: int = 40199,
    ) -> None:
        self.workdir = workdir
        self.host = host
        self.netns = netns
        self.ng_port = ng_port
        self.port_min = port_min
        self.port_max = port_max
        self._cookies = itertools.count(1)
        self._process: LabProcess | None = None

    @property
    def ng_socket(self) -> str:
        """Where Kamailio's ``rtpengine`` module reaches it (its ``rtpengine_sock``)."""
        return f"udp:{self.host}:{self.ng_port}"

    def argv(self) -> list[str]:
        binary = find_binary("rtpengine", "rtpengine-daemon")
        return [
            binary,
            "--config-file=none",
            "--foreground",
            "--log-stderr",
            "--table=-1",  # userspace forwarding only: no kernel module
            f"--interface={self.host}",
            f"--listen-ng={self.host}:{self.ng_port}",
            f"--port-min={self.port_min}",
            f"--port-max={self.port_max}",
            f"--pidfile={self.workdir / 'rtpengine.pid'}",
            "--num-threads=2",
            "--log-level=6",
        ]

    def start(self, timeout_s: float = 10.0) -> RtpEngine:
        """Start it (inside ``netns`` when given) and wait until it answers an ng ``ping``."""
        with contextlib.ExitStack() as stack:
            if self.netns is not None:
                stack.enter_context(entered(self.netns))
            self.workdir.mkdir(parents=True, exist_ok=True)
            process = self._process = LabProcess(
                netns_argv(self.netns, self.argv()),
                name="rtpengine",
                cwd=self.workdir,
                log_path=self.workdir / "rtpengine.log",
            )
            try:
                process.wait_until(self._pongs, timeout_s, "an answer to an ng ping", poll_s=0.0)
            except LabError as exc:
                tail = process.tail()
                self.stop()
                raise LabError(f"{exc}\nrtpengine output:\n{tail}") from None
        return self

    def _pongs(self) -> bool:
        try:
            return self._ng({"command": "ping"}, 0.25).get("result") == "pong"
        except (LabError, OSError):
            return False

    def ng(self, command: dict[str, Bencoded], timeout_s: float = 2.0) -> dict[str, Bencoded]:
        """Send one ng command (from the namespace it runs in); its answer dictionary."""
        with contextlib.ExitStack() as stack:
            if self.netns is not None:
                stack.enter_context(entered(self.netns))
            return self._ng(command, timeout_s)

    def _ng(self, command: dict[str, Bencoded], timeout_s: float) -> dict[str, Bencoded]:
        cookie = f"lab{os.getpid()}-{next(self._cookies)}".encode()
        deadline = time.monotonic() + timeout_s
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(cookie + b" " + bencode(command), (self.host, self.ng_port))
            while (left := deadline - time.monotonic()) > 0:
                sock.settimeout(left)
                try:
                    data = sock.recv(65535)
                except TimeoutError:
                    break
                head, _, body = data.partition(b" ")
                if head == cookie:
                    answer = bdecode(body)
                    if not isinstance(answer, dict):
                        raise LabError(f"rtpengine: an answer that is no dictionary: {answer!r}")
                    return answer
        raise LabError(f"rtpengine: no answer to {command.get('command')!r} in {timeout_s:g} s")

    def query(self, call_id: str) -> dict[str, Bencoded]:
        """What rtpengine knows of the call ``call_id`` (``result``: ``ok``, ``totals``, the
        ``tags`` with their media and streams); LabError when it knows no such call."""
        answer = self.ng({"command": "query", "call-id": call_id})
        if answer.get("result") != "ok":
            raise LabError(f"rtpengine: query {call_id}: {answer}")
        return answer
