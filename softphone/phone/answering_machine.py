"""The answering machine: it answers a call nobody took (phone/forwarding.py decides when),
plays the greeting, then records the caller into the voicemail directory for at most the
account's ``voicemail_max``, and hangs up.

The greeting is the call's voice (audio.py ``greeting_engine``: the WAV, then silence), so the
sound card is left alone. The recording is the call's own (media/wav.py StereoRecorder: our side,
silent, on the left; the caller on the right), begun when the greeting has played; its WAV
header is kept valid after every write, so a message survives the process being killed up to
its last write. :class:`~softphone.phone.events.VoicemailStarted` and
:class:`~softphone.phone.events.VoicemailRecorded` tell front ends, whose
:class:`~softphone.phone.voicemail_log.VoicemailLog` keeps the message in the store.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path
from typing import Final

from softphone.config import Config, default_data_dir
from softphone.config_forwarding import Forwarding
from softphone.files import PRIVATE_DIR_MODE, private_dir
from softphone.media.wav import WavError, read_wav
from softphone.phone import events as pe
from softphone.phone.call_info import CallInfo
from softphone.phone.errors import PhoneError
from softphone.phone.tasks import TaskSet
from softphone.store import wav_seconds

__all__ = ["DEFAULT_GREETING", "AnsweringMachine", "voicemail_dir"]

logger = logging.getLogger(__name__)

DEFAULT_GREETING: Final = Path(str(resources.files("softphone") / "assets" / "greeting.wav"))
POLL_S: Final = 0.05  # how often a waiting machine looks whether the call has ended
GREETING_MARGIN_S: Final = 0.1  # after the greeting, before recording: its last packets leave


def voicemail_dir(config: Config) -> Path:
    """Where messages go, made before the first one: by default in the data directory, both
    0700 (as recordings.py makes the recordings directory). Raises PhoneError."""
    directory = config.voicemail_dir or default_data_dir() / "voicemail"
    try:
        if config.voicemail_dir is None:
            private_dir(directory.parent)
            private_dir(directory)
        else:
            directory.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    except OSError as exc:
        raise PhoneError(f"cannot keep voicemail in {directory}: {exc.strerror or exc}") from None
    return directory


class AnsweringMachine:
    """Takes calls for the phone: ``answer`` and ``hangup`` are the phone's own actions."""

    def __init__(
        self,
        config: Config,
        *,
        answer: Callable[[str], Awaitable[None]],
        hangup: Callable[[str], Awaitable[None]],
        emit: Callable[[pe.PhoneEvent], None],
        tasks: TaskSet,
    ) -> None:
        self._config = config
        self._answer = answer
        self._hangup = hangup
        self._emit = emit
        self._tasks = tasks

    def take(self, info: CallInfo, settings: Forwarding) -> None:
        """Answer ``info`` (ringing) and record a message, in a task of the phone's."""
        self._tasks.spawn(self._run(info, settings), name=f"voicemail-{info.call_id}")

    def greeting(self, settings: Forwarding) -> Path:
        """The account's greeting when it is a WAV we can play, else the default chime."""
        chosen = settings.voicemail_greeting
        if chosen is None:
            return DEFAULT_GREETING
        try:
            read_wav(chosen)
        except (WavError, OSError) as exc:
            self._emit(
                pe.Notice(level="warning", text=f"voicemail greeting: {exc}; using the chime")
            )
            return DEFAULT_GREETING
        return chosen

    async def _run(self, info: CallInfo, settings: Forwarding) -> None:
        info.greeting = self.greeting(settings)
        try:
            directory = await asyncio.to_thread(voicemail_dir, self._config)
            await self._answer(info.call_id)
        except PhoneError as exc:
            self._emit(pe.Notice(level="error", text=f"the answering machine could not: {exc}"))
            return
        if await self._ended(info, wav_seconds(info.greeting) + GREETING_MARGIN_S):
            return  # the caller hung up during the greeting: no message
        if info.audio is None:
            self._emit(pe.Notice(level="error", text="voicemail: the call has no audio to record"))
            await self._hang_up(info)
            return
        path = directory / _file_name(info.remote)
        if path.exists():  # a second message from the same caller within the second
            path = path.with_stem(f"{path.stem}-{abs(hash(info.call_id)) % 10_000:04d}")
        try:
            info.audio.start_recording(path)
        except OSError as exc:
            self._emit(pe.Notice(level="error", text=f"voicemail: cannot record to {path}: {exc}"))
            await self._hang_up(info)
            return
        info.recording_path = path
        self._emit(
            pe.VoicemailStarted(
                call_id=info.call_id,
                account=info.account,
                caller=info.remote,
                caller_name=info.display_name,
                path=str(path),
                received_at=time.time(),
            )
        )
        if not await self._ended(info, settings.voicemail_max_s):
            await self._hang_up(info)  # the message is long enough
            await self._ended(info, 5.0)
        if info.audio is not None:  # the call is over; should its audio still be open
            info.audio.stop_recording()
        duration = await asyncio.to_thread(wav_seconds, path)
        self._emit(pe.VoicemailRecorded(call_id=info.call_id, path=str(path), duration_s=duration))

    async def _hang_up(self, info: CallInfo) -> None:
        try:
            await self._hangup(info.call_id)
        except PhoneError as exc:
            logger.info("voicemail: hanging up %s: %s", info.call_id, exc)

    @staticmethod
    async def _ended(info: CallInfo, within_s: float) -> bool:
        """Whether the call ends within ``within_s`` (waited for, at most that long)."""
        loop = asyncio.get_running_loop()
        until = loop.time() + within_s
        while info.state != "ended":
            left = until - loop.time()
            if left <= 0:
                return False
            await asyncio.sleep(min(POLL_S, left))
        return True


def _file_name(remote: str) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    who = re.sub(r"[^A-Za-z0-9._@+-]+", "_", remote.strip("<>").removeprefix("sip:"))[:60]
    return f"{stamp}-{who or 'caller'}.wav"
