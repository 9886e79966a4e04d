"""XML bodies from the network (PIDF, dialog-info), read defensively, sans-IO.

The documents the event packages carry (RFC 3863, RFC 4235) are small and never need a DTD. A
body is refused with a ParseError saying why, before anything is built from it, when it is:

- larger than :data:`MAX_XML_BYTES`;
- in an encoding XML does not allow (UTF-8 unless the declaration names another, XML 1.0
  §4.3.3);
- carrying a document type declaration or entity declarations (no PIDF needs one, and they are
  how an "XML bomb" multiplies a few bytes into gigabytes);
- not well-formed XML.

Names are compared without their namespace (:func:`local_name`): peers spell the same element
with different prefixes, default namespaces or, for RPID, with the namespaces of the drafts
that preceded RFC 4480 (Asterisk still does).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Final

from softphone.sip.errors import ParseError

__all__ = ["MAX_XML_BYTES", "children", "descendants", "local_name", "parse_xml", "text_of"]

MAX_XML_BYTES: Final = 64 * 1024
_DECLARATIONS: Final = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


def parse_xml(body: bytes, what: str) -> ET.Element:
    """The root element of ``body``; ParseError naming ``what`` and the fault otherwise."""
    if len(body) > MAX_XML_BYTES:
        raise ParseError(f"{what}: {len(body)} bytes, more than the {MAX_XML_BYTES} accepted")
    if not body.strip():
        raise ParseError(f"{what}: the body is empty")
    if _DECLARATIONS.search(body.replace(b"\x00", b"")):
        raise ParseError(f"{what}: document type and entity declarations are not accepted")
    try:
        return ET.fromstring(body)
    except ET.ParseError as exc:
        raise ParseError(f"{what}: not well-formed XML ({exc})") from None
    except (ValueError, LookupError) as exc:  # an encoding expat does not know
        raise ParseError(f"{what}: {exc}") from None


def local_name(element: ET.Element) -> str:
    """The element's name without its namespace: ``{urn:...:pidf}tuple`` -> ``tuple``."""
    tag = element.tag
    if not isinstance(tag, str):  # comments and processing instructions
        return ""
    return tag.rpartition("}")[2]


def children(element: ET.Element, name: str) -> Iterator[ET.Element]:
    """Direct children called ``name`` (in any namespace)."""
    return (child for child in element if local_name(child) == name)


def descendants(element: ET.Element, name: str) -> Iterator[ET.Element]:
    """Every element below ``element`` called ``name`` (in any namespace), in document order."""
    return (node for node in element.iter() if node is not element and local_name(node) == name)


def text_of(element: ET.Element | None) -> str | None:
    """The element's text, whitespace trimmed; None when absent or blank."""
    if element is None or element.text is None:
        return None
    text = " ".join(element.text.split())
    return text or None
