"""A scripted RTSP camera on 127.0.0.1 for the player's tests (tests/phone/): it answers like a
camera would, with the quirks a GStreamer server will not show, and replays H.264 packets FFmpeg's
packetiser produced (tests/data/rtp/depack_ffmpeg_h264.bin) over TCP interleaved, 10 pictures a
second."""

from __future__ import annotations

import asyncio
import struct

from rtp_captures import load_capture

from softphone.auth.basic import basic_authorization
from softphone.rtp.packet import RtpPacket, is_rtcp

HOST = "127.0.0.1"


class FakeCamera:
    """Answers RTSP like a camera would; ``udp`` = "silent" accepts UDP SETUPs and sends nothing."""

    def __init__(
        self,
        *,
        udp: str = "silent",
        busy: int = 0,
        ssrc_in: str | None = None,
        media_after_pli: bool = False,
        basic: tuple[str, str] | None = None,
        skip_on_resume: int = 0,
    ) -> None:
        self.udp = udp
        self.busy = busy  # answer this many DESCRIBEs 503, as a booting camera does
        self.ssrc_in = (
            ssrc_in  # "setup" (Transport ssrc=) or "rtp-info": where the camera tells its SSRC
        )
        self.media_after_pli = media_after_pli  # send nothing until asked for a key frame
        self.basic = basic  # DESCRIBE needs these credentials (RFC 7617 Basic)
        # PAUSE stops the media; PLAY again goes on this many sequence numbers later, as a live
        # camera whose encoder kept running does (RTP-Info says where).
        self.skip_on_resume = skip_on_resume
        self.next_seq = 0
        self.next_ts = 0
        self.authorizations: list[str | None] = []  # the Authorization of every request
        self.pli_seen = asyncio.Event()
        self.disconnected = asyncio.Event()  # a client's connection ended
        self.requests: list[str] = []
        self.rtcp_from_client: list[bytes] = []
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        cap = load_capture("h264")
        self.fmtp, self.packets = cap.fmtp_line, cap.packets

    async def __aenter__(self) -> FakeCamera:
        self._server = await asyncio.start_server(self._serve, HOST, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def drop(self) -> None:
        """Close every client's connection, as a camera that restarts does; it takes new ones."""
        for writer in list(self._writers):
            writer.close()

    def url(self, path: str) -> str:
        return f"rtsp://{HOST}:{self.port}{path}"

    def sdp(self, path: str) -> bytes:
        if path.startswith("/av1"):  # a codec the player does not play
            media = "m=video 0 RTP/AVP 100\r\na=rtpmap:100 AV1/90000\r\na=control:trackID=1\r\n"
        else:
            media = f"m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n{self.fmtp}\r\na=control:trackID=1\r\n"
        return ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=cam\r\nt=0 0\r\n" + media).encode()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        sender: asyncio.Task[None] | None = None
        try:
            while True:
                first = await reader.readexactly(1)
                if first == b"$":  # interleaved data from the client (RTCP receiver reports)
                    channel, size = struct.unpack("!BH", await reader.readexactly(3))
                    data = await reader.readexactly(size)
                    if channel == 1 and is_rtcp(data):
                        self.rtcp_from_client.append(data)
                        if is_pli(data):
                            self.pli_seen.set()
                    continue
                head = first + await reader.readuntil(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                method, uri, _ = lines[0].split(" ")
                headers = {
                    k.strip().lower(): v.strip()
                    for k, _, v in (line.partition(":") for line in lines[1:] if line)
                }
                path = "/" + uri.split("/", 3)[3] if uri.count("/") >= 3 else "/"
                self.requests.append(f"{method} {path} {headers.get('transport', '')}")
                cseq = headers["cseq"]
                self.authorizations.append(headers.get("authorization"))
                if (
                    method == "DESCRIBE"
                    and self.basic is not None
                    and headers.get("authorization") != basic_authorization(*self.basic)
                ):
                    writer.write(
                        f'RTSP/1.0 401 Unauthorized\r\nCSeq: {cseq}\r\nWWW-Authenticate: Basic realm="cam"\r\n\r\n'.encode()
                    )
                elif path.startswith("/old"):
                    writer.write(
                        f"RTSP/1.0 302 Moved\r\nCSeq: {cseq}\r\nLocation: {self.url('/cam')}\r\n\r\n".encode()
                    )
                elif method == "OPTIONS":
                    writer.write(
                        f"RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nPublic: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN\r\n\r\n".encode()
                    )
                elif method == "DESCRIBE" and self.busy > 0:
                    self.busy -= 1
                    writer.write(
                        f"RTSP/1.0 503 Service Unavailable\r\nCSeq: {cseq}\r\n\r\n".encode()
                    )
                elif method == "DESCRIBE":
                    body = self.sdp(path)
                    base = f"{HOST}:{self.port}{path}/"  # quirk: a Content-Base without its scheme
                    writer.write(
                        f"RTSP/1.0 200 OK\r\nCSeq: {cseq}  \r\nContent-Base: {base}\r\n"
                        f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                        + body
                    )
                elif method == "SETUP":
                    transport = headers.get("transport", "")
                    if "TCP" in transport:
                        reply = "RTP/AVP/TCP;unicast;interleaved=0-1"
                        if self.ssrc_in == "setup":
                            reply += f";ssrc={SSRC:08X}"
                    else:
                        client = transport.split("client_port=")[1].split(";")[0]
                        reply = f"RTP/AVP;unicast;client_port={client};server_port=40000-40001"
                    writer.write(
                        f"RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nSession: 1234ABCD;timeout=60\r\nTransport: {reply}\r\n\r\n".encode()
                    )
                elif method == "PAUSE":
                    if sender is not None:
                        sender.cancel()
                        sender = None
                        self.next_seq += self.skip_on_resume
                    writer.write(
                        f"RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nSession: 1234ABCD\r\n\r\n".encode()
                    )
                elif method == "PLAY":
                    tcp = any("TCP" in r for r in self.requests if r.startswith("SETUP"))
                    if tcp:
                        # quirks: an RTCP SR before the PLAY answer, and data on channel 7 never set up
                        sr = bytes.fromhex(
                            "80c8000611223344e8d4a51000000000000000000000000000000000"
                        )
                        writer.write(b"$\x01" + struct.pack("!H", len(sr)) + sr)
                        writer.write(b"$\x07\x00\x04abcd")
                    seq = self.next_seq % 65536
                    info = (
                        f"url=trackID=1;seq={seq};ssrc={SSRC:08X}"
                        if self.ssrc_in == "rtp-info"
                        else f"url=trackID=1;seq={seq};"
                    )
                    writer.write(
                        f"RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nSession: 1234ABCD\r\nRTP-Info: {info}\r\n\r\n".encode()
                    )
                    if tcp and sender is None:
                        sender = asyncio.ensure_future(self._send_media(writer))
                elif method == "TEARDOWN":
                    writer.write(f"RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n\r\n".encode())
                    await writer.drain()
                    return
                else:
                    writer.write(f"RTSP/1.0 501 Not Implemented\r\nCSeq: {cseq}\r\n\r\n".encode())
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            if sender is not None:
                sender.cancel()
            writer.close()
            self._writers.discard(writer)
            self._tasks.discard(task)
            self.disconnected.set()

    async def _send_media(self, writer: asyncio.StreamWriter) -> None:
        """Loop the captured pictures at 10 per second, with continuous seq and timestamps."""
        if self.media_after_pli:
            await self.pli_seen.wait()
        loop = asyncio.get_running_loop()
        start = loop.time()
        frames = sorted({p.timestamp for p in self.packets})
        for n in range(600):
            # start one picture after a key frame, as a camera joined mid-GOP does
            for packet in (p for p in self.packets if p.timestamp == frames[(n + 1) % len(frames)]):
                out = RtpPacket(
                    payload_type=96,
                    sequence=self.next_seq % 65536,
                    timestamp=self.next_ts % 2**32,
                    ssrc=SSRC,
                    marker=packet.marker,
                    payload=packet.payload,
                )
                data = bytes(out)
                writer.write(b"$\x00" + struct.pack("!H", len(data)) + data)
                self.next_seq += 1
            self.next_ts += 9000
            await writer.drain()
            # paced by the loop clock: the next picture is due 100 ms after the previous one
            await asyncio.sleep(max(start + (n + 1) * 0.1 - loop.time(), 0))


SSRC = 0x11223344


def is_pli(data: bytes) -> bool:
    """An empty RR followed by a PSFB FMT 1 (RFC 4585 §6.3.1)."""
    return data[8:10] == bytes([0x81, 206])
