"""Video decoding switched off while nobody can see it (a hidden side pane), and on again: the
decoder gets nothing meanwhile, what was queued is dropped, and it starts again at a key frame,
which the track asks for (``wants_keyframe`` makes the session send a PLI)."""

from __future__ import annotations

from softphone.phone.player import PlayerCounters
from softphone.phone.player_media import AudioOutput, TrackDecoding
from softphone.rtp.depacketize import AccessUnit, make_depacketizer
from softphone.rtsp import client as rc
from softphone.rtsp.url import RtspUrl


class Worker:
    """Stands in for VideoWorker: keeps what is submitted."""

    def __init__(self) -> None:
        self.queue: list[AccessUnit] = []

    def submit(self, unit: AccessUnit) -> bool:
        self.queue.append(unit)
        return True

    def drop_queued(self) -> None:
        self.queue.clear()

    def close(self) -> None:
        pass


def video_track(counters: PlayerCounters, *, decoding: bool = True) -> tuple[TrackDecoding, Worker]:
    info = rc.Track(
        index=0,
        media="video",
        encoding="H264",
        clock_rate=90000,
        channels=0,
        payload_type=96,
        fmtp={},
        control_url=RtspUrl.parse("rtsp://127.0.0.1/v/trackID=0"),
    )
    depack = make_depacketizer(info.encoding, info.clock_rate, info.fmtp, 1)
    track = TrackDecoding(
        info,
        "video",
        depack,
        counters=counters,
        audio=AudioOutput(None),
        notify=lambda _e: None,
        decoding=decoding,
    )
    worker = Worker()
    track.worker = worker  # type: ignore[assignment]
    return track, worker


def unit(n: int, *, key: bool = False) -> AccessUnit:
    return AccessUnit(data=bytes([n]), timestamp=3600 * n, keyframe=key, codec="h264")


def test_hidden_video_is_not_decoded_and_comes_back_at_a_key_frame() -> None:
    counters = PlayerCounters()
    track, worker = video_track(counters)
    track.take(unit(0, key=True))
    track.take(unit(1))
    assert [u.timestamp for u in worker.queue] == [0, 3600]

    track.set_decoding(False)
    assert worker.queue == []  # queued, not decoded yet: dropped
    for n in range(2, 6):
        track.take(unit(n, key=n == 4))
    assert worker.queue == [] and counters.video_units_skipped == 4
    assert not track.wants_keyframe  # hidden: no reason to ask the camera for one

    track.set_decoding(True)
    assert track.wants_keyframe
    track.take(unit(6))  # a picture that refers to ones never decoded: not worth decoding
    assert worker.queue == [] and track.wants_keyframe
    track.take(unit(7, key=True))
    track.take(unit(8))
    assert [u.timestamp for u in worker.queue] == [7 * 3600, 8 * 3600]
    assert not track.wants_keyframe


def test_a_track_made_while_hidden_starts_at_a_key_frame_when_shown() -> None:
    counters = PlayerCounters()
    track, worker = video_track(counters, decoding=False)
    track.take(unit(0, key=True))
    track.set_decoding(True)
    track.take(unit(1))
    assert worker.queue == [] and track.wants_keyframe
    track.take(unit(2, key=True))
    assert len(worker.queue) == 1
