"""The jitter benchmark: trace files, the LOG.npz contract, the oracle and the fixed buffer."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import numpy as np

from softphone.bench.cli import main
from softphone.bench.oracle import fixed_buffer, oracle, stretch_oracle
from softphone.bench.traces import PROFILES, TUNING_PROFILES, UNSEEN_PROFILES, generate

SPEECH = Path(__file__).resolve().parents[1] / "data" / "audio" / "speech16k.wav"


def short_trace(path: Path) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(4)
    send = np.arange(150) * 20.0
    arrival = send + 40.0 + rng.gamma(2.0, 3.0, 150)
    arrival[[30, 31, 90]] = np.nan  # lost
    arrival[60] += 45.0  # reordered
    np.savez(path, **{"short/send_ms": send, "short/arr_ms": arrival})  # type: ignore[arg-type]
    return send, arrival


def test_traces_command_writes_every_profile_as_float64_pairs(tmp_path: Path) -> None:
    out = tmp_path / "traces.npz"
    assert (
        main(
            [
                "traces",
                "--out",
                str(out),
                "--seed",
                "3",
                "--profile",
                "clean",
                "--profile",
                "delay_spike",
            ],
            stdout=io.StringIO(),
        )
        == 0
    )
    with np.load(out) as data:
        assert sorted(data.files) == sorted(
            ["clean/send_ms", "clean/arr_ms", "delay_spike/send_ms", "delay_spike/arr_ms"]
        )
        send, arrival = data["clean/send_ms"], data["clean/arr_ms"]
        assert send.dtype == np.float64 and arrival.shape == send.shape == (3000,)
        assert np.all(np.diff(send) == 20.0)
        assert np.all(arrival - send >= 30.0)


def test_profiles_are_seeded_and_cover_the_tuning_and_unseen_kinds() -> None:
    assert set(TUNING_PROFILES) | set(UNSEEN_PROFILES) == set(PROFILES)
    assert {
        "clean",
        "wifi_jitter",
        "mobile_bursty",
        "delay_spike",
        "drift_plus_100ppm",
        "drift_minus_100ppm",
    } == set(TUNING_PROFILES) and len(UNSEEN_PROFILES) >= 3
    a = generate(7, ("mobile_bursty",))
    b = generate(7, ("mobile_bursty",))
    c = generate(8, ("mobile_bursty",))
    assert np.array_equal(a["mobile_bursty/arr_ms"], b["mobile_bursty/arr_ms"], equal_nan=True)
    assert not np.array_equal(a["mobile_bursty/arr_ms"], c["mobile_bursty/arr_ms"], equal_nan=True)
    lost = np.isnan(a["mobile_bursty/arr_ms"]).mean()
    assert 0.005 < lost < 0.06  # Gilbert-Elliott: p/(p+r) * 0.9 = 2.9 %


def test_jitter_command_writes_the_documented_log(tmp_path: Path) -> None:
    traces, log, audio = tmp_path / "t.npz", tmp_path / "log.npz", tmp_path / "out.wav"
    _, arrival = short_trace(traces)
    status = main(
        [
            "jitter",
            "--trace",
            str(traces),
            "--profile",
            "short",
            "--speech",
            str(SPEECH),
            "--codec",
            "pcmu",
            "--out",
            str(log),
            "--audio-out",
            str(audio),
        ],
        stdout=io.StringIO(),
    )
    assert status == 0
    with np.load(log) as data:
        assert sorted(data.files) == [
            "concealed_ms",
            "fec",
            "from_packet",
            "play_ms",
            "stretched_ms",
        ]
        play, from_packet, fec = data["play_ms"], data["from_packet"], data["fec"]
        assert play.dtype == np.float64 and play.shape == (150,)
        assert from_packet.dtype == np.bool_ and from_packet.shape == (150,)
        assert fec.dtype == np.bool_ and fec.shape == (150,)
        assert data["concealed_ms"].shape == () and data["stretched_ms"].shape == ()
        concealed = float(data["concealed_ms"])
        stretched = float(data["stretched_ms"])
    arrived = ~np.isnan(arrival)
    # Every frame was played (lost ones concealed), never before its packet could be there.
    assert not np.any(np.isnan(play))
    assert np.all(play[from_packet] >= arrival[from_packet] - 1e-6)
    assert not np.any(from_packet[~arrived]) and from_packet[arrived].mean() > 0.97
    assert np.all(np.diff(play) > 0)  # frames play in order
    assert concealed >= 40.0  # three lost frames, at least two whole
    assert 0.0 < stretched < 0.05 * 150 * 20  # real time-stretching ran, within 5 %
    with wave.open(str(audio), "rb") as wav:
        assert wav.getframerate() == 8000 and wav.getnchannels() == 1
        assert wav.getnframes() >= 150 * 160


def test_jitter_command_rejects_an_unknown_profile(tmp_path: Path) -> None:
    traces = tmp_path / "t.npz"
    short_trace(traces)
    status = main(
        [
            "jitter",
            "--trace",
            str(traces),
            "--profile",
            "nope",
            "--speech",
            str(SPEECH),
            "--out",
            str(tmp_path / "log.npz"),
        ],
        stdout=io.StringIO(),
    )
    assert status == 2


def test_oracle_follows_a_constant_delay_and_sacrifices_a_rare_spike() -> None:
    send = np.arange(1000) * 20.0
    arrival = send + 50.0
    assert abs(oracle(send, arrival).mean_ms - 50.0) < 1e-9
    spiked = arrival.copy()
    spiked[500:505] += 300.0  # 0.5 % of packets: cheaper to lose than to wait for
    result = oracle(send, spiked)
    assert result.late_fraction <= 0.01 and abs(result.mean_ms - 50.0) < 0.5
    # The path never moves faster than 5 ms per packet.
    assert np.max(np.abs(np.diff(result.offsets_ms))) <= 5.0 + 1e-9
    spiked[200:230] += 100.0  # 3 % more: now the oracle must ramp up to cover most of it
    ramped = oracle(send, spiked)
    assert ramped.late_fraction <= 0.01 and ramped.mean_ms > 52.0


def test_fixed_buffer_is_60_ms_over_the_first_packet() -> None:
    send = np.arange(100) * 20.0
    arrival = send + 30.0
    arrival[10] += 70.0  # 100 ms > 90 ms: late
    ref = fixed_buffer(send, arrival)
    assert ref.mean_ms == 90.0 and ref.late_fraction == 0.01


def test_the_stretch_paying_oracle_keeps_its_offset_through_a_short_dip() -> None:
    # 30 ms of delay, except 10 packets at 20 ms in the middle: dipping for them saves 100 ms of
    # summed delay and costs 2 x 10 ms of change, i.e. 1000 at 50 per ms.
    send = np.arange(200, dtype=np.float64) * 20.0
    delay = np.full(200, 30.0)
    delay[95:105] = 20.0
    free, paying = oracle(send, send + delay), stretch_oracle(send, send + delay)
    assert free.mean_ms < 30.0 and free.stretched_ms > 0.0
    assert paying.mean_ms == 30.0 and paying.stretched_ms == 0.0 and paying.late_fraction == 0.0
    # A lasting step is worth following: 100 packets 10 ms lower save 1000 for a cost of 500.
    delay[50:150] = 20.0
    stepped = stretch_oracle(send, send + delay)
    assert stepped.mean_ms < 30.0 and stepped.late_fraction == 0.0
