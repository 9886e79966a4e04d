"""The sound card going away under a call: a JACK server stopped and started again mid-call.

A Phone in this process calls an auto-answering baresip on the JACK dummy card (as
``softphone bench device`` does). Once the call is up, the JACK server is stopped (by its pid):
the phone must say the device is lost, keep the call up and keep sending RTP (silence) to
baresip. Then a JACK server of the same name starts again, and what the phone says and does
is recorded; the call is hung up and the phone stopped, and the whole thing must end promptly
(PortAudio 19.6's JACK host would otherwise hold the process for 10 minutes at exit).

Run it in a process of its own (``python -m softphone.bench.call_device_loss WORKDIR``, one
JSON object out): PortAudio cannot use JACK again in the process that lost it
(phone/device_watch.py says why).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

from softphone.bench.call_device import JACK_DEVICE, _established, _expect
from softphone.config import Config
from softphone.lab.baresip import Baresip
from softphone.lab.jack import JackServer
from softphone.lab.process import LabError
from softphone.media.device import DeviceIO, rescan_devices
from softphone.phone import events as pe
from softphone.phone.phone import Phone
from softphone.transport.resolver import StubBackend

__all__ = ["run_device_loss"]


def _notice(text: str) -> Any:
    return lambda e: isinstance(e, pe.Notice) and text in e.text


def _note(event: pe.PhoneEvent, notices: list[str]) -> str:
    """Keeps every notice's text and gives it back; "ended" for the call's end."""
    if isinstance(event, pe.Notice):
        notices.append(event.text)
        return event.text
    return "ended" if isinstance(event, pe.CallEnded) else ""


def _sent(phone: Phone, call_id: str) -> int:
    stats = phone.call_stats(call_id) or {}
    return int(str(stats.get("packets_sent", 0)))


async def _lose_device(uri: str, jack: JackServer, workdir: Path) -> dict[str, object]:
    # The phone opens the sound card itself (DeviceAudio), as it does for a user: its problems
    # reach the event stream as notices.
    phone = Phone(
        Config(codecs=("pcmu",), input_device=JACK_DEVICE, output_device=JACK_DEVICE),
        bind_host="127.0.0.1",
        sip_port=0,
        rng=random.Random(9),
        dns=StubBackend(),
    )
    await phone.start()
    result: dict[str, object] = {}
    try:
        call_id = await phone.dial(uri)
        if await _expect(phone, _established, 20.0) is None:
            raise LabError("the call to baresip was not established")
        engine = phone.call(call_id).engine
        if engine is None or not isinstance(engine.io, DeviceIO):
            raise LabError("the call is not on the JACK device")
        await asyncio.sleep(0.5)  # real audio for a moment
        jack.stop()
        stopped_at = time.monotonic()
        lost = await _expect(phone, _notice("audio device lost"), 5.0)
        result["lost_after_s"] = round(time.monotonic() - stopped_at, 3)
        result["notices"] = [lost.text] if isinstance(lost, pe.Notice) else []
        sent_at_loss = _sent(phone, call_id)
        notices: list[str] = result["notices"]  # type: ignore[assignment]
        ended = await _expect(phone, lambda e: _note(e, notices) == "ended", 2.0)
        result["ended_while_lost"] = isinstance(ended, pe.CallEnded)
        result["sent_while_lost"] = _sent(phone, call_id) - sent_at_loss
        again = JackServer(workdir / "jack-again")
        again.name = jack.name
        again.start()
        try:
            back = await _expect(phone, lambda e: "back" in _note(e, notices), 3.0)
            result["back_after_restart"] = back is not None
            result["state_after_restart"] = phone.call(call_id).state
            await phone.hangup(call_id)
            hung_up = await _expect(phone, lambda e: isinstance(e, pe.CallEnded), 10.0)
            result["hung_up"] = hung_up is not None
        finally:
            t0 = time.monotonic()
            await phone.stop()
            result["stop_s"] = round(time.monotonic() - t0, 3)
            again.stop()
    except BaseException:
        await phone.stop()
        raise
    return result


def run_device_loss(workdir: Path) -> dict[str, object]:
    """Start jackd and baresip, call, stop and restart jackd under the call; what happened."""
    jack = JackServer(workdir / "jack").start()
    os.environ.update(jack.client_env())  # read by PortAudio's JACK host API at initialise
    rescan_devices()
    bob = Baresip(workdir / "baresip", user="bob", codecs="PCMU", auto_answer=True).start()
    try:
        result = asyncio.run(_lose_device(bob.uri, jack, workdir))
        result["baresip_lines"] = len(bob.lines())
        return result
    finally:
        bob.stop()
        jack.stop()


if __name__ == "__main__":
    out = run_device_loss(Path(sys.argv[1]))
    print(json.dumps(out), flush=True)
    # sys.exit runs the exit handlers: with sounddevice's dropped (device.py), this returns.
    sys.exit(0)
