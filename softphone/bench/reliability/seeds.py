"""The seed corpus of every fuzz target, built from tests/data (captures and fixtures).

``softphone bench reliability seeds --data tests/data --out tests/fuzz`` writes
``tests/fuzz/<target>/seed-<name>.bin``; the fuzzer starts from them and ``make test`` replays
them with the crashes found. Seeds for the stateful targets are conversations: the user agent
gets the responses to the REGISTER and INVITE it sent (the same bytes every run: its random
numbers are seeded) and calls made to it; the RTSP client gets a camera's answers from OPTIONS
to PLAY and then interleaved RTP from the captures.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Final

from softphone.bench.reliability.targets import DEPACKETIZERS, SEP, TARGETS, framed, ua_setup
from softphone.sip.compose import build_response
from softphone.sip.message import SipRequest, parse_message
from softphone.sip.uri import SipUri

__all__ = ["build_seeds", "write_seeds"]

Seed = tuple[str, bytes]


def _files(directory: Path, pattern: str) -> Iterator[Seed]:
    for path in sorted(directory.glob(pattern)):
        yield path.stem, path.read_bytes()


def _capture_packets(path: Path) -> list[bytes]:
    """The RTP packets of a capture of tests/data/rtp (rtpmap/fmtp lines, a blank line, then
    16-bit length + packet, repeated)."""
    body = path.read_bytes().partition(b"\n\n")[2]
    packets, pos = [], 0
    while pos + 2 <= len(body):
        size = int.from_bytes(body[pos : pos + 2], "big")
        packets.append(body[pos + 2 : pos + 2 + size])
        pos += 2 + size
    return packets


# --------------------------------------------------------------------------- SIP

_OFFER: Final = (
    b"v=0\r\no=bob 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n"
    b"m=audio 40010 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
)


_BOB: Final = SipUri(user="bob", host="192.0.2.10", port=5060)


def _response(
    req: bytes, status: int, *, extra: Sequence[tuple[str, str]] = (), sdp: bytes = b""
) -> bytes:
    """The response a peer sends to our request ``req``."""
    request = parse_message(req)
    assert isinstance(request, SipRequest)
    dialog = request.method == "INVITE" and 100 < status < 300
    resp = build_response(
        request,
        status,
        to_tag=None if status == 100 else "srv1",
        contact=_BOB if dialog else None,
        server="lab",
        allow="INVITE, ACK, BYE, CANCEL, OPTIONS",
        sdp=sdp or None,
        extra=extra,
    )
    return bytes(resp)


def _request(
    method: str,
    *,
    call_id: str,
    cseq: int,
    to_tag: str = "",
    body: bytes = b"",
    extra: str = "",
    branch: str = "b1",
) -> bytes:
    """A request from bob (192.0.2.10) to alice's registered Contact. An ACK or CANCEL carries
    the CSeq number of its INVITE (RFC 3261 §9.1, §17.1.1.3)."""
    to = "<sip:alice@lab.test>" + (f";tag={to_tag}" if to_tag else "")
    content_type = (
        "Content-Type: application/sdp\r\n" if body and "Content-Type" not in extra else ""
    )
    head = (
        f"{method} sip:alice@192.0.2.1:5060 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK{branch};rport\r\n"
        "Max-Forwards: 70\r\n"
        'From: "Bob" <sip:bob@lab.test>;tag=bobtag\r\n'
        f"To: {to}\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: {cseq} {method}\r\n"
        "Contact: <sip:bob@192.0.2.10:5060>\r\n"
        f"{extra}{content_type}"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def _sip_ua_seeds() -> Iterator[Seed]:
    _, sent = ua_setup()
    register, invite = sent
    challenge = (
        "WWW-Authenticate",
        'Digest realm="lab.test", nonce="abc123", algorithm=MD5, qop="auth"',
    )
    yield (
        "register-401-200",
        SEP.join(
            [
                _response(register, 401, extra=[challenge]),
                _response(
                    register, 200, extra=[("Contact", "<sip:alice@192.0.2.1:5060>;expires=60")]
                ),
            ]
        ),
    )
    yield "register-423", _response(register, 423, extra=[("Min-Expires", "120")])
    answer = _OFFER.replace(b"bob 1 1", b"bob 2 2")
    yield (
        "invite-100-180-200",
        SEP.join(
            [
                _response(invite, 100),
                _response(invite, 180),
                _response(invite, 200, sdp=answer),
            ]
        ),
    )
    yield (
        "invite-407",
        _response(
            invite,
            407,
            extra=[
                ("Proxy-Authenticate", 'Digest realm="lab.test", nonce="n2", algorithm=SHA-256')
            ],
        ),
    )
    yield "invite-302", _response(invite, 302, extra=[("Contact", "<sip:carol@192.0.2.11>")])
    call = "in-1@192.0.2.10"
    yield (
        "incoming-call",
        SEP.join(
            [
                _request("INVITE", call_id=call, cseq=1, body=_OFFER),
                _request("ACK", call_id=call, cseq=1, to_tag="x", branch="ack1"),
                _request("BYE", call_id=call, cseq=2, to_tag="x", branch="bye1"),
            ]
        ),
    )
    yield (
        "incoming-cancel",
        SEP.join(
            [
                _request("INVITE", call_id=call, cseq=1, body=_OFFER),
                _request("CANCEL", call_id=call, cseq=1, branch="b1"),
            ]
        ),
    )
    hold = _OFFER.replace(b"a=sendrecv", b"a=sendonly").replace(b"bob 1 1", b"bob 1 2")
    yield (
        "incoming-reinvite-refer-info",
        SEP.join(
            [
                _request("INVITE", call_id=call, cseq=1, body=_OFFER),
                _request("ACK", call_id=call, cseq=1, to_tag="x", branch="ack1"),
                _request("INVITE", call_id=call, cseq=2, to_tag="x", body=hold, branch="re1"),
                _request(
                    "REFER",
                    call_id=call,
                    cseq=3,
                    to_tag="x",
                    branch="ref1",
                    extra="Refer-To: <sip:carol@lab.test>\r\nReferred-By: <sip:bob@lab.test>\r\n",
                ),
                _request(
                    "INFO",
                    call_id=call,
                    cseq=4,
                    to_tag="x",
                    branch="info1",
                    extra="Content-Type: application/dtmf-relay\r\n",
                    body=b"Signal=5\r\nDuration=160\r\n",
                ),
            ]
        ),
    )
    yield "options", _request("OPTIONS", call_id="opt@192.0.2.10", cseq=1)
    yield (
        "message",
        _request(
            "MESSAGE",
            call_id="msg@192.0.2.10",
            cseq=1,
            extra="Content-Type: text/plain;charset=UTF-8\r\n",
            body="Hello, are you there? ✉".encode(),
        ),
    )
    yield (
        "scanner",
        _request("INVITE", call_id="scan@192.0.2.10", cseq=1, body=_OFFER).replace(
            b"sip:alice@192.0.2.1:5060", b"sip:100@192.0.2.1"
        ),
    )


def _sip_seeds(data: Path) -> dict[str, list[Seed]]:
    fixtures = list(_files(data / "sip", "*.sip"))
    _, sent = ua_setup()
    messages = [*fixtures, ("ua-register", sent[0]), ("ua-invite", sent[1])]
    headers: list[Seed] = [
        ("name-addr", b'\x00"Alice Smith" <sip:alice@lab.test;transport=tcp>;tag=9fxced76sl'),
        ("via", b"\x01SIP/2.0/UDP [2001:db8::9]:5060;branch=z9hG4bK776asdhds;rport=5060;received=192.0.2.4"),
        ("cseq", b"\x021 INVITE"),
        ("contacts", b'\x03"Mr. Watson" <sip:watson@worcester.bell-telephone.com>;q=0.7; expires=3600, <mailto:watson@bell-telephone.com>;q=0.1'),
        ("sip-uri", b"\x04sips:alice:secret@atlanta.com:5061;transport=tls;maddr=239.255.255.1?subject=project%20x&priority=urgent"),
        ("tel-uri", b"\x04tel:+1-201-555-0123;ext=22"),
    ]  # fmt: skip
    stream = [
        ("two-messages", b"\r\n\r\n" + fixtures[0][1] + fixtures[-1][1]),
        ("split", SEP.join([fixtures[0][1][:40], fixtures[0][1][40:] + b"\r\n"])),
    ]
    return {
        "sip_message": messages,
        "sip_header": headers,
        "sip_stream": stream,
        "sip_ua": list(_sip_ua_seeds()),
    }


# --------------------------------------------------------------------------- SDP, RTSP


def _rtsp_client_seeds(data: Path) -> Iterator[Seed]:
    describe = (data / "rtsp" / "gstreamer_describe_200.txt").read_bytes()
    describe = describe.replace(b"CSeq: 3", b"CSeq: 2")
    options = (
        b"RTSP/1.0 200 OK\r\nCSeq: 1\r\nPublic: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN\r\n\r\n"
    )
    setup = (
        b"RTSP/1.0 200 OK\r\nCSeq: 3\r\nSession: 1234;timeout=60\r\n"
        b"Transport: RTP/AVP/TCP;unicast;interleaved=0-1;ssrc=1A2B3C4D\r\n\r\n"
    )
    setup2 = setup.replace(b"CSeq: 3", b"CSeq: 4").replace(b"interleaved=0-1", b"interleaved=2-3")
    play = (
        b"RTSP/1.0 200 OK\r\nCSeq: 5\r\nSession: 1234\r\nRange: npt=0.000-\r\n"
        b"RTP-Info: url=rtsp://127.0.0.1:8554/test/stream=0;seq=1;rtptime=0\r\n\r\n"
    )
    frames = b"".join(
        b"$\x00" + len(p).to_bytes(2, "big") + p
        for p in _capture_packets(data / "rtp" / "depack_ffmpeg_h264.bin")[:6]
    )
    yield "options-to-play", SEP.join([options, describe, setup, setup2, play, frames])
    yield "unauthorized", SEP.join(
        [
            b'RTSP/1.0 401 Unauthorized\r\nCSeq: 1\r\nWWW-Authenticate: Digest realm="cam", nonce="n1"\r\n\r\n',
            b"RTSP/1.0 200 OK\r\nCSeq: 2\r\n\r\n",
        ]
    )  # fmt: skip
    for name, body in _files(data / "rtsp", "*.txt"):
        yield name, SEP.join([options, body.replace(b"CSeq: 3", b"CSeq: 2")])


def _other_seeds(data: Path) -> dict[str, list[Seed]]:
    sdps = list(_files(data / "sdp", "*.sdp"))
    rtsp = list(_files(data / "rtsp", "*.txt"))
    h264 = _capture_packets(data / "rtp" / "depack_ffmpeg_h264.bin")
    seeds: dict[str, list[Seed]] = {
        "sdp": [(f"strict-{n}", b"\x00" + b) for n, b in sdps]
        + [(f"lenient-{n}", b"\x01" + b) for n, b in sdps],
        "rtsp_message": [
            *rtsp,
            ("interleaved", b"\r\n$\x00\x00\x04abcd" + rtsp[0][1]),
            ("announce", b"ANNOUNCE rtsp://cam/x RTSP/1.0\r\nCSeq: 9\r\nContent-Length: 0\r\n\r\n"),
        ],
        "rtsp_client": list(_rtsp_client_seeds(data)),
        "rtsp_url": [
            ("plain", b"rtsp://192.168.1.20/Streaming/Channels/101"),
            ("userinfo", b"rtsps://admin:p%40ss@[2001:db8::7]:322/cam1?x=1#frag"),
        ],
        "rtp_packet": list(_files(data / "rtp", "rtp_*.bin")),
        "rtcp": [("flag0-" + n, b"\x00" + b) for n, b in _files(data / "rtp", "rtcp_*.bin")],
        "rtp_session": [
            (
                "pcmu-rtcp",
                framed(
                    [
                        *(_files_bytes(data / "rtp", "rtp_pcmu.bin") * 3),
                        *_files_bytes(data / "rtp", "rtcp_sr_sdes.bin"),
                    ]
                ),
            ),
            ("h264", framed(h264[:10])),
        ],
        "digest": [
            ("sip-401", _digest_seed(data)),
            (
                "rfc7616",
                b'Digest username="x", realm="http-auth@example.org"\n'
                b'Digest realm="http-auth@example.org", qop="auth, auth-int", '
                b'algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
                b'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"\nBasic realm="cam"',
            ),
        ],
        "vcard": list(_files(data / "vcard", "*.vcf")),
        "config": [
            ("readme", _CONFIG_SEED),
            ("minimal", b'[[account]]\nname = "a"\nuri = "sip:a@b"\n'),
        ],
    }
    baresip = _capture_packets(data / "rtp" / "depack_baresip_vp8.bin")
    seeds["video_receiver"] = [
        ("baresip-vp8", framed(baresip[:40])),
        ("baresip-vp8-holes", framed([p for i, p in enumerate(baresip[:60]) if i % 7 != 3])),
        ("baresip-vp8-reordered", framed(baresip[1:20:2] + baresip[0:20:2])),
    ]
    for target, (_, _, _, capture) in DEPACKETIZERS.items():
        packets = (
            _capture_packets(data / "rtp" / f"depack_ffmpeg_{capture}.bin")
            if capture != "pcmu"
            else _files_bytes(data / "rtp", "rtp_pcmu.bin") * 4
        )
        seeds[target] = [
            (f"{capture}-{i:02d}", framed(packets[i : i + 16]))
            for i in range(0, min(len(packets), 64), 16)
        ]
    return seeds


def _files_bytes(directory: Path, pattern: str) -> list[bytes]:
    return [body for _, body in _files(directory, pattern)]


def _digest_seed(data: Path) -> bytes:
    msg = parse_message((data / "sip" / "msg_401_www_authenticate.sip").read_bytes())
    values = msg.headers.get_lines("WWW-Authenticate")
    previous = 'Digest username="alice", realm="other", nonce="1", uri="sip:x", response="0"'
    return "\n".join([previous, *values]).encode()


_CONFIG_SEED: Final = b"""sip_port = 5060
codecs = ["opus", "G722", "PCMU", "PCMA"]
input_device = "USB"
output_device = 3
recordings_dir = "~/calls"

[[account]]
name = "alice"
uri = "sip:alice@lab.test"
password = "alicepw"
username = "alice"
registrar = "sip:127.0.0.1:5070"
proxy = "sip:127.0.0.1:5070"
transport = "udp"
expires = 3600

[[camera]]
name = "frontdoor"
url = "rtsp://192.168.1.20/Streaming/Channels/101"
username = "admin"
password = "p@ss#1"
"""


# --------------------------------------------------------------------------- writing


def build_seeds(data: Path) -> dict[str, list[Seed]]:
    """Every target's seeds, by target name, from the fixtures under ``data`` (tests/data)."""
    seeds = {**_sip_seeds(data), **_other_seeds(data)}
    missing = sorted(set(TARGETS) - set(seeds))
    if missing:
        raise KeyError(f"no seeds for {', '.join(missing)}")
    return seeds


def write_seeds(data: Path, out: Path) -> dict[str, int]:
    """Write ``out/<target>/seed-<name>.bin`` (replacing older seeds, keeping every other file,
    e.g. the crashes found); how many seeds each target got."""
    written: dict[str, int] = {}
    for target, items in build_seeds(data).items():
        folder = out / target
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("seed-*.bin"):
            old.unlink()
        for name, body in items:
            (folder / f"seed-{name}.bin").write_bytes(body)
        written[target] = len(items)
    return written
