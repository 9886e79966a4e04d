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
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, TypeAlias

from softphone.config_audio import (
    AUDIO_KEYS,
    DEFAULT_ECHO_CANCELLATION,
    AudioOptionError,
    audio_options_to_dict,
    parse_audio_options,
)
from softphone.config_calls import (
    DEFAULT_PRACK,
    DEFAULT_SESSION_EXPIRES_S,
    CallOptionError,
    PrackMode,
    parse_call_options,
)
from softphone.config_cameras import (
    Camera,
    CameraSource,
    CameraTableError,
    parse_cameras,
    rtsp_place,
)
from softphone.config_forwarding import (
    FORWARDING_KEYS,
    Forwarding,
    ForwardingError,
    forwarding_to_dict,
    parse_forwarding,
)
from softphone.config_nat import (
    NAT_KEYS,
    NatError,
    NatTraversal,
    nat_to_dict,
    parse_host_port,
    parse_nat,
)
from softphone.files import write_file

if TYPE_CHECKING:  # the SIP modules load with the first [[account]]: `softphone play` needs none
    from softphone.sip.uri import SipUri

# The config file's own words for an account's transport. The SIP core spells them the same
# (softphone.sip.address.TransportName; tests/test_config.py checks they agree), but a front
# end that edits the config needs no SIP module to know them.
TransportName: TypeAlias = Literal["udp", "tcp", "tls"]
TRANSPORTS: Final[tuple[TransportName, ...]] = ("udp", "tcp", "tls")
# What an account may publish as its presence (softphone.sip.pidf.PUBLISHED_STATES spells them
# the same; tests/test_config.py checks they agree).
PresenceStateName: TypeAlias = Literal["available", "away", "busy", "dnd"]
PRESENCE_STATES: Final[tuple[PresenceStateName, ...]] = ("available", "away", "busy", "dnd")
# An account's media encryption, in the config file's words (softphone.sdp.MediaEncryption has the
# same values; tests/test_config.py checks they agree).
MediaEncryptionName: TypeAlias = Literal["none", "srtp-optional", "srtp", "dtls-srtp"]
MEDIA_ENCRYPTIONS: Final[tuple[MediaEncryptionName, ...]] = (
    "none",
    "srtp-optional",
    "srtp",
    "dtls-srtp",
)
DEFAULT_MEDIA_ENCRYPTION: Final[MediaEncryptionName] = "srtp-optional"

APP_NAME: Final = "softphone"
DEFAULT_SIP_PORT: Final = 5060
DEFAULT_RTP_PORTS: Final = (16384, 32767)
DEFAULT_CODECS: Final = ("opus", "G722", "PCMU", "PCMA")
KNOWN_CODECS: Final = {c.lower(): c for c in DEFAULT_CODECS}
DeviceSpec = str | int | None


class ConfigError(Exception):
    """The configuration file is missing, unreadable or wrong; the message says where."""


DEFAULT_BINDING_CHECK_S: Final = 20


@dataclass(frozen=True, slots=True)
class Account:
    """One SIP account ([[account]] in the config file)."""

    name: str
    uri: SipUri
    password: str | None = None
    username: str | None = None
    display_name: str | None = None
    registrar: SipUri | None = None
    proxy: SipUri | None = None
    transport: TransportName = "udp"
    tls_ca_file: Path | None = None
    # The user's certificate (PEM, the chain after it) and its unencrypted key; both or neither,
    # checked to match when the config is read.
    tls_certificate: Path | None = None
    tls_private_key: Path | None = None
    expires: int = 3600
    presence: bool | None = None  # None: on when the account has a registrar
    presence_state: PresenceStateName = "available"

    @property
    def presence_enabled(self) -> bool:
        return self.presence if self.presence is not None else self.registrar is not None

    # How often to ask the registrar whether it still has our binding (RFC 3261 §10.2.3, a
    # REGISTER without Contact); 0 never asks. A registrar that restarts with its bindings in
    # memory loses them without telling anyone: this is how we find out and register again.
    binding_check: int = DEFAULT_BINDING_CHECK_S
    only_from_proxy: bool = False  # calls (any out-of-dialog request) only via registrar/proxy
    # RFC 3262 reliable provisional responses: "off", "supported" (PRACK what comes reliably;
    # ours reliable when the caller requires it) or "required" (our INVITE requires 100rel, and
    # a caller that does not support it gets 421).
    prack: PrackMode = DEFAULT_PRACK
    # RFC 4028 session timer: the interval asked for and accepted, 0 for none. A call whose
    # session is not refreshed in time ends ("session expired").
    session_expires: int = DEFAULT_SESSION_EXPIRES_S
    # "HOST[:PORT]" (port 3478 by default): where to ask for our public address (RFC 8489) for
    # the SDP when behind a NAT.
    stun_server: str | None = None
    # ICE and TURN (config_nat.py)
    nat: NatTraversal = field(default_factory=NatTraversal)
    media_encryption: MediaEncryptionName = DEFAULT_MEDIA_ENCRYPTION
    # forwarding and do-not-disturb (config_forwarding.py)
    forwarding: Forwarding = field(default_factory=Forwarding)

    @property
    def auth_username(self) -> str:
        return self.username or self.uri.user or self.name

    @property
    def domain(self) -> str:
        """The host part of the address of record ("example.com" for sip:alice@example.com)."""
        return self.uri.host

    def __repr__(self) -> str:  # never show the password, even in a traceback or a log
        return f"Account(name={self.name!r}, uri={str(self.uri)!r}, transport={self.transport!r})"


@dataclass(frozen=True, slots=True)
class Config:
    """Everything the config file says, with the defaults for what it leaves out."""

    accounts: tuple[Account, ...] = ()
    sip_port: int | None = None  # None: the default 5060, falling back to a free port when taken
    sip_tls_port: int | None = None  # None: the default 5061, with the same fallback
    rtp_port_min: int = DEFAULT_RTP_PORTS[0]
    rtp_port_max: int = DEFAULT_RTP_PORTS[1]
    user_agent: str = "softphone"
    do_not_disturb: bool = False
    codecs: tuple[str, ...] = DEFAULT_CODECS
    input_device: DeviceSpec = None
    output_device: DeviceSpec = None
    ring_device: DeviceSpec = None
    recordings_dir: Path | None = None  # None: default_data_dir() / "recordings"
    voicemail_dir: Path | None = None  # None: default_data_dir() / "voicemail"
    echo_cancellation: bool = DEFAULT_ECHO_CANCELLATION  # on the sound card (config_audio.py)
    cameras: tuple[Camera, ...] = ()
    video_device: str | None = None  # a V4L2 camera for video calls (/dev/video0)
    path: Path | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)  # keys we do not know, kept on save

    def account(self, name: str | None = None) -> Account:
        if not self.accounts:
            raise ConfigError("no account is configured")
        if name is None:
            return self.accounts[0]
        for acct in self.accounts:
            if acct.name == name:
                return acct
        names = ", ".join(a.name for a in self.accounts)
        raise ConfigError(f"no account named {name!r} (configured: {names})")

    def with_camera(self, camera: Camera) -> Config:
        """This config with ``camera`` in place of the camera of the same name, or added."""
        if any(c.name == camera.name for c in self.cameras):
            cameras = tuple(camera if c.name == camera.name else c for c in self.cameras)
        else:
            cameras = (*self.cameras, camera)
        return replace(self, cameras=cameras)

    def camera_source(self, text: str, *, match_host: bool = True) -> CameraSource:
        """Where ``text`` plays from: the ``[[camera]]`` named ``text``, with its credentials;
        else ``text`` as a URL, with (``match_host``) the credentials of a camera on the same
        host and port, unless the URL carries its own (they win). Text that is neither a camera
        name nor a URL (no ``scheme://``) raises ConfigError naming the configured cameras;
        whether a URL is a usable RTSP URL is for the player to say.

        ``match_host=False`` leaves a URL's credentials to the player, which looks them up for
        the URL it actually connects to (a redirect may lead to another host)."""
        for camera in self.cameras:
            if camera.name == text:
                return CameraSource(camera.url, camera.credentials, camera.name)
        if "://" not in text:
            from softphone.rtsp.url import redact  # "admin:pw@cam/x" must not show the pw

            names = ", ".join(c.name for c in self.cameras)
            known = f"cameras in the config: {names}" if names else "no cameras in the config"
            raise ConfigError(
                f"{redact(text)!r} is not an RTSP URL or the name of a camera ({known})"
            )
        place = rtsp_place(text) if match_host else None
        if place is None or place[2]:
            return CameraSource(text)
        for camera in self.cameras:
            at = rtsp_place(camera.url)
            if camera.username is not None and at is not None and at[:2] == place[:2]:
                return CameraSource(text, camera.credentials, camera.name)
        return CameraSource(text)


def default_config_path() -> Path:
    from platformdirs import user_config_path

    return user_config_path(APP_NAME) / "config.toml"


def default_state_dir() -> Path:
    from platformdirs import user_state_path

    return user_state_path(APP_NAME)


def default_data_dir() -> Path:
    from platformdirs import user_data_path

    return user_data_path(APP_NAME)


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
