"""A sound card wakes the audio pump after each block (its wake-up pipe, read by the event loop):
the pump runs when a block has gone rather than on a 5 ms timer, and the engine stops reading
a device it no longer uses."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import numpy as np
import pytest

from softphone.media.device import AudioStats, NullIO
from softphone.phone.audio import WOKEN_TICK_S, AudioEngine

BLOCK = 480


class PipeIO:
    """A device whose callback is played by the test: a byte on the pipe is a block gone."""

    sample_rate = 48000

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.read_fd, False)
        self.blocks_gone = 0
        self.written: list[int] = []
        self.reads = 0

    def start(self) -> None:
        pass

    def close(self) -> None:
        pass

    def fileno(self) -> int:
        return self.read_fd

    def callback(self) -> None:
        self.blocks_gone += 1
        os.write(self.write_fd, b"x")

    def frames_wanted(self, now: float) -> int:
        return BLOCK * self.blocks_gone - sum(self.written)

    def write(self, pcm: np.ndarray) -> None:
        self.written.append(len(pcm))

    def read(self) -> np.ndarray:
        self.reads += 1
        try:
            while os.read(self.read_fd, 64):
                pass
        except BlockingIOError:
            pass
        return np.zeros(0, dtype=np.float32)

    def wait(self, timeout_s: float) -> bool:
        self.read()
        return True

    @property
    def stats(self) -> AudioStats:
        return AudioStats()


@pytest.fixture
def device() -> Iterator[PipeIO]:
    io = PipeIO()
    yield io
    os.close(io.read_fd)
    os.close(io.write_fd)


async def until(condition: object, what: str) -> None:
    """Wait on ``condition()`` (bounded: 2 s of loop time, in loop turns)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 2.0
    while not condition():  # type: ignore[operator]
        if loop.time() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0)


async def within_turns(condition: object, what: str, turns: int = 20) -> None:
    """``condition()`` holds within a few turns of the loop: far sooner than any timer here."""
    for _ in range(turns):
        if condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0)
    raise AssertionError(f"not within {turns} turns of the loop: {what}")


async def next_period(engine: AudioEngine) -> float:
    """The timer's next period: the time between its next two ticks, as scheduled."""
    first = engine._handle
    assert first is not None
    await until(lambda: engine._handle is not first, "the timer ticked")
    second = engine._handle
    assert second is not None
    return second.when() - first.when()


async def test_each_block_the_device_plays_is_refilled_when_it_says_so(device: PipeIO) -> None:
    engine = AudioEngine(device)  # type: ignore[arg-type]
    engine.start()
    try:
        for n in range(1, 6):
            device.callback()
            await within_turns(lambda n=n: sum(device.written) == n * BLOCK, f"block {n} refilled")
        assert device.written[-4:] == [BLOCK] * 4  # one block per wake-up, as the device asked
        # The timer behind it only looks after a device that stops calling back.
        assert await next_period(engine) == pytest.approx(WOKEN_TICK_S, abs=0.02)
    finally:
        engine.close()


async def test_a_replaced_device_is_no_longer_read_and_the_timer_paces_the_stand_in(
    device: PipeIO,
) -> None:
    loop = asyncio.get_running_loop()
    engine = AudioEngine(device)  # type: ignore[arg-type]
    engine.start()
    try:
        engine.replace_io(NullIO(48000))
        assert not loop.remove_reader(device.read_fd)  # the engine let it go already
        reads = device.reads
        device.callback()
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert device.reads == reads
        await next_period(engine)  # the tick scheduled before the swap
        assert await next_period(engine) < WOKEN_TICK_S / 2  # the 5 ms timer again
        engine.replace_io(device)  # the card is back: it wakes the pump again
        written = sum(device.written)
        device.callback()
        await within_turns(lambda: sum(device.written) > written, "the card refilled again")
    finally:
        engine.close()
    assert not loop.remove_reader(device.read_fd)  # closing let go of the pipe


class NetworkedPort:
    """A call's port whose RTP socket the pump reads (phone/audio.py NetworkPort)."""

    def __init__(self, *, fail_poll: bool = False) -> None:
        self.calls: list[str] = []
        self.polled: list[bool] = []
        self.fail_poll = fail_poll

    def read_by_pump(self, polled: bool) -> None:
        self.polled.append(polled)

    def poll_network(self) -> None:
        self.calls.append("poll")
        if self.fail_poll:
            raise OSError("socket gone")

    def render(self, samples: int, now: float) -> np.ndarray:
        self.calls.append("render")
        return np.zeros(samples, dtype=np.float32)

    def capture(self, pcm: np.ndarray, now: float) -> None:
        self.calls.append("capture")


async def test_the_pump_reads_a_calls_socket_before_it_renders_while_the_port_is_attached() -> None:
    engine = AudioEngine(NullIO(48000), tick_s=0.02)
    port, broken = NetworkedPort(), NetworkedPort(fail_poll=True)
    try:
        engine.attach(broken)
        engine.attach(port)
        assert port.polled == [True] and broken.polled == [True]  # the loop stops reading them
        now = asyncio.get_running_loop().time()
        engine.pump(now)  # starts the headless clock
        port.calls.clear()
        engine.pump(now + 0.04)
        # What came in is in the jitter buffer before the speaker's block is pulled; a socket
        # that fails costs its own call, not the others'.
        assert port.calls[:2] == ["poll", "render"] and "capture" in port.calls
        assert any("socket gone" in error for error in engine.errors)
        engine.detach(port)
        assert port.polled == [True, False]
        port.calls.clear()
        engine.pump(now + 0.08)
        assert port.calls == []
    finally:
        engine.close()
    assert broken.polled == [True, False]  # a closed engine hands the socket back to the loop
