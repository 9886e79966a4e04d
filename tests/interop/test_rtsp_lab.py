"""The RTSP lab proves itself with FFmpeg as the client (no softphone code involved).

Every mount describes the codecs ``lab.MOUNTS`` promises; /tcp-only refuses UDP with 461
and plays over TCP; /basic and /digest answer 401 with their own challenge and accept the
(percent-encoded) credentials; /file seeks; UDP media leaves from 127.0.0.1 only; a restart comes
back on the same port; RTSPS works with the lab PKI; the session timeout is configurable.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from lab_support import require_binary

from softphone import lab
from softphone.lab.rtsp_server import HOST, MOUNTS, UDP_PORTS, MountSpec, RtspServer

pytestmark = pytest.mark.interop

FFPROBE_TIMEOUT_S = 15.0


def ffprobe(
    url: str, *args: str, transport: str = "tcp", timeout_s: float = FFPROBE_TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    binary = require_binary("ffprobe")
    argv = [binary, "-v", "error", "-rtsp_transport", transport, *args, "-of", "json", url]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False)


def probe_streams(url: str, transport: str = "tcp") -> list[dict[str, Any]]:
    result = ffprobe(
        url,
        "-show_entries",
        "stream=codec_type,codec_name,sample_rate,channels,width,height",
        transport=transport,
    )
    assert result.returncode == 0, f"ffprobe {url} failed: {result.stderr}"
    streams: list[dict[str, Any]] = json.loads(result.stdout)["streams"]
    return streams


def assert_streams_match(mount: MountSpec, streams: list[dict[str, Any]]) -> None:
    assert [s["codec_name"] for s in streams] == [spec.codec for spec in mount.streams]
    for spec, stream in zip(mount.streams, streams, strict=True):
        assert stream["codec_type"] == spec.media
        if spec.media == "video":
            assert (stream["width"], stream["height"]) == (320, 240)
        else:
            assert int(stream["sample_rate"]) == spec.clock_rate
            assert stream["channels"] == spec.channels


class RawRtsp:
    """A bare RTSP/1.0 connection for checking the server's own answers (no softphone code)."""

    def __init__(self, port: int, timeout_s: float = 10.0) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=timeout_s)
        self.cseq = 0
        self.buffer = b""

    def __enter__(self) -> RawRtsp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def _read_until(self, predicate: Callable[[], bool]) -> None:
        while not predicate():
            chunk = self.sock.recv(65536)
            assert chunk, f"connection closed mid-response: {self.buffer!r}"
            self.buffer += chunk

    def request(
        self, method: str, url: str, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, list[str]], str]:
        """Send one request; (status, headers by lower-case name, body) of its response."""
        self.cseq += 1
        lines = [f"{method} {url} RTSP/1.0", f"CSeq: {self.cseq}"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self._read_until(lambda: b"\r\n\r\n" in self.buffer)
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode().split("\r\n")
        found: dict[str, list[str]] = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            found.setdefault(name.strip().lower(), []).append(value.strip())
        length = int(found.get("content-length", ["0"])[0])
        self._read_until(lambda: len(self.buffer) >= length)
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return int(status_line.split()[1]), found, body.decode()


def rtsp_exchange(
    port: int, method: str, url: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, list[str]], str]:
    """One request on a fresh connection."""
    with RawRtsp(port) as conn:
        return conn.request(method, url, headers)


def sockets_of(pid: int, kind: str) -> list[tuple[str, int]]:
    """Local (address, port) of every IPv4/IPv6 ``kind`` ("udp" or "tcp" listening) socket of pid."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if match := re.fullmatch(r"socket:\[(\d+)\]", target):
            inodes.add(match.group(1))
    found: list[tuple[str, int]] = []
    for table, family in ((kind, socket.AF_INET), (kind + "6", socket.AF_INET6)):
        for row in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = row.split()
            if fields[9] not in inodes or (kind == "tcp" and fields[3] != "0A"):  # 0A = LISTEN
                continue
            hex_address, hex_port = fields[1].split(":")
            raw = bytes.fromhex(hex_address)
            # /proc prints the address as 32-bit words in host (little-endian) order.
            words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            found.append((socket.inet_ntop(family, words), int(hex_port, 16)))
    return found


# --------------------------------------------------------------------------- every mount


@pytest.mark.parametrize("path", [p for p, m in MOUNTS.items() if m.auth is None])
def test_mount_describes_and_plays_expected_codecs_over_tcp(
    rtsp_lab: RtspServer, path: str
) -> None:
    mark = rtsp_lab.mark()
    assert_streams_match(MOUNTS[path], probe_streams(rtsp_lab.url(path)))
    rtsp_lab.wait_for(rf"^LAB PLAY {re.escape(path)}/ ", timeout_s=2, since=mark)


def test_sdp_payload_types_and_clock_rates_match_mounts(rtsp_lab: RtspServer) -> None:
    for path, mount in MOUNTS.items():
        if mount.auth is not None:
            continue
        status, _headers, sdp = rtsp_exchange(rtsp_lab.port, "DESCRIBE", rtsp_lab.url(path))
        assert status == 200, path
        rtpmaps = re.findall(r"^a=rtpmap:(\d+) ([^/\r\n]+)/(\d+)", sdp, re.MULTILINE)
        expected = [(str(s.payload_type), s.encoding, str(s.clock_rate)) for s in mount.streams]
        assert rtpmaps == expected, f"{path}: {sdp}"


def test_udp_media_and_listener_are_on_loopback_only(rtsp_lab: RtspServer) -> None:
    mark = rtsp_lab.mark()
    assert_streams_match(MOUNTS["/h264"], probe_streams(rtsp_lab.url("/h264"), transport="udp"))
    rtsp_lab.wait_for(r"^LAB SETUP /h264/stream=0 transport=RTP/AVP/UDP;unicast;", 2, since=mark)
    pid = rtsp_lab.pid
    assert pid is not None
    assert sockets_of(pid, "tcp") == [(HOST, rtsp_lab.port)]
    with RawRtsp(rtsp_lab.port) as conn:  # hold a UDP session while we look at the sockets
        status, headers, _ = conn.request(
            "SETUP",
            rtsp_lab.url("/pcmu/stream=0"),
            {"Transport": "RTP/AVP;unicast;client_port=40000-40001"},
        )
        assert status == 200
        assert re.search(r"server_port=\d+-\d+", headers["transport"][0])
        bound = sockets_of(pid, "udp")
        assert len(bound) >= 2, "no RTP/RTCP sockets while a UDP session is set up"
        assert {address for address, _port in bound} == {HOST}
        assert all(UDP_PORTS[0] <= port <= UDP_PORTS[1] for _address, port in bound), bound
        session = headers["session"][0].split(";")[0]
        assert conn.request("TEARDOWN", rtsp_lab.url("/pcmu"), {"Session": session})[0] == 200


# --------------------------------------------------------------------------- transports


def test_tcp_only_refuses_udp_with_461(rtsp_lab: RtspServer) -> None:
    result = ffprobe(rtsp_lab.url("/tcp-only"), "-show_streams", transport="udp")
    assert result.returncode != 0
    assert "461" in result.stderr, result.stderr


# --------------------------------------------------------------------------- authentication


@pytest.mark.parametrize("path", ["/basic", "/digest"])
def test_protected_mount_refuses_without_credentials(rtsp_lab: RtspServer, path: str) -> None:
    result = ffprobe(rtsp_lab.url(path), "-show_streams")
    assert result.returncode != 0
    assert "401" in result.stderr, result.stderr


@pytest.mark.parametrize("path", ["/basic", "/digest"])
def test_protected_mount_refuses_a_wrong_password(rtsp_lab: RtspServer, path: str) -> None:
    result = ffprobe(rtsp_lab.url(path, user=rtsp_lab.user, password="p@ss#2"), "-show_streams")
    assert result.returncode != 0
    assert "401" in result.stderr, result.stderr


@pytest.mark.parametrize("path", ["/basic", "/digest"])
def test_protected_mount_plays_with_credentials(rtsp_lab: RtspServer, path: str) -> None:
    url = rtsp_lab.url(path, user=rtsp_lab.user, password=rtsp_lab.password)
    assert "p%40ss%231@" in url  # '@' and '#' percent-encoded
    mark = rtsp_lab.mark()
    assert_streams_match(MOUNTS[path], probe_streams(url))
    scheme = "Basic" if path == "/basic" else "Digest"
    rtsp_lab.wait_for(rf"^LAB PLAY {path}/ auth={scheme} ", timeout_s=2, since=mark)


def test_each_protected_mount_offers_only_its_own_scheme(rtsp_lab: RtspServer) -> None:
    status, headers, _ = rtsp_exchange(rtsp_lab.port, "DESCRIBE", rtsp_lab.url("/basic"))
    assert status == 401
    assert headers["www-authenticate"] == [f'Basic realm="{rtsp_lab.realm}"']
    status, headers, _ = rtsp_exchange(rtsp_lab.port, "DESCRIBE", rtsp_lab.url("/digest"))
    assert status == 401
    [challenge] = headers["www-authenticate"]
    # GStreamer 1.22: MD5 only, and no algorithm=, qop= or opaque= in the challenge (RFC 2069
    # style), so the response is MD5(HA1:nonce:HA2) without cnonce/nc.
    assert re.fullmatch(rf'Digest realm="{rtsp_lab.realm}", nonce="[0-9a-f]{{16}}"', challenge)


# --------------------------------------------------------------------------- on-demand file


def test_file_seeks(rtsp_lab: RtspServer) -> None:
    mark = rtsp_lab.mark()
    result = ffprobe(
        rtsp_lab.url("/file"),
        "-read_intervals", "10%+#5",
        "-select_streams", "v",
        "-show_entries", "frame=best_effort_timestamp_time",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    times = [
        float(t)
        for f in json.loads(result.stdout)["frames"]
        if (t := f.get("best_effort_timestamp_time")) not in (None, "N/A")
    ]
    assert times and all(9.9 <= t < 11.0 for t in times), times
    rtsp_lab.wait_for(r"^LAB PLAY /file/ .*range=npt=10", timeout_s=2, since=mark)


def test_file_is_on_demand_and_has_a_range(rtsp_lab: RtspServer) -> None:
    status, _, sdp = rtsp_exchange(rtsp_lab.port, "DESCRIBE", rtsp_lab.url("/file"))
    assert status == 200
    live = rtsp_exchange(rtsp_lab.port, "DESCRIBE", rtsp_lab.url("/pcmu"))[2]
    # GStreamer 1.22 writes "npt=now-20" for the seekable file: the end is the 20 s duration.
    assert re.search(r"^a=range:npt=\S*-20(\.\d+)?\s*$", sdp, re.MULTILINE), sdp
    assert re.search(r"^a=range:npt=now-\s*$", live, re.MULTILINE), live


# --------------------------------------------------------------------------- life cycle


def test_restart_keeps_the_port_and_serves_again(rtsp_lab_private: RtspServer) -> None:
    port, pid = rtsp_lab_private.port, rtsp_lab_private.pid
    assert_streams_match(MOUNTS["/pcmu"], probe_streams(rtsp_lab_private.url("/pcmu")))
    rtsp_lab_private.restart()
    assert rtsp_lab_private.port == port
    assert rtsp_lab_private.pid != pid
    assert_streams_match(MOUNTS["/pcmu"], probe_streams(rtsp_lab_private.url("/pcmu")))
    assert rtsp_lab_private.stop() == 0  # SIGTERM ends it cleanly
    with pytest.raises(OSError), socket.create_connection((HOST, port), timeout=1):
        pass


@pytest.mark.parametrize("rtsp_lab_private", [{"tls": True, "session_timeout_s": 7}], indirect=True)
def test_rtsps_and_short_session_timeout(rtsp_lab_private: RtspServer) -> None:
    url = rtsp_lab_private.url("/pcmu", scheme="rtsps")
    assert url.startswith(f"rtsps://{HOST}:{rtsp_lab_private.tls_port}/")
    assert_streams_match(MOUNTS["/pcmu"], probe_streams(url))
    status, headers, _ = rtsp_exchange(
        rtsp_lab_private.port,
        "SETUP",
        rtsp_lab_private.url("/pcmu/stream=0"),
        {"Transport": "RTP/AVP/TCP;unicast;interleaved=0-1"},
    )
    assert status == 200
    assert re.fullmatch(r"\S+;timeout=7", headers["session"][0]), headers["session"]


def test_url_percent_encodes_credentials(rtsp_lab: RtspServer) -> None:
    url = rtsp_lab.url("digest", user="a b", password="p@ss#1:/")
    assert url == f"rtsp://a%20b:p%40ss%231%3A%2F@{HOST}:{rtsp_lab.port}/digest"
    assert rtsp_lab.url("/h264") == f"rtsp://{HOST}:{rtsp_lab.port}/h264"
    with pytest.raises(lab.LabError):
        rtsp_lab.url("/h264", scheme="rtsps")  # the shared lab has no TLS listener
