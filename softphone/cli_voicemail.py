"""``softphone voicemail``: the messages the answering machine recorded (answering_machine.py),
from the store the TUI and ``softphone listen`` write.

::

    softphone voicemail [list] [--json]   newest first: id, when, caller, length, heard
    softphone voicemail play ID           on the sound device; marks it heard
    softphone voicemail heard ID          mark it heard (--unheard: not heard)
    softphone voicemail delete ID         the message and its file

With ``--json`` each message is one JSON object on stdout: ``id``, ``received_at`` (ISO 8601,
UTC), ``account``, ``caller``, ``caller_name``, ``duration_s``, ``path``, ``heard``,
``recording`` (true while it is being recorded).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from softphone.config import Config
from softphone.report import ExitCode

__all__ = ["add_parser", "run"]


def add_parser(sub: Any, global_options: Any) -> None:
    parser = sub.add_parser(
        "voicemail",
        help="messages on the answering machine: list, play, heard, delete",
        description="The messages the answering machine recorded (accounts with voicemail = "
        "true), newest first. play plays one on the sound device and marks it heard.",
    )
    parser.add_argument(
        "action", nargs="?", default="list", choices=("list", "play", "heard", "delete")
    )
    parser.add_argument("id", nargs="?", type=int, help="the message (its id in the list)")
    parser.add_argument(
        "--unheard", action="store_true", help="with heard: mark the message not heard"
    )
    global_options(parser)


def run(config: Config, args: argparse.Namespace) -> int:
    from softphone.phone.book import Book, StoreError

    if args.action != "list" and args.id is None:
        print(f"softphone: voicemail {args.action} needs the message's id", file=sys.stderr)
        return ExitCode.USAGE
    try:
        book = Book.open()
    except StoreError as exc:
        print(f"softphone: the voicemail is not available: {exc}", file=sys.stderr)
        return ExitCode.FAILED
    try:
        return _run(book, config, args)
    except StoreError as exc:
        print(f"softphone: {exc}", file=sys.stderr)
        return ExitCode.FAILED
    finally:
        book.close()


def _run(book: Any, config: Config, args: argparse.Namespace) -> int:
    from softphone.phone.voicemail_log import delete_message

    voicemails = book.voicemails
    if args.action == "list":
        for m in voicemails.list():
            if args.json:
                print(json.dumps(_as_json(m)), flush=True)
            else:
                who = f"{m.caller_name} <{m.caller_uri}>" if m.caller_name else m.caller_uri
                mark = "recording" if m.recording else ("heard" if m.heard else "NEW")
                when = m.received_at.astimezone().strftime("%Y-%m-%d %H:%M")
                print(f"{m.id:4d}  {when}  {m.duration_s:6.1f} s  {mark:9s}  {who}")
        return ExitCode.OK
    record = voicemails.get(args.id)
    if record is None:
        print(f"softphone: no voicemail {args.id} (softphone voicemail list)", file=sys.stderr)
        return ExitCode.USAGE
    if args.action == "delete":
        try:
            delete_message(voicemails, args.id)
        except OSError as exc:
            print(f"softphone: cannot delete {record.path}: {exc}", file=sys.stderr)
            return ExitCode.FAILED
        print(f"deleted voicemail {args.id}")
        return ExitCode.OK
    if args.action == "play":
        import asyncio  # here: `softphone --help` stays light (tests/test_import_hygiene.py)

        code = asyncio.run(_play(config, record.path))
        if code != ExitCode.OK:
            return code
    voicemails.mark_heard(args.id, not args.unheard)
    return ExitCode.OK


async def _play(config: Config, path: str) -> int:
    from pathlib import Path

    from softphone.phone.audio import DeviceAudio
    from softphone.phone.errors import PhoneError
    from softphone.phone.playback import FilePlayback

    audio = DeviceAudio(
        config.input_device,
        config.output_device,
        on_problem=lambda text: print(f"softphone: {text}", file=sys.stderr),
    )
    try:
        await FilePlayback(audio).play(Path(path))
    except PhoneError as exc:
        print(f"softphone: {exc}", file=sys.stderr)
        return ExitCode.FAILED
    finally:
        audio.close()
    return ExitCode.OK


def _as_json(m: Any) -> dict[str, object]:
    return {
        "id": m.id,
        "received_at": m.received_at.isoformat(),
        "account": m.account,
        "caller": m.caller_uri,
        "caller_name": m.caller_name,
        "duration_s": m.duration_s,
        "path": m.path,
        "heard": m.heard,
        "recording": m.recording,
    }
