"""The ``[[camera]]`` tables of the config: RTSP sources ``softphone play`` opens by name, and
where a URL's host and port meet a camera's (whose credentials it then uses)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

__all__ = ["Camera", "CameraSource", "CameraTableError", "parse_cameras", "rtsp_place"]

_CAMERA_KEYS: Final = frozenset({"name", "url", "username", "password"})


@dataclass(frozen=True, slots=True)
class Camera:
    """An RTSP source ``softphone play`` can open by name."""

    name: str
    url: str
    username: str | None = None
    password: str | None = None

    def __repr__(self) -> str:  # never show the password
        return f"Camera(name={self.name!r}, url={self.url!r})"

    @property
    def credentials(self) -> tuple[str, str] | None:
        """(username, password) when the camera has a username; an empty password otherwise."""
        return (self.username, self.password or "") if self.username is not None else None


@dataclass(frozen=True, slots=True)
class CameraSource:
    """Where a stream is and how to log in: what :meth:`Config.camera_source` finds."""

    url: str
    credentials: tuple[str, str] | None = None
    camera: str | None = None  # the [[camera]] it came from, by name or by host and port

    def __repr__(self) -> str:  # never show the password
        return f"CameraSource(url={self.url!r}, camera={self.camera!r})"


class CameraTableError(ValueError):
    """A [[camera]] table is not what it must be; softphone.config says so as a ConfigError."""


def parse_cameras(raw: Any, where: str) -> list[dict[str, str | None]]:
    """Each camera's name, url, username and password, checked (names unique, rtsp URLs)."""
    if not isinstance(raw, list) or not all(isinstance(c, dict) for c in raw):
        raise CameraTableError(f"{where}: 'camera' must be an array of tables ([[camera]])")
    cameras: list[dict[str, str | None]] = []
    for index, entry in enumerate(raw):
        label = f"{where}: camera #{index + 1}"
        unknown = sorted(set(entry) - _CAMERA_KEYS)
        if unknown:
            raise CameraTableError(f"{label}: unknown key(s) {', '.join(unknown)}")
        values: dict[str, str | None] = {}
        for key in ("name", "url", "username", "password"):
            value = entry.get(key)
            if value is not None and not isinstance(value, str):
                raise CameraTableError(f"{label}: {key} must be a string")
            values[key] = value
        name, url = values["name"], values["url"]
        if not name or not name.strip():
            raise CameraTableError(f"{label}: 'name' is required (a non-empty string)")
        if not url or not url.lower().startswith(("rtsp://", "rtsps://")):
            raise CameraTableError(f"{label} ({name!r}): 'url' must be an rtsp:// or rtsps:// URL")
        if any(c["name"] == name for c in cameras):
            raise CameraTableError(f"{where}: camera names must be unique (repeated: {name})")
        cameras.append(values)
    return cameras


_RTSP_PORTS: Final = {"rtsp": 554, "rtsps": 322}


def rtsp_place(url: str) -> tuple[str, int, bool] | None:
    """(host, port, has user info) of an rtsp:// or rtsps:// URL, the scheme's port when none
    is written; None for anything else. The authority is split the way the RTSP URL parser
    does (softphone.rtsp.url): it ends at the first "/" or "?", and the host starts after the
    last "@" (cameras' passwords hold raw "@" and "#")."""
    scheme, sep, rest = url.strip().partition("://")
    default = _RTSP_PORTS.get(scheme.lower())
    if not sep or default is None:
        return None
    authority = re.split(r"[/?]", rest, maxsplit=1)[0]
    _, at, hostport = authority.rpartition("@")
    try:
        parts = urlsplit("//" + hostport)
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not host:
        return None
    return host, port if port is not None else default, bool(at)
