"""HTTP Digest authentication for SIP and RTSP (RFC 3261 §22, RFC 2326 §D, RFC 7616, RFC 8760;
RFC 2617/2069 compat).

Sans-IO and independent of the message layer: everything works on header VALUE strings, i.e.
what follows ``WWW-Authenticate:`` / ``Proxy-Authenticate:`` (challenges) and
``Authorization:`` / ``Proxy-Authorization:`` (credentials).

Client side (answering 401/407)::

    client = DigestClient([Credentials("alice", "secret")], rng=random.SystemRandom())
    challenge = Challenge.parse(www_authenticate_value)
    if client.can_answer(challenge, previous=authorization_values_we_sent):
        value = client.authorize(challenge, method="REGISTER", uri="sip:example.org")

Later requests to the same realm may carry credentials up front (RFC 7616 §3.4, nc
incremented): ``client.cached(method=..., uri=...)``.

Server side (tests, and checking our own output): :func:`make_challenge` and
:func:`verify_authorization`.
"""

from __future__ import annotations

import hashlib
import hmac
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Final

from softphone.auth.errors import NoCredentials, ParseError

__all__ = [
    "Algorithm",
    "Challenge",
    "Credentials",
    "DigestClient",
    "NoCredentials",
    "make_challenge",
    "parse_challenges",
    "verify_authorization",
]


class Algorithm(Enum):
    """Digest algorithms (RFC 7616 §6.1 registry; RFC 8760 §2 for SIP)."""

    MD5 = "MD5"
    MD5_SESS = "MD5-sess"
    SHA256 = "SHA-256"
    SHA256_SESS = "SHA-256-sess"
    SHA512_256 = "SHA-512-256"
    SHA512_256_SESS = "SHA-512-256-sess"

    @property
    def session(self) -> bool:
        """True for the ``-sess`` variants (RFC 7616 §3.4.2)."""
        return self.value.endswith("-sess")

    @property
    def strength(self) -> int:
        """Preference rank, higher is stronger (RFC 8760 §2.4)."""
        return _STRENGTH[self]

    def hash(self, data: str) -> str:
        """H(data): lowercase hex digest of the UTF-8 encoding (RFC 7616 §3.4.4, §3.9.2)."""
        return self.hash_bytes(data.encode("utf-8"))

    def hash_bytes(self, data: bytes) -> str:
        """H(data) of raw bytes (the entity-body of qop=auth-int, RFC 7616 §3.4.3)."""
        return hashlib.new(_HASH_NAMES[self], data).hexdigest()


# hashlib names. SHA-512/256 (FIPS 180-4 §5.3.6) has its own IV: not a truncated SHA-512.
_HASH_NAMES: Final[Mapping[Algorithm, str]] = {
    Algorithm.MD5: "md5",
    Algorithm.MD5_SESS: "md5",
    Algorithm.SHA256: "sha256",
    Algorithm.SHA256_SESS: "sha256",
    Algorithm.SHA512_256: "sha512_256",
    Algorithm.SHA512_256_SESS: "sha512_256",
}

_STRENGTH: Final[Mapping[Algorithm, int]] = {
    Algorithm.MD5: 0,
    Algorithm.MD5_SESS: 0,
    Algorithm.SHA256: 1,
    Algorithm.SHA256_SESS: 1,
    Algorithm.SHA512_256: 2,
    Algorithm.SHA512_256_SESS: 2,
}

_ALGORITHMS_BY_NAME: Final[Mapping[str, Algorithm]] = {a.value.lower(): a for a in Algorithm}


# --------------------------------------------------------------------------------------------
# Header value syntax: RFC 3261 §25.1 (challenge / credentials), RFC 7235 §2.1 (auth-param),
# RFC 7230 §3.2.6 (token, quoted-string, quoted-pair).

_TOKEN_CHARS: Final[frozenset[str]] = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)
_WHITESPACE: Final[str] = " \t\r\n"  # LWS, including folded lines the message layer left in
# Unquoted values: RFC syntax says token, but servers send e.g. base64 nonces unquoted, so
# anything up to the next separator is accepted.
_VALUE_STOP: Final[frozenset[str]] = frozenset(_WHITESPACE + ',"')


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in _WHITESPACE:
        pos += 1
    return pos


def _read_token(text: str, pos: int) -> tuple[str, int]:
    start = pos
    while pos < len(text) and text[pos] in _TOKEN_CHARS:
        pos += 1
    return text[start:pos], pos


def _control(char: str) -> bool:
    """A control character other than HTAB: never in a quoted-string or token (RFC 7230
    §3.2.6), and never echoed back in our credentials, where it would break the header."""
    return (char < " " and char != "\t") or char == "\x7f"


def _read_quoted(text: str, pos: int) -> tuple[str, int]:
    """Read a quoted-string starting at the opening DQUOTE; unescape quoted-pairs."""
    out: list[str] = []
    pos += 1
    while pos < len(text):
        char = text[pos]
        if char == '"':
            return "".join(out), pos + 1
        if char == "\\":
            if pos + 1 >= len(text):
                break
            char = text[pos + 1]
            pos += 1
        if _control(char):
            raise ParseError(f"control character {char!r} in a quoted-string of an auth header")
        out.append(char)
        pos += 1
    raise ParseError("unterminated quoted-string in auth header")


def _split_scheme(value: str) -> tuple[str, str]:
    pos = _skip_ws(value, 0)
    scheme, pos = _read_token(value, pos)
    if not scheme:
        raise ParseError(f"auth header has no scheme: {value!r}")
    if pos < len(value) and value[pos] not in _WHITESPACE:
        raise ParseError(f"auth header scheme is not a token: {value!r}")
    return scheme, value[pos:]


def _parse_params(text: str) -> dict[str, str]:
    """``auth-param *( COMMA auth-param )``; names lower-cased, values unquoted.

    Tolerates whitespace around ``=`` and commas, empty list elements (RFC 7230 §7) and
    unquoted values; rejects duplicates (RFC 7235 §2.1: each name once per challenge).
    """
    params: dict[str, str] = {}
    pos = 0
    while True:
        pos = _skip_ws(text, pos)
        if pos >= len(text):
            return params
        if text[pos] == ",":
            pos += 1
            continue
        name, pos = _read_token(text, pos)
        if not name:
            raise ParseError(f"expected an auth-param name at {text[pos : pos + 20]!r}")
        pos = _skip_ws(text, pos)
        if pos >= len(text) or text[pos] != "=":
            raise ParseError(f"auth-param {name!r} has no value")
        pos = _skip_ws(text, pos + 1)
        if pos < len(text) and text[pos] == '"':
            value, pos = _read_quoted(text, pos)
        else:
            start = pos
            while pos < len(text) and text[pos] not in _VALUE_STOP:
                pos += 1
            value = text[start:pos]
            if not value:
                raise ParseError(f"auth-param {name!r} has an empty value")
            if any(_control(char) for char in value):
                raise ParseError(f"control character in the value of auth-param {name!r}")
        key = name.lower()
        if key in params:
            raise ParseError(f"duplicate auth-param {name!r}")
        params[key] = value
        pos = _skip_ws(text, pos)
        if pos < len(text) and text[pos] != ",":
            raise ParseError(f"expected ',' after auth-param {name!r}")


def _quote(value: str) -> str:
    """quoted-string with ``"`` and ``\\`` escaped as quoted-pairs (RFC 3261 §25.1)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _parse_algorithm(value: str | None) -> Algorithm:
    # RFC 7616 §3.3: absent means MD5.
    if value is None:
        return Algorithm.MD5
    try:
        return _ALGORITHMS_BY_NAME[value.strip().lower()]
    except KeyError:
        raise ParseError(f"unsupported digest algorithm {value!r}") from None


def _parse_digest(value: str) -> dict[str, str]:
    scheme, rest = _split_scheme(value)
    if scheme.lower() != "digest":
        raise ParseError(f"not a Digest auth header (scheme {scheme!r})")
    return _parse_params(rest)


# --------------------------------------------------------------------------------------------
# Challenges


@dataclass(frozen=True, slots=True)
class Challenge:
    """One WWW-Authenticate / Proxy-Authenticate challenge (RFC 3261 §22.1, RFC 7616 §3.3)."""

    scheme: str
    realm: str
    nonce: str
    opaque: str | None = None
    algorithm: Algorithm = Algorithm.MD5
    qop: tuple[str, ...] = ()
    stale: bool = False
    domain: str | None = None
    userhash: bool = False
    params: Mapping[str, str] = field(default_factory=dict, hash=False)

    @classmethod
    def parse(cls, value: str) -> Challenge:
        """Parse a header value; raises ParseError (and nothing else) when it is unusable."""
        params = _parse_digest(value)
        for required in ("realm", "nonce"):
            if required not in params:
                raise ParseError(f"Digest challenge has no {required}")
        # RFC 7616 §3.3: qop-options is a quoted, comma-separated list of tokens.
        qop = tuple(q.strip().lower() for q in params.get("qop", "").split(",") if q.strip())
        return cls(
            scheme="Digest",
            realm=params["realm"],
            nonce=params["nonce"],
            opaque=params.get("opaque"),
            algorithm=_parse_algorithm(params.get("algorithm")),
            qop=qop,
            stale=params.get("stale", "").lower() == "true",
            domain=params.get("domain"),
            userhash=params.get("userhash", "").lower() == "true",
            params=params,
        )


def parse_challenges(values: list[str]) -> list[Challenge]:
    """Parse the challenges of one response, skipping those we cannot use.

    Non-Digest schemes, unknown algorithms and malformed values are dropped. Of several
    challenges for one realm, the strongest algorithm wins (SHA-512-256 > SHA-256 > MD5; the
    topmost on a tie), per RFC 8760 §2.4. Realms keep the order of their first appearance.
    """
    best: dict[str, Challenge] = {}
    for value in values:
        try:
            challenge = Challenge.parse(value)
        except ParseError:
            continue
        current = best.get(challenge.realm)
        if current is None or challenge.algorithm.strength > current.algorithm.strength:
            best[challenge.realm] = challenge
    return list(best.values())


def make_challenge(
    *,
    realm: str,
    nonce: str,
    algorithm: Algorithm = Algorithm.MD5,
    qop: tuple[str, ...] = ("auth",),
    opaque: str | None = None,
    stale: bool = False,
) -> str:
    """A WWW-Authenticate / Proxy-Authenticate value (RFC 7616 §3.3)."""
    parts = [f"realm={_quote(realm)}", f"nonce={_quote(nonce)}"]
    if opaque is not None:
        parts.append(f"opaque={_quote(opaque)}")
    if stale:
        parts.append("stale=true")
    parts.append(f"algorithm={algorithm.value}")
    if qop:
        parts.append(f"qop={_quote(','.join(qop))}")
    return "Digest " + ", ".join(parts)


# --------------------------------------------------------------------------------------------
# The response computation (RFC 7616 §3.4.1-§3.4.3; RFC 2617 §3.2.2; RFC 2069 without qop)


def _response(
    *,
    algorithm: Algorithm,
    username: str,
    password: str,
    realm: str,
    nonce: str,
    method: str,
    uri: str,
    qop: str | None,
    nc: str,
    cnonce: str,
    body: bytes,
) -> str:
    h = algorithm.hash
    # §3.4.2: A1 = user:realm:pass, -sess: H(user:realm:pass):nonce:cnonce.
    ha1 = h(f"{username}:{realm}:{password}")
    if algorithm.session:
        ha1 = h(f"{ha1}:{nonce}:{cnonce}")
    # §3.4.3: A2 = method:uri, auth-int: method:uri:H(entity-body).
    if qop == "auth-int":
        body_hash = algorithm.hash_bytes(body)
        ha2 = h(f"{method}:{uri}:{body_hash}")
    else:
        ha2 = h(f"{method}:{uri}")
    # §3.4.1: KD(H(A1), nonce:nc:cnonce:qop:H(A2)); RFC 2069 (no qop): KD(H(A1), nonce:H(A2)).
    if qop is None:
        return h(f"{ha1}:{nonce}:{ha2}")
    return h(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


def _choose_qop(offered: tuple[str, ...]) -> str | None:
    """Prefer "auth"; "auth-int" only when it is all that is offered (RFC 7616 §3.4)."""
    if not offered:
        return None
    if "auth" in offered:
        return "auth"
    if "auth-int" in offered:
        return "auth-int"
    raise NoCredentials(f"no supported qop in {offered!r}")


@dataclass(frozen=True, slots=True)
class Credentials:
    """A username and password, for one realm or (realm None) for any."""

    username: str
    password: str
    realm: str | None = None


@dataclass(slots=True)
class _Session:
    """What we keep per (proxy, realm): the last challenge, its cnonce and the nonce-count."""

    challenge: Challenge
    cnonce: str
    nc: int = 0


class DigestClient:
    """Keeps per-realm state (nonce, nonce-count, cnonce) so that a request after a challenge is
    answered, and subsequent requests can pre-authenticate with nc incremented (RFC 7616 §3.4).

    WWW-Authenticate (``proxy=False``) and Proxy-Authenticate (``proxy=True``) state is kept
    apart, keyed by realm. One cnonce is used per nonce, so the ``-sess`` session key
    (RFC 7616 §3.4.2) stays the same for every request under that nonce.
    """

    def __init__(self, credentials: Sequence[Credentials], rng: random.Random) -> None:
        self._credentials = tuple(credentials)
        self._rng = rng
        self._sessions: dict[tuple[bool, str], _Session] = {}

    def _credentials_for(self, realm: str) -> Credentials | None:
        # RFC 3261 §22.1: the realm says which username/password to use; exact matches beat
        # the catch-all entries.
        for creds in self._credentials:
            if creds.realm == realm:
                return creds
        for creds in self._credentials:
            if creds.realm is None:
                return creds
        return None

    def has_credentials(self, realm: str) -> bool:
        """Whether a username and password fit ``realm`` (its own, or a catch-all)."""
        return self._credentials_for(realm) is not None

    def can_answer(self, challenge: Challenge, *, previous: Sequence[str] = ()) -> bool:
        """Whether to answer ``challenge`` without asking the user.

        ``previous`` are the Authorization / Proxy-Authorization values the challenged request
        carried. If one of them was for this realm, the server rejected those credentials:
        answering again would loop (RFC 3261 §22.2), unless the challenge says ``stale=true``,
        which means only the nonce was out of date (RFC 7616 §3.3): retry with the new nonce.
        """
        if self._credentials_for(challenge.realm) is None:
            return False
        if challenge.qop and not {"auth", "auth-int"} & set(challenge.qop):
            return False
        if challenge.stale:
            return True
        for value in previous:
            try:
                params = _parse_digest(value)
            except ParseError:
                continue
            if params.get("realm") == challenge.realm:
                return False
        return True

    def remember(self, challenge: Challenge, *, proxy: bool = False) -> None:
        """Keep ``challenge`` for :meth:`cached` (a new nonce restarts the nonce-count)."""
        self._session(challenge, proxy=proxy)

    def forget(self, realm: str | None = None) -> None:
        """Drop cached challenges for ``realm`` (None: all of them)."""
        for key in [k for k in self._sessions if realm is None or k[1] == realm]:
            del self._sessions[key]

    def _session(self, challenge: Challenge, *, proxy: bool, cnonce: str | None = None) -> _Session:
        key = (proxy, challenge.realm)
        session = self._sessions.get(key)
        if session is None or session.challenge.nonce != challenge.nonce:
            # RFC 7616 §3.4: nc counts requests per nonce, so a new nonce starts at 1 again.
            session = _Session(challenge=challenge, cnonce=cnonce or self._new_cnonce())
            self._sessions[key] = session
        else:
            session.challenge = challenge
            if cnonce is not None:
                session.cnonce = cnonce
        return session

    def _new_cnonce(self) -> str:
        return f"{self._rng.getrandbits(128):032x}"

    def authorize(
        self,
        challenge: Challenge,
        *,
        method: str,
        uri: str,
        body: bytes = b"",
        proxy: bool = False,
        cnonce: str | None = None,
    ) -> str:
        """The Authorization (or, with ``proxy``, Proxy-Authorization) header value.

        ``uri`` is the Request-URI as sent (RFC 3261 §22.4). ``cnonce`` overrides the random
        one (for reproducing published examples). Raises NoCredentials when no credentials fit.
        """
        creds = self._credentials_for(challenge.realm)
        if creds is None:
            raise NoCredentials(f"no credentials for realm {challenge.realm!r}")
        _choose_qop(challenge.qop)  # raises NoCredentials before any state changes
        session = self._session(challenge, proxy=proxy, cnonce=cnonce)
        session.nc += 1
        return _credentials_value(
            challenge,
            creds,
            method=method,
            uri=uri,
            body=body,
            nc=session.nc,
            cnonce=session.cnonce,
        )

    def cached(self, method: str, uri: str, body: bytes = b"", proxy: bool = False) -> list[str]:
        """Header values for every remembered realm, to send before being challenged
        (REGISTER refreshes, re-INVITE, BYE...). Each use increments that nonce's nc."""
        values: list[str] = []
        for (is_proxy, realm), session in self._sessions.items():
            creds = self._credentials_for(realm)
            if is_proxy != proxy or creds is None:
                continue
            session.nc += 1
            values.append(
                _credentials_value(
                    session.challenge,
                    creds,
                    method=method,
                    uri=uri,
                    body=body,
                    nc=session.nc,
                    cnonce=session.cnonce,
                )
            )
        return values


def _credentials_value(
    challenge: Challenge,
    creds: Credentials,
    *,
    method: str,
    uri: str,
    body: bytes,
    nc: int,
    cnonce: str,
) -> str:
    """Build the credentials (RFC 3261 §22.2, §25.1; RFC 7616 §3.4)."""
    algorithm = challenge.algorithm
    qop = _choose_qop(challenge.qop)
    nc_text = f"{nc:08x}"  # RFC 7616 §3.4: 8 hex digits
    response = _response(
        algorithm=algorithm,
        username=creds.username,
        password=creds.password,
        realm=challenge.realm,
        nonce=challenge.nonce,
        method=method,
        uri=uri,
        qop=qop,
        nc=nc_text,
        cnonce=cnonce,
        body=body,
    )
    # RFC 7616 §3.4.4: userhash hides the username as H(username:realm).
    username = (
        algorithm.hash(f"{creds.username}:{challenge.realm}")
        if challenge.userhash
        else creds.username
    )
    # RFC 7616 §3.4: algorithm, qop and nc are unquoted; the rest are quoted-strings.
    parts = [
        f"username={_quote(username)}",
        f"realm={_quote(challenge.realm)}",
        f"nonce={_quote(challenge.nonce)}",
        f"uri={_quote(uri)}",
        f"response={_quote(response)}",
        f"algorithm={algorithm.value}",
    ]
    if qop is not None:
        parts += [f"cnonce={_quote(cnonce)}", f"qop={qop}", f"nc={nc_text}"]
    elif algorithm.session:
        # RFC 2617 §3.2.2.2: -sess needs the cnonce in H(A1) even where no qop was offered.
        parts.append(f"cnonce={_quote(cnonce)}")
    if challenge.opaque is not None:
        parts.append(f"opaque={_quote(challenge.opaque)}")
    if challenge.userhash:
        parts.append("userhash=true")
    return "Digest " + ", ".join(parts)


def verify_authorization(
    value: str,
    *,
    password: str,
    method: str,
    body: bytes = b"",
    expected_realm: str | None = None,
    username: str | None = None,
) -> bool:
    """Server side: does the Authorization value carry the right response for ``password``?

    Raises ParseError when ``value`` is not a well-formed Digest credentials value. With
    ``username``, also checks the (possibly userhash-ed) username. A userhash-ed value can
    only be verified when ``username`` is given.
    """
    params = _parse_digest(value)
    for required in ("username", "realm", "nonce", "uri", "response"):
        if required not in params:
            raise ParseError(f"Digest credentials have no {required}")
    algorithm = _parse_algorithm(params.get("algorithm"))
    realm = params["realm"]
    if expected_realm is not None and realm != expected_realm:
        return False
    claimed = params["username"]
    if params.get("userhash", "").lower() == "true":
        if username is None or claimed != algorithm.hash(f"{username}:{realm}"):
            return False
        claimed = username
    elif username is not None and claimed != username:
        return False
    qop = params.get("qop")
    if algorithm.session and "cnonce" not in params:
        return False
    if qop is not None:
        qop = qop.lower()
        if qop not in ("auth", "auth-int") or "nc" not in params or "cnonce" not in params:
            return False
    expected = _response(
        algorithm=algorithm,
        username=claimed,
        password=password,
        realm=realm,
        nonce=params["nonce"],
        method=method,
        uri=params["uri"],
        qop=qop,
        nc=params.get("nc", ""),
        cnonce=params.get("cnonce", ""),
        body=body,
    )
    return hmac.compare_digest(expected.encode(), params["response"].lower().encode())
