"""Persistent records: contacts, call history, instant messages and voicemail in one SQLite file (sqlite3 via
asyncio.to_thread), plus vCard import. Plain records in, plain records out; no UI imports."""

from __future__ import annotations

from softphone.store.contacts import Contact, ContactError, Contacts, normalise_uri
from softphone.store.db import Database, Recovered, StoreError, default_db_path
from softphone.store.history import (
    INTERRUPTED_REASON,
    CallRecord,
    CallResult,
    Direction,
    History,
)
from softphone.store.messages import (
    MAX_MESSAGES,
    Conversation,
    DeliveryState,
    MessageDirection,
    MessageRecord,
    Messages,
)
from softphone.store.uris import Party, match_keys, parse_party
from softphone.store.vcard import VCardProblem, parse_vcards, read_vcard
from softphone.store.voicemail import VoicemailRecord, Voicemails, wav_seconds

__all__ = [
    "INTERRUPTED_REASON",
    "MAX_MESSAGES",
    "CallRecord",
    "CallResult",
    "Contact",
    "ContactError",
    "Contacts",
    "Conversation",
    "Database",
    "DeliveryState",
    "Direction",
    "History",
    "MessageDirection",
    "MessageRecord",
    "Messages",
    "Party",
    "Recovered",
    "StoreError",
    "VCardProblem",
    "VoicemailRecord",
    "Voicemails",
    "default_db_path",
    "match_keys",
    "normalise_uri",
    "parse_party",
    "parse_vcards",
    "read_vcard",
    "wav_seconds",
]
