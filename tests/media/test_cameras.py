"""softphone devices' camera list (media/cameras.py): /dev/videoN with the driver's name from
sysfs, in number order; nothing (not an error) without V4L2."""

from __future__ import annotations

from pathlib import Path

from softphone.media.cameras import Camera, list_cameras


def test_cameras_are_listed_by_number_with_their_names(tmp_path: Path) -> None:
    sysfs = tmp_path / "video4linux"
    for number, name in ((10, "Loopback"), (0, "HD Webcam: HD Webcam\n"), (2, None)):
        node = sysfs / f"video{number}"
        node.mkdir(parents=True)
        if name is not None:
            (node / "name").write_text(name)
    (sysfs / "v4l-subdev0").mkdir()  # not a video node
    assert list_cameras(sysfs, Path("/dev")) == [
        Camera("/dev/video0", "HD Webcam: HD Webcam"),
        Camera("/dev/video2", "video2"),
        Camera("/dev/video10", "Loopback"),
    ]


def test_no_v4l2_is_no_camera(tmp_path: Path) -> None:
    assert list_cameras(tmp_path / "missing") == []
