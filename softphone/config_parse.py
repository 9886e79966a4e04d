"""Checking what the config file says: :func:`parse_config` turns the TOML tables into a
:class:`~softphone.config_model.Config`, every mistake a ConfigError naming the file and the key
(the account's own table, the global keys, each value: ports, codecs, devices, paths, SIP URIs,
a TLS certificate and its key). Imported from config.py, which reads the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from softphone.config_audio import AUDIO_KEYS, AudioOptionError, parse_audio_options
from softphone.config_calls import CallOptionError, parse_call_options
from softphone.config_cameras import Camera, CameraTableError, parse_cameras
from softphone.config_forwarding import FORWARDING_KEYS, ForwardingError, parse_forwarding
from softphone.config_model import (
    DEFAULT_BINDING_CHECK_S,
    DEFAULT_CODECS,
    DEFAULT_MEDIA_ENCRYPTION,
    DEFAULT_RTP_PORTS,
    KNOWN_CODECS,
    MEDIA_ENCRYPTIONS,
    PRESENCE_STATES,
    TRANSPORTS,
    Account,
    Config,
    ConfigError,
    DeviceSpec,
)
from softphone.config_nat import NAT_KEYS, NatError, parse_host_port, parse_nat

if TYPE_CHECKING:  # the SIP modules load with the first [[account]]: `softphone play` needs none
    from softphone.sip.uri import SipUri

__all__ = ["parse_config"]


_ACCOUNT_KEYS: Final = frozenset(
    {
        "name",
        "uri",
        "password",
        "username",
        "display_name",
        "registrar",
        "proxy",
        "transport",
        "tls_ca_file",
        "tls_certificate",
        "tls_private_key",
        "expires",
        "presence",
        "presence_state",
        "binding_check",
        "only_from_proxy",
        "prack",
        "session_expires",
        "stun_server",
        *NAT_KEYS,
        "media_encryption",
        *FORWARDING_KEYS,
    }
)
_GLOBAL_KEYS: Final = frozenset(
    {
        "account",
        "sip_port",
        "sip_tls_port",
        "rtp_port_min",
        "rtp_port_max",
        "user_agent",
        "do_not_disturb",
        "codecs",
        "input_device",
        "output_device",
        "ring_device",
        "recordings_dir",
        "voicemail_dir",
        "camera",
        "video_device",
        *AUDIO_KEYS,
    }
)


def parse_config(data: Mapping[str, Any], *, path: Path | None = None) -> Config:
    where = str(path) if path else "config"
    raw_accounts = data.get("account", [])
    if not isinstance(raw_accounts, list) or not all(isinstance(a, dict) for a in raw_accounts):
        raise ConfigError(f"{where}: 'account' must be an array of tables ([[account]])")
    accounts = tuple(_parse_account(a, i, where) for i, a in enumerate(raw_accounts))
    names = [a.name for a in accounts]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"{where}: account names must be unique (repeated: {', '.join(dupes)})")
    sip_port = data.get("sip_port")
    if sip_port is not None:
        sip_port = _port(sip_port, f"{where}: sip_port", allow_zero=True)
    sip_tls_port = data.get("sip_tls_port")
    if sip_tls_port is not None:
        sip_tls_port = _port(sip_tls_port, f"{where}: sip_tls_port", allow_zero=True)
    rtp_min = _port(data.get("rtp_port_min", DEFAULT_RTP_PORTS[0]), f"{where}: rtp_port_min")
    rtp_max = _port(data.get("rtp_port_max", DEFAULT_RTP_PORTS[1]), f"{where}: rtp_port_max")
    if rtp_max <= rtp_min:
        raise ConfigError(
            f"{where}: rtp_port_max ({rtp_max}) must be above rtp_port_min ({rtp_min})"
        )
    user_agent = data.get("user_agent", "softphone")
    if not isinstance(user_agent, str):
        raise ConfigError(f"{where}: user_agent must be a string")
    dnd = data.get("do_not_disturb", False)
    if not isinstance(dnd, bool):
        raise ConfigError(f"{where}: do_not_disturb must be true or false")
    codecs = _codecs(data.get("codecs", list(DEFAULT_CODECS)), f"{where}: codecs")
    devices = {
        key: _device(data.get(key), f"{where}: {key}")
        for key in ("input_device", "output_device", "ring_device")
    }
    dirs: dict[str, Path | None] = {}
    for key in ("recordings_dir", "voicemail_dir"):
        if (value := data.get(key)) is not None and (
            not isinstance(value, str) or not value.strip()
        ):
            raise ConfigError(f"{where}: {key} must be a directory path")
        dirs[key] = None if value is None else _expanded(value, f"{where}: {key}")
    try:
        echo_cancellation = parse_audio_options(data)
    except AudioOptionError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    try:
        cameras = tuple(
            Camera(
                name=str(c["name"]),
                url=str(c["url"]),
                username=c["username"],
                password=c["password"],
            )
            for c in parse_cameras(data.get("camera", []), where)
        )
    except CameraTableError as exc:
        raise ConfigError(str(exc)) from None
    video_device = data.get("video_device")
    if video_device is not None and (not isinstance(video_device, str) or not video_device):
        raise ConfigError(f"{where}: video_device must be a device path such as /dev/video0")
    extra = {k: v for k, v in data.items() if k not in _GLOBAL_KEYS}
    return Config(
        accounts=accounts,
        sip_port=sip_port,
        sip_tls_port=sip_tls_port,
        rtp_port_min=rtp_min,
        rtp_port_max=rtp_max,
        user_agent=user_agent,
        do_not_disturb=dnd,
        codecs=codecs,
        input_device=devices["input_device"],
        output_device=devices["output_device"],
        ring_device=devices["ring_device"],
        recordings_dir=dirs["recordings_dir"],
        voicemail_dir=dirs["voicemail_dir"],
        echo_cancellation=echo_cancellation,
        cameras=cameras,
        video_device=video_device,
        path=path,
        extra=extra,
    )


def _parse_account(raw: Mapping[str, Any], index: int, where: str) -> Account:
    label = f"{where}: account #{index + 1}"
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{label}: 'name' is required (a non-empty string)")
    label = f"{where}: account {name!r}"
    unknown = sorted(set(raw) - _ACCOUNT_KEYS)
    if unknown:
        raise ConfigError(f"{label}: unknown key(s) {', '.join(unknown)}")
    uri = _sip_uri(raw.get("uri"), f"{label}: uri", required=True)
    assert uri is not None
    if not uri.user:
        raise ConfigError(f"{label}: uri {str(uri)!r} needs a user part (sip:user@domain)")
    transport = raw.get("transport", "udp")
    if transport not in TRANSPORTS:
        raise ConfigError(f"{label}: transport must be one of udp, tcp, tls (not {transport!r})")
    strings = {}
    for key in ("password", "username", "display_name"):
        value = raw.get(key)
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{label}: {key} must be a string")
        strings[key] = value
    ca_file = raw.get("tls_ca_file")
    ca_path: Path | None = None
    if ca_file is not None:
        if not isinstance(ca_file, str):
            raise ConfigError(f"{label}: tls_ca_file must be a path string")
        ca_path = _expanded(ca_file, f"{label}: tls_ca_file")
    tls_certificate, tls_private_key = _tls_identity(raw, label)
    expires = raw.get("expires", 3600)
    if not isinstance(expires, int) or isinstance(expires, bool) or not 10 <= expires <= 86400:
        raise ConfigError(f"{label}: expires must be a whole number of seconds from 10 to 86400")
    presence = raw.get("presence")
    if presence is not None and not isinstance(presence, bool):
        raise ConfigError(f"{label}: presence must be true or false")
    presence_state = raw.get("presence_state", "available")
    if presence_state not in PRESENCE_STATES:
        raise ConfigError(
            f"{label}: presence_state must be one of {', '.join(PRESENCE_STATES)}"
            f" (not {presence_state!r})"
        )
    check = raw.get("binding_check", DEFAULT_BINDING_CHECK_S)
    if not isinstance(check, int) or isinstance(check, bool) or not 0 <= check <= 86400:
        raise ConfigError(
            f"{label}: binding_check must be a whole number of seconds from 0 (never) to 86400"
        )
    only_from_proxy = raw.get("only_from_proxy", False)
    if not isinstance(only_from_proxy, bool):
        raise ConfigError(f"{label}: only_from_proxy must be true or false")
    if only_from_proxy and raw.get("registrar") is None and raw.get("proxy") is None:
        raise ConfigError(
            f"{label}: only_from_proxy needs a registrar or proxy (calls would come from nowhere)"
        )
    try:
        prack, session_expires = parse_call_options(raw)
    except CallOptionError as exc:
        raise ConfigError(f"{label}: {exc}") from None
    stun_server = raw.get("stun_server")
    if stun_server is not None and (
        not isinstance(stun_server, str) or parse_host_port(stun_server) is None
    ):
        raise ConfigError(f'{label}: stun_server must be "HOST[:PORT]" (not {stun_server!r})')
    try:
        nat = parse_nat(raw)
    except NatError as exc:
        raise ConfigError(f"{label}: {exc}") from None
    encryption = raw.get("media_encryption", DEFAULT_MEDIA_ENCRYPTION)
    if encryption not in MEDIA_ENCRYPTIONS:
        raise ConfigError(
            f"{label}: media_encryption must be one of {', '.join(MEDIA_ENCRYPTIONS)} "
            f"(not {encryption!r})"
        )
    try:
        forwarding = parse_forwarding(raw, aor=str(uri), domain=uri.host)
    except ForwardingError as exc:
        raise ConfigError(f"{label}: {exc}") from None
    return Account(
        name=name,
        uri=uri,
        password=strings["password"],
        username=strings["username"],
        display_name=strings["display_name"],
        registrar=_sip_uri(raw.get("registrar"), f"{label}: registrar"),
        proxy=_sip_uri(raw.get("proxy"), f"{label}: proxy"),
        transport=transport,
        tls_ca_file=ca_path,
        tls_certificate=tls_certificate,
        tls_private_key=tls_private_key,
        expires=expires,
        presence=presence,
        presence_state=presence_state,
        binding_check=check,
        only_from_proxy=only_from_proxy,
        prack=prack,
        session_expires=session_expires,
        stun_server=stun_server,
        nat=nat,
        media_encryption=encryption,
        forwarding=forwarding,
    )


def _tls_identity(raw: Mapping[str, Any], label: str) -> tuple[Path | None, Path | None]:
    """``tls_certificate`` and ``tls_private_key``: both or neither, readable, and the key the
    certificate's (checked now, not at the first handshake)."""
    paths: dict[str, Path | None] = {}
    for key in ("tls_certificate", "tls_private_key"):
        value = raw.get(key)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ConfigError(f"{label}: {key} must be a path string")
        paths[key] = None if value is None else _expanded(value, f"{label}: {key}")
    certificate, private_key = paths["tls_certificate"], paths["tls_private_key"]
    if certificate is None and private_key is None:
        return None, None
    if certificate is None or private_key is None:
        given, missing = (
            ("tls_certificate", "tls_private_key")
            if private_key is None
            else ("tls_private_key", "tls_certificate")
        )
        raise ConfigError(f"{label}: {given} needs {missing} too")
    from softphone.keys import KeyPairError, check_key_pair

    try:
        check_key_pair(certificate, private_key)
    except KeyPairError as exc:
        text = str(exc)
        key = "tls_certificate" if text.startswith(f"{certificate}:") else "tls_private_key"
        raise ConfigError(f"{label}: {key}: {text}") from None
    return certificate, private_key


def _expanded(text: str, label: str) -> Path:
    """``text`` as a path with ``~`` or ``~user`` expanded; a user without a home directory is
    a mistake in the file, said as one (Path.expanduser raises RuntimeError for it)."""
    try:
        return Path(text).expanduser()
    except RuntimeError:
        user = text.split("/", 1)[0]
        raise ConfigError(f"{label}: {user!r} is not a user with a home directory") from None


def _sip_uri(value: object, label: str, *, required: bool = False) -> SipUri | None:
    if value is None:
        if required:
            raise ConfigError(f"{label} is required")
        return None
    if not isinstance(value, str):
        raise ConfigError(f'{label} must be a string like "sip:host:port"')
    text = value.strip()
    if not text.lower().startswith(("sip:", "sips:")):
        text = "sip:" + text
    from softphone.sip.errors import ParseError
    from softphone.sip.uri import SipUri

    try:
        return SipUri.parse(text)
    except ParseError as exc:
        raise ConfigError(f"{label}: {value!r} is not a SIP URI ({exc})") from None


def _port(value: object, label: str, *, allow_zero: bool = False) -> int:
    low = 0 if allow_zero else 1
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= 65535:
        raise ConfigError(f"{label} must be a port number ({low}-65535), not {value!r}")
    return value


def _codecs(value: object, label: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(c, str) for c in value):
        raise ConfigError(
            f"{label} must be a non-empty list of codec names, e.g. {list(DEFAULT_CODECS)}"
        )
    out: list[str] = []
    for name in value:
        known = KNOWN_CODECS.get(name.lower())
        if known is None:
            raise ConfigError(
                f"{label}: unknown codec {name!r} (known: {', '.join(DEFAULT_CODECS)})"
            )
        if known not in out:
            out.append(known)
    return tuple(out)


def _device(value: object, label: str) -> DeviceSpec:
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, str))
        or (isinstance(value, int) and value < 0)
    ):
        raise ConfigError(f"{label} must be a device index or part of a device name, not {value!r}")
    if isinstance(value, str) and not value.strip():
        raise ConfigError(f"{label} must not be empty (leave it out for the default device)")
    return value
