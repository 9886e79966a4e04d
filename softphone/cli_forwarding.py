"""``softphone dnd`` and ``softphone forward``: do-not-disturb and call forwarding per account,
read and changed in the config file (written atomically, mode 0600, as the TUI's settings
write it). The phone reads them when it starts (``softphone listen``, the TUI); the TUI's ``D``
key changes do-not-disturb while it runs.

::

    softphone dnd                       each account: on or off, and the status it refuses with
    softphone dnd on [--response 603]   on for every account (--account NAME: that one)
    softphone dnd off
    softphone forward                   each account's forwarding
    softphone forward always sip:bob@example.com
    softphone forward busy 1002
    softphone forward no-answer bob@example.com --after 15
    softphone forward off [always|busy|no-answer]    (no kind: every kind)

With ``--json`` each account is one JSON object on stdout: ``account``, ``do_not_disturb``,
``do_not_disturb_response``, ``forward_always``, ``forward_busy``, ``forward_no_answer``,
``forward_no_answer_after``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Final

from softphone.config import Config, ConfigError, save_config
from softphone.config_forwarding import (
    DND_RESPONSE_NAMES,
    NO_ANSWER_AFTER_RANGE,
    ForwardingError,
    forwarding_target,
    with_forwarding,
)
from softphone.report import ExitCode

__all__ = ["add_parsers", "run"]

KINDS: Final = {"always": "always", "busy": "busy", "no-answer": "no_answer"}


def _after(text: str) -> int:
    low, high = NO_ANSWER_AFTER_RANGE
    if not text.isdigit() or not low <= int(text) <= high:
        raise argparse.ArgumentTypeError(f"{text!r}: give whole seconds from {low} to {high}")
    return int(text)


def add_parsers(sub: Any, global_options: Any) -> None:
    """The ``dnd`` and ``forward`` commands on ``sub`` (the main parser's subparsers);
    ``global_options(parser)`` adds the options that may come on either side."""
    dnd = sub.add_parser(
        "dnd",
        help="do not disturb: show, on or off (saved in the config)",
        description="Show do-not-disturb for each account, or turn it on or off (for every "
        "account, or --account NAME). Calls are refused with 486 Busy Here, or 603 Decline with "
        "--response 603; forwarding always still forwards them. Saved in the config file: "
        "`softphone listen` and the TUI use it from their next start (the TUI's D key at once).",
    )
    dnd.add_argument("state", nargs="?", choices=("on", "off"), help="on or off (none: show)")
    dnd.add_argument(
        "--response",
        type=int,
        choices=tuple(DND_RESPONSE_NAMES),
        help="the status calls are refused with: 486 (Busy Here) or 603 (Decline)",
    )
    global_options(dnd)
    forward = sub.add_parser(
        "forward",
        help="call forwarding: show, set or turn off (saved in the config)",
        description="Show each account's call forwarding, or set one kind: always (every "
        "call), busy (while a call is in progress, or a call refused as busy) or no-answer "
        "(after --after seconds of ringing). A forwarded caller gets 302 Moved Temporarily "
        "with the target. `forward off` turns every kind off (or the one named). Saved in the "
        "config file, for every account or --account NAME.",
    )
    forward.add_argument("kind", nargs="?", choices=(*KINDS, "off"), help="what to set")
    forward.add_argument(
        "target",
        nargs="?",
        help="where to (a SIP URI, user@host or a number); after off: the kind to turn off",
    )
    forward.add_argument(
        "--after", type=_after, metavar="S", help="no-answer: seconds of ringing first (1-300)"
    )
    global_options(forward)


def run(config: Config, args: argparse.Namespace) -> int:
    """Carry out ``dnd`` or ``forward``; errors are said on stderr with exit code 2."""
    if config.path is None or not config.accounts:
        print("softphone: no account is configured (softphone opens the settings)", file=sys.stderr)
        return ExitCode.USAGE
    try:
        changed = _changed(config, args)
        if changed is not config:
            save_config(changed)
    except (ConfigError, ForwardingError) as exc:
        print(f"softphone: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    except OSError as exc:
        print(f"softphone: cannot write {config.path}: {exc.strerror or exc}", file=sys.stderr)
        return ExitCode.FAILED
    for acct in changed.accounts:
        if args.account is not None and acct.name != args.account:
            continue
        f = acct.forwarding
        if args.json:
            print(json.dumps(_as_json(acct.name, f)), flush=True)
        else:
            print(f"{acct.name}: {f.summary() or 'calls ring (no forwarding, no DND)'}")
    return ExitCode.OK


def _changed(config: Config, args: argparse.Namespace) -> Config:
    account = args.account
    if args.command == "dnd":
        if args.state is None:
            if args.response is not None:
                raise ConfigError("--response goes with on: softphone dnd on --response 603")
            return config
        changes: dict[str, Any] = {"do_not_disturb": args.state == "on"}
        if args.response is not None:
            changes["dnd_response"] = args.response
        return with_forwarding(config, account, **changes)
    kind, target = args.kind, args.target
    if kind is None:
        return config
    if args.after is not None and kind != "no-answer":
        raise ConfigError(
            "--after goes with no-answer: softphone forward no-answer TARGET --after S"
        )
    if kind == "off":
        if target is not None and target not in KINDS:
            raise ConfigError(f"forward off {target!r}: say always, busy or no-answer (or none)")
        kinds = [KINDS[target]] if target is not None else list(KINDS.values())
        return with_forwarding(config, account, **dict.fromkeys(kinds))
    if target is None:
        raise ConfigError(
            f"forward {kind} needs a target: softphone forward {kind} sip:bob@example.com"
        )
    out = config
    for acct in config.accounts:
        if account is not None and acct.name != account:
            continue
        try:
            uri = forwarding_target(target, domain=acct.domain)
        except ForwardingError as exc:
            raise ConfigError(f"the target {exc}") from None
        changes = {KINDS[kind]: uri}
        if args.after is not None:
            changes["no_answer_after_s"] = args.after
        out = with_forwarding(out, acct.name, **changes)
    from softphone.config import config_to_dict, parse_config

    parse_config(config_to_dict(out), path=config.path)  # the same checks as reading it (loops)
    return out


def _as_json(name: str, f: Any) -> dict[str, object]:
    return {
        "account": name,
        "do_not_disturb": f.do_not_disturb,
        "do_not_disturb_response": f.dnd_response,
        "forward_always": f.always,
        "forward_busy": f.busy,
        "forward_no_answer": f.no_answer,
        "forward_no_answer_after": f.no_answer_after_s,
    }
