"""One call's audio when the far end's source changes mid-call: a new SSRC (a re-INVITE, a
transfer, a PBX switching to a prompt) is a new timeline for the jitter buffer, so its audio
plays at once instead of after the old timeline catches up with it."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest
from call_media_support import PEER, StandInEndpoint
from call_media_support import make_call as make_pcmu_call

from softphone.media.codecs.g711 import linear_to_ulaw
from softphone.phone.media import CallMedia
from softphone.rtp.packet import RtpPacket
from softphone.sdp.negotiation import NegotiatedCodec

FRAME = 160  # 20 ms of PCMU


def tone_packet(ssrc: int, seq: int, ts: int, *, loud: bool) -> bytes:
    # A tone, G.711 mu-law coded (RFC 3551 §4.5.14): loud, or faint.
    tone = ((16000 if loud else 30) * np.sin(np.arange(FRAME) * 0.3)).astype(np.int16)
    payload = linear_to_ulaw(tone).tobytes()
    return bytes(RtpPacket(payload_type=0, sequence=seq, timestamp=ts, ssrc=ssrc, payload=payload))


def make_call() -> tuple[CallMedia, StandInEndpoint]:
    return make_pcmu_call(NegotiatedCodec(0, "PCMU", 8000, 1, {}), engine_rate=8000)


def loudest_after_the_switch(packets: list[bytes]) -> float:
    """Deliver one packet every 20 ms (the switch at the 100th), render 20 ms each time, and
    return the peak heard in the 300 ms after the switch."""
    call, endpoint = make_call()
    deliver = endpoint.timed_sink
    assert callable(deliver)
    peak, now = 0.0, 0.0
    for i, data in enumerate(packets):
        now = i * 0.02
        deliver(data, PEER, False, now)
        out = call.render(FRAME, now)
        if 100 <= i < 115:
            peak = max(peak, float(np.abs(out).max()))
    call.close(now)
    return peak


async def test_a_new_ssrc_mid_call_plays_at_once() -> None:
    # another source, loud, whose numbers follow on but whose clock reads 2 s ahead
    packets = [tone_packet(0x1111, 5000 + i, 80_000 + i * FRAME, loud=False) for i in range(100)]
    packets += [
        tone_packet(0x2222, 5100 + j, 80_000 + (j + 200) * FRAME, loud=True) for j in range(50)
    ]
    assert loudest_after_the_switch(packets) > 0.1  # heard at once, not 2 s later


async def test_a_stream_restarting_on_the_same_ssrc_plays_at_once() -> None:
    # a PBX replaying a prompt: sequence numbers rewind to ones played before, timestamps too,
    # the SSRC stays
    packets = [tone_packet(0x1111, 5000 + i, 80_000 + i * FRAME, loud=False) for i in range(100)]
    packets += [tone_packet(0x1111, 5020 + j, 40_000 + j * FRAME, loud=True) for j in range(50)]
    assert loudest_after_the_switch(packets) > 0.1


async def test_sending_keeps_one_timer_while_its_deadline_stands(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Every packet sent asks for the RTCP deadline again; while it has not moved, the timer
    # already set must stay (a new handle per packet filled the loop's heap with cancelled ones).
    call, endpoint = make_call()
    loop = asyncio.get_running_loop()
    armed: list[float] = []
    real_call_at = loop.call_at

    def counting_call_at(when: float, callback: Any, *args: Any) -> asyncio.TimerHandle:
        armed.append(when)
        return real_call_at(when, callback, *args)

    monkeypatch.setattr(loop, "call_at", counting_call_at)
    silence = np.zeros(FRAME, dtype=np.float32)
    for i in range(50):  # one second of frames, before the first RTCP report is due
        call.capture(silence, loop.time() + i * 0.02)
    assert len(endpoint.sent) == 50
    call.close(loop.time())
    assert len(set(armed)) == len(armed) <= 2
