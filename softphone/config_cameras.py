"""The ``[[camera]]`` tables of the config: RTSP sources ``softphone play`` opens by name, and
where a URL's host and port meet a camera's (whose credentials it then uses)."""

from __future__ import annotations

import re
from typing import Any, Final
from urllib.parse import urlsplit

from softphone.config import Camera, ConfigError

__all__ = ["parse_cameras", "rtsp_place"]

_CAMERA_KEYS: Final = frozenset({"name", "url", "username", "password"})


def parse_cameras(raw: Any, where: str) -> tuple[Camera, ...]:
    if not isinstance(raw, list) or not all(isinstance(c, dict) for c in raw):
        raise ConfigError(f"{where}: 'camera' must be an array of tables ([[camera]])")
    cameras: list[Camera] = []
    for index, entry in enumerate(raw):
        label = f"{where}: camera #{index + 1}"
        unknown = sorted(set(entry) - _CAMERA_KEYS)
        if unknown:
            raise ConfigError(f"{label}: unknown key(s) {', '.join(unknown)}")
        values: dict[str, str | None] = {}
        for key in ("name", "url", "username", "password"):
            value = entry.get(key)
            if value is not None and not isinstance(value, str):
                raise ConfigError(f"{label}: {key} must be a string")
            values[key] = value
        name, url = values["name"], values["url"]
        if not name or not name.strip():
            raise ConfigError(f"{label}: 'name' is required (a non-empty string)")
        if not url or not url.lower().startswith(("rtsp://", "rtsps://")):
            raise ConfigError(f"{label} ({name!r}): 'url' must be an rtsp:// or rtsps:// URL")
        if any(c.name == name for c in cameras):
            raise ConfigError(f"{where}: camera names must be unique (repeated: {name})")
        cameras.append(
            Camera(name=name, url=url, username=values["username"], password=values["password"])
        )
    return tuple(cameras)


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
