"""Busy lamps and presence as the TUI shows them: a coloured dot and a word, so that the state
reads without colour too (NO_COLOR, a monochrome terminal, a screen reader).

The lamp wins over the presence state: a party in a call is ``in a call`` whatever its PIDF
says, a call ringing there is ``ringing``; otherwise the state its presence publishes.
"""

from __future__ import annotations

from typing import Final

from rich.text import Text

from softphone.phone.api import ContactPresence, OwnPresence

__all__ = ["LAMP_WIDTH", "lamp_text", "own_presence_text", "voicemail_text"]

LAMP_WIDTH: Final = 11  # "● in a call"

# (word, style) for what a watched party shows.
_BY_LAMP: Final = {"busy": ("in a call", "bold red"), "ringing": ("ringing", "bold yellow")}
_BY_STATE: Final = {
    "available": ("available", "green"),
    "away": ("away", "yellow"),
    "busy": ("busy", "red"),
    "dnd": ("dnd", "red"),
    "offline": ("offline", "grey50"),
}


def lamp_text(presence: ContactPresence | None) -> Text:
    """``● in a call`` / ``● ringing`` / ``● available`` ...; empty when nothing is known."""
    if presence is None:
        return Text("")
    word_style = _BY_LAMP.get(presence.lamp) or _BY_STATE.get(presence.state)
    if word_style is None:
        if presence.lamp != "idle":
            return Text("")
        word_style = ("idle", "green")
    word, style = word_style
    return Text.assemble(("●", style), " ", word)


def own_presence_text(own: OwnPresence) -> Text:
    """Our presence for the status bar: ``● available``, ``● away: lunch``, ``● on the phone``
    (busy by itself during a call: what others see is busy). Short, as the status bar has the
    accounts on the same line."""
    word, style = _BY_STATE[own.shown]
    if own.shown == "dnd":
        word = "do not disturb"
    if own.shown != own.state:
        word = "on the phone"
    note = f": {own.note}" if own.note else ""
    return Text.assemble(("●", style), f" {word}{note}")


def voicemail_text(new: int, old: int, urgent: int) -> str:
    """``voicemail: 2 new (1 urgent), 8 old``."""
    urgent_part = f" ({urgent} urgent)" if urgent else ""
    return f"voicemail: {new} new{urgent_part}, {old} old"
