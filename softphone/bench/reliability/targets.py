"""Fuzz targets: every parser and depacketiser that reads untrusted bytes, with its contract.

A :class:`FuzzTarget` feeds one input (bytes) to the code under test the way the program does
and lets the code's own errors out. Its contract is the module docstring of the code under
test: only the documented error types (``allowed``) may escape; anything else is a bug. Some
targets also check what a successful parse gives (what we send back is valid SIP, a parsed
packet serialises and parses again, an Authorization we build has no line break); a failed
check raises :class:`ContractBroken`.

Inputs that hold several messages or packets are framed so that a fuzzer can mutate each:

- ``SEP`` between SIP messages (the user agent) and between RTSP reads (the RTSP client);
- a 16-bit big-endian length before each datagram (RTP, RTCP, depacketisers), as in the
  captures of tests/data/rtp.

The same targets serve atheris (``fuzz_worker``) and the replay of ``tests/fuzz/`` in
``make test`` (tests/fuzz/test_corpus.py). Each input starts from fresh state, so that a corpus
file reproduces on its own.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Final

from softphone import config as config_mod
from softphone.auth import digest
from softphone.auth import errors as auth_errors
from softphone.auth.basic import BasicChallenge
from softphone.auth.challenge import choose_challenge
from softphone.rtp import packet as rtp_packet
from softphone.rtp import video_feedback
from softphone.rtp.depacketize import Depacketizer, UnsupportedCodec, make_depacketizer
from softphone.rtp.dtmf import DtmfReceiver
from softphone.rtp.errors import RtpParseError
from softphone.rtp.reorder import ReorderBuffer
from softphone.rtp.session import RtpPacketReceived, RtpSession
from softphone.rtp.video_receiver import VideoReceiver
from softphone.rtsp import client as rtsp_client
from softphone.rtsp import errors as rtsp_errors
from softphone.rtsp import events as rtsp_events
from softphone.rtsp.message import NEED_DATA, InterleavedFrame, RtspConnection
from softphone.rtsp.url import RtspUrl
from softphone.sdp import negotiation, video
from softphone.sdp.errors import SdpError, SdpParseError
from softphone.sdp.ice import IceCandidate, IceParseError, ice_attributes, ice_of
from softphone.sdp.session import MediaDescription, SessionDescription
from softphone.sip import errors as sip_errors
from softphone.sip import events as sip_events
from softphone.sip.account import AccountConfig
from softphone.sip.address import Address
from softphone.sip.framing import StreamFramer
from softphone.sip.headers import CSeq, NameAddr, Via, parse_contacts
from softphone.sip.message import parse_message
from softphone.sip.ua import UserAgent
from softphone.sip.uri import SipUri, parse_uri
from softphone.store import vcard
from softphone.store.contacts import validate_contact

__all__ = [
    "SEP",
    "TARGETS",
    "ContractBroken",
    "FuzzTarget",
    "datagrams",
    "framed",
    "ua_setup",
]

SEP: Final = b"\x00--\x00"
"""Between the messages of one input (user agent, RTSP client)."""


class ContractBroken(Exception):
    """An input made the code under test break a promise its docstring makes."""


@dataclass(frozen=True, slots=True)
class FuzzTarget:
    name: str
    entry: str  # what is fuzzed, as the table shows it
    allowed: tuple[type[Exception], ...]  # the documented errors; () means "never raises"
    feed: Callable[[bytes], None] = field(repr=False)
    max_len: int = 4096

    def check(self, data: bytes) -> Exception | None:
        """None when ``data`` kept the contract; otherwise the exception that broke it."""
        try:
            self.feed(data)
        except self.allowed:
            return None
        except Exception as exc:  # anything else escaping is the bug this exists to find
            return exc
        return None


def datagrams(data: bytes) -> Iterator[bytes]:
    """The datagrams of a length-prefixed input (a short tail is one last datagram)."""
    pos = 0
    while pos + 2 <= len(data):
        size = int.from_bytes(data[pos : pos + 2], "big")
        yield data[pos + 2 : pos + 2 + size]
        pos += 2 + size
    if pos < len(data):
        yield data[pos:]


def framed(items: list[bytes]) -> bytes:
    """The inverse of :func:`datagrams`: each item with its 16-bit length in front."""
    return b"".join(len(item).to_bytes(2, "big") + item for item in items)


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


# --------------------------------------------------------------------------- SIP


def _sip_message(data: bytes) -> None:
    msg = parse_message(data)
    # What parses is what the user agent reads: the mandatory headers, and bytes() for the
    # wire log and the 400 we may answer with.
    _ = (msg.call_id, msg.cseq, msg.from_, msg.to, msg.top_via)
    again = bytes(msg)
    try:
        parse_message(again)
    except sip_errors.ParseError as exc:
        raise ContractBroken(f"a parsed message does not parse once serialised: {exc}") from exc


_HEADER_PARSERS: Final[tuple[Callable[[str], object], ...]] = (
    NameAddr.parse,
    Via.parse,
    CSeq.parse,
    parse_contacts,
    parse_uri,
)


def _sip_header(data: bytes) -> None:
    if not data:
        return
    parser = _HEADER_PARSERS[data[0] % len(_HEADER_PARSERS)]
    value = parser(_text(data[1:]))
    if isinstance(value, SipUri | NameAddr | Via):
        text = str(value)
        if "\r" in text or "\n" in text:
            raise ContractBroken(f"{parser.__qualname__} gave a value with a line break")
        type(value).parse(text)


def _sip_stream(data: bytes) -> None:
    framer = StreamFramer()
    for chunk in data.split(SEP):
        framer.receive_data(chunk)
        for _ in range(64):
            item = framer.next_event()
            if item is None:
                break
            if isinstance(item, bytes):
                parse_message(item)


# The user agent: an account that registers and calls, so that responses meet transactions.
_ALICE: Final = AccountConfig(
    name="alice",
    aor=SipUri(user="alice", host="lab.test"),
    username="alice",
    password="alicepw",
    registrar=SipUri(host="192.0.2.10"),
    outbound=Address("udp", "192.0.2.10", 5060),
)
_LOCAL: Final = Address("udp", "192.0.2.1", 5060)
_PEER: Final = Address("udp", "192.0.2.10", 5060)
_OFFER_MEDIA: Final = negotiation.LocalMedia(
    address="192.0.2.1",
    port=40000,
    codecs=(
        negotiation.CodecSpec(encoding="opus", clock_rate=48000, channels=2, fmtp="useinbandfec=1"),
        negotiation.CodecSpec(encoding="PCMU", clock_rate=8000, payload_type=0),
        negotiation.CodecSpec(
            encoding="telephone-event", clock_rate=8000, payload_type=101, fmtp="0-16"
        ),
    ),
)

_VIDEO: Final = video.LocalVideo(address="192.0.2.1", port=40002, can_send=True)


def ua_setup() -> tuple[UserAgent, list[bytes]]:
    """A user agent that has sent a REGISTER and an INVITE (seeded: the same bytes every time),
    and what it sent."""
    ua = UserAgent(accounts=[_ALICE], rng=random.Random(7))
    ua.add_listener(_LOCAL)
    ua.register("alice", 0.0)
    offer = bytes(negotiation.create_offer(_OFFER_MEDIA, session_id=1, session_version=1))
    ua.invite("alice", SipUri(user="bob", host="lab.test"), sdp=offer, now=0.0)
    return ua, [out for out, _ in ua.messages_to_send()]


def _answer_sdp(offer: bytes | None) -> bytes | None:
    """What the phone answers an offer with; None when it would reject the call (488)."""
    if offer is None:
        return bytes(negotiation.create_offer(_OFFER_MEDIA, session_id=2, session_version=1))
    try:
        answer, _ = negotiation.create_answer(
            SessionDescription.parse(offer), _OFFER_MEDIA, session_id=2, session_version=1
        )
    except SdpError:
        return None
    return bytes(answer)


def _act(ua: UserAgent, event: sip_events.Event, now: float) -> None:
    """What the phone does with each event: answer calls and re-offers, read what it shows."""
    if isinstance(event, sip_events.IncomingCall):
        if event.remote_uri:
            parse_uri(event.remote_uri)
        sdp = _answer_sdp(event.sdp)
        if sdp is None:
            ua.reject(event.call_id, status=488, now=now)
        else:
            ua.ring(event.call_id, now)
            ua.answer(event.call_id, sdp=sdp, now=now)
    elif isinstance(event, sip_events.ReofferReceived):
        sdp = _answer_sdp(event.sdp)
        if sdp is None:
            ua.reject_reoffer(event.call_id, now=now)
        else:
            ua.answer_reoffer(event.call_id, sdp=sdp, now=now)
    elif isinstance(event, sip_events.CallAnswered | sip_events.CallProgressed):
        if event.sdp:
            SessionDescription.parse(event.sdp)
    elif isinstance(event, sip_events.TransferRequested):
        parse_uri(event.target)


def _drain(ua: UserAgent, seen: set[bytes]) -> None:
    """What the user agent sends must be SIP we can read (each distinct message read once:
    retransmissions are the same bytes)."""
    for out, dest in ua.messages_to_send():
        if out in seen:
            continue
        seen.add(out)
        try:
            parse_message(out)
        except sip_errors.ParseError as exc:
            raise ContractBroken(f"the user agent sent unparseable SIP: {exc}") from exc
        if dest.transport == "udp" and len(out) > 65507:
            raise ContractBroken(f"the user agent sent a {len(out)}-byte datagram")


def _sip_ua(data: bytes) -> None:
    ua, _ = ua_setup()
    seen: set[bytes] = set()
    now = 0.0
    for i, message in enumerate(data.split(SEP)[:16]):
        now = float(i)
        for event in ua.handle_timer(now):
            _act(ua, event, now)
        try:
            events = ua.receive_message(message, _PEER, now)
        except sip_errors.RemoteProtocolError:
            events = []
        for event in events:
            try:
                _act(ua, event, now)
            except (sip_errors.ParseError, SdpParseError):
                pass  # the phone reports an unreadable URI or SDP and goes on
        _drain(ua, seen)
    # Jump the clock: the transactions time out (Timer B/F, 64*T1 = 32 s), then what that
    # ended runs out (Timer K/J, retries); one handle_timer fires everything due by then.
    for later in (40.0, 80.0):
        for event in ua.handle_timer(now + later):
            _act(ua, event, now + later)
        _drain(ua, seen)


# --------------------------------------------------------------------------- SDP


def _sdp(data: bytes) -> None:
    lenient = bool(data[:1]) and data[0] & 1 == 1
    sdp = SessionDescription.parse(data[1:], lenient=lenient)
    again = bytes(sdp)
    try:
        SessionDescription.parse(again, lenient=lenient)
    except SdpParseError as exc:
        raise ContractBroken(f"a parsed SDP does not parse once serialised: {exc}") from exc
    for m in sdp.media:
        _ = (
            m.rtpmaps(),
            m.direction,
            m.ptime,
            [m.fmtp(pt) for pt in m.payload_types()],
            m.rtcp_port,
        )
        _ice(sdp, m)
    try:
        answer, _ = negotiation.create_answer(sdp, _OFFER_MEDIA, session_id=1, session_version=1)
        SessionDescription.parse(bytes(answer))
    except SdpError:
        pass
    offer = negotiation.create_offer(_OFFER_MEDIA, session_id=1, session_version=1)
    for index, m in enumerate(sdp.media):
        if m.media.lower() == "video":  # a video offer is answered, never refused with a raise
            section, _ = video.answer_video(sdp, m, _VIDEO)
            MediaDescription.parse_media_line(section.lines()[0][2:])
            video.apply_video_answer(sdp, m, sdp, index)
    negotiation.apply_answer(offer, sdp)


def _ice(sdp: SessionDescription, m: MediaDescription) -> None:
    """A stream's ICE (RFC 8839) reads as IceParseError or as a description that says itself
    again: what we would repeat of a far end's candidates is what it sent."""
    try:
        ice = ice_of(sdp, m)
    except IceParseError:
        return
    if ice is None:
        return
    again = [value for name, value in ice_attributes(ice) if name == "candidate"]
    parsed = [IceCandidate.parse(value or "") for value in again]
    if parsed != list(ice.candidates):
        raise ContractBroken(f"ICE candidates do not read back: {again} -> {parsed}")


# --------------------------------------------------------------------------- RTSP


def _rtsp_message(data: bytes) -> None:
    conn = RtspConnection()
    for chunk in data.split(SEP):
        conn.receive_data(chunk)
        for _ in range(64):
            item = conn.next_event()
            if item is NEED_DATA:
                break
            if not isinstance(item, InterleavedFrame):
                bytes(item)


_CAMERA: Final = RtspUrl.parse("rtsp://admin:pw@192.0.2.30:554/stream1")


def _rtsp_client(data: bytes) -> None:
    """The client from OPTIONS on, the way the player drives it: every track of a DESCRIBE
    answer gets a depacketiser and a SETUP over TCP; interleaved RTP goes to the depacketiser."""
    client = rtsp_client.RtspClient(_CAMERA, rng=random.Random(5), user_agent="softphone", now=0.0)
    client.start(0.0)
    depacks: dict[int, Depacketizer] = {}
    channels: dict[int, int] = {}
    for i, chunk in enumerate(data.split(SEP)[:16]):
        now = float(i)
        client.handle_timer(now)
        for event in client.receive_data(chunk, now):
            if isinstance(event, rtsp_events.Described):
                requests = []
                for track in event.tracks:
                    try:
                        depacks[track.index] = make_depacketizer(
                            track.encoding, track.clock_rate, track.fmtp, track.channels or 1
                        )
                    except UnsupportedCodec:
                        continue
                    requests.append(rtsp_events.TrackRequest(index=track.index, transport="tcp"))
                if requests:
                    client.setup(requests, now)
            elif isinstance(event, rtsp_events.TrackSetUp) and event.interleaved is not None:
                channels[event.interleaved[0]] = event.index
            elif isinstance(event, rtsp_events.InterleavedFrameReceived):
                index = channels.get(event.channel)
                if index is not None and index in depacks:
                    try:
                        depacks[index].push(rtp_packet.RtpPacket.parse(event.data))
                    except RtpParseError:
                        pass
        client.data_to_send()


def _rtsp_url(data: bytes) -> None:
    url = RtspUrl.parse(_text(data))
    again = RtspUrl.parse(str(url))  # str() leaves the credentials out
    if again != url.without_credentials():
        raise ContractBroken(f"{url!r} reads back as {again!r}")


# --------------------------------------------------------------------------- RTP and RTCP


def _rtp_packet(data: bytes) -> None:
    packet = rtp_packet.RtpPacket.parse(data)
    again = rtp_packet.RtpPacket.parse(bytes(packet))
    if again != packet:
        raise ContractBroken("an RTP packet changes when serialised and parsed again")


def _rtcp(data: bytes) -> None:
    """Compound RTCP, and the video feedback in it: what parses serialises and reads the same
    (a NACK as the same set of sequence numbers: its entries may be regrouped)."""
    reduced = bool(data[:1]) and data[0] & 1 == 1
    for item in rtp_packet.parse_rtcp(data[1:], reduced_size=reduced):
        rtp_packet.parse_rtcp(bytes(item), reduced_size=True)
        feedback = video_feedback.parse_feedback(item)
        if feedback is None:
            continue
        again = video_feedback.parse_feedback(
            rtp_packet.parse_rtcp(bytes(feedback), reduced_size=True)[0]
        )
        if isinstance(feedback, video_feedback.Nack) and isinstance(again, video_feedback.Nack):
            same = set(feedback.lost) == set(again.lost)
        else:
            same = again == feedback
        if not same:
            raise ContractBroken(f"{feedback!r} reads back as {again!r}")


def _rtp_session(data: bytes) -> None:
    """A call's RTP endpoint: any datagram, RTP or RTCP, on either port, never raises; DTMF
    payloads go to the telephone-event receiver as the phone does."""
    source = ("192.0.2.20", 40000)
    session = RtpSession(
        rng=random.Random(3),
        cname="fuzz@192.0.2.1",
        remote_rtp=source,
        remote_rtcp=("192.0.2.20", 40001),
        rtcp_mux=False,
        clock_rates={0: 8000, 96: 48000, 101: 8000},
        now=0.0,
    )
    dtmf = DtmfReceiver()
    now = 0.0
    for i, datagram in enumerate(datagrams(data)):
        now = i * 0.02
        for event in session.receive_datagram(datagram, source, now, on_rtcp_port=i % 7 == 6):
            if isinstance(event, RtpPacketReceived) and event.packet.payload_type == 101:
                dtmf.receive(event.packet.payload, event.packet.timestamp, now)
        session.handle_timer(now)
        session.datagrams_to_send()
    session.stats(now)


def _depacketizer(encoding: str, clock_rate: int, fmtp: dict[str, str]) -> Callable[[bytes], None]:
    def feed(data: bytes) -> None:
        """Datagrams through the reorder buffer into the depacketiser, as the player does."""
        depack = make_depacketizer(encoding, clock_rate, fmtp)
        reorder = ReorderBuffer()
        now = 0.0
        for i, datagram in enumerate(datagrams(data)):
            now = i * 0.01
            try:
                packet = rtp_packet.RtpPacket.parse(datagram)
            except RtpParseError:
                continue
            for released, lost_before in reorder.push(packet, now):
                depack.push(released, lost_before=lost_before)
        for released, lost_before in reorder.poll(now + 1.0):
            depack.push(released, lost_before=lost_before)
        depack.flush()
        _ = (depack.extradata, depack.waiting_for_keyframe)

    return feed


def _video_receiver(data: bytes) -> None:
    """A call's video receiver (VP8, every feedback negotiated): datagrams as they arrive, an
    RTT that comes and goes, and the feedback it sends must be RTCP we can read (a compound
    headed by an RR, then NACK/PLI)."""
    receiver = VideoReceiver(
        make_depacketizer("VP8", 90000, {}),
        our_ssrc=0x5EED,
        feedback=frozenset({"nack", "nack pli", "ccm fir"}),
    )
    now = 0.0
    for i, datagram in enumerate(datagrams(data)):
        now = i * 0.005
        try:
            packet = rtp_packet.RtpPacket.parse(datagram)
        except RtpParseError:
            continue
        receiver.receive(packet, now)
        if i % 4 == 3:
            receiver.poll(now)
            out = receiver.rtcp_to_send(now, rtt_s=None if i % 8 == 3 else 0.02)
            if out is not None:
                try:
                    items = rtp_packet.parse_rtcp(out)
                    feedback = [video_feedback.parse_feedback(item) for item in items[1:]]
                except RtpParseError as exc:
                    raise ContractBroken(f"the receiver sent unreadable RTCP: {exc}") from exc
                if None in feedback:
                    raise ContractBroken(f"the receiver sent RTCP that is not feedback: {out!r}")
    receiver.poll(now + 1.0)
    receiver.rtcp_to_send(now + 1.0)


# The fmtp lines of the captures in tests/data/rtp (FFmpeg's packetisers).
DEPACKETIZERS: Final[dict[str, tuple[str, int, dict[str, str], str]]] = {
    "depack_h264": (
        "H264",
        90000,
        {"packetization-mode": "1", "sprop-parameter-sets": "Z0LAHtoCgL8=,aM48gA=="},
        "h264",
    ),
    "depack_h265": ("H265", 90000, {}, "h265"),
    "depack_jpeg": ("JPEG", 90000, {}, "mjpeg"),
    "depack_aac": (
        "MPEG4-GENERIC",
        44100,
        {
            "mode": "AAC-hbr",
            "sizelength": "13",
            "indexlength": "3",
            "indexdeltalength": "3",
            "config": "1210",
        },
        "aac",
    ),
    "depack_latm": ("MP4A-LATM", 44100, {"cpresent": "0", "config": "400024103fc0"}, "latm"),
    "depack_audio": ("L16", 16000, {}, "pcmu"),
    "depack_vp8": ("VP8", 90000, {}, "vp8"),
    "depack_vp9": ("VP9", 90000, {}, "vp9"),
}


# --------------------------------------------------------------------------- authentication


def _digest(data: bytes) -> None:
    """Challenges as the SIP and RTSP cores read them (one header value per line), the choice
    among them, and the Authorization we answer with: never a line break in it (header
    injection), and it parses as what it says."""
    values = _text(data).split("\n")
    client = digest.DigestClient([digest.Credentials("alice", "alicepw")], random.Random(1))
    choice = choose_challenge(client, values[1:], previous=values[:1])
    for value in values:
        try:
            BasicChallenge.parse(value)
        except auth_errors.ParseError:
            pass
    if choice.challenge is None:
        return
    answer = client.authorize(choice.challenge, method="REGISTER", uri="sip:lab.test")
    if any(c in answer for c in "\r\n\x00"):
        raise ContractBroken(f"an Authorization value with a line break: {answer!r}")
    try:
        right = digest.verify_authorization(
            answer, password="alicepw", method="REGISTER", username="alice"
        )
    except auth_errors.ParseError as exc:
        raise ContractBroken(f"our Authorization does not parse: {answer!r}") from exc
    if not right:
        raise ContractBroken(f"our Authorization does not verify: {answer!r}")


# --------------------------------------------------------------------------- files


def _vcard(data: bytes) -> None:
    """A .vcf file as the contacts screen imports it: every contact it gives can be stored."""
    text = vcard.decode_vcard_bytes(data)
    contacts, _problems = vcard.parse_vcards(
        text, phone_domain="lab.test" if data[:1] == b"B" else None
    )
    for contact in contacts:
        stored = validate_contact(contact)
        for part in (stored.name, *stored.uris, stored.rtsp_url or ""):
            try:
                part.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise ContractBroken(f"a contact SQLite cannot store: {part!r}") from exc


def _config(data: bytes) -> None:
    """The TOML config file: ConfigError for every mistake; what loads can be written back and
    reads the same (the settings screen saves it)."""
    loaded = config_mod.parse_config_bytes(data)
    import tomli_w

    text = tomli_w.dumps(config_mod.config_to_dict(loaded))
    again = config_mod.parse_config_bytes(text.encode())
    if again != loaded:
        raise ContractBroken("the config reads differently once saved")


# --------------------------------------------------------------------------- the table


def _targets() -> dict[str, FuzzTarget]:
    sip_remote = (sip_errors.RemoteProtocolError,)
    targets = [
        FuzzTarget("sip_message", "sip.message.parse_message", sip_remote, _sip_message),
        FuzzTarget("sip_header", "sip.headers / sip.uri parsers", sip_remote, _sip_header, 512),
        FuzzTarget("sip_stream", "sip.framing.StreamFramer", sip_remote, _sip_stream, 8192),
        FuzzTarget("sip_ua", "sip.ua.UserAgent.receive_message", sip_remote, _sip_ua, 16384),
        FuzzTarget("sdp", "sdp.SessionDescription.parse + offer/answer", (SdpError,), _sdp),
        FuzzTarget(
            "rtsp_message",
            "rtsp.RtspConnection.next_event",
            (rtsp_errors.RemoteProtocolError,),
            _rtsp_message,
            8192,
        ),
        FuzzTarget(
            "rtsp_client",
            "rtsp.RtspClient.receive_data",
            (rtsp_errors.RemoteProtocolError,),
            _rtsp_client,
            16384,
        ),
        FuzzTarget("rtsp_url", "rtsp.url.RtspUrl.parse", (rtsp_errors.ParseError,), _rtsp_url, 512),
        FuzzTarget("rtp_packet", "rtp.RtpPacket.parse", (RtpParseError,), _rtp_packet, 2048),
        FuzzTarget("rtcp", "rtp.parse_rtcp + video feedback", (RtpParseError,), _rtcp, 2048),
        FuzzTarget("rtp_session", "rtp.RtpSession.receive_datagram", (), _rtp_session, 8192),
    ]
    targets += [
        FuzzTarget(
            name, f"rtp.depacketize {spec[0]}", (), _depacketizer(spec[0], spec[1], spec[2]), 16384
        )
        for name, spec in DEPACKETIZERS.items()
    ]
    targets.append(
        FuzzTarget("video_receiver", "rtp.VideoReceiver (VP8)", (), _video_receiver, 16384)
    )
    targets += [
        FuzzTarget("digest", "auth: challenges, choice, Authorization", (), _digest, 2048),
        FuzzTarget("vcard", "store.vcard import", (UnicodeDecodeError,), _vcard, 8192),
        FuzzTarget("config", "config TOML", (config_mod.ConfigError,), _config, 4096),
    ]
    return {t.name: t for t in targets}


TARGETS: Final = _targets()
