"""The status bar: one line per account with its registration state and, in brackets, its
forwarding and do-not-disturb ("[DND]", "[→ sip:bob@example.com]"), at the top of the main
screen, how many instant messages are unread, our presence (while it is published) and the
voicemail waiting."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import assert_never

from rich.text import Text
from textual.widgets import Static

from softphone.phone.api import OwnPresence, Registration, Voicemail
from softphone.tui.widgets.lamps import own_presence_text, voicemail_text

__all__ = ["StatusBar", "describe_registration"]


def _hh_mm(wall: float) -> str:
    return datetime.fromtimestamp(wall).strftime("%H:%M")


def describe_registration(
    reg: Registration, *, now_wall: float, failed_at: float | None = None
) -> str:
    """One account as a person reads it. ``failed_at`` (wall clock) is when the failure was seen,
    so the retry countdown runs down."""
    match reg.state:
        case "registered":
            until = f" until {_hh_mm(reg.expires_at)}" if reg.expires_at is not None else ""
            return f"{reg.account}: registered{until} ({reg.transport})"
        case "registering" if reg.server is not None and reg.no_answer:
            # Why it takes this long: the server is silent and SIP keeps trying (RFC 3261
            # Timer F: 32 s) before it says it failed.
            doing = "retrying" if reg.transport == "udp" else "waiting"
            return (
                f"{reg.account}: registering to {reg.server} over {reg.transport}:"
                f" no answer yet ({doing})"
            )
        case "registering" if reg.server is not None:
            return f"{reg.account}: registering to {reg.server} ({reg.transport})…"
        case "registering":
            return f"{reg.account}: registering… ({reg.transport})"
        case "failed":
            text = f"{reg.account}: failed: {reg.reason or 'no reason given'}"
            if reg.retry_in_s is not None:
                left = reg.retry_in_s - (now_wall - failed_at if failed_at is not None else 0.0)
                text += f" (retry in {max(0, round(left))} s)"
            return text
        case "none":
            return f"{reg.account}: local (no registrar)"
        case _ as unknown:
            assert_never(unknown)


class StatusBar(Static):
    """Shows :meth:`show`'s registrations; ``-failed`` is set while any account failed."""

    DEFAULT_CSS = """
    StatusBar {
        height: auto;
        max-height: 3;
        padding: 0 1;
        background: $panel;
        color: $text;
    }
    StatusBar.-failed { color: $text-warning; }
    """

    def __init__(self, *, clock: Callable[[], float], id: str | None = None) -> None:
        super().__init__("starting…", id=id)
        self._clock = clock
        self._failed_at: dict[str, float] = {}
        self._registrations: Mapping[str, Registration] | None = None
        self.unread = 0
        self.own: OwnPresence | None = None
        self.voicemail: str | None = None
        self._boxes: Mapping[str, Voicemail] = {}  # the provider's boxes (MWI)
        self.local_unheard = 0  # the answering machine's messages not heard yet
        # account -> its forwarding and do-not-disturb in short ("DND", "→ sip:bob@x"), from the
        # config: shown after its registration
        self.forwarding: Mapping[str, str] = {}
        self.text = "starting…"

    def show_presence(self, own: OwnPresence) -> None:
        """Our presence; shown while it is published for some account."""
        self.own = own
        if self._registrations is not None:
            self.show(self._registrations)

    def show_voicemail(self, boxes: Mapping[str, Voicemail]) -> None:
        """The voicemail boxes (every account's, added up) and the answering machine's unheard
        messages (:meth:`show_local_voicemail`); nothing is said when none waits."""
        self._boxes = boxes
        waiting = [b for b in boxes.values() if b.waiting or b.new]
        line = None
        if waiting or self.local_unheard:
            line = voicemail_text(
                sum(b.new for b in waiting) + self.local_unheard,
                sum(b.old for b in waiting),
                sum(b.urgent_new for b in waiting),
            )
            if self.local_unheard:
                line += " (w)"
        self.voicemail = line
        if self._registrations is not None:
            self.show(self._registrations)

    def show_local_voicemail(self, unheard: int) -> None:
        """How many of the answering machine's messages are not heard yet."""
        self.local_unheard = unheard
        self.show_voicemail(self._boxes)
        if self._registrations is None:
            self.text = self.voicemail or "starting…"
            self.update(self.text)

    def show(self, registrations: Mapping[str, Registration]) -> None:
        self._registrations = registrations
        now = self._clock()
        for name, reg in registrations.items():
            if reg.state == "failed":
                self._failed_at.setdefault(name, now)
            else:
                self._failed_at.pop(name, None)
        lines = [
            describe_registration(reg, now_wall=now, failed_at=self._failed_at.get(name))
            + (f" [{self.forwarding[name]}]" if name in self.forwarding else "")
            for name, reg in registrations.items()
        ]
        text = "  │  ".join(lines) if lines else "no accounts"
        if self.unread:
            text += f"  │  ✉ {self.unread} unread (R replies, M writes)"
        rendered = Text(text)
        if self.own is not None and self.own.accounts:
            rendered.append("  │  ")
            rendered.append_text(own_presence_text(self.own))
            rendered.append(" (P)")
        if self.voicemail is not None:
            rendered.append(f"  │  {self.voicemail}")
        self.set_class(any(r.state == "failed" for r in registrations.values()), "-failed")
        if rendered.plain != self.text:
            self.text = rendered.plain
            self.update(rendered)

    def show_unread(self, count: int) -> None:
        """How many messages are unread (0: nothing is said)."""
        if count != self.unread:
            self.unread = count
            if self._registrations is not None:
                self.show(self._registrations)
            else:
                self.text = f"✉ {count} unread" if count else "starting…"
                self.update(self.text)

    def failure_seen(self, account: str) -> None:
        """A new RegistrationFailed: restart the countdown from now."""
        self._failed_at[account] = self._clock()
