"""Call forwarding, do-not-disturb and the answering machine, per account: the ``[[account]]``
keys, read and written.

::

    [[account]]
    # ...
    forward_always = "sip:bob@example.com"   # every call: 302 Moved Temporarily to this target
    forward_busy = "1002"                    # while a call is in progress (or on "reject as busy")
    forward_no_answer = "bob@example.com"    # after forward_no_answer_after seconds of ringing
    forward_no_answer_after = 20             # 1 to 300 seconds (default 20)
    do_not_disturb = true                    # refuse calls (forward_always still forwards them)
    do_not_disturb_response = 486            # 486 Busy Here (default) or 603 Decline
    voicemail = true                         # the answering machine takes unanswered calls
    voicemail_after = 20                     # after this many seconds of ringing (1 to 300)
    voicemail_greeting = "~/greeting.wav"    # what callers hear first (default: a chime)
    voicemail_max = 3                        # minutes a message may last (1 to 30)

With ``voicemail`` on, do-not-disturb sends callers to the answering machine at once instead of
refusing them; ``forward_no_answer`` comes before it when both are set. Messages go to the
``voicemail_dir`` of the config (top level; default ``<XDG data dir>/softphone/voicemail``).

A target is a SIP URI (``sip:`` or ``sips:``), ``user@host``, or a user name or number on the
account's domain (``1002`` is ``sip:1002@<domain>``); it is kept as the URI it names. What each
setting does to an incoming call is decided in softphone/phone/forwarding.py.

Problems raise :class:`ForwardingError` with the key in the message; softphone.config says it as
a ConfigError naming the file and the account.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final, Literal, Protocol, TypeAlias, TypeVar, get_args

__all__ = [
    "DND_RESPONSES",
    "FORWARDING_KEYS",
    "DndResponse",
    "Forwarding",
    "ForwardingError",
    "forwarding_target",
    "forwarding_to_dict",
    "parse_forwarding",
    "with_forwarding",
]

DndResponse: TypeAlias = Literal[486, 603]
DND_RESPONSES: Final[tuple[DndResponse, ...]] = get_args(DndResponse)
DND_RESPONSE_NAMES: Final[dict[DndResponse, str]] = {486: "Busy Here", 603: "Decline"}
DEFAULT_NO_ANSWER_AFTER_S: Final = 20
DEFAULT_VOICEMAIL_MAX_MIN: Final = 3
VOICEMAIL_MAX_RANGE: Final = (1, 30)
NO_ANSWER_AFTER_RANGE: Final = (1, 300)
FORWARDING_KEYS: Final = frozenset(
    {
        "forward_always",
        "forward_busy",
        "forward_no_answer",
        "forward_no_answer_after",
        "do_not_disturb",
        "do_not_disturb_response",
        "voicemail",
        "voicemail_after",
        "voicemail_greeting",
        "voicemail_max",
    }
)
_BARE_USER: Final = re.compile(r"^\+?[A-Za-z0-9_.!~*'()&=+$,;?/%-]+$")


class ForwardingError(ValueError):
    """A forwarding key of an account is wrong; the message names the key."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Forwarding:
    """An account's forwarding and do-not-disturb settings (targets as URI text)."""

    always: str | None = None
    busy: str | None = None
    no_answer: str | None = None
    no_answer_after_s: int = DEFAULT_NO_ANSWER_AFTER_S
    do_not_disturb: bool = False
    dnd_response: DndResponse = 486
    voicemail: bool = False
    voicemail_after_s: int = DEFAULT_NO_ANSWER_AFTER_S
    voicemail_greeting: Path | None = None  # None: the default chime (softphone/assets)
    voicemail_max_s: int = DEFAULT_VOICEMAIL_MAX_MIN * 60

    def summary(self) -> str | None:
        """What the status line says: ``DND``, ``→ sip:bob@x``, ``→ sip:bob@x if busy``, ...
        (None: calls ring as usual)."""
        parts: list[str] = []
        if self.always is not None:
            parts.append(f"→ {self.always}")
        if self.do_not_disturb:
            parts.append("DND")
        if self.always is None:
            if self.busy is not None:
                parts.append(f"→ {self.busy} if busy")
            if self.no_answer is not None:
                parts.append(f"→ {self.no_answer} after {self.no_answer_after_s} s")
            elif self.voicemail:
                after = "at once" if self.do_not_disturb else f"after {self.voicemail_after_s} s"
                parts.append(f"voicemail {after}")
        return ", ".join(parts) or None


def forwarding_target(text: str, *, domain: str) -> str:
    """``text`` as the SIP URI it names (``1002`` on ``domain``); ForwardingError when it
    names none."""
    from softphone.sip.errors import ParseError
    from softphone.sip.uri import SipUri

    raw = text.strip()
    if not raw:
        raise ForwardingError("is empty (give a SIP URI, user@host or a number)")
    if raw.lower().startswith(("sip:", "sips:")):
        candidate = raw
    elif "@" in raw:
        candidate = "sip:" + raw
    elif _BARE_USER.match(raw):
        candidate = f"sip:{raw}@{domain}"
    else:
        raise ForwardingError(f"{text!r} is not a SIP URI, user@host or a number")
    try:
        uri = SipUri.parse(candidate)
    except ParseError as exc:
        raise ForwardingError(f"{text!r} is not a SIP URI ({exc})") from None
    return str(uri)


def parse_forwarding(raw: Mapping[str, Any], *, aor: str, domain: str) -> Forwarding:
    """The forwarding keys of one ``[[account]]`` table (``aor``: its address of record, which
    no target may be: the call would come straight back)."""
    targets: dict[str, str | None] = {}
    for key in ("forward_always", "forward_busy", "forward_no_answer"):
        value = raw.get(key)
        if value is None:
            targets[key] = None
            continue
        if not isinstance(value, str):
            raise ForwardingError(f"{key} must be a string (a SIP URI, user@host or a number)")
        try:
            target = forwarding_target(value, domain=domain)
        except ForwardingError as exc:
            raise ForwardingError(f"{key} {exc}") from None
        if _same_party(target, aor):
            raise ForwardingError(f"{key} {value!r} is this account itself (a forwarding loop)")
        targets[key] = target
    after = raw.get("forward_no_answer_after", DEFAULT_NO_ANSWER_AFTER_S)
    low, high = NO_ANSWER_AFTER_RANGE
    if not isinstance(after, int) or isinstance(after, bool) or not low <= after <= high:
        raise ForwardingError(
            f"forward_no_answer_after must be a whole number of seconds from {low} to {high}"
            f" (not {after!r})"
        )
    dnd = raw.get("do_not_disturb", False)
    if not isinstance(dnd, bool):
        raise ForwardingError("do_not_disturb must be true or false")
    response = raw.get("do_not_disturb_response", 486)
    if isinstance(response, bool) or response not in DND_RESPONSES:
        choices = " or ".join(f"{s} ({DND_RESPONSE_NAMES[s]})" for s in DND_RESPONSES)
        raise ForwardingError(f"do_not_disturb_response must be {choices}, not {response!r}")
    voicemail = raw.get("voicemail", False)
    if not isinstance(voicemail, bool):
        raise ForwardingError("voicemail must be true or false")
    voicemail_after = _whole(
        raw.get("voicemail_after", DEFAULT_NO_ANSWER_AFTER_S),
        "voicemail_after",
        "seconds",
        low,
        high,
    )
    max_low, max_high = VOICEMAIL_MAX_RANGE
    voicemail_max = _whole(
        raw.get("voicemail_max", DEFAULT_VOICEMAIL_MAX_MIN),
        "voicemail_max",
        "minutes",
        max_low,
        max_high,
    )
    greeting = raw.get("voicemail_greeting")
    greeting_path: Path | None = None
    if greeting is not None:
        if not isinstance(greeting, str) or not greeting.strip():
            raise ForwardingError("voicemail_greeting must be the path of a WAV file")
        try:
            greeting_path = Path(greeting).expanduser()
        except RuntimeError:
            raise ForwardingError(f"voicemail_greeting {greeting!r}: no such user") from None
        if not greeting_path.is_file():
            raise ForwardingError(f"voicemail_greeting {greeting!r}: no such file")
    return Forwarding(
        voicemail=voicemail,
        voicemail_after_s=voicemail_after,
        voicemail_greeting=greeting_path,
        voicemail_max_s=voicemail_max * 60,
        always=targets["forward_always"],
        busy=targets["forward_busy"],
        no_answer=targets["forward_no_answer"],
        no_answer_after_s=after,
        do_not_disturb=dnd,
        dnd_response=response,
    )


def forwarding_to_dict(forwarding: Forwarding) -> dict[str, Any]:
    """The keys to write for ``forwarding`` (the defaults left out)."""
    out: dict[str, Any] = {}
    for key, value in (
        ("forward_always", forwarding.always),
        ("forward_busy", forwarding.busy),
        ("forward_no_answer", forwarding.no_answer),
    ):
        if value is not None:
            out[key] = value
    if forwarding.no_answer_after_s != DEFAULT_NO_ANSWER_AFTER_S:
        out["forward_no_answer_after"] = forwarding.no_answer_after_s
    if forwarding.do_not_disturb:
        out["do_not_disturb"] = True
    if forwarding.dnd_response != 486:
        out["do_not_disturb_response"] = forwarding.dnd_response
    if forwarding.voicemail:
        out["voicemail"] = True
    if forwarding.voicemail_after_s != DEFAULT_NO_ANSWER_AFTER_S:
        out["voicemail_after"] = forwarding.voicemail_after_s
    if forwarding.voicemail_greeting is not None:
        out["voicemail_greeting"] = str(forwarding.voicemail_greeting)
    if forwarding.voicemail_max_s != DEFAULT_VOICEMAIL_MAX_MIN * 60:
        out["voicemail_max"] = forwarding.voicemail_max_s // 60
    return out


def _whole(value: object, key: str, unit: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ForwardingError(
            f"{key} must be a whole number of {unit} from {low} to {high} (not {value!r})"
        )
    return value


class _Accounts(Protocol):
    """softphone.config.Config as far as :func:`with_forwarding` needs it (config imports this
    module, not the other way)."""

    @property
    def accounts(self) -> tuple[Any, ...]: ...

    def account(self, name: str | None = None) -> Any: ...


C = TypeVar("C", bound=_Accounts)


def with_forwarding(config: C, account: str | None = None, **changes: Any) -> C:
    """``config`` with ``changes`` (Forwarding fields: ``do_not_disturb=True``, ``always=None``)
    made to the account named ``account``, or to every account (None)."""
    if account is not None:
        config.account(account)  # ConfigError naming the configured ones
    accounts = tuple(
        replace(a, forwarding=replace(a.forwarding, **changes))
        if account is None or a.name == account
        else a
        for a in config.accounts
    )
    new: C = replace(config, accounts=accounts)  # type: ignore[type-var]  # a dataclass
    return new


def _same_party(target: str, aor: str) -> bool:
    def key(uri: str) -> str:
        body = uri.split(":", 1)[1].split(";", 1)[0]
        return body.lower()

    return key(target) == key(aor)
