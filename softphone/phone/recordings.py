"""Call recordings: where they go, what they are called, turning one on and off.

A recording is a stereo WAV (local left, remote right), and the video of a video call beside it
in Matroska (phone/video.py), named by the time it started and the party, in the recordings directory: by default under the data directory, which also holds the
call history, so both are made (or tightened to) 0700 before the first recording.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

from softphone.config import Config, default_data_dir
from softphone.files import PRIVATE_DIR_MODE, private_dir
from softphone.phone import events as pe
from softphone.phone.call_info import CallInfo
from softphone.phone.errors import PhoneError
from softphone.phone.video import CallVideo

__all__ = ["new_recording_path", "record_call", "recordings_dir"]


def recordings_dir(config: Config) -> Path:
    """Where calls are recorded, made before the first recording: by default in the data
    directory, both 0700 (made or tightened; the call history is there too). A directory of the
    config is the user's: made 0700 when missing, else left as it is. Raises PhoneError."""
    directory = config.recordings_dir or default_data_dir() / "recordings"
    try:
        if config.recordings_dir is None:
            private_dir(directory.parent)
            private_dir(directory)
        else:
            directory.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    except OSError as exc:
        raise PhoneError(f"cannot record to {directory}: {exc.strerror or exc}") from None
    return directory


def new_recording_path(config: Config, remote: str) -> Path:
    """A file for a recording starting now with ``remote`` (its URI made safe for a name)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    who = re.sub(r"[^A-Za-z0-9._@+-]+", "_", remote.strip("<>").removeprefix("sip:"))[:60]
    return recordings_dir(config) / f"{stamp}-{who or 'call'}.wav"


def record_call(
    info: CallInfo,
    on: bool,
    config: Config,
    emit: Callable[[pe.PhoneEvent], None],
    video: CallVideo | None = None,
) -> Path | None:
    """Start (or stop) recording the call; returns the WAV's path. ``video``: the call's
    video goes to Matroska beside it (the same name, ``.mkv``). Raises PhoneError."""
    path = _record_audio(info, on, config, emit)
    if video is not None:
        video.record(info, path.with_suffix(".mkv") if on and path is not None else None)
    return path


def _record_audio(
    info: CallInfo, on: bool, config: Config, emit: Callable[[pe.PhoneEvent], None]
) -> Path | None:
    if info.audio is None:
        raise PhoneError("the call has no audio to record yet")
    if not on:
        was_recording = info.audio.recording
        path = info.audio.stop_recording()
        if was_recording:
            emit(pe.RecordingChanged(call_id=info.call_id, path=None))
        return path
    if info.audio.recording:
        return info.audio.recording_path
    path = new_recording_path(config, info.remote)
    try:
        info.audio.start_recording(path)
    except OSError as exc:
        raise PhoneError(f"cannot record to {path}: {exc.strerror or exc}") from None
    info.recording_path = path
    emit(pe.RecordingChanged(call_id=info.call_id, path=str(path)))
    return path
