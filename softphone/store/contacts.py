"""Contacts: a name, SIP/tel URIs (the first is the primary), an optional RTSP URL, a star.

Every URI is validated and normalised on the way in (:func:`normalise_uri`): ``sip:``, ``sips:``
and ``tel:`` URIs are parsed (RFC 3261 §19.1, RFC 3966) and written back in canonical form; a
bare ``user@host`` becomes ``sip:user@host``. Each stored URI carries a match key (uris.py: user
and host, or a telephone number's digits) so that :meth:`Contacts.find_by_uri` can name the
caller of an incoming call, or the callee of a number dialled, in one indexed look-up.
"""

from __future__ import annotations

import asyncio
import builtins
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from softphone.sip.uri import SipUri, parse_uri
from softphone.store.db import Database, like_pattern
from softphone.store.errors import ContactError
from softphone.store.uris import match_keys, normalise_uri, uri_match_key

__all__ = [
    "RTSP_SCHEMES",
    "Contact",
    "ContactError",
    "Contacts",
    "normalise_uri",
    "uri_match_key",
    "validate_contact",
]

RTSP_SCHEMES: Final = ("rtsp", "rtsps")


@dataclass(frozen=True, slots=True, kw_only=True)
class Contact:
    """A person or device to call. ``id`` is None until :meth:`Contacts.add` stores it."""

    id: int | None = None
    name: str
    uris: tuple[str, ...]
    rtsp_url: str | None = None
    favourite: bool = False

    @property
    def primary_uri(self) -> str:
        return self.uris[0]


def _port(uri: str) -> int | None:
    parsed = parse_uri(uri)
    return parsed.port if isinstance(parsed, SipUri) else None


def validate_contact(contact: Contact) -> Contact:
    """The contact with name trimmed and URIs normalised, or ContactError."""
    name = " ".join(contact.name.split())
    if not name:
        raise ContactError("a contact needs a name")
    if isinstance(contact.uris, str):
        raise ContactError("uris must be a tuple of URIs, not one string")
    uris: list[str] = []
    keys: set[tuple[str, int | None]] = set()
    for raw in contact.uris:
        uri = normalise_uri(raw)
        key = (uri_match_key(uri), _port(uri))
        if key in keys:
            raise ContactError(f"{name}: {raw!r} is listed twice")
        keys.add(key)
        uris.append(uri)
    if not uris:
        raise ContactError(f"{name}: a contact needs at least one SIP address or number")
    rtsp_url = (contact.rtsp_url or "").strip() or None
    if rtsp_url is not None:
        try:
            parts = urlsplit(rtsp_url)
            scheme, host = parts.scheme.lower(), parts.hostname
        except ValueError as exc:
            raise ContactError(f"{name}: bad RTSP URL {rtsp_url!r}: {exc}") from exc
        if scheme not in RTSP_SCHEMES or not rtsp_url.lower().startswith(f"{scheme}://"):
            raise ContactError(
                f"{name}: the RTSP URL must start with rtsp:// or rtsps://, not {rtsp_url!r}"
            )
        if not host:
            raise ContactError(f"{name}: the RTSP URL {rtsp_url!r} has no host")
    return Contact(
        id=contact.id,
        name=name,
        uris=tuple(uris),
        rtsp_url=rtsp_url,
        favourite=bool(contact.favourite),
    )


class Contacts:
    """The contacts in ``db``. Sync methods are thread-safe; ``*_async`` run in a thread."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # -- writing ------------------------------------------------------------------------------

    def add(self, contact: Contact) -> Contact:
        """Validate and store a new contact (its id is ignored); returns it with its id."""
        return self.add_many([contact])[0]

    def add_many(self, contacts: Iterable[Contact]) -> builtins.list[Contact]:
        """Validate every contact first, then store them all in one transaction (a vCard import)."""
        valid = [validate_contact(c) for c in contacts]
        stored: list[Contact] = []
        with self._db.transaction() as conn:
            for contact in valid:
                cursor = conn.execute(
                    "INSERT INTO contacts (name, favourite, rtsp_url) VALUES (?, ?, ?)",
                    (contact.name, int(contact.favourite), contact.rtsp_url),
                )
                assert cursor.lastrowid is not None
                stored.append(_with_id(contact, cursor.lastrowid))
                _write_uris(conn, cursor.lastrowid, contact.uris)
        return stored

    def update(self, contact: Contact) -> Contact:
        """Replace the stored contact with ``contact.id``; ContactError if there is none."""
        if contact.id is None:
            raise ContactError("cannot update a contact that was never added (no id)")
        valid = validate_contact(contact)
        with self._db.transaction() as conn:
            changed = conn.execute(
                "UPDATE contacts SET name = ?, favourite = ?, rtsp_url = ? WHERE id = ?",
                (valid.name, int(valid.favourite), valid.rtsp_url, contact.id),
            ).rowcount
            if not changed:
                raise ContactError(f"no contact with id {contact.id}")
            conn.execute("DELETE FROM contact_uris WHERE contact_id = ?", (contact.id,))
            _write_uris(conn, contact.id, valid.uris)
        return valid

    def delete(self, contact_id: int) -> bool:
        """Remove a contact (and its URIs); False when there was none with that id."""
        with self._db.transaction() as conn:
            return conn.execute("DELETE FROM contacts WHERE id = ?", (contact_id,)).rowcount > 0

    # -- reading ------------------------------------------------------------------------------

    def get(self, contact_id: int) -> Contact | None:
        with self._db.read() as conn:
            found = _load(conn, "WHERE c.id = ?", (contact_id,))
        return found[0] if found else None

    def list(self) -> builtins.list[Contact]:
        """Favourites first, then by name (ignoring case and accents)."""
        with self._db.read() as conn:
            return _load(conn, "", ())

    def count(self) -> int:
        with self._db.read() as conn:
            return int(conn.execute("SELECT count(*) FROM contacts").fetchone()[0])

    def search(self, text: str, limit: int = 20) -> builtins.list[Contact]:
        """Contacts whose name or a URI contains ``text`` (any case), for dial-bar completion.

        Prefix matches (of the name, a word of the name, or a URI after its scheme) come first,
        then favourites, then by name. ``%`` and ``_`` match themselves.
        """
        needle = text.strip().casefold()
        if not needle:
            return self.list()[:limit]
        with self._db.read() as conn:
            found = _load(
                conn,
                "WHERE casefold(c.name) LIKE ?1 ESCAPE '\\' OR c.id IN (SELECT contact_id FROM "
                "contact_uris WHERE casefold(uri) LIKE ?1 ESCAPE '\\')",
                (like_pattern(needle),),
            )

        def is_prefix(contact: Contact) -> bool:
            name = contact.name.casefold()
            if name.startswith(needle) or any(w.startswith(needle) for w in name.split()):
                return True
            return any(
                u.casefold().startswith(needle) or u.partition(":")[2].casefold().startswith(needle)
                for u in contact.uris
            )

        # _load's order is favourite, then name: a stable sort on prefix keeps it within groups.
        found.sort(key=lambda c: not is_prefix(c))
        return found[:limit]

    def find_by_uri(self, uri: str) -> Contact | None:
        """The contact owning ``uri``: a URI (never a header's text), compared as uris.py says.

        SIP URIs compare by user and host, ignoring scheme (sip/sips), URI parameters, the
        host's case and a port given on one side only; the user part is compared exactly (RFC
        3261 §19.1.4). Telephone numbers compare by their digits, in whichever spelling (``tel:``,
        ``user=phone``, separators, ``+`` or ``00``). A bare ``user@host`` is accepted; anything
        unparseable matches nothing."""
        try:
            wanted = normalise_uri(uri)
        except ContactError:
            return None
        keys, port = match_keys(wanted), _port(wanted)
        with self._db.read() as conn:
            rows = conn.execute(
                f"SELECT contact_id, uri, match_key FROM contact_uris WHERE match_key IN "
                f"({', '.join('?' * len(keys))}) ORDER BY contact_id, position",
                keys,
            ).fetchall()
            # The best key first (a number's digits before its SIP user), then contact order.
            rows.sort(key=lambda row: keys.index(str(row[2])))
            for contact_id, stored, key in rows:
                theirs = _port(str(stored))
                numbers = str(key).startswith("tel:")  # a number's gateway port says nothing
                if numbers or port is None or theirs is None or port == theirs:
                    return _load(conn, "WHERE c.id = ?", (int(contact_id),))[0]
        return None

    # -- async wrappers (asyncio.to_thread) ---------------------------------------------------

    async def add_async(self, contact: Contact) -> Contact:
        return await asyncio.to_thread(self.add, contact)

    async def add_many_async(self, contacts: Iterable[Contact]) -> builtins.list[Contact]:
        return await asyncio.to_thread(self.add_many, builtins.list(contacts))

    async def update_async(self, contact: Contact) -> Contact:
        return await asyncio.to_thread(self.update, contact)

    async def delete_async(self, contact_id: int) -> bool:
        return await asyncio.to_thread(self.delete, contact_id)

    async def get_async(self, contact_id: int) -> Contact | None:
        return await asyncio.to_thread(self.get, contact_id)

    async def list_async(self) -> builtins.list[Contact]:
        return await asyncio.to_thread(self.list)

    async def search_async(self, text: str, limit: int = 20) -> builtins.list[Contact]:
        return await asyncio.to_thread(self.search, text, limit)

    async def find_by_uri_async(self, uri: str) -> Contact | None:
        return await asyncio.to_thread(self.find_by_uri, uri)


def _with_id(contact: Contact, contact_id: int) -> Contact:
    return Contact(
        id=contact_id,
        name=contact.name,
        uris=contact.uris,
        rtsp_url=contact.rtsp_url,
        favourite=contact.favourite,
    )


def _write_uris(conn: sqlite3.Connection, contact_id: int, uris: tuple[str, ...]) -> None:
    conn.executemany(
        "INSERT INTO contact_uris (contact_id, position, uri, match_key) VALUES (?, ?, ?, ?)",
        [(contact_id, i, uri, uri_match_key(uri)) for i, uri in enumerate(uris)],
    )


def _load(conn: sqlite3.Connection, where: str, args: tuple[object, ...]) -> list[Contact]:
    """Contacts matching ``where`` (on alias ``c``): favourites first, then by name ignoring
    case and accents."""
    rows = conn.execute(
        "SELECT c.id, c.name, c.favourite, c.rtsp_url, u.uri FROM contacts AS c "
        f"LEFT JOIN contact_uris AS u ON u.contact_id = c.id {where} "
        "ORDER BY c.favourite DESC, sort_key(c.name), casefold(c.name), c.id, u.position",
        args,
    ).fetchall()
    out: list[Contact] = []
    uris: list[str] = []
    for i, (contact_id, name, favourite, rtsp_url, uri) in enumerate(rows):
        if uri is not None:
            uris.append(str(uri))
        if i + 1 == len(rows) or rows[i + 1][0] != contact_id:
            out.append(
                Contact(
                    id=int(contact_id),
                    name=str(name),
                    uris=tuple(uris),
                    favourite=bool(favourite),
                    rtsp_url=None if rtsp_url is None else str(rtsp_url),
                )
            )
            uris = []
    return out
