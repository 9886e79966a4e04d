"""vCard import (RFC 6350 for 4.0, RFC 2426 for 3.0, and the 2.1 exports phones still make).

:func:`parse_vcards` turns the text of a ``.vcf`` file into contacts ready for
:meth:`Contacts.add_many <softphone.store.contacts.Contacts.add_many>`, plus a list of problems:
a card that cannot become a contact (no name, no number or SIP address, no ``END:VCARD``) is
reported with the line its ``BEGIN:VCARD`` is on and skipped; a single bad number or address is
reported with its own line and left out. Nothing here raises on bad input.

What is read:

- the name from ``FN``, else ``N`` (family;given;additional;prefix;suffix, RFC 6350 §6.2.2),
  else ``ORG``;
- SIP addresses from ``IMPP``, ``X-SIP`` and ``URL`` values with a ``sip:``/``sips:`` scheme (a
  bare ``user@host`` in ``X-SIP`` too); an ``rtsp://`` ``URL`` becomes the RTSP URL;
- ``TEL`` as ``tel:`` URIs, or as ``sip:number@domain`` when a ``phone_domain`` is given;
- ``CATEGORIES`` naming ``starred``/``favorites`` (Google, some phones) sets the star.

Syntax handled: folding (§3.2: CRLF + one space or tab), property groups (``item1.TEL``),
backslash escapes (§3.4), ``PREF`` / ``TYPE=pref`` ordering, and from 2.1 the bare parameters
(``;CELL;QUOTED-PRINTABLE``), ``=``-soft line breaks and ``CHARSET=`` for any value.
"""

from __future__ import annotations

import codecs
import quopri
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from softphone.store.contacts import Contact, ContactError, normalise_uri, validate_contact

_SIP_SCHEMES: Final = ("sip:", "sips:")
_TEL_KEEP: Final = frozenset("0123456789+*#")
_STAR_CATEGORIES: Final = frozenset({"starred", "favorites", "favourites", "favorite", "favourite"})
_LINE_BREAK: Final = re.compile(r"\r\n|\r|\n")
_NAME_RE: Final = re.compile(r"^(?:[A-Za-z0-9-]+\.)?([A-Za-z0-9-]+)$")


@dataclass(frozen=True, slots=True, kw_only=True)
class VCardProblem:
    """Something in the file that was skipped; ``line`` is 1-based (0: the file as a whole)."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


@dataclass(slots=True)
class _Property:
    line: int
    name: str  # upper case, group removed
    params: dict[str, list[str]]  # upper-case names; 2.1 bare parameters go under TYPE
    raw: str

    def has_type(self, value: str) -> bool:
        return value.lower() in (t.lower() for t in self.params.get("TYPE", ()))

    @property
    def pref(self) -> bool:
        return self.has_type("pref") or bool(self.params.get("PREF"))


@dataclass(slots=True)
class _Card:
    line: int
    props: list[_Property] = field(default_factory=list)
    ended: bool = False


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Unfold (RFC 6350 §3.2) and join 2.1 quoted-printable soft breaks; keep start lines."""
    out: list[tuple[int, str]] = []
    for number, physical in enumerate(_LINE_BREAK.split(text), start=1):
        if out and physical[:1] in (" ", "\t"):
            out[-1] = (out[-1][0], out[-1][1] + physical[1:])
            continue
        if out and _is_quoted_printable_head(out[-1][1]) and out[-1][1].endswith("="):
            out[-1] = (out[-1][0], out[-1][1][:-1] + "=\n" + physical)  # keep the soft break
            continue
        if physical.strip():
            out.append((number, physical))
    return out


def _is_quoted_printable_head(line: str) -> bool:
    head = line.split(":", 1)[0]
    return "QUOTED-PRINTABLE" in head.upper()


def _split_unquoted(text: str, sep: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for c in text:
        if c == '"':
            quoted = not quoted
        if c == sep and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(c)
    parts.append("".join(current))
    return parts


def _parse_property(line: int, text: str) -> _Property | None:
    """``[group "."] name *(";" param) ":" value`` (RFC 6350 §3.3); None if it is not one."""
    head_and_value = _split_unquoted(text, ":")
    if len(head_and_value) < 2:
        return None
    head, raw = head_and_value[0], ":".join(head_and_value[1:])
    pieces = _split_unquoted(head, ";")
    m = _NAME_RE.match(pieces[0].strip())
    if m is None:
        return None
    params: dict[str, list[str]] = {}
    for piece in pieces[1:]:
        key, eq, value = piece.partition("=")
        key = key.strip().upper()
        if not eq:  # vCard 2.1 bare parameter: ;CELL ;PREF ;QUOTED-PRINTABLE
            if key in ("QUOTED-PRINTABLE", "BASE64", "8BIT", "7BIT"):
                params.setdefault("ENCODING", []).append(key)
            else:
                params.setdefault("TYPE", []).append(key)
            continue
        values = [v.strip().strip('"') for v in _split_unquoted(value, ",")]
        params.setdefault(key, []).extend(v for v in values if v)
    return _Property(line=line, name=m.group(1).upper(), params=params, raw=raw)


def _decoded(prop: _Property) -> str:
    """The value with quoted-printable and charset undone (escapes are left for the caller)."""
    encoding = [e.upper() for e in prop.params.get("ENCODING", ())]
    charset = (prop.params.get("CHARSET") or ["utf-8"])[0]
    try:
        codecs.lookup(charset)
    except LookupError:
        charset = "utf-8"
    raw = prop.raw.encode("utf-8", errors="surrogateescape")
    if "QUOTED-PRINTABLE" in encoding:
        raw = quopri.decodestring(raw)
    elif charset.lower().replace("_", "-") in ("utf-8", "utf8"):
        charset = "utf-8"
    try:
        return raw.decode(charset)
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _unescape(value: str) -> str:
    """RFC 6350 §3.4: ``\\n`` ``\\,`` ``\\;`` ``\\\\``."""
    out: list[str] = []
    i = 0
    while i < len(value):
        c = value[i]
        if c == "\\" and i + 1 < len(value):
            nxt = value[i + 1]
            out.append("\n" if nxt in "nN" else nxt)
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def _split_structured(value: str) -> list[str]:
    """Split on ``;`` not escaped by a backslash, then unescape each component."""
    parts: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(value):
        c = value[i]
        if c == "\\" and i + 1 < len(value):
            current.append(value[i : i + 2])
            i += 2
            continue
        if c == ";":
            parts.append(_unescape("".join(current)))
            current = []
        else:
            current.append(c)
        i += 1
    parts.append(_unescape("".join(current)))
    return parts


def _name(card: _Card) -> str:
    for prop in card.props:
        if prop.name == "FN" and (value := " ".join(_unescape(_decoded(prop)).split())):
            return value
    for prop in card.props:
        if prop.name == "N":
            parts = [*_split_structured(_decoded(prop)), "", "", "", "", ""][:5]
            family, given, additional, prefix, suffix = (p.replace(",", " ").strip() for p in parts)
            if value := " ".join(p for p in (prefix, given, additional, family, suffix) if p):
                return value
    for prop in card.props:
        if prop.name == "ORG" and (value := " ".join(_split_structured(_decoded(prop))).strip()):
            return " ".join(value.split())
    return ""


def _tel_uri(value: str, phone_domain: str | None) -> str:
    number = value.strip()
    if number.lower().startswith("tel:"):
        number = number[4:].split(";", 1)[0]
    digits = "".join(c for c in number if c in _TEL_KEEP)
    if not digits.lstrip("+") or "+" in digits[1:]:
        raise ContactError(f"{value.strip()!r} is not a phone number")
    return f"sip:{digits}@{phone_domain}" if phone_domain else f"tel:{digits}"


def _card_contact(
    card: _Card, phone_domain: str | None, problems: list[VCardProblem]
) -> Contact | None:
    name = _name(card)
    sip: list[tuple[bool, str]] = []
    tel: list[tuple[bool, str]] = []
    rtsp_url: str | None = None
    favourite = False
    for prop in card.props:
        value = _unescape(_decoded(prop)).strip()
        try:
            if prop.name == "TEL":
                tel.append((prop.pref, normalise_uri(_tel_uri(value, phone_domain))))
            elif prop.name in ("IMPP", "URL", "X-SIP"):
                lowered = value.lower()
                if lowered.startswith(_SIP_SCHEMES) or (prop.name == "X-SIP" and value):
                    sip.append((prop.pref, normalise_uri(value)))
                elif prop.name == "URL" and lowered.startswith(("rtsp://", "rtsps://")):
                    rtsp_url = rtsp_url or value
            elif prop.name == "CATEGORIES":
                tags = {t.strip().casefold() for t in _split_structured(value.replace(",", ";"))}
                favourite = favourite or bool(tags & _STAR_CATEGORIES)
        except ContactError as exc:
            problems.append(VCardProblem(line=prop.line, message=f"{prop.name} skipped: {exc}"))
    if not name:
        problems.append(
            VCardProblem(line=card.line, message="card skipped: it has no name (FN, N or ORG)")
        )
        return None
    uris: list[str] = []
    # SIP addresses before numbers; within each, preferred ones first (stable sort).
    for _, uri in sorted(sip, key=lambda p: not p[0]) + sorted(tel, key=lambda p: not p[0]):
        if uri not in uris:
            uris.append(uri)
    if not uris:
        problems.append(
            VCardProblem(
                line=card.line, message=f"card {name!r} skipped: no phone number or SIP address"
            )
        )
        return None
    try:
        return validate_contact(
            Contact(name=name, uris=tuple(uris), rtsp_url=rtsp_url, favourite=favourite)
        )
    except ContactError as exc:
        problems.append(VCardProblem(line=card.line, message=f"card {name!r} skipped: {exc}"))
        return None


def parse_vcards(
    text: str, *, phone_domain: str | None = None
) -> tuple[list[Contact], list[VCardProblem]]:
    """Every card in ``text`` that makes a contact (ids are None), and what was skipped.

    ``phone_domain``: turn ``TEL`` numbers into ``sip:<number>@<phone_domain>`` instead of ``tel:``.
    """
    contacts: list[Contact] = []
    problems: list[VCardProblem] = []
    card: _Card | None = None
    cards: list[_Card] = []
    for number, line in _logical_lines(text.lstrip("\ufeff")):
        upper = line.strip().upper()
        if upper == "BEGIN:VCARD":
            if card is not None:
                problems.append(
                    VCardProblem(
                        line=card.line, message="card skipped: no END:VCARD before the next card"
                    )
                )
            card = _Card(line=number)
            continue
        if card is None:
            problems.append(
                VCardProblem(line=number, message="text outside BEGIN:VCARD … END:VCARD ignored")
            )
            continue
        if upper == "END:VCARD":
            cards.append(card)
            card = None
            continue
        prop = _parse_property(number, line)
        if prop is None:
            problems.append(
                VCardProblem(line=number, message=f"not a vCard property, ignored: {line[:40]!r}")
            )
            continue
        card.props.append(prop)
    if card is not None:
        problems.append(
            VCardProblem(line=card.line, message="card skipped: the file ends before END:VCARD")
        )
    for complete in cards:
        try:
            contact = _card_contact(complete, phone_domain, problems)
        except Exception as exc:  # never let one odd card end the import
            problems.append(VCardProblem(line=complete.line, message=f"card skipped: {exc}"))
            continue
        if contact is not None:
            contacts.append(contact)
    problems.sort(key=lambda p: p.line)
    return contacts, problems


def decode_vcard_bytes(data: bytes) -> str:
    """Text of a .vcf file: UTF-16 by BOM, else UTF-8 (invalid bytes kept as surrogates so a
    ``CHARSET=`` parameter can still decode them)."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16")
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    return data.decode("utf-8", errors="surrogateescape")


def read_vcard(
    path: Path, *, phone_domain: str | None = None
) -> tuple[list[Contact], list[VCardProblem]]:
    """:func:`parse_vcards` on a file; a file that cannot be read is one problem, not an error."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return [], [VCardProblem(line=0, message=f"cannot read {path}: {exc.strerror or exc}")]
    try:
        text = decode_vcard_bytes(data)
    except UnicodeDecodeError as exc:
        return [], [VCardProblem(line=0, message=f"{path} is not text: {exc}")]
    return parse_vcards(text, phone_domain=phone_domain)
