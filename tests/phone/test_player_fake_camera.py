"""The RTSP player against a scripted camera on 127.0.0.1: the behaviours a GStreamer server will
not show (redirects, a camera whose UDP media never arrives, codecs we cannot play, RTCP before the
PLAY answer, data on channels never set up, a scheme-less Content-Base) and the receiver reports
a camera expects. The camera replays H.264 packets FFmpeg's packetiser produced
(tests/data/rtp/depack_ffmpeg_h264.bin) over TCP interleaved, 10 pictures a second.

Waiting is on the player's own events with deadlines; nothing sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any

import pytest
from fake_camera import SSRC, FakeCamera, is_pli

from softphone.auth.basic import basic_authorization
from softphone.config import Camera, Config
from softphone.phone import events as pe
from softphone.phone.player import Player, PlayerOptions
from softphone.rtp.packet import parse_rtcp


async def next_of(
    player: Player, kind: type[pe.PhoneEvent], timeout: float = 10.0
) -> pe.PhoneEvent:
    async with asyncio.timeout(timeout):
        while True:
            event = await player.events.get()
            if isinstance(event, kind):
                return event
            if isinstance(event, pe.StreamFailed):
                raise AssertionError(f"failed: {event.reason}")


@contextlib.asynccontextmanager
async def playing(player: Player) -> AsyncIterator[asyncio.Task[int]]:
    """The player runs while the body does, then is stopped: its run() must then end by itself,
    with 0 (it played). An error out of run() fails the test, unless the body failed first
    (that failure is the one to read)."""
    stop = asyncio.Event()
    task = asyncio.create_task(player.run(stop))
    try:
        yield task
    except BaseException:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 10)
        raise
    stop.set()
    assert await asyncio.wait_for(task, 10) == 0


async def test_redirect_then_plays_with_camera_quirks_and_sends_receiver_reports() -> None:
    async with FakeCamera() as camera:
        player = Player(camera.url("/old"), options=PlayerOptions(transport="tcp"))
        async with playing(player) as task:
            started = await next_of(player, pe.StreamPlaying)
            assert isinstance(started, pe.StreamPlaying) and started.transport == "tcp"
            first = await next_of(player, pe.FirstFrame)
            assert isinstance(first, pe.FirstFrame) and (first.width, first.height) == (160, 120)
            async with asyncio.timeout(
                8
            ):  # the first RR is due within 1.25-3.75 s (RFC 3550 §6.3.1)
                while not [d for d in camera.rtcp_from_client if not is_pli(d)]:
                    await next_of(player, pe.StreamStats)
            assert not task.done()
        kinds = [r.split()[0] + " " + r.split()[1] for r in camera.requests]
        assert kinds[0] == "OPTIONS /old"  # answered 302: nothing else was asked of /old
        assert not [k for k in kinds[1:] if k.endswith("/old")]
        assert (
            kinds.index("DESCRIBE /cam")
            < kinds.index("SETUP /cam/trackID=1")
            < kinds.index("PLAY /cam/")
        )
        reports = [parse_rtcp(data) for data in camera.rtcp_from_client]
        assert all(
            type(r[0]).__name__ == "RtcpReceiverReport" for r in reports
        )  # compound, RR first
        # joined mid-GOP: a Picture Loss Indication (RFC 4585 PSFB FMT 1) for the camera's SSRC
        plis = [data for data in camera.rtcp_from_client if is_pli(data)]
        assert plis and plis[0][-4:] == (0x11223344).to_bytes(4, "big")
        assert player.counters.video_frames >= 10


async def test_auto_switches_to_tcp_when_udp_media_never_arrives() -> None:
    async with FakeCamera(udp="silent") as camera:
        player = Player(camera.url("/cam"), options=PlayerOptions(transport="auto"))
        async with playing(player):
            first = await next_of(player, pe.StreamPlaying)
            assert isinstance(first, pe.StreamPlaying) and first.transport == "udp"
            again = await next_of(player, pe.StreamPlaying, timeout=12)
            assert isinstance(again, pe.StreamPlaying) and again.transport == "tcp"
            await next_of(player, pe.FirstFrame)
        setups = [r for r in camera.requests if r.startswith("SETUP")]
        assert "client_port=" in setups[0] and "TCP" in setups[-1]
        assert any(r.startswith("TEARDOWN") for r in camera.requests)  # the UDP session was ended


async def test_no_supported_codec_is_a_clear_refusal() -> None:
    async with FakeCamera() as camera:
        player = Player(camera.url("/av1"), options=PlayerOptions(transport="tcp"))
        code = await asyncio.wait_for(player.run(asyncio.Event()), 15)
        assert code == 1
        events = []
        while (event := player.next_event_nowait()) is not None:
            events.append(event)
        failed = [e for e in events if isinstance(e, pe.StreamFailed)]
        assert failed and "no supported codec" in failed[0].reason and "AV1" in failed[0].reason
        described = [e for e in events if isinstance(e, pe.StreamDescribed)]
        assert described and described[0].streams[0].supported is False
        assert not any(r.startswith("SETUP") for r in camera.requests)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_stop_tears_the_session_down(transport: str) -> None:
    async with FakeCamera(udp="silent") as camera:
        player = Player(camera.url("/cam"), options=PlayerOptions(transport=transport))  # type: ignore[arg-type]
        stop = asyncio.Event()
        task = asyncio.ensure_future(player.run(stop))
        await next_of(player, pe.StreamPlaying)
        stop.set()
        code = await asyncio.wait_for(task, 10)
        assert code == 0  # PLAY was answered: it played, even if no picture came yet
        assert any(r.startswith("TEARDOWN") for r in camera.requests)


async def test_a_busy_server_is_asked_again_before_giving_up() -> None:
    async with FakeCamera(busy=2) as camera:
        player = Player(camera.url("/cam"), options=PlayerOptions(transport="tcp"))
        async with playing(player):
            await next_of(player, pe.FirstFrame)
        assert [r.split()[0] for r in camera.requests].count("DESCRIBE") == 3


async def test_a_server_that_stays_busy_is_a_refusal_with_the_reason() -> None:
    async with FakeCamera(busy=100) as camera:
        player = Player(camera.url("/cam"), options=PlayerOptions(transport="tcp"))
        code = await asyncio.wait_for(player.run(asyncio.Event()), 15)
        assert code == 1
        failed = []
        while (event := player.next_event_nowait()) is not None:
            if isinstance(event, pe.StreamFailed):
                failed.append(event)
        assert failed and "503" in failed[0].reason
        assert [r.split()[0] for r in camera.requests].count("DESCRIBE") == 5  # first + 4 retries


@pytest.mark.parametrize("ssrc_in", ["setup", "rtp-info"])
async def test_a_key_frame_is_asked_for_as_soon_as_play_is_answered(ssrc_in: str) -> None:
    """The camera tells its SSRC (SETUP's Transport, or only RTP-Info) and sends nothing until
    it gets a PLI: pictures come only if the player asks right after PLAY, without first
    waiting to see a non-key packet."""
    async with FakeCamera(ssrc_in=ssrc_in, media_after_pli=True) as camera:
        player = Player(camera.url("/cam"), options=PlayerOptions(transport="tcp"))
        async with playing(player):
            first = await next_of(player, pe.FirstFrame)
            assert isinstance(first, pe.FirstFrame) and (first.width, first.height) == (160, 120)
        plis = [data for data in camera.rtcp_from_client if is_pli(data)]
        assert plis[0][-4:] == SSRC.to_bytes(4, "big")
        assert player.counters.video_frames >= 1


async def test_a_decoder_that_cannot_open_is_reported_and_the_stream_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The video decoder opens on its own thread (PyAV may still be loading); when it fails,
    the player says why once and keeps the session (the audio, the recording) going."""
    from softphone.media import video
    from softphone.media.errors import MediaError

    def broken(*args: object, **kwargs: object) -> video.VideoDecoder:
        raise MediaError("no h264 decoder in this FFmpeg")

    monkeypatch.setattr(video, "VideoDecoder", broken)
    async with FakeCamera() as camera:
        player = Player(camera.url("/cam"), options=PlayerOptions(transport="tcp"))
        async with playing(player) as task:
            notice = await next_of(player, pe.Notice)
            assert isinstance(notice, pe.Notice) and notice.level == "error"
            assert notice.text == "cannot decode H264: no h264 decoder in this FFmpeg"
            await next_of(player, pe.StreamStats)  # still playing a second later
            assert not task.done()
        assert player.counters.video_frames == 0


# --- no task left behind ---------------------------------------------------------------------------
_ON_BEHALF_OF_THE_PLAYER: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "on_behalf_of_the_player", default=False
)


@contextlib.contextmanager
def tasks_made_by_the_player() -> Iterator[list[asyncio.Task[Any]]]:
    """Every task created from here on by code running for the player: the test sets a context
    variable that the player's tasks, callbacks and sockets inherit (the fake camera's were made
    before, without it), and the loop's task factory notes the tasks created where it is set."""
    loop = asyncio.get_running_loop()
    made: list[asyncio.Task[Any]] = []

    def factory(
        loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any], **kwargs: Any
    ) -> asyncio.Task[Any]:
        task = asyncio.Task(coro, loop=loop, **kwargs)
        context = kwargs.get("context") or contextvars.copy_context()
        if context.get(_ON_BEHALF_OF_THE_PLAYER):
            made.append(task)
        return task

    token = _ON_BEHALF_OF_THE_PLAYER.set(True)
    loop.set_task_factory(factory)  # type: ignore[arg-type]
    try:
        yield made
    finally:
        loop.set_task_factory(None)
        _ON_BEHALF_OF_THE_PLAYER.reset(token)


async def test_run_returns_with_every_task_it_started_done() -> None:
    """Checked at the instant run() returns, before the loop gets to run anything else: a task
    cancelled but not awaited would still be pending then."""
    async with FakeCamera() as camera:
        player = Player(camera.url("/cam"), options=PlayerOptions(transport="tcp"))
        stop = asyncio.Event()

        async def stop_at_the_first_picture() -> None:
            await next_of(player, pe.FirstFrame)
            stop.set()

        stopper = asyncio.ensure_future(stop_at_the_first_picture())
        with tasks_made_by_the_player() as made:
            code = await player.run(stop)
            pending = [task.get_name() for task in made if not task.done()]
        await stopper
    assert code == 0
    assert {"player-stop", "rtsp-session", "rtsp-setup"} <= {task.get_name() for task in made}
    assert pending == []
    assert any(r.startswith("TEARDOWN") for r in camera.requests)


async def test_a_cancelled_run_leaves_no_task_and_no_connection_behind() -> None:
    async with FakeCamera() as camera:
        player = Player(camera.url("/cam"), options=PlayerOptions(transport="tcp"))
        loop = asyncio.get_running_loop()
        with tasks_made_by_the_player() as made, pytest.raises(TimeoutError):
            async with asyncio.timeout(None) as limit:

                async def cancel_at_the_first_picture() -> None:
                    await next_of(player, pe.FirstFrame)
                    limit.reschedule(loop.time())  # cancels the run() awaited below

                canceller = asyncio.ensure_future(cancel_at_the_first_picture())
                await player.run(asyncio.Event())
        pending = [task.get_name() for task in made if task is not canceller and not task.done()]
        assert pending == []
        assert "rtsp-session" in {task.get_name() for task in made}
        # and the connection is closed: the camera sees the end of it
        await asyncio.wait_for(camera.disconnected.wait(), 5)


async def test_a_url_without_credentials_gets_those_of_the_config_camera_on_its_host() -> None:
    async with FakeCamera(basic=("admin", "door pw")) as camera:
        config = Config(
            cameras=(
                Camera(name="elsewhere", url="rtsp://127.0.0.1:9/x", username="no", password="no"),
                Camera(
                    name="door", url=camera.url("/stream1"), username="admin", password="door pw"
                ),
            )
        )
        player = Player(camera.url("/cam"), config=config, options=PlayerOptions(transport="tcp"))
        async with playing(player):
            await next_of(player, pe.StreamPlaying)
        assert basic_authorization("admin", "door pw") in camera.authorizations


async def test_the_start_up_limit_counts_from_the_players_own_start() -> None:
    """A player made long after the command started (the TUI's side pane under ``softphone
    play``, which passes the command's start for --duration and first-picture times) still gets
    the whole start-up limit: it plays, instead of failing at once with "no answer ... within
    14 s"."""
    import time

    async with FakeCamera() as camera:
        player = Player(
            camera.url("/cam"),
            options=PlayerOptions(transport="tcp"),
            started_at=time.monotonic() - 60.0,
        )
        async with playing(player):
            await next_of(player, pe.FirstFrame)


async def test_pausing_a_live_stream_is_not_counted_as_loss() -> None:
    """PLAY after PAUSE: the live camera goes on 500 sequence numbers later, and its RTP-Info
    says so (RFC 2326 §12.33). Those packets were never sent to us: they are not lost."""
    async with FakeCamera(skip_on_resume=500) as camera:
        player = Player(camera.url("/cam"), options=PlayerOptions(transport="tcp"))
        async with playing(player):
            await next_of(player, pe.FirstFrame)
            player.pause()
            await next_of(player, pe.StreamPaused)
            frames = player.counters.video_frames
            player.resume()
            await next_of(player, pe.StreamPlaying)
            async with asyncio.timeout(15):
                while player.counters.video_frames < frames + 10:
                    await next_of(player, pe.StreamStats)
            assert camera.next_seq > 500  # the camera did skip
            assert player.counters.lost_packets == 0


async def test_after_a_reconnect_the_rate_counts_only_the_new_sessions_pictures() -> None:
    """The camera closes the connection after a few seconds of pictures (a restart): the player
    asks again soon (a closed connection is a server restarting, not a lost network), and the
    first statistics of the new session give the camera's rate, not the pictures of both
    sessions over one second."""
    async with FakeCamera() as camera:
        player = Player(camera.url("/cam"), options=PlayerOptions(transport="tcp"))
        async with playing(player):
            await next_of(player, pe.FirstFrame)
            async with asyncio.timeout(15):
                while player.counters.video_frames < 25:
                    await next_of(player, pe.StreamStats)
            camera.drop()
            reconnecting = await next_of(player, pe.StreamReconnecting)
            assert isinstance(reconnecting, pe.StreamReconnecting)
            assert reconnecting.delay_s < 1.0, reconnecting
            await next_of(player, pe.StreamPlaying)
            before = player.counters.video_frames
            stats = await next_of(player, pe.StreamStats)
            assert isinstance(stats, pe.StreamStats)
            # at most the camera's 10 pictures a second, and what the count grew by over it
            assert stats.fps <= 12.0, stats
            assert stats.fps <= stats.video_frames - before + 1, (stats, before)
