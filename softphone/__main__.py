"""Command line: argv -> Config -> Phone -> a front end (the headless commands, or the TUI).

``softphone``                     opens the TUI
``softphone dial URI``            calls, shows progress, hangs up after --duration or Ctrl-C
``softphone listen``              registers (when configured) and waits for calls and messages
``softphone message URI TEXT``    sends an instant message; the exit code says whether it arrived
``softphone play URL``            plays an RTSP stream (``--headless`` without a UI)
``softphone devices``             lists the sound devices (for input_device / output_device)
``softphone dnd [on|off]``        do not disturb per account, in the config (cli_forwarding.py)
``softphone forward KIND TARGET`` call forwarding per account (always, busy, no-answer, off)
``softphone voicemail [list]``    the answering machine's messages (play, heard, delete ID)
``softphone bench ...``           benchmarks (``softphone bench --help``)

Human output goes to stderr; with ``--json`` stdout carries one JSON object per event. Logs go to
a file in the XDG state directory (Textual owns the terminal), never to the terminal.

``--config``, ``--log-file``, ``--log-level``, ``--account``, ``--sip-port``, ``--bind`` and
``--json`` may come before or after the command (GLOBAL_DEFAULTS). ``dial --timeout S`` bounds
the wait for the network (the registrar, then the call ringing or failing): past it, dial gives
up with ExitCode.NETWORK (7).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from softphone import __version__
from softphone.cli_video import add_video_options
from softphone.report import ExitCode, Reporter, exit_code_table

DIAL_TIMEOUT_S = 30.0


# Options that may come before or after the command, as git's and baresip's users expect
# (`softphone --config F dial URI` and `softphone dial URI --config F`). Each is declared on the
# main parser and on every command it applies to, with SUPPRESS as its default there: a value
# given on either side is kept (a command's parser would otherwise overwrite it with its own
# default), and given twice, the later one wins. The defaults are set after parsing.
GLOBAL_DEFAULTS: Final[dict[str, object]] = {
    "config": None,
    "log_file": None,
    "log_level": "INFO",
    "account": None,
    "sip_port": None,
    "bind": "0.0.0.0",
    "json": False,
}
ALL_COMMANDS: Final = frozenset(
    {"tui", "dial", "listen", "message", "play", "devices", "dnd", "forward", "voicemail"}
)
CONFIG_COMMANDS: Final = frozenset({"dnd", "forward"})  # they change the config file
SIP_COMMANDS: Final = frozenset({"dial", "listen", "message"})
MESSAGE_EXIT_CODES: Final = """exit codes:
    0  the far end (or its server) accepted the message (2xx)
    1  any other refusal (403 forbidden, 415 unsupported type, a charset that cannot hold
       the text, a message too big)
    2  bad arguments, config or address, or an empty message
  3/4  busy (486, 600) / declined (603)
    5  no such user (404, 410, 604)
    6  nobody there (408 or 480 from the far side)
    7  network: no response at all, a connection or DNS failure, 502/503/504, --timeout
  130  interrupted with Ctrl-C (143: SIGTERM)"""
# Where each option means something ("tui": no command, or dial --tui). Given elsewhere before
# the command, it is refused with a clear message rather than ignored.
APPLIES_TO: Final[dict[str, frozenset[str]]] = {
    "config": ALL_COMMANDS,
    "log_file": ALL_COMMANDS,
    "log_level": ALL_COMMANDS,
    "account": SIP_COMMANDS | CONFIG_COMMANDS,
    "sip_port": SIP_COMMANDS | {"tui"},
    "bind": SIP_COMMANDS,
    "json": SIP_COMMANDS | CONFIG_COMMANDS | {"play", "voicemail"},
}


def _global_options(p: argparse.ArgumentParser, names: frozenset[str] | None = None) -> None:
    """Add the options of GLOBAL_DEFAULTS named in ``names`` (all of them by default)."""

    def wanted(name: str) -> bool:
        return names is None or name in names

    group = p.add_argument_group("options that may also come before the command")
    if wanted("config"):
        group.add_argument(
            "--config",
            type=Path,
            metavar="PATH",
            default=argparse.SUPPRESS,
            help="config file (default: the XDG config path)",
        )
    if wanted("log_file"):
        group.add_argument(
            "--log-file",
            type=Path,
            metavar="PATH",
            default=argparse.SUPPRESS,
            help="log file (default: the XDG state dir)",
        )
    if wanted("log_level"):
        group.add_argument(
            "--log-level",
            choices=["DEBUG", "INFO", "WARNING", "ERROR"],
            default=argparse.SUPPRESS,
            help="log level (default INFO); DEBUG includes every SIP message (passwords redacted)",
        )
    if wanted("account"):
        group.add_argument(
            "--account",
            metavar="NAME",
            default=argparse.SUPPRESS,
            help="account to use (default: the first one)",
        )
    if wanted("sip_port"):
        group.add_argument(
            "--sip-port",
            type=_port,
            metavar="N",
            default=argparse.SUPPRESS,
            help="local SIP port (default 5060, or a free one when taken)",
        )
    if wanted("bind"):
        group.add_argument(
            "--bind",
            metavar="ADDR",
            default=argparse.SUPPRESS,
            help="local address to listen on (default: all)",
        )
    if wanted("json"):
        group.add_argument(
            "--json",
            action="store_true",
            default=argparse.SUPPRESS,
            help="one JSON object per event on stdout",
        )


def _applying_to(command: str) -> frozenset[str]:
    return frozenset(name for name, where in APPLIES_TO.items() if command in where)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="softphone",
        description="A terminal softphone and RTSP player.",
        epilog="Run 'softphone COMMAND --help' for the options of a command. The options shown "
        "as 'may also come before the command' are accepted on either side of it.",
    )
    parser.add_argument("--version", action="version", version=f"softphone {__version__}")
    _global_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def network_options(p: argparse.ArgumentParser, *, answering: bool = False) -> None:
        _global_options(p, _applying_to("dial"))
        p.add_argument(
            "--duration", type=_seconds, metavar="S", help="hang up after S seconds of talk"
        )
        p.add_argument(
            "--play",
            type=_wav_in,
            metavar="IN.wav",
            help="send this WAV as the microphone (then silence); no sound device is used",
        )
        p.add_argument(
            "--record",
            type=Path,
            metavar="OUT.wav",
            help="record what you hear from the far end (mono WAV); no sound device is used",
        )
        p.add_argument(
            "--no-audio",
            action="store_true",
            help="do not open a sound device: send silence, play nothing",
        )
        p.add_argument(
            "--no-echo-cancellation",
            action="store_true",
            help="the sound card's microphone as it is: no echo cancellation or noise suppression"
            " (the config's echo_cancellation = false)",
        )
        add_video_options(p, answering=answering)

    dial = sub.add_parser(
        "dial",
        help="call a SIP URI, number or user",
        description="Call a SIP URI, a number or a user name.",
        epilog="exit codes:\n" + exit_code_table(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    dial.add_argument(
        "uri", help="sip:bob@example.com, bob@example.com, 1002 (on the account's domain)"
    )
    network_options(dial)
    dial.add_argument(
        "--dtmf",
        type=_dtmf,
        metavar="DIGITS",
        help="send these DTMF digits once the call is established",
    )
    dial.add_argument(
        "--timeout",
        type=_seconds,
        default=DIAL_TIMEOUT_S,
        metavar="S",
        help="give up when, S seconds after the start, the network has not yet answered the "
        "call (it neither rings nor fails): the registrar or proxy is down or unreachable; "
        f"exit code {int(ExitCode.NETWORK)} (default {DIAL_TIMEOUT_S:g}). Registering counts in it",
    )
    dial.add_argument(
        "--ring-timeout",
        type=_seconds,
        metavar="S",
        help="hang up when the call is not answered within S seconds (exit code 6)",
    )
    dial.add_argument(
        "--tui", action="store_true", help="open the full-screen interface, already calling"
    )

    listen = sub.add_parser(
        "listen",
        help="wait for incoming calls and messages",
        description="Register (when the account has a registrar) and wait for calls and "
        "instant messages (with --json, one 'message' line each: from, to, content_type, text). "
        "With presence on, message waiting comes as 'mwi' lines (account, waiting, new, old) and "
        "the parties of --watch as 'presence' lines (uri, state, note, lamp). The account's "
        "forwarding and do-not-disturb apply (softphone forward, softphone dnd); with voicemail "
        "on, the answering machine's messages come as 'voicemail_started' and "
        "'voicemail_recorded' lines (softphone voicemail lists them).",
    )
    network_options(listen, answering=True)
    answering = listen.add_mutually_exclusive_group()
    answering.add_argument("--auto-answer", action="store_true", help="answer every incoming call")
    answering.add_argument(
        "--reject",
        type=_reject_status,
        metavar="STATUS",
        help="refuse every incoming call with this SIP status (486 busy, 603 decline, 480 ...)",
    )
    listen.add_argument(
        "--presence",
        choices=("available", "away", "busy", "dnd"),
        metavar="STATE",
        help="our presence while listening: available, away, busy or dnd (default: the "
        "account's presence_state); published where the account has presence on",
    )
    listen.add_argument(
        "--watch",
        action="append",
        default=[],
        metavar="URI",
        help="follow URI's presence and busy lamp ('presence' events); may be repeated",
    )
    message = sub.add_parser(
        "message",
        help="send an instant message (SIP MESSAGE)",
        description="Send one instant message (SIP MESSAGE, RFC 3428) and wait until the far end "
        "accepts or refuses it. To a party you are in a call with, it goes in that call.",
        epilog=MESSAGE_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    message.add_argument(
        "uri", help="sip:bob@example.com, bob@example.com, 1002 (on the account's domain)"
    )
    message.add_argument("text", type=_message_text, help="the message (quote it)")
    _global_options(message, _applying_to("message"))
    message.add_argument(
        "--content-type",
        default="text/plain",
        metavar="TYPE",
        help="the text's media type (default text/plain; sent in UTF-8 unless TYPE names a "
        "charset)",
    )
    message.add_argument(
        "--timeout",
        type=_seconds,
        default=DIAL_TIMEOUT_S,
        metavar="S",
        help="give up when the network has not answered within S seconds (registering counts "
        f"in it); exit code {int(ExitCode.NETWORK)} (default {DIAL_TIMEOUT_S:g})",
    )
    message.set_defaults(play=None, record=None, no_audio=True)  # no sound device is opened
    play = sub.add_parser(
        "play",
        help="play an RTSP stream (IP camera, media server)",
        description="Play an RTSP stream: video in the terminal, audio on the sound device.",
    )
    play.add_argument(
        "url",
        help="rtsp://[user:password@]host[:port]/path, rtsps://..., or a camera name from the config",
    )
    play.add_argument(
        "--headless",
        action="store_true",
        help="no UI: decode, report, optionally save a snapshot or a recording",
    )
    play.add_argument(
        "--viewer",
        action="store_true",
        help="the stand-alone full-screen viewer (pause, seek) instead of the phone's side pane; "
        "implied by --duration, --snapshot and --record",
    )
    play.add_argument(
        "--duration", type=_seconds, metavar="S", help="stop S seconds after the command started"
    )
    play.add_argument(
        "--transport",
        choices=["auto", "udp", "tcp"],
        default="auto",
        help="RTP over UDP or TCP interleaved; auto tries UDP and falls back to TCP (default)",
    )
    _global_options(play, _applying_to("play"))
    play.add_argument(
        "--snapshot",
        type=_png_out,
        metavar="FILE.png",
        help="save the first decoded picture as a PNG",
    )
    play.add_argument(
        "--record",
        type=_mkv_out,
        metavar="FILE.mkv",
        help="save the stream as it arrives (no re-encoding) in a Matroska file",
    )
    play.add_argument(
        "--no-audio",
        action="store_true",
        help="do not open a sound device (audio is still decoded and counted)",
    )
    play.add_argument(
        "--ca-file",
        type=_file_in,
        metavar="PEM",
        help="trust this CA for rtsps:// (default: the system's)",
    )
    play.add_argument(
        "--insecure",
        action="store_true",
        help="rtsps:// without checking the certificate (self-signed cameras)",
    )
    play.add_argument(
        "--video",
        choices=["auto", "halfblock", "kitty", "sixel"],
        default="halfblock",
        help="how the viewer draws: half blocks (default, every terminal and tmux), kitty graphics,"
        " sixel, or auto from the terminal (half blocks inside tmux)",
    )
    play.add_argument(
        "--stats-out", type=Path, help=argparse.SUPPRESS
    )  # the viewer's counters at exit, for `softphone bench`
    devices = sub.add_parser(
        "devices",
        help="list sound devices and cameras",
        description="List the cameras (V4L2) and the sound devices PortAudio sees.",
    )
    _global_options(devices, _applying_to("devices"))
    from softphone.cli_forwarding import add_parsers

    add_parsers(sub, lambda p: _global_options(p, _applying_to("dnd")))
    from softphone.cli_voicemail import add_parser as add_voicemail

    add_voicemail(sub, lambda p: _global_options(p, _applying_to("voicemail")))
    bench = sub.add_parser("bench", help="benchmarks (jitter buffer, ...)", add_help=False)
    bench.add_argument("bench_args", nargs=argparse.REMAINDER)
    return parser


def _wav_in(text: str) -> Path:
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text}: no such file")
    return path


def _file_in(text: str) -> Path:
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text}: no such file")
    return path


def _writable(text: str, suffixes: tuple[str, ...], what: str) -> Path:
    try:
        path = Path(text).expanduser()
    except RuntimeError:  # "~user/..." for a user without a home directory
        raise argparse.ArgumentTypeError(f"{text}: no such user's home directory") from None
    if path.suffix.lower() not in suffixes:
        raise argparse.ArgumentTypeError(
            f"{text}: {what} needs a {' or '.join(suffixes)} file name"
        )
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: directory {parent} does not exist")
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a directory")
    return path


def _png_out(text: str) -> Path:
    return _writable(text, (".png",), "--snapshot")


def _mkv_out(text: str) -> Path:
    return _writable(text, (".mkv", ".mka"), "--record")


def _dtmf(text: str) -> str:
    bad = sorted({c for c in text if c.upper() not in "0123456789*#ABCD"})
    if not text or bad:
        raise argparse.ArgumentTypeError(f"{text!r}: DTMF digits are 0-9, *, #, A-D")
    return text.upper()


def _message_text(text: str) -> str:
    if not text:
        raise argparse.ArgumentTypeError("the message is empty: nothing to send")
    return text


def _reject_status(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a SIP status code") from None
    if not 300 <= value <= 699:
        raise argparse.ArgumentTypeError(f"{value}: a refusal is a SIP status from 300 to 699")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port number (0-65535)")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value < 10**7:
        raise argparse.ArgumentTypeError("must be a positive number of seconds")
    return value


def setup_logging(path: Path | None, level: str) -> Path | None:
    """Log to ``path``, else to the state directory. At DEBUG the log holds every SIP message:
    the file is 0600 (an existing one is tightened), and the state directory 0700. A directory
    named with --log-file is the user's: made when missing, its mode left alone."""
    from softphone.config import default_state_dir
    from softphone.files import private_dir, private_file

    target = path or default_state_dir() / "softphone.log"
    try:
        if path is None:
            private_dir(target.parent)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
        private_file(target)
        handler: logging.Handler = logging.FileHandler(target, encoding="utf-8")
    except OSError:
        handler = logging.NullHandler()
        target = None  # type: ignore[assignment]
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(getattr(logging, level))
    if level != "DEBUG":
        logging.getLogger("softphone.wire").setLevel(logging.INFO)
    return target


def main(argv: Sequence[str] | None = None) -> int:
    import time

    started_at = time.monotonic()  # `play --duration` counts from here
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if "bench" in argv and argv[: argv.index("bench")] == [
        a for a in argv[: argv.index("bench")] if a.startswith("-")
    ]:
        from softphone.bench.cli import main as bench_main

        return bench_main(argv[argv.index("bench") + 1 :])
    args = parser.parse_args(argv)
    problem = _settle_globals(args)
    if problem is not None:
        parser.print_usage(sys.stderr)
        print(f"softphone: {problem}", file=sys.stderr)
        return ExitCode.USAGE
    if args.command == "bench":
        from softphone.bench.cli import main as bench_main

        return bench_main(args.bench_args)
    if args.command == "devices":
        return _devices()
    if args.command == "play":
        from softphone.phone import preload

        preload.hold_gc()  # until the first picture: start-up speed (phone/preload.py)
        try:
            return _run(args, started_at)
        finally:
            preload.release_gc()
    return _run(args, started_at)


def _settle_globals(args: argparse.Namespace) -> str | None:
    """Fill in the defaults of the options that may come on either side of the command; a
    problem (an option given where it means nothing) as a sentence, else None."""
    given = sorted(name for name in GLOBAL_DEFAULTS if hasattr(args, name))
    for name, default in GLOBAL_DEFAULTS.items():
        if not hasattr(args, name):
            setattr(args, name, default)
    command = args.command
    if command is None or (command == "dial" and args.tui):
        command = "tui"
    option = {name: "--" + name.replace("_", "-") for name in GLOBAL_DEFAULTS}
    if command == "bench":
        if given:
            return (
                f"{', '.join(option[n] for n in given)}: softphone bench takes its own options"
                " (softphone bench --help)"
            )
        return None
    for name in given:
        where = APPLIES_TO[name]
        if command not in where:
            used_by = ", ".join(
                sorted("the full-screen interface" if w == "tui" else w for w in where)
            )
            shown = "the full-screen interface" if command == "tui" else f"softphone {command}"
            return f"{option[name]} does not apply to {shown} (it is for {used_by})"
    return None


def _run(args: argparse.Namespace, started_at: float) -> int:
    from softphone.config import ConfigError, load_config
    from softphone.config_privacy import exposed_password

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"softphone: config error: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    setup_logging(args.log_file, args.log_level)
    if getattr(args, "no_echo_cancellation", False):
        from dataclasses import replace

        config = replace(config, echo_cancellation=False)
    if args.command in CONFIG_COMMANDS:
        from softphone.cli_forwarding import run

        return run(config, args)
    if args.command == "voicemail":
        from softphone.cli_voicemail import run as run_voicemail

        return run_voicemail(config, args)
    tui = args.command is None or (args.command == "dial" and args.tui)
    if (warning := exposed_password(config)) is not None and not tui:
        print(f"softphone: warning: {warning}", file=sys.stderr)  # the TUI offers the fix
    if tui:
        from softphone.tui.app import run_tui

        # No config file yet (and none named): the TUI opens the account editor first.
        first_run = args.config is None and config.path is not None and not config.path.exists()
        if args.sip_port is not None:
            from dataclasses import replace

            config = replace(config, sip_port=args.sip_port)
        return run_tui(
            config,
            config_path=config.path,
            first_run=first_run,
            dial=args.uri if args.command == "dial" else None,
        )
    import asyncio

    if args.command == "play":
        from softphone.cli_play import run_play

        try:
            return run_play(config, args, Reporter(as_json=args.json), started_at=started_at)
        except KeyboardInterrupt:
            return ExitCode.INTERRUPTED

    from softphone.cli import run_dial, run_listen, run_message

    reporter = Reporter(as_json=args.json)
    if args.account is not None and not config.accounts:
        print(
            f"softphone: no account named {args.account!r} (no accounts are configured)",
            file=sys.stderr,
        )
        return ExitCode.USAGE
    if config.accounts:
        # The command uses one account (default: the first) and registers only that one.
        from dataclasses import replace

        try:
            config = replace(config, accounts=(config.account(args.account),))
        except ConfigError as exc:
            print(f"softphone: {exc}", file=sys.stderr)
            return ExitCode.USAGE
    runner = {"dial": run_dial, "listen": run_listen, "message": run_message}[args.command]
    try:
        return asyncio.run(runner(config, args, reporter))
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED


def _devices() -> int:
    from softphone.media.cameras import list_cameras
    from softphone.media.device import AudioDeviceError, list_devices

    cameras = list_cameras()
    for camera in cameras:
        print(f'camera  {camera.device}  {camera.name}  (video_device = "{camera.device}")')
    if not cameras:
        print("No cameras found (video calls send a moving test pattern: dial --video).")
    try:
        devices = list_devices()
    except AudioDeviceError as exc:
        print(f"softphone: {exc}", file=sys.stderr)
        return ExitCode.FAILED
    if not devices:
        print("No sound devices found (calls still work headless: --play/--record or --no-audio).")
        return ExitCode.OK
    for d in devices:
        marks = ("  default input" if d.is_default_input else "") + (
            "  default output" if d.is_default_output else ""
        )
        print(
            f"{d.index:3d}  {d.name}  [{d.host_api}]  in {d.max_input_channels}, out {d.max_output_channels},"
            f" {d.default_samplerate:.0f} Hz{marks}"
        )
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
