"""Video calls between the phone and baresip 1.0 (modules vp8 or vp9, fakevideo, snapshot), on
127.0.0.1 without a registrar, in both directions:

- our side: the pictures baresip's fakevideo sends are decoded (frame counts and size in the
  ``video_*`` stats);
- baresip's side: its ``snapshot`` module saves the next picture it decoded from us as a PNG,
  and the frame counter our test pattern draws is read back from it, twice, going up: baresip
  decodes our moving picture.

And ``softphone dial --video --json``: the ``call_ended`` line carries the video statistics;
lip sync turns on from baresip's sender reports.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import av
import pytest
from cli_support import make_env
from lab_support import dump, peers_required
from phone_support import expect, free_port, port_of
from video_call_support import FRAMES, STEP_S, baresip_config, both_ways, received, stat, until

from softphone import lab
from softphone.config import Account, Config, MediaEncryptionName
from softphone.phone import events as pe
from softphone.phone.audio import NullAudio
from softphone.phone.phone import Phone
from softphone.phone.video import VideoSettings
from softphone.rtp.lipsync import MAX_HOLD_S
from softphone.sip.uri import SipUri
from softphone.transport.resolver import StubBackend

pytestmark = pytest.mark.interop


@pytest.fixture
def bob(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[lab.Baresip]:
    codec, auto_answer, *encryption = request.param
    phone = lab.Baresip(
        tmp_path / "bob",
        codecs="PCMU",
        extra_config=baresip_config(codec),
        auto_answer=auto_answer,
        mediaenc=encryption[0] if encryption else None,
    )
    with peers_required():
        phone.start()
    try:
        yield phone
    except BaseException:
        dump(f"baresip ({codec})", phone.lines())
        raise
    finally:
        phone.stop()


@pytest.fixture
async def ours(tmp_path: Path) -> AsyncIterator[Callable[..., Phone]]:
    made: list[Phone] = []

    async def start(
        *, auto_answer: bool = False, encryption: MediaEncryptionName | None = None
    ) -> Phone:
        accounts: tuple[Account, ...] = ()
        if encryption is not None:
            uri = SipUri(user="softphone", host="127.0.0.1")
            accounts = (Account(name="a", uri=uri, media_encryption=encryption),)
        phone = Phone(
            Config(accounts=accounts, codecs=("pcmu",)),
            bind_host="127.0.0.1",
            sip_port=0,
            rng=random.Random(7),
            dns=StubBackend(),
            auto_answer=auto_answer,
            audio=NullAudio(),
            video=VideoSettings(source="pattern", offer=True),
            data_dir=tmp_path / "data",
        )
        await phone.start()
        made.append(phone)
        return phone

    yield start  # type: ignore[misc]
    for phone in made:
        await phone.stop()


@pytest.mark.parametrize("bob", [("vp8", True), ("vp9", True)], indirect=True, ids=["vp8", "vp9"])
async def test_we_call_baresip_with_video(
    bob: lab.Baresip, ours: Callable[..., Phone], tmp_path: Path
) -> None:
    codec = bob.extra_config.split(".so", 1)[0].split()[-1]
    phone = await ours()  # type: ignore[misc]
    call_id = await phone.dial(bob.uri)
    await expect(
        phone, lambda e: isinstance(e, pe.CallStateChanged) and e.state == "established", STEP_S
    )
    await both_ways(phone, call_id, bob, codec, tmp_path)
    await phone.hangup(call_id)
    ended = await expect(phone, lambda e: isinstance(e, pe.CallEnded), STEP_S)
    assert isinstance(ended, pe.CallEnded) and ended.stats is not None
    assert int(ended.stats["video_frames_received"]) >= FRAMES


@pytest.mark.parametrize("bob", [("vp8", False), ("vp9", False)], indirect=True, ids=["vp8", "vp9"])
async def test_baresip_calls_us_with_video(
    bob: lab.Baresip, ours: Callable[..., Phone], tmp_path: Path
) -> None:
    codec = bob.extra_config.split(".so", 1)[0].split()[-1]
    phone = await ours(auto_answer=True)  # type: ignore[misc]
    bob.dial(f"sip:softphone@127.0.0.1:{port_of(phone)}")
    await expect(
        phone, lambda e: isinstance(e, pe.CallStateChanged) and e.state == "established", STEP_S
    )
    call_id = next(c.call_id for c in phone.calls if c.state == "established")
    await both_ways(phone, call_id, bob, codec, tmp_path)


@pytest.mark.parametrize("bob", [("vp8", True)], indirect=True, ids=["vp8"])
def test_dial_video_json_reports_video_stats(bob: lab.Baresip, tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "softphone", "dial", bob.uri, "--video", "--no-audio"]
    # 4 s: a loaded machine's encoder skips pictures (13 of 15 sent in 2 s was seen).
    argv += ["--bind", "127.0.0.1", "--sip-port", "0", "--duration", "4", "--json"]
    proc = subprocess.run(
        argv, env=make_env(tmp_path), capture_output=True, text=True, timeout=30, check=False
    )
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    ended = next(e for e in events if e.get("event") == "call_ended")
    stats = ended["stats"]
    assert stats["video_codec"] == "VP8"
    assert stats["video_frames_received"] >= FRAMES and stats["video_frames_sent"] >= FRAMES
    assert (stats["video_width"], stats["video_height"]) == (320, 240)
    assert stats["video_fps"] > 5


@pytest.mark.parametrize("bob", [("vp8", False)], indirect=True, ids=["vp8"])
def test_listen_video_answers_with_video_and_records_it(bob: lab.Baresip, tmp_path: Path) -> None:
    port = free_port()
    out = tmp_path / "in.mkv"
    argv = [sys.executable, "-m", "softphone", "listen", "--auto-answer", "--video", "--no-audio"]
    argv += ["--bind", "127.0.0.1", "--sip-port", str(port), "--duration", "4", "--json"]
    argv += ["--video-record", str(out)]
    proc = subprocess.Popen(
        argv, env=make_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # bounded by --duration: listen exits on its own
            if '"listening"' in line and '"udp"' in line:
                break
        bob.dial(f"sip:softphone@127.0.0.1:{port}")
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr
    events = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    stats = next(e for e in events if e.get("event") == "call_ended")["stats"]
    assert stats["video_codec"] == "VP8" and stats["video_frames_sent"] >= FRAMES
    assert stats["video_frames_received"] >= FRAMES
    with av.open(str(out)) as container:
        frames = [(f.width, f.height) for f in container.decode(video=0)]
    assert len(frames) >= FRAMES and set(frames) == {(320, 240)}  # baresip's fakevideo


@pytest.mark.parametrize(
    ("bob", "encryption", "method"),
    [
        (("vp8", True, "srtp-mand"), "srtp", "sdes"),
        (("vp8", True, "dtls_srtp"), "dtls-srtp", "dtls-srtp"),
    ],
    indirect=["bob"],
    ids=["sdes", "dtls-srtp"],
)
async def test_we_call_baresip_with_encrypted_video(
    bob: lab.Baresip,
    ours: Callable[..., Phone],
    tmp_path: Path,
    encryption: MediaEncryptionName,
    method: str,
) -> None:
    """baresip's srtp (RTP/SAVP, SDES) and dtls_srtp (a handshake per stream) protect its video
    too: each side still decodes the other's."""
    phone = await ours(encryption=encryption)  # type: ignore[misc]
    call_id = await phone.dial(bob.uri)
    await expect(
        phone, lambda e: isinstance(e, pe.CallStateChanged) and e.state == "established", STEP_S
    )
    await both_ways(phone, call_id, bob, "vp8", tmp_path)
    assert stat(phone, call_id, "video_encryption") == method


@pytest.mark.parametrize("bob", [("vp8", True)], indirect=True, ids=["vp8"])
async def test_lip_sync_becomes_active_with_baresips_sender_reports(
    bob: lab.Baresip, ours: Callable[..., Phone]
) -> None:
    """baresip sends SRs for its audio and its video (one CNAME): our pictures are then timed
    to its audio (rtp/lipsync.py), held no longer than the bound."""
    phone = await ours()  # type: ignore[misc]
    call_id = await phone.dial(bob.uri)
    await expect(
        phone, lambda e: isinstance(e, pe.CallStateChanged) and e.state == "established", STEP_S
    )
    holds: list[float] = []

    def synced() -> bool:
        if stat(phone, call_id, "video_sync") != "active":
            return False
        holds.append(float(stat(phone, call_id, "video_sync_ms")))  # type: ignore[arg-type]
        return len(holds) >= 50  # a second of pictures timed to the audio

    # RFC 3550 §6.2: baresip reports every 5 s or so; both streams' SRs in at most ~2 intervals.
    await until(synced, 3 * STEP_S)
    assert all(0.0 <= hold <= MAX_HOLD_S * 1000 for hold in holds), holds
    received_before = received(phone, call_id)
    await until(lambda: received(phone, call_id) >= received_before + FRAMES)  # still moving
    await phone.hangup(call_id)
