"""Shared by the phone tests: start a Phone on 127.0.0.1, find its port, wait for an event."""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import Callable

from softphone.config import Config
from softphone.phone import events as pe
from softphone.phone.audio import AudioProvider, NullAudio
from softphone.phone.phone import Phone
from softphone.transport.resolver import StubBackend


async def started(
    config: Config | None = None,
    *,
    audio: AudioProvider | None = None,
    auto_answer: bool = False,
    seed: str = "",
) -> Phone:
    """A started Phone, peer-to-peer (no registrar), silent unless ``audio`` says otherwise."""
    phone = Phone(
        config or Config(),
        bind_host="127.0.0.1",
        sip_port=0,
        rng=random.Random(seed),
        dns=StubBackend(),
        auto_answer=auto_answer,
        audio=audio or NullAudio(),
    )
    await phone.start()
    return phone


def port_of(phone: Phone) -> int:
    events = []
    while (event := phone.next_event_nowait()) is not None:
        events.append(event)
    return next(e.port for e in events if isinstance(e, pe.Listening) and e.transport == "udp")


async def expect(
    phone: Phone, predicate: Callable[[pe.PhoneEvent], bool], timeout_s: float = 10.0
) -> pe.PhoneEvent:
    """The first event matching ``predicate`` (others are passed over), within ``timeout_s``."""
    async with asyncio.timeout(timeout_s):
        while True:
            event = await phone.next_event()
            if predicate(event):
                return event


def free_port(host: str = "127.0.0.1") -> int:
    """A port free on ``host`` for both UDP and TCP now (the phone binds both on one port), for
    a phone whose address must be known before it starts (its account's URI names it)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((host, 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((host, port))
                except OSError:
                    continue
                return port


Predicate = Callable[[pe.PhoneEvent], bool]
SEEN_STEP_S = 10.0


class Seen:
    """Every event of one phone, kept, so that a wait can look at what came before it too."""

    def __init__(self, phone: Phone, step_s: float = SEEN_STEP_S) -> None:
        self.phone = phone
        self.step_s = step_s
        self.events: list[pe.PhoneEvent] = []

    async def until(self, predicate: Predicate, what: str) -> pe.PhoneEvent:
        """The first event (kept or new) matching ``predicate``; ``what`` names the wait."""
        index = 0
        try:
            async with asyncio.timeout(self.step_s):
                while True:
                    while index < len(self.events):
                        event = self.events[index]
                        index += 1
                        if predicate(event):
                            return event
                    self.events.append(await self.phone.next_event())
        except TimeoutError:
            raise AssertionError(f"no event for: {what}; saw {self.events}") from None


def state(call_id: str, name: str) -> Predicate:
    return lambda e: isinstance(e, pe.CallStateChanged) and e.call_id == call_id and e.state == name


def ended(call_id: str) -> Predicate:
    return lambda e: isinstance(e, pe.CallEnded) and e.call_id == call_id
