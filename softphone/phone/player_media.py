"""The RTSP player's decode and draw pipeline: access units in (from the depacketisers of
phone/player_session.py); pictures on screen, sound in the audio engine, a recording on disk.

- Video is decoded in one :class:`VideoWorker` thread per stream so the event loop (and the TUI
  on it) never waits for a decoder; only the newest picture of a burst is converted to RGB, and
  only when someone shows it.
- :class:`PictureOutput` counts the pictures, announces the first, saves the snapshot, and shows
  the newest picture through the UI's callback: at once, or later when it is ahead of the audio
  being heard (lip sync).
- Audio is decoded on the loop (cheap), per track by :class:`TrackDecoding`, into the
  StreamAudio port of the audio engine; :class:`AudioOutput` asks for the engine (opens a sound
  device) with the first decoded audio, not before.
- :class:`SessionRecording` remuxes the units into Matroska (media/record.py), from a key frame.

Nothing here loads a heavy module with it: this module is imported on the way to PLAY. PyAV opens
on the worker's thread (or with the first audio once phone/preload.py has loaded it), numpy and
the audio engine with the first audio, the recorder with the first unit to record. Audio that
arrives before PyAV and numpy are loaded is kept (a bounded number of units) and decoded after.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

from softphone.media.errors import MediaError
from softphone.phone import player_events as pe
from softphone.phone import preload
from softphone.rtp.depacketize import AccessUnit, Depacketizer
from softphone.rtp.ntp import media_time

if TYPE_CHECKING:
    import numpy as np

    from softphone.media.record import StreamRecorder
    from softphone.media.video import AudioDecoder, DecodedPicture, VideoDecoder
    from softphone.phone.audio import AudioEngine, AudioProvider
    from softphone.phone.player import PlayerCounters
    from softphone.phone.stream_audio import StreamAudio
    from softphone.rtsp.events import Track

logger = logging.getLogger(__name__)

MAX_DECODE_BACKLOG: Final = (
    90  # access units queued for a video decoder before we drop to a key frame
)
MAX_SYNC_HOLD_S: Final = 1.0  # hold a picture at most this long to meet its audio
PENDING_AUDIO_UNITS: Final = 250  # audio units kept while PyAV loads (~5 s of AAC; it takes ~0.1 s)

PictureSink = Callable[["DecodedPicture", "np.ndarray | None"], None]
Notify = Callable[[pe.PhoneEvent], None]

# Encoding names (SDP rtpmap) -> FFmpeg decoder names. quirk: cameras spell them differently.
_DECODERS: Final = {
    "h264": "h264",
    "h265": "hevc",
    "hevc": "hevc",
    "jpeg": "mjpeg",
    "mpeg4-generic": "aac",
    "mp4a-latm": "aac",  # the depacketiser unwraps LATM into raw AAC frames
    "pcmu": "pcm_mulaw",
    "pcma": "pcm_alaw",
    "l16": "pcm_s16be",
    "opus": "opus",
}


def decoder_name(encoding: str) -> str:
    """FFmpeg's name for the decoder of an SDP encoding name."""
    return _DECODERS.get(encoding.lower(), encoding.lower())


# --- video decoding off the loop -----------------------------------------------------------------
class VideoWorker:
    """Decodes one video stream in its own thread. Only the newest picture of a burst is
    converted to RGB (and only when someone shows it); results go back to the loop with
    ``call_soon_threadsafe``. A backlog beyond MAX_DECODE_BACKLOG is dropped up to the next key
    frame, so a slow machine shows fewer frames instead of growing latency.

    The decoder is opened on the worker's thread, so the loop never waits for PyAV's import
    (phone/preload.py); units that arrive meanwhile wait in the queue. When it cannot be opened,
    ``on_failure`` is called on the loop and later units are dropped."""

    def __init__(
        self,
        open_decoder: Callable[[], VideoDecoder],
        loop: asyncio.AbstractEventLoop,
        sink: PictureSink,
        on_failure: Callable[[MediaError], None],
    ) -> None:
        self._open_decoder = open_decoder
        self._decoder: VideoDecoder | None = None
        self._on_failure = on_failure
        self._loop = loop
        self._sink = sink
        self._queue: collections.deque[AccessUnit | None] = collections.deque()
        self._ready = threading.Condition()
        self.box: tuple[int, int] | None = None  # pixels available for the picture, set by the UI
        self.dropped_units = 0
        self._thread = threading.Thread(target=self._run, name="video-decoder", daemon=True)
        self._thread.start()

    def submit(self, unit: AccessUnit) -> bool:
        """Queue ``unit``; False when the backlog is full (the caller waits for a key frame)."""
        with self._ready:
            if len(self._queue) >= MAX_DECODE_BACKLOG:
                self.dropped_units += 1
                return False
            self._queue.append(unit)
            self._ready.notify()
        return True

    def drop_queued(self) -> None:
        """Forget the units waiting to be decoded (not the end mark of :meth:`close`)."""
        with self._ready:
            if None in self._queue:
                return
            self._queue.clear()

    def close(self) -> None:
        with self._ready:
            self._queue.clear()
            self._queue.append(None)
            self._ready.notify()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    @property
    def errors(self) -> int:
        return self._decoder.errors if self._decoder is not None else 0

    def _run(self) -> None:
        try:
            decoder = self._open_decoder()
        except MediaError as exc:
            failed: MediaError | None = exc
        else:
            failed, self._decoder = None, decoder
        if failed is not None:
            with contextlib.suppress(RuntimeError):  # a closed loop: we are shutting down
                self._loop.call_soon_threadsafe(self._on_failure, failed)
        while True:
            with self._ready:
                while not self._queue:
                    self._ready.wait()
                unit = self._queue.popleft()
                behind = len(self._queue)
            if unit is None:
                return
            if self._decoder is None:
                continue  # it could not be opened (said once, by on_failure)
            try:
                pictures = self._decoder.decode(unit)
            except Exception:  # a decoder bug must not kill the thread silently
                logger.exception("video decoder failed")
                continue
            for i, picture in enumerate(pictures):
                rgb = None
                box = self.box
                newest = behind == 0 and i == len(pictures) - 1
                if box is not None and newest:
                    try:
                        rgb = picture.to_rgb(*picture.fit(*box))
                    except MediaError:
                        logger.warning(
                            "cannot scale a %dx%d picture", picture.width, picture.height
                        )
                try:
                    self._loop.call_soon_threadsafe(self._sink, picture, rgb)
                except RuntimeError:
                    return  # the loop is closed: we are shutting down


# --- audio out -----------------------------------------------------------------------------------
class AudioOutput:
    """The player's way to the audio engine. The engine is asked for (a sound device opened)
    when the first audio is decoded, not before, and only between :meth:`open` and
    :meth:`close` (the player's run)."""

    def __init__(self, provider: AudioProvider | None) -> None:
        self._provider = provider
        self._engine: AudioEngine | None = None
        self._port: StreamAudio | None = None
        self._open = False

    def open(self) -> None:
        self._open = True

    def engine(self) -> AudioEngine | None:
        if self._engine is None and self._provider is not None and self._open:
            self._engine = self._provider.engine_for_call(1)
        return self._engine

    def sample_rate(self) -> int:
        """The engine's rate (asking for the engine), 48 kHz without one."""
        engine = self.engine()
        return engine.sample_rate if engine is not None else 48000

    def port(self) -> StreamAudio | None:
        """Where decoded stream audio goes (asking for the engine)."""
        engine = self.engine()
        if engine is None:
            return None
        if self._port is None:
            from softphone.phone.stream_audio import StreamAudio

            self._port = StreamAudio(engine.sample_rate)
            engine.attach(self._port)
        return self._port

    def clock(self, now: float) -> float | None:
        """The media time of what is being heard at ``now`` (None before audio plays)."""
        return self._port.clock(now) if self._port is not None else None

    def clear(self) -> None:
        """Drop the audio waiting to be heard (a seek)."""
        if self._port is not None:
            self._port.clear()

    def close(self) -> None:
        """Give the engine back; no engine is asked for after this."""
        self._open = False
        if self._engine is not None and self._provider is not None:
            if self._port is not None:
                self._engine.detach(self._port)
            self._provider.release(self._engine)
        self._engine, self._port = None, None


# --- pictures out --------------------------------------------------------------------------------
class PictureOutput:
    """What happens to each decoded picture: counted, the first announced (FirstFrame), the
    snapshot saved once, the newest shown through ``target()`` (the UI's callback, or None)."""

    def __init__(
        self,
        *,
        counters: PlayerCounters,
        notify: Notify,
        elapsed_ms: Callable[[], float],
        snapshot: Path | None,
        audio: AudioOutput,
        target: Callable[[], Callable[[np.ndarray], None] | None],
    ) -> None:
        self._counters = counters
        self._notify = notify
        self._elapsed_ms = elapsed_ms
        self._snapshot = snapshot
        self._audio = audio
        self._target = target
        self.snapshot_done = False
        self.av_offset_ms: float | None = None  # video ahead (+) or behind (-) the audio heard
        self._shown_seq = 0
        self._last_shown = 0
        self._held: dict[int, asyncio.TimerHandle] = {}  # pictures waiting for their audio

    def picture(
        self,
        picture: DecodedPicture,
        rgb: np.ndarray | None,
        codec: str,
        picture_time: float | None = None,
    ) -> None:
        c = self._counters
        c.video_frames += 1
        c.width, c.height, c.codec = picture.width, picture.height, codec
        if c.first_frame_ms is None:
            c.first_frame_ms = round(self._elapsed_ms(), 1)
            self._notify(
                pe.FirstFrame(
                    ms=c.first_frame_ms, width=picture.width, height=picture.height, codec=codec
                )
            )
            # Start-up is over (the collector was held by `softphone play`, __main__.py); after
            # the event has gone out, which the front end's task does on the next loop pass.
            asyncio.get_running_loop().call_soon(preload.release_gc)
            preload.picture_shown()
        if self._snapshot is not None and not self.snapshot_done:
            from softphone.media.video import save_png  # loaded: the picture came from it

            try:
                save_png(picture, self._snapshot)
                self.snapshot_done = True
                self._notify(pe.Notice(level="info", text=f"snapshot saved to {self._snapshot}"))
            except MediaError as exc:
                self.snapshot_done = True  # tried once; say why and go on playing
                self._notify(pe.Notice(level="error", text=f"cannot save the snapshot: {exc}"))
        if rgb is not None and self._target() is not None:
            self._present(rgb, picture_time)

    def close(self) -> None:
        """Forget the pictures held for lip sync (the player is done)."""
        for handle in self._held.values():
            handle.cancel()
        self._held.clear()

    def _present(self, rgb: np.ndarray, picture_time: float | None) -> None:
        """Show ``rgb`` now, or later when it is ahead of the audio being heard (lip sync).
        Pictures behind the audio are shown at once; a gap over MAX_SYNC_HOLD_S means the
        clocks disagree and is not waited for (no frozen video)."""
        self._shown_seq += 1
        seq = self._shown_seq
        loop = asyncio.get_running_loop()
        audio_now = self._audio.clock(loop.time())
        hold = 0.0 if audio_now is None or picture_time is None else picture_time - audio_now
        self.av_offset_ms = (
            None if audio_now is None or picture_time is None else round(hold * 1000, 1)
        )
        if 0.0 < hold <= MAX_SYNC_HOLD_S:
            self._held[seq] = loop.call_later(hold, self._show_held, rgb, seq)
        else:
            self._show_if_newest(rgb, seq)

    def _show_held(self, rgb: np.ndarray, seq: int) -> None:
        del self._held[seq]
        self._show_if_newest(rgb, seq)

    def _show_if_newest(self, rgb: np.ndarray, seq: int) -> None:
        target = self._target()
        if seq < self._last_shown or target is None:
            return  # a newer picture is already on screen
        self._last_shown = seq
        target(rgb)


# --- one track's decoding ------------------------------------------------------------------------
class TrackDecoding:
    """Decoding of one played track: a VideoWorker for video (:meth:`start_video`, once PLAY is
    answered), an AudioDecoder for audio (made with the first unit once PyAV and numpy are
    loaded; units are kept until then). ``sender_report`` (NTP, RTP timestamp of the stream's
    last RTCP SR, set by the session) puts pictures and sound on one time line (lip sync)."""

    def __init__(
        self,
        info: Track,
        kind: Literal["video", "audio"],
        depack: Depacketizer,
        *,
        counters: PlayerCounters,
        audio: AudioOutput,
        notify: Notify,
        decoding: bool = True,
    ) -> None:
        self.info = info
        self.kind = kind
        self.decoding = decoding  # video: False while nobody can see the picture
        self.codec = decoder_name(info.encoding)
        self._depack = depack
        self._counters = counters
        self._audio_out = audio
        self._notify = notify
        self.sender_report: tuple[int, int] | None = None
        self.worker: VideoWorker | None = None
        self.skip_to_keyframe = not decoding  # made while hidden: start at a key frame when shown
        self.audio: AudioDecoder | None = None
        self.audio_failed = False
        self.pending_audio: collections.deque[AccessUnit] = collections.deque(
            maxlen=PENDING_AUDIO_UNITS
        )

    @property
    def extradata(self) -> bytes | None:
        """The codec configuration known so far (SDP, or parameter sets seen in band)."""
        return self._depack.extradata

    def media_time(self, timestamp: int) -> float | None:
        return media_time(self.sender_report, timestamp, self.info.clock_rate)

    def start_video(
        self,
        loop: asyncio.AbstractEventLoop,
        box: tuple[int, int] | None,
        show: Callable[[DecodedPicture, np.ndarray | None, str, float | None], None],
    ) -> None:
        """Start the worker; its pictures go to ``show`` with their media time."""
        codec = self.codec
        extradata = self.extradata

        def open_decoder() -> VideoDecoder:  # on the worker's thread
            from softphone.media.video import VideoDecoder

            return VideoDecoder(codec, extradata)

        def failed(exc: MediaError) -> None:
            self._notify(
                pe.Notice(level="error", text=f"cannot decode {self.info.encoding}: {exc}")
            )

        def sink(picture: DecodedPicture, rgb: np.ndarray | None) -> None:
            show(picture, rgb, codec, self.media_time(picture.timestamp))

        self.worker = VideoWorker(open_decoder, loop, sink, failed)
        self.worker.box = box

    @property
    def wants_keyframe(self) -> bool:
        """Video that is decoded but waits for a key frame to start again (after a backlog, or
        after a time it was not decoded): worth asking the sender for one."""
        return self.kind == "video" and self.decoding and self.skip_to_keyframe

    def set_decoding(self, enabled: bool) -> None:
        """Video only: stop decoding (what is queued is dropped, later units are counted in
        ``video_units_skipped``), or start again at the next key frame."""
        if self.kind != "video" or enabled == self.decoding:
            return
        self.decoding = enabled
        if not enabled:
            self.skip_to_keyframe = True  # the units in between are never decoded
            if self.worker is not None:
                self.worker.drop_queued()

    def take(self, unit: AccessUnit) -> None:
        """One access unit in decoding order."""
        if self.kind == "audio":
            self._play_audio(unit)
            return
        if self.worker is None:
            return
        if not self.decoding:
            self._counters.video_units_skipped += 1
            return
        if self.skip_to_keyframe and not unit.keyframe:
            return
        # A decoder that cannot keep up drops to the next key frame rather than showing smeared
        # pictures or letting latency grow.
        self.skip_to_keyframe = not self.worker.submit(unit)

    def close(self) -> None:
        if self.worker is not None:
            self.worker.close()

    def _play_audio(self, unit: AccessUnit) -> None:
        if self.audio is None:
            if self.audio_failed:
                return
            if not preload.ready():
                # PyAV and numpy are still being imported (the first picture goes first): keep
                # the units, a bounded number, and decode them once they are loaded.
                self.pending_audio.append(unit)
                return
            self.audio = self._make_audio_decoder()
            if self.audio is None:
                self.audio_failed = True
                self.pending_audio.clear()
                return
        units = [*self.pending_audio, unit]
        self.pending_audio.clear()
        for each in units:
            self._decode_audio(self.audio, each)

    def _make_audio_decoder(self) -> AudioDecoder | None:
        from softphone.media.video import AudioDecoder

        try:
            return AudioDecoder(
                self.codec,
                self.extradata,
                sample_rate=self.info.clock_rate or 8000,
                channels=self.info.channels or 1,
                output_rate=self._audio_out.sample_rate(),
            )
        except MediaError as exc:
            self._notify(
                pe.Notice(level="error", text=f"cannot decode {self.info.encoding} audio: {exc}")
            )
            return None

    def _decode_audio(self, decoder: AudioDecoder, unit: AccessUnit) -> None:
        try:
            pcm = decoder.decode(unit)
        except MediaError:
            return
        if not len(pcm):
            return
        counters = self._counters
        counters.audio_rate = self._audio_out.sample_rate()
        counters.audio_samples += len(pcm)
        port = self._audio_out.port()
        if port is not None:
            port.push(pcm, self.media_time(unit.timestamp))


# --- recording -----------------------------------------------------------------------------------
class SessionRecording:
    """The ``--record`` file of one session: every track remuxed, starting at a key frame of the
    video (so that the file plays from its first byte). ``next_path()`` names the file when the
    recording starts; a failure is said once and recording stops."""

    def __init__(
        self,
        tracks: Sequence[TrackDecoding],
        *,
        next_path: Callable[[], Path | None],
        notify: Notify,
    ) -> None:
        self._tracks = tracks
        self._next_path = next_path
        self._notify = notify
        self._recorder: StreamRecorder | None = None
        self._index: dict[TrackDecoding, int] = {}
        self.failed = False

    def write(self, track: TrackDecoding, unit: AccessUnit) -> None:
        if self.failed:
            return
        if self._recorder is None:
            video = next((t for t in self._tracks if t.kind == "video"), None)
            if video is not None and (track is not video or not unit.keyframe):
                return  # start the file at a key frame, so that it plays from its first byte
            self._start()
            if self._recorder is None:
                return
        index = self._index.get(track)
        if index is None:
            return
        try:
            self._recorder.write(index, unit)
        except MediaError as exc:
            self.failed = True
            self._notify(pe.Notice(level="error", text=f"recording stopped: {exc}"))

    def _start(self) -> None:
        from softphone.media.record import RecordedStream, StreamRecorder

        streams: list[RecordedStream] = []
        for t in self._tracks:
            self._index[t] = len(streams)
            audio = t.kind == "audio"
            streams.append(
                RecordedStream(
                    codec=t.codec,
                    clock_rate=t.info.clock_rate,
                    extradata=t.extradata,
                    sample_rate=t.info.clock_rate if audio else None,
                    channels=(t.info.channels or 1) if audio else None,
                )
            )
        path = self._next_path()
        assert path is not None  # made only with --record
        try:
            self._recorder = StreamRecorder(path, streams)
        except MediaError as exc:
            self.failed = True
            self._notify(pe.Notice(level="error", text=f"cannot record to {path}: {exc}"))
            return
        self._notify(pe.Notice(level="info", text=f"recording to {path}"))

    def close(self) -> None:
        if self._recorder is not None:
            try:
                self._recorder.close()
            except MediaError as exc:
                self._notify(pe.Notice(level="error", text=f"recording: {exc}"))
            self._recorder = None
