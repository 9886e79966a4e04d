"""Configuration: frozen dataclasses read from TOML, passed down, never read from a global.

The file lives at the XDG config path (``$XDG_CONFIG_HOME/softphone/config.toml``) unless
``--config PATH`` says otherwise. Its shape is a contract other tools rely on::

    sip_port = 5060                   # top-level keys are global settings
    sip_tls_port = 5061               # the TLS listener (when an account uses TLS or has a
                                      # certificate); left out: 5061, or a free port when taken
    [[account]]
    name = "alice"
    uri = "sip:alice@lab.test"        # address of record
    password = "alicepw"
    username = "alice"                # optional auth user (default: the URI's user)
    registrar = "sip:127.0.0.1:5070"  # optional: omit for no registration
    proxy = "sip:127.0.0.1:5070"      # optional outbound proxy
    transport = "udp"                 # udp | tcp | tls
    # tls_ca_file = "/path/ca.pem"    # optional: trust a private CA (or a peer's certificate)
    # tls_certificate = "/path/cert.pem"  # optional, with tls_private_key: what our TLS listener
    # tls_private_key = "/path/key.pem"   # presents, and our client certificate (mutual TLS)
    # presence = true                 # publish our presence, watch contacts, message waiting
    #                                 # (default: on when the account has a registrar)
    # presence_state = "available"    # available | away | busy | dnd, the state at start
    # binding_check = 20              # seconds between asking the registrar for our binding (0: never)
    # only_from_proxy = true          # requests that bypass registrar/proxy: 403 (default false)
    # prack = "supported"             # reliable 1xx (RFC 3262): off | supported | required
    # session_expires = 1800          # session timer (RFC 4028) in seconds, 90..86400; 0: off
    # stun_server = "stun.example.com:3478"  # optional: learn the public address for media
    # forward_always = "sip:bob@example.com"   # forwarding and do-not-disturb: see
    # do_not_disturb = true                    # softphone/config_forwarding.py
    media_encryption = "srtp-optional"  # none | srtp-optional | srtp | dtls-srtp (default shown)

TLS: without ``tls_certificate`` the listener presents a self-signed certificate made on first
use (``tls-certificate.pem`` in the data directory, its key ``tls-key.pem`` 0600 beside it);
another phone calling us directly trusts it by naming that certificate in its ``tls_ca_file``.
An account without registrar or proxy trusts its ``tls_ca_file`` for the calls it makes directly.

``media_encryption``: "none" sends plain RTP and refuses encrypted offers; "srtp-optional" offers
SDES keys inside RTP/AVP (RFC 4568 best effort) and accepts plain or encrypted media; "srtp"
offers RTP/SAVP and refuses plain RTP; "dtls-srtp" offers UDP/TLS/RTP/SAVP (RFC 5764) and refuses
plain RTP.

Audio keys (all optional, top level)::

    codecs = ["opus", "G722", "PCMU", "PCMA"]   # offer order (the default shown)
    input_device = "USB"              # a device index or part of its name (`softphone devices`)
    output_device = 3
    ring_device = "speakers"          # where incoming calls ring (default: output_device)
    recordings_dir = "~/calls"        # default: <XDG data dir>/softphone/recordings
    voicemail_dir = "~/voicemail"     # default: <XDG data dir>/softphone/voicemail
    video_device = "/dev/video0"      # the camera of video calls (default: a test pattern)
    echo_cancellation = true          # echo canceller and noise suppressor on the
                                      # sound card (default true; never for --play/--record)

Cameras and media servers for ``softphone play`` (``softphone play frontdoor`` plays one by name;
a URL on the same host and port uses its credentials)::

    [[camera]]
    name = "frontdoor"
    url = "rtsp://192.168.1.20/Streaming/Channels/101"
    username = "admin"                # optional; credentials in the URL win
    password = "p@ss#1"               # optional; special characters need no escaping here

Every mistake is reported as a ConfigError naming the file and the key. Writing is atomic (a
temporary file in the same directory, fsync, rename) with mode 0600, so a crash never leaves a
half-written config and passwords are never world-readable. A config that others can read and
that holds a password is still read, never silently (softphone/config_privacy.py).

What softphone keeps of its own is private too (:func:`private_dir`, :func:`private_file`): the
state directory and its log (every SIP message at DEBUG), the data directory with the call
history and recordings: directories 0700, files 0600, and existing ones are tightened.

The pieces: config_model.py holds the dataclasses (Config, Account, ConfigError, the words and
defaults), config_parse.py the checks that fill them in (:func:`parse_config`); this module
finds, reads and writes the file, and is where everyone imports all of it from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from softphone.config_audio import audio_options_to_dict
from softphone.config_calls import DEFAULT_PRACK, DEFAULT_SESSION_EXPIRES_S, PrackMode
from softphone.config_cameras import Camera, CameraSource
from softphone.config_forwarding import Forwarding, forwarding_to_dict
from softphone.config_model import (
    APP_NAME,
    DEFAULT_BINDING_CHECK_S,
    DEFAULT_CODECS,
    DEFAULT_MEDIA_ENCRYPTION,
    DEFAULT_RTP_PORTS,
    DEFAULT_SIP_PORT,
    KNOWN_CODECS,
    MEDIA_ENCRYPTIONS,
    PRESENCE_STATES,
    TRANSPORTS,
    Account,
    Config,
    ConfigError,
    DeviceSpec,
    MediaEncryptionName,
    PresenceStateName,
    TransportName,
)
from softphone.config_nat import NatTraversal, nat_to_dict, parse_host_port
from softphone.config_parse import parse_config
from softphone.files import write_file

# Re-exported: the front ends, the phone, the benches and the tests import all of these from here.
__all__ = [
    "APP_NAME",
    "DEFAULT_BINDING_CHECK_S",
    "DEFAULT_CODECS",
    "DEFAULT_MEDIA_ENCRYPTION",
    "DEFAULT_RTP_PORTS",
    "DEFAULT_SIP_PORT",
    "KNOWN_CODECS",
    "MEDIA_ENCRYPTIONS",
    "PRESENCE_STATES",
    "TRANSPORTS",
    "Account",
    "Camera",
    "CameraSource",
    "Config",
    "ConfigError",
    "DeviceSpec",
    "Forwarding",
    "MediaEncryptionName",
    "NatTraversal",
    "PrackMode",
    "PresenceStateName",
    "TransportName",
    "config_to_dict",
    "default_config_path",
    "default_data_dir",
    "default_state_dir",
    "load_config",
    "parse_config",
    "parse_config_bytes",
    "parse_host_port",
    "save_config",
]


def default_config_path() -> Path:
    from platformdirs import user_config_path

    return user_config_path(APP_NAME) / "config.toml"


def default_state_dir() -> Path:
    from platformdirs import user_state_path

    return user_state_path(APP_NAME)


def default_data_dir() -> Path:
    from platformdirs import user_data_path

    return user_data_path(APP_NAME)


def load_config(path: Path | None = None, *, required: bool = False) -> Config:
    """Read the config. A missing file at the default path gives an empty Config (unless
    ``required``); a missing file named explicitly is an error."""
    explicit = path is not None
    path = path or default_config_path()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        if explicit or required:
            raise ConfigError(f"{path}: no such file") from None
        return Config(path=path)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    return parse_config_bytes(raw, path=path)


def parse_config_bytes(raw: bytes, *, path: Path | None = None) -> Config:
    """The config in ``raw``, the bytes of a TOML file; every problem is a ConfigError."""
    import tomllib

    where = str(path) if path else "config"
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: invalid TOML: {exc}") from None
    return parse_config(data, path=path)


def config_to_dict(config: Config) -> dict[str, Any]:
    out: dict[str, Any] = dict(config.extra)
    if config.sip_port is not None:
        out["sip_port"] = config.sip_port
    if config.sip_tls_port is not None:
        out["sip_tls_port"] = config.sip_tls_port
    if (config.rtp_port_min, config.rtp_port_max) != DEFAULT_RTP_PORTS:
        out["rtp_port_min"], out["rtp_port_max"] = config.rtp_port_min, config.rtp_port_max
    if config.user_agent != "softphone":
        out["user_agent"] = config.user_agent
    if config.do_not_disturb:
        out["do_not_disturb"] = True
    if config.codecs != DEFAULT_CODECS:
        out["codecs"] = list(config.codecs)
    for key in ("input_device", "output_device", "ring_device", "video_device"):
        if getattr(config, key) is not None:
            out[key] = getattr(config, key)
    for key in ("recordings_dir", "voicemail_dir"):
        if getattr(config, key) is not None:
            out[key] = str(getattr(config, key))
    out.update(audio_options_to_dict(config.echo_cancellation))
    accounts = []
    for a in config.accounts:
        entry: dict[str, Any] = {"name": a.name, "uri": str(a.uri)}
        for key in ("password", "username", "display_name"):
            if getattr(a, key) is not None:
                entry[key] = getattr(a, key)
        if a.registrar is not None:
            entry["registrar"] = str(a.registrar)
        if a.proxy is not None:
            entry["proxy"] = str(a.proxy)
        entry["transport"] = a.transport
        for key in ("tls_ca_file", "tls_certificate", "tls_private_key"):
            if getattr(a, key) is not None:
                entry[key] = str(getattr(a, key))
        if a.expires != 3600:
            entry["expires"] = a.expires
        if a.presence is not None:
            entry["presence"] = a.presence
        if a.presence_state != "available":
            entry["presence_state"] = a.presence_state
        if a.binding_check != DEFAULT_BINDING_CHECK_S:
            entry["binding_check"] = a.binding_check
        if a.only_from_proxy:
            entry["only_from_proxy"] = True
        if a.prack != DEFAULT_PRACK:
            entry["prack"] = a.prack
        if a.session_expires != DEFAULT_SESSION_EXPIRES_S:
            entry["session_expires"] = a.session_expires
        if a.stun_server is not None:
            entry["stun_server"] = a.stun_server
        entry.update(nat_to_dict(a.nat))
        if a.media_encryption != DEFAULT_MEDIA_ENCRYPTION:
            entry["media_encryption"] = a.media_encryption
        entry.update(forwarding_to_dict(a.forwarding))
        accounts.append(entry)
    if accounts:
        out["account"] = accounts
    if config.cameras:
        out["camera"] = [
            {
                k: v
                for k, v in (
                    ("name", c.name),
                    ("url", c.url),
                    ("username", c.username),
                    ("password", c.password),
                )
                if v is not None
            }
            for c in config.cameras
        ]
    return out


def save_config(config: Config, path: Path | None = None) -> Path:
    """Write atomically with mode 0600: a crash leaves either the old file or the new one."""
    import tomli_w

    path = path or config.path or default_config_path()
    write_file(path, tomli_w.dumps(config_to_dict(config)).encode("utf-8"))
    return path
