"""What the config file says, as frozen dataclasses: :class:`Config` (the file) and
:class:`Account` (one ``[[account]]``), the file's own words for an account's choices, the
defaults, and :class:`ConfigError`. config_parse.py fills them in from TOML, config.py reads and
writes the file; everything here is imported from config.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, TypeAlias

from softphone.config_audio import DEFAULT_ECHO_CANCELLATION
from softphone.config_calls import DEFAULT_PRACK, DEFAULT_SESSION_EXPIRES_S, PrackMode
from softphone.config_cameras import Camera, CameraSource, rtsp_place
from softphone.config_forwarding import Forwarding
from softphone.config_nat import NatTraversal

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
