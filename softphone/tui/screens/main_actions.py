"""The main screen's actions: for each, its keys, the action's name, the footer label and a line
of help. The main screen binds them, the app's command palette lists them, and the help screen
shows them with every other screen's keys (:func:`help_sections`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from softphone.tui.screens.help import HelpSection
from softphone.tui.screens.incoming import IncomingScreen

__all__ = ["ACTIONS", "MAIN_HELP", "Action", "help_sections"]


@dataclass(frozen=True, slots=True)
class Action:
    """One main-screen action: its keys, the action name, the footer label and what it does."""

    keys: str
    name: str
    label: str
    help: str
    show: bool = True


ACTIONS: Final[tuple[Action, ...]] = (
    Action("a", "answer", "Answer", "answer the selected (or the ringing) call"),
    Action("h", "hangup", "Hang up", "hang up the selected call, or reject it while it rings"),
    Action("H,o", "toggle_hold", "Hold", "hold / resume the selected call"),
    Action("m", "toggle_mute", "Mute", "mute / unmute the microphone in the selected call"),
    Action("r", "toggle_record", "Rec", "start / stop recording the selected call"),
    Action(
        "C",
        "toggle_video",
        "Video",
        "add / remove video in the selected call (re-INVITE): the far end in the side pane,"
        " yours in its corner",
    ),
    Action(
        "t",
        "transfer",
        "Transfer",
        "transfer the selected call: to the other call when there is one (attended), or to a"
        " target you type (blind)",
    ),
    Action(
        "j",
        "conference",
        "Conf",
        "conference: join the selected call with the other call (both hear each other and"
        " you); in a conference, split it (the selected call stays, the other is held)",
    ),
    Action("d,slash", "focus_dial", "Dial", "go to the dial bar"),
    Action("T", "trace", "Trace", "SIP ladder of the selected call"),
    Action(
        "L",
        "flows",
        "SIP flows",
        "every SIP flow seen: calls, registrations, OPTIONS, ... (Enter: its ladder)",
        show=False,
    ),
    Action(
        "M",
        "message",
        "Chat",
        "write an instant message: to an address, a contact, or a recent conversation",
    ),
    Action("R", "reply", "Reply", "open the conversation with whoever wrote last", show=False),
    Action("y", "history", "History", "call history"),
    Action("c", "contacts", "Contacts", "contacts (with each one's presence or busy lamp)"),
    Action(
        "w",
        "voicemail",
        "Voicemail",
        "the answering machine's messages: play, heard, delete, call back",
        show=False,  # the status bar says "(w)" beside the messages waiting
    ),
    Action(
        "P",
        "presence",
        "Presence",
        "your presence: available, away, busy or do not disturb, with a note",
        show=False,  # the footer is full at 160 columns; the status bar says "(P)" beside it
    ),
    Action(
        "D",
        "toggle_dnd",
        "DND",
        "do not disturb on / off for every account (saved; the status bar says [DND])",
        show=False,  # the footer is full; the status bar shows it while on
    ),
    Action(
        "e",
        "toggle_echo",
        "Echo cancellation",
        "echo cancellation (with noise suppression) on / off for the sound"
        " card, the calls up too (saved in the config)",
        show=False,  # the footer is full
    ),
    Action("s", "settings", "Settings", "accounts and settings (forwarding: edit an account)"),
    Action("v", "open_stream", "Stream", "open an RTSP URL or a camera in the side pane"),
    Action("V", "toggle_pane", "Pane", "show / hide the side pane (hidden, video is not decoded)"),
    Action("x", "stop_stream", "Stop stream", "stop the stream in the side pane", show=False),
    Action("plus", "enlarge_pane", "Enlarge", "make the side pane wider (cycles)", show=False),
    Action("question_mark,f1", "help", "Help", "this help"),
    Action("q", "quit", "Quit", "hang up every call and quit"),
)

MAIN_HELP: Final[tuple[tuple[str, str], ...]] = (
    ("Enter (dial bar)", "call what is typed: a SIP URI, a number or a contact name"),
    ("→ (dial bar)", "accept the suggestion from contacts and history"),
    ("Escape (dial bar)", "leave the dial bar; then the single keys below work"),
    ("↑ / ↓", "select a call"),
    ("0-9 * #", "send DTMF in the selected call (outside the dial bar)"),
    *(
        (
            a.keys.replace("question_mark", "?")
            .replace("slash", "/")
            .replace("plus", "+")
            .replace(",", " / "),
            a.help,
        )
        for a in ACTIONS
    ),
    ("ctrl+p", "command palette: every action by name"),
)


def help_sections(first: type | None = None) -> list[HelpSection]:
    """The main screen's keys, then every other screen's ``KEYS_HELP`` (the ones that exist);
    the section of the screen class ``first`` (the one on top) comes first."""
    sections: list[tuple[type | None, HelpSection]] = [
        (None, ("Main screen", MAIN_HELP)),
        (IncomingScreen, ("Incoming call", IncomingScreen.KEYS_HELP)),
    ]
    for module, name, title in (
        ("history", "HistoryScreen", "History"),
        ("contacts", "ContactsScreen", "Contacts"),
        ("voicemail", "VoicemailScreen", "Voicemail"),
        ("chat", "ChatScreen", "Messages (a conversation)"),
        ("chat", "ChatPicker", "Write a message to"),
        ("flows", "FlowsScreen", "SIP flows"),
        ("trace", "TraceScreen", "SIP trace"),
        ("settings", "SettingsScreen", "Settings"),
        ("presence", "PresenceScreen", "Your presence"),
        ("login", "LoginScreen", "Camera login"),
    ):
        try:
            screen = getattr(__import__(f"softphone.tui.screens.{module}", fromlist=[name]), name)
        except (ImportError, AttributeError):
            continue
        sections.append((screen, (title, tuple(getattr(screen, "KEYS_HELP", ())))))
    ordered = sorted(sections, key=lambda s: first is None or s[0] is not first)
    return [section for _, section in ordered]
