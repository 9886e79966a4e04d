"""The config file: the documented shape, clear errors naming the key, atomic 0600 writes."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import get_args

import pytest

from softphone.config import (
    DEFAULT_BINDING_CHECK_S,
    ConfigError,
    config_to_dict,
    load_config,
    parse_config,
    parse_host_port,
    save_config,
)

EXAMPLE = """\
sip_port = 5070

[[account]]
name = "alice"
uri = "sip:alice@lab.test"
password = "alicepw"
username = "alice"
registrar = "sip:127.0.0.1:5070"
proxy = "sip:127.0.0.1:5070"
transport = "udp"

[[account]]
name = "work"
uri = "sip:1001@pbx.example.com"
password = "s3cret"
transport = "tls"
tls_ca_file = "/etc/ssl/private-ca.pem"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_the_documented_shape_loads(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, EXAMPLE))
    assert config.sip_port == 5070
    alice, work = config.accounts
    assert str(alice.uri) == "sip:alice@lab.test" and alice.password == "alicepw"
    assert str(alice.registrar) == "sip:127.0.0.1:5070" and alice.transport == "udp"
    assert work.registrar is None and work.auth_username == "1001"
    assert work.tls_ca_file == Path("/etc/ssl/private-ca.pem")
    assert config.account() is alice and config.account("work") is work


def test_password_never_in_repr(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, EXAMPLE))
    assert "alicepw" not in repr(config.accounts[0]) and "s3cret" not in repr(config)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[account]]\nname='a'\n", "account 'a': uri is required"),
        ("[[account]]\nuri='sip:a@b'\n", "'name' is required"),
        (
            "[[account]]\nname='a'\nuri='sip:a@b'\ntransport='sctp'\n",
            "transport must be one of udp, tcp, tls",
        ),
        ("[[account]]\nname='a'\nuri='sip:b'\n", "needs a user part"),
        ("[[account]]\nname='a'\nuri='sip:a@b'\ncolour='red'\n", "unknown key(s) colour"),
        (
            "[[account]]\nname='a'\nuri='sip:a@b'\n[[account]]\nname='a'\nuri='sip:c@d'\n",
            "must be unique",
        ),
        ("sip_port = 70000\n", "sip_port must be a port number"),
        ("rtp_port_min = 20000\nrtp_port_max = 10000\n", "must be above rtp_port_min"),
        ("[[account]\n", "invalid TOML"),
        ("codecs = ['speex']\n", "codecs: unknown codec 'speex'"),
        ("codecs = []\n", "codecs must be a non-empty list"),
        ("codecs = 'opus'\n", "codecs must be a non-empty list"),
        ("input_device = true\n", "input_device must be a device index or part of a device name"),
        ("output_device = -1\n", "output_device must be a device index"),
        ("ring_device = ' '\n", "ring_device must not be empty"),
        ("recordings_dir = 3\n", "recordings_dir must be a directory path"),
        (
            "[[account]]\nname='a'\nuri='sip:a@b'\npresence='yes'\n",
            "presence must be true or false",
        ),
        (
            "[[account]]\nname='a'\nuri='sip:a@b'\npresence_state='asleep'\n",
            "presence_state must be one of available, away, busy, dnd (not 'asleep')",
        ),
        (
            "recordings_dir = '~nosuchuser-softphone/calls'\n",
            "recordings_dir: '~nosuchuser-softphone' is not a user with a home directory",
        ),
        (
            "[[account]]\nname='a'\nuri='sip:a@b'\ntls_ca_file='~nosuchuser-softphone/ca.pem'\n",
            "tls_ca_file: '~nosuchuser-softphone' is not a user with a home directory",
        ),
        (
            "[[account]]\nname='a'\nuri='sip:a@b'\nbinding_check=-1\n",
            "binding_check must be a whole number of seconds from 0 (never) to 86400",
        ),
    ],
)
def test_mistakes_name_the_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert message in str(info.value) and str(path) in str(info.value)


def test_missing_explicit_file_is_an_error_but_missing_default_is_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "nope.toml")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert load_config().accounts == ()


def test_save_is_0600_round_trips_and_keeps_unknown_top_level_keys(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, EXAMPLE + "\n[future]\nsetting = 1\n"))
    target = tmp_path / "sub" / "saved.toml"
    save_config(config, target)
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    again = load_config(target)
    assert again.accounts == config.accounts and again.sip_port == 5070
    assert again.extra["future"] == {"setting": 1}
    assert [p.name for p in target.parent.iterdir()] == ["saved.toml"]  # no temp file left


def test_a_failed_save_leaves_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, EXAMPLE)
    config = load_config(path)
    import tomli_w

    def boom(_: object) -> str:
        raise RuntimeError("disk full")

    monkeypatch.setattr(tomli_w, "dumps", boom)
    with pytest.raises(RuntimeError):
        save_config(config, path)
    assert path.read_text() == EXAMPLE
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml"]


def test_audio_keys_load_normalise_and_round_trip(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "codecs = ['pcmu', 'OPUS', 'PCMU']\ninput_device = 'USB'\noutput_device = 3\n"
        "recordings_dir = '~/calls'\n",
    )
    config = load_config(path)
    assert config.codecs == ("PCMU", "opus")  # canonical spelling, first mention wins
    assert config.input_device == "USB" and config.output_device == 3 and config.ring_device is None
    assert config.recordings_dir == Path("~/calls").expanduser()
    save_config(config, path)
    again = load_config(path)
    assert (again.codecs, again.input_device, again.output_device, again.recordings_dir) == (
        config.codecs,
        config.input_device,
        config.output_device,
        config.recordings_dir,
    )


def test_audio_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ""))
    assert config.codecs == ("opus", "G722", "PCMU", "PCMA")
    assert (
        config.input_device is None
        and config.output_device is None
        and config.recordings_dir is None
    )


# --------------------------------------------------------------------------- cameras by name or URL
CAMERAS = parse_config(
    {
        "camera": [
            {
                "name": "door",
                "url": "rtsp://Cam.local/live",
                "username": "admin",
                "password": "s3cret",
            },
            {"name": "yard", "url": "rtsps://[::1]:8322/yard", "username": "viewer"},
            {"name": "open", "url": "rtsp://open.local/x"},
        ]
    }
)


def test_a_camera_name_gives_its_url_and_credentials() -> None:
    source = CAMERAS.camera_source("door")
    assert (source.url, source.credentials, source.camera) == (
        "rtsp://Cam.local/live",
        ("admin", "s3cret"),
        "door",
    )
    assert CAMERAS.camera_source("yard").credentials == ("viewer", "")
    assert CAMERAS.camera_source("open").credentials is None
    assert "s3cret" not in repr(CAMERAS.camera_source("door"))


@pytest.mark.parametrize(
    ("url", "camera"),
    [
        ("rtsp://cam.local:554/other", "door"),  # the scheme's port, the host in any case
        ("rtsps://[::1]:8322/z", "yard"),
        ("rtsp://cam.local:555/", None),  # another port
        ("rtsp://guest:x@cam.local/", None),  # credentials in the URL win
        ("rtsp://guest:p#1@x@cam.local/", None),  # raw "@" and "#" in a camera password
        ("rtsp://open.local/x", None),  # that camera has no credentials
        ("http://cam.local/", None),  # for the player to refuse
    ],
)
def test_a_url_takes_the_credentials_of_a_camera_on_its_host_and_port(
    url: str, camera: str | None
) -> None:
    source = CAMERAS.camera_source(url)
    assert source.url == url and source.camera == camera
    assert (source.credentials is not None) == (camera is not None)
    assert CAMERAS.camera_source(url, match_host=False).credentials is None


def test_neither_url_nor_camera_name_lists_the_cameras() -> None:
    with pytest.raises(ConfigError) as raised:
        CAMERAS.camera_source("garage")
    assert str(raised.value) == (
        "'garage' is not an RTSP URL or the name of a camera"
        " (cameras in the config: door, yard, open)"
    )
    with pytest.raises(ConfigError, match=r"\(no cameras in the config\)"):
        parse_config({}).camera_source("garage")


def test_the_config_spells_transports_as_the_sip_core_does() -> None:
    from softphone.config import TRANSPORTS, TransportName
    from softphone.sip import address

    assert get_args(TransportName) == get_args(address.TransportName) == TRANSPORTS
    assert TRANSPORTS == address.TRANSPORTS


def test_an_accounts_domain_is_its_address_of_record_host() -> None:
    config = parse_config({"account": [{"name": "a", "uri": "sip:alice@example.com"}]})
    assert config.account("a").domain == "example.com"


def test_presence_is_on_with_a_registrar_unless_said_and_round_trips(tmp_path: Path) -> None:
    text = EXAMPLE + 'presence = true\npresence_state = "dnd"\n'  # on the account "work"
    config = load_config(write(tmp_path, text))
    alice, work = config.accounts
    assert (alice.presence, alice.presence_enabled, alice.presence_state) == (
        None,
        True,  # it has a registrar
        "available",
    )
    assert (work.presence, work.presence_enabled, work.presence_state) == (True, True, "dnd")
    off = load_config(write(tmp_path, EXAMPLE.replace('transport = "udp"', "presence = false")))
    assert not off.accounts[0].presence_enabled and not off.accounts[1].presence_enabled
    saved = save_config(config, tmp_path / "again.toml")
    assert load_config(saved).accounts == config.accounts
    assert "presence" not in saved.read_text().split("[[account]]")[1]  # defaults stay out


def test_the_config_spells_presence_states_as_the_sip_core_does() -> None:
    from softphone.config import PRESENCE_STATES, PresenceStateName
    from softphone.phone.events import PresenceChoice
    from softphone.sip import pidf

    assert get_args(PresenceStateName) == PRESENCE_STATES == pidf.PUBLISHED_STATES
    assert get_args(PresenceChoice) == PRESENCE_STATES


def test_binding_check_defaults_can_be_turned_off_and_round_trips(tmp_path: Path) -> None:
    base = "[[account]]\nname='a'\nuri='sip:a@b'\nregistrar='sip:192.0.2.1'\n"
    default = load_config(write(tmp_path, base))
    assert default.accounts[0].binding_check == DEFAULT_BINDING_CHECK_S
    off = load_config(write(tmp_path, base + "binding_check = 0\n"))
    assert off.accounts[0].binding_check == 0
    for config in (default, off):
        target = tmp_path / "saved.toml"
        save_config(config, target)
        assert load_config(target).accounts == config.accounts


def test_only_from_proxy_parses_round_trips_and_defaults_to_false(tmp_path: Path) -> None:
    base = {"name": "w", "uri": "sip:a@example.com", "registrar": "sip:example.com"}
    assert parse_config({"account": [base]}).accounts[0].only_from_proxy is False
    config = parse_config({"account": [{**base, "only_from_proxy": True}]})
    assert config.accounts[0].only_from_proxy is True
    path = save_config(config, tmp_path / "config.toml")
    assert "only_from_proxy = true" in path.read_text()
    assert load_config(path).accounts[0].only_from_proxy is True
    off = save_config(parse_config({"account": [base]}), tmp_path / "off.toml")
    assert "only_from_proxy" not in off.read_text()  # the default is not written


@pytest.mark.parametrize(
    ("account", "says"),
    [
        (
            {"registrar": "sip:example.com", "only_from_proxy": "yes"},
            "only_from_proxy must be true or false",
        ),
        (
            {"only_from_proxy": True},
            "only_from_proxy needs a registrar or proxy",
        ),
    ],
)
def test_only_from_proxy_mistakes_are_named(account: dict[str, object], says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        parse_config({"account": [{"name": "w", "uri": "sip:a@example.com", **account}]})
    assert (
        parse_config(
            {
                "account": [
                    {
                        "name": "w",
                        "uri": "sip:a@x.test",
                        "proxy": "sip:p.test",
                        "only_from_proxy": True,
                    }
                ]
            }
        )
        .accounts[0]
        .only_from_proxy
    )


@pytest.mark.parametrize(
    ("value", "host_port"),
    [
        ("stun.example.com", ("stun.example.com", 3478)),
        ("203.0.113.10:5060", ("203.0.113.10", 5060)),
        ("[2001:db8::1]:3479", ("2001:db8::1", 3479)),
    ],
)
def test_stun_server_is_host_and_optional_port_and_round_trips(
    value: str, host_port: tuple[str, int]
) -> None:
    raw = {"account": [{"name": "a", "uri": "sip:a@example.com", "stun_server": value}]}
    config = parse_config(raw)
    assert config.accounts[0].stun_server == value
    assert parse_host_port(value) == host_port
    assert config_to_dict(config)["account"][0]["stun_server"] == value


@pytest.mark.parametrize("value", ["", "host:0", "host:70000", "a b", 3478])
def test_a_malformed_stun_server_names_the_key(value: object) -> None:
    raw = {"account": [{"name": "a", "uri": "sip:a@example.com", "stun_server": value}]}
    with pytest.raises(ConfigError, match="stun_server"):
        parse_config(raw)


def test_media_encryption_per_account_defaults_parses_and_round_trips(tmp_path: Path) -> None:
    config = parse_config(
        {
            "account": [
                {"name": "a", "uri": "sip:a@example.com"},
                {"name": "b", "uri": "sip:b@example.com", "media_encryption": "dtls-srtp"},
            ]
        }
    )
    assert config.account("a").media_encryption == "srtp-optional"
    assert config.account("b").media_encryption == "dtls-srtp"
    path = save_config(config, tmp_path / "config.toml")
    text = path.read_text()
    assert text.count("media_encryption") == 1  # the default is not written out
    assert load_config(path).account("b").media_encryption == "dtls-srtp"


def test_a_bad_media_encryption_names_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"media_encryption must be one of none, srtp-optional"):
        parse_config({"account": [{"name": "a", "uri": "sip:a@x", "media_encryption": "zrtp"}]})


def test_the_config_spells_media_encryption_as_the_sdp_core_does() -> None:
    from softphone.config import MEDIA_ENCRYPTIONS, MediaEncryptionName
    from softphone.sdp import MediaEncryption

    assert get_args(MediaEncryptionName) == MEDIA_ENCRYPTIONS
    assert tuple(m.value for m in MediaEncryption) == MEDIA_ENCRYPTIONS
