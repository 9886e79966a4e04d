"""History's play with no sound device, against a real Phone whose sound device cannot open:
the screen says why ("no sound device: ...") instead of claiming to play into nothing."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from textual.message import Message
from textual.notifications import Notify
from tui_support import until

from softphone.config import Config
from softphone.media.wav import WavWriter
from softphone.phone.audio import DeviceAudio
from softphone.phone.book import Book, CallRecord
from softphone.phone.phone import Phone
from softphone.transport.resolver import StubBackend
from softphone.tui.app import make_app
from softphone.tui.screens.history import HistoryScreen


async def test_history_play_without_a_sound_device_says_why(tmp_path: Path) -> None:
    wav = tmp_path / "rec.wav"
    writer = WavWriter(wav, 8000, channels=1)
    writer.write(np.zeros(8000, dtype=np.float32))
    writer.close()
    book = Book.open(tmp_path / "t.db")
    book.history.add(
        CallRecord(
            started_at=datetime(2026, 1, 2, 3, 4, tzinfo=UTC),
            remote_uri="sip:bob@example.test",
            direction="out",
            account="alice",
            result="answered",
            duration_s=1.0,
            recording_path=str(wav),
        )
    )
    missing = "no such sound device 7f3a"
    problems: list[str] = []
    phone = Phone(
        Config(),
        bind_host="127.0.0.1",
        sip_port=0,
        rng=random.Random(4),
        dns=StubBackend(),
        audio=DeviceAudio(missing, missing, on_problem=problems.append),
    )
    seen: list[Message] = []
    app = make_app(Config(), phone, book=book)
    try:
        async with app.run_test(size=(120, 36), message_hook=seen.append) as pilot:
            await pilot.press("escape", "y")
            await until(pilot, lambda: isinstance(app.screen, HistoryScreen), what="history")
            screen = app.screen
            assert isinstance(screen, HistoryScreen)
            await until(pilot, lambda: screen.table.row_count == 1, what="the call")
            await pilot.press("p")

            def errors() -> list[str]:
                return [
                    m.notification.message
                    for m in seen
                    if isinstance(m, Notify) and m.notification.severity == "error"
                ]

            await until(pilot, lambda: errors() != [], what="an error")
            assert errors()[0].startswith("no sound device: ")
            assert problems and screen.playing is None
    finally:
        await phone.stop()
        book.close()
