"""Audio back ends: null/file devices paced by `now`, the callback exchange, device selection,
a missing PortAudio, and the real PortAudio path against JACK's paced dummy driver."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from softphone.media import device
from softphone.media.device import (
    PORTAUDIO_MISSING,
    AudioDeviceError,
    AudioIO,
    DeviceInfo,
    FileIO,
    NullIO,
    StreamExchange,
    find_device,
    list_devices,
    open_device,
    rescan_devices,
)
from softphone.media.tones import ToneGenerator, steady_tone
from softphone.media.wav import WavWriter

NO_FLAGS = SimpleNamespace(
    input_underflow=False, input_overflow=False, output_underflow=False, output_overflow=False
)


def flags(**set_: bool) -> SimpleNamespace:
    return SimpleNamespace(**{**vars(NO_FLAGS), **set_})


# --- NullIO / FileIO --------------------------------------------------------------------------


def test_null_io_is_paced_by_now_and_captures_silence_at_the_same_pace() -> None:
    io: AudioIO = NullIO(8000)
    io.start()
    assert io.frames_wanted(100.0) == 0  # the clock starts here
    total_written = 0
    now = 100.0
    for step in range(50):  # a pump that runs every 20 ms
        now = 100.0 + 0.02 * (step + 1)
        wanted = io.frames_wanted(now)
        assert wanted == pytest.approx(160, abs=1)
        io.write(np.zeros(wanted, dtype=np.float32))
        total_written += wanted
        assert io.read().shape == (wanted,)
    assert total_written == 8000
    stats = io.stats
    assert (stats.frames_played, stats.frames_captured) == (8000, 8000)
    assert (stats.underruns, stats.overruns) == (0, 0)
    io.close()


def test_null_io_counts_a_late_pump_and_drops_what_is_written_too_far_ahead() -> None:
    io = NullIO(8000, buffer_ms=100)
    io.frames_wanted(0.0)
    assert io.frames_wanted(0.5) == 4000  # the pump slept 500 ms: all of it is still wanted
    assert io.stats.underruns == 1
    io.write(np.zeros(4000 + 800 + 50, dtype=np.float32))  # 100 ms ahead is fine, 50 more is not
    assert io.stats.overruns == 1 and io.stats.dropped_samples == 50
    assert io.frames_wanted(0.5) == 0


def test_file_io_captures_the_wav_resampled_once_then_silence(tmp_path: Path) -> None:
    path = tmp_path / "in.wav"
    t = np.arange(44100) / 44100
    tone = 0.5 * np.sin(2 * np.pi * 500 * t)
    with WavWriter(path, 44100, channels=2) as w:  # stereo 44.1 kHz, a 1 s tone
        w.write(np.stack((tone, tone), axis=1))
    io = FileIO(path, 16000)
    assert io.source_samples == 16000
    io.frames_wanted(0.0)
    captured = []
    for step in range(1, 76):  # 1.5 s in 20 ms steps
        io.frames_wanted(step * 0.02)
        captured.append(io.read())
    audio = np.concatenate(captured)
    assert len(audio) == 24000 and io.capture_finished
    expected = 0.5 * np.sin(2 * np.pi * 500 * np.arange(16000) / 16000)
    assert np.max(np.abs(audio[100:15900] - expected[100:15900])) < 0.01
    assert np.max(np.abs(audio[16000:])) == 0.0


def test_file_io_without_a_file_is_silent_and_a_bad_file_is_an_audio_device_error(
    tmp_path: Path,
) -> None:
    io = FileIO(None, 8000)
    io.frames_wanted(0.0)
    io.frames_wanted(0.1)
    assert io.capture_finished and not io.read().any()
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not audio")
    with pytest.raises(AudioDeviceError, match=r"cannot play .*junk.wav: .*not a WAV file"):
        FileIO(junk, 8000)


# --- the callback exchange ----------------------------------------------------------------------


def test_duplex_callback_moves_audio_both_ways_and_counts_xruns() -> None:
    ex = StreamExchange(speaker_capacity=2000, microphone_capacity=2000)
    ex.speaker.write(np.full(700, 0.25, dtype=np.float32))
    indata = np.full((480, 1), -0.5, dtype=np.float32)
    outdata = np.empty((480, 1), dtype=np.float32)
    ex.duplex_callback(indata, outdata, 480, None, NO_FLAGS)
    assert np.all(outdata == 0.25)
    ex.duplex_callback(indata, outdata, 480, None, flags(input_overflow=True))
    assert np.all(outdata[:220] == 0.25) and np.all(outdata[220:] == 0.0)  # ran dry: zeros
    mic = ex.microphone.read_available()
    assert mic.shape == (960,) and np.all(mic == -0.5)
    stats = ex.stats()
    assert (stats.underruns, stats.overruns) == (1, 1)
    assert (stats.frames_played, stats.frames_captured, stats.missing_samples) == (960, 960, 260)


def test_callbacks_allocate_nothing_and_never_raise() -> None:
    block = 4800
    r, w = os.pipe()
    os.set_blocking(w, False)
    try:
        ex = StreamExchange(speaker_capacity=block * 4, microphone_capacity=block * 4, wake_fd=w)
        indata = np.zeros((block, 1), dtype=np.float32)
        outdata = np.zeros((block, 1), dtype=np.float32)
        src = np.zeros(block, dtype=np.float32)
        for _ in range(3):  # warm up
            ex.speaker.write(src)
            ex.duplex_callback(indata, outdata, block, None, NO_FLAGS)
            ex.microphone.read_into(src)
        underflow = flags(output_underflow=True)
        tracemalloc.start()
        try:
            for _ in range(100):
                ex.duplex_callback(indata, outdata, block, None, underflow)
                ex.microphone.read_into(src)  # the pump side keeps the mic ring from filling
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 2048  # one copied block would be 19 kB
        assert ex.output_underflows == 100
        assert len(os.read(r, 4096)) == ex.callbacks  # one wake-up byte per callback
        # A broken buffer (wrong shape) is counted and answered with silence, not raised.
        outdata[:] = 1.0
        ex.duplex_callback(np.zeros(3, dtype=np.float32), outdata, block, None, NO_FLAGS)
        assert ex.callback_errors == 1 and not outdata.any()
    finally:
        os.close(r)
        os.close(w)


# --- device selection ----------------------------------------------------------------------------


def fake_devices() -> list[DeviceInfo]:
    def info(index: int, name: str, ins: int, outs: int) -> DeviceInfo:
        return DeviceInfo(
            index=index,
            name=name,
            host_api="ALSA",
            max_input_channels=ins,
            max_output_channels=outs,
            default_samplerate=48000.0,
            is_default_input=index == 0,
            is_default_output=index == 0,
        )

    return [
        info(0, "default", 32, 32),
        info(1, "USB Headset", 1, 2),
        info(2, "USB Headset Monitor", 2, 0),
        info(3, "HDMI 1", 0, 8),
    ]


def test_find_device_by_index_or_case_insensitive_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(device, "list_devices", fake_devices)
    assert find_device(None, "input") is None
    assert find_device(3, "output") == 3
    assert find_device("2", "input") == 2
    assert find_device("hdmi", "output") == 3
    assert find_device("usb headset", "input") == 1  # an exact name wins over a longer one
    assert find_device("usb", "output") == 1  # the monitor has no output channels


def test_find_device_errors_list_the_candidates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(device, "list_devices", fake_devices)
    with pytest.raises(AudioDeviceError, match=r"no output device matches 'speaker'.*HDMI 1"):
        find_device("speaker", "output")
    with pytest.raises(AudioDeviceError, match="no input device with index 3"):
        find_device(3, "input")  # HDMI has no inputs
    with pytest.raises(AudioDeviceError, match=r"'usb' matches several input devices:.*Monitor"):
        find_device("usb", "input")


MISSING_PORTAUDIO = """
import sys
sys.path.insert(0, sys.argv[1])
import numpy as np
from softphone.media.device import AudioDeviceError, NullIO, list_devices, open_device, portaudio_available
for call in (list_devices, open_device):
    try:
        call()
    except AudioDeviceError as exc:
        print(exc)
print(portaudio_available())
io = NullIO(8000)
io.frames_wanted(0.0)
print(io.frames_wanted(0.02))
"""


def test_missing_portaudio_is_a_clear_message_and_the_rest_keeps_working(tmp_path: Path) -> None:
    # A stand-in for sounddevice on a machine without libportaudio2: it fails the same way.
    (tmp_path / "sounddevice.py").write_text('raise OSError("PortAudio library not found")\n')
    result = subprocess.run(
        [sys.executable, "-c", MISSING_PORTAUDIO, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [PORTAUDIO_MISSING] * 3 + ["160"]
    assert "libportaudio2" in PORTAUDIO_MISSING


# --- the real device path: PortAudio on JACK's dummy driver ---------------------------------------


def test_device_io_on_jack_plays_in_real_time_without_xruns(
    jack_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PortAudio reads JACK_DEFAULT_SERVER in Pa_Initialize: set it, then re-initialise."""
    monkeypatch.setenv("JACK_DEFAULT_SERVER", jack_server)
    monkeypatch.setenv("JACK_NO_START_SERVER", "1")
    rescan_devices()
    io = None
    try:
        jack = [d for d in list_devices() if d.host_api.startswith("JACK") and d.name == "system"]
        assert len(jack) == 1, list_devices()
        io = open_device(input="system", output="system")
        assert io.sample_rate == 48000 and io.block == 480
        tone = ToneGenerator(steady_tone(1000.0, level_dbfs=-20.0), io.sample_rate)
        prefill = io.frames_wanted(0.0)
        assert prefill == 720  # SPEAKER_MS: 15 ms queued for the speaker, a block and a half
        io.write(tone.next(prefill))  # prefill before the device starts pulling
        io.start()
        start = time.monotonic()
        captured = 0
        deadline = start + 10.0
        while io.stats.frames_played < 3 * io.sample_rate and time.monotonic() < deadline:
            io.wait(timeout_s=0.5)  # wakes on each device callback
            io.write(tone.next(io.frames_wanted(time.monotonic())))
            captured += len(io.read())
        elapsed = time.monotonic() - start
        stats = io.stats
    finally:
        if io is not None:
            io.close()
        monkeypatch.delenv("JACK_DEFAULT_SERVER")
        rescan_devices()  # let go of the JACK client before the server is stopped
    played_s = stats.frames_played / 48000
    print(f"JACK dummy: {played_s:.3f} s played in {elapsed:.3f} s, {stats}")  # shown with -s
    assert played_s >= 3.0
    assert played_s == pytest.approx(elapsed, rel=0.05)  # paced by the (dummy) device clock
    assert captured == pytest.approx(stats.frames_captured, abs=4 * 480)
    assert stats.frames_captured == pytest.approx(stats.frames_played, abs=2 * 480)
    # Our side (the pump keeping the speaker ring fed, the mic ring drained) must never xrun.
    ex = io.exchange
    ring_xruns = ex.speaker.underruns + ex.speaker.overruns + ex.microphone.overruns
    assert ring_xruns == 0 and stats.missing_samples == stats.dropped_samples == 0, stats
    # xruns PortAudio reports (the JACK thread itself ran late) are counted into the stats too.
    # 0 on an idle machine; a CPU-starved one (no real-time scheduling here) may see one or two.
    device_xruns = (
        ex.output_underflows + ex.input_underflows + ex.input_overflows + ex.output_overflows
    )
    assert stats.underruns + stats.overruns == ring_xruns + device_xruns
    assert device_xruns <= 2, stats


def test_open_device_with_an_unknown_name_lists_what_exists() -> None:
    if (missing := device.portaudio_available()) is not None:
        pytest.skip(missing)
    with pytest.raises(
        AudioDeviceError, match="no input device matches 'no-such-device-xyz'; input devices: "
    ):
        open_device(input="no-such-device-xyz")
