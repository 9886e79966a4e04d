"""The call video pane's status line (tui/screens/main_calls.py, widgets/side_pane.py): our
camera gone (``video_source_lost``) and the far end's picture broken (``video_picture``) are
said there while they last, and in the messages area."""

from __future__ import annotations

import numpy as np
from phone_fake import FakePhone
from tui_support import until

from softphone.phone import events as pe
from tests.tui.test_app_main import build, established, main


async def test_the_call_video_status_line_tells_what_broke() -> None:
    phone = FakePhone()
    app, _ = build(phone)
    async with app.run_test(size=(140, 36)) as pilot:
        call_id = await established(pilot, app, phone)
        side = main(app).side
        phone.calls[0].picture = np.full((96, 128, 3), 200, np.uint8)
        await pilot.press("C")
        await until(pilot, lambda: side.video.display, what="the call's picture in the pane")
        assert side.video.overlay == ""
        phone.emit(pe.VideoSourceLost(call_id=call_id, reason="No such device"))
        await until(pilot, lambda: side.video.overlay == "our video stopped", what="camera note")
        texts = main(app).messages.texts
        assert any("our video stopped: No such device" in t for t in texts)
        phone.emit(pe.VideoPictureChanged(call_id=call_id, broken=True, reason="no key frame"))
        await until(
            pilot,
            lambda: side.video.overlay == "picture broken: no key frame · our video stopped",
            what="both notes",
        )
        phone.emit(pe.VideoPictureChanged(call_id=call_id, broken=False, reason="back"))
        await until(pilot, lambda: side.video.overlay == "our video stopped", what="picture back")
        assert any("picture is back" in t for t in main(app).messages.texts)
