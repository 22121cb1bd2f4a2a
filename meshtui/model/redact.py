"""What tap never shows: credential headers, secret query parameters, URL userinfo.

One definition that the proxy (before a tap event leaves it) and every client
(again, on whatever a proxy sends, old or foreign) apply. A value judged secret
is replaced by :data:`REDACTED`, literally, so a saved file, a HAR export or a
curl line shows that something was there and was withheld.

A name is secret when it is one of :data:`DEFAULT_NAMES`, or matches one of
:data:`DEFAULT_PATTERNS` (shell-style globs), or one of the user's additions
(``--redact``, ``MESHTUI_REDACT``). Names are compared in lower case with ``_``
read as ``-``, so ``X-API-Key``, ``x_api_key`` and ``api_key`` are judged alike.
The same rule covers header (and trailer) names and query-parameter names.

The patterns are narrow on purpose: ``*auth*`` would hide ``author`` and
``*key*`` would hide ``monkey`` or ``idempotency-key``; a pattern here names
what only a credential is called.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Sequence
from typing import TypeVar
from urllib.parse import unquote_plus

#: What a withheld value reads as, in every output.
REDACTED = "<redacted>"
REDACTED_BYTES = REDACTED.encode()
#: The environment variable that adds names, as ``--redact`` does.
ENV = "MESHTUI_REDACT"

#: Header and query names that hold credentials, whole names.
DEFAULT_NAMES: tuple[str, ...] = (
    "authorization", "proxy-authorization", "cookie", "set-cookie", "cookie2",
    "set-cookie2", "x-api-key", "x-auth-token", "x-access-token", "x-csrf-token",
    "x-xsrf-token", "x-amz-security-token", "private-token", "dpop", "sig",
)
#: Headers whose value is a URL: its query's secret values and its userinfo are
#: withheld as a path's are (a redirect's ``Location`` often carries a login's token).
URL_HEADERS: frozenset[str] = frozenset({"location", "content-location", "referer"})
#: Globs over names: any name holding one of these words is a credential's.
DEFAULT_PATTERNS: tuple[str, ...] = (
    "*token*", "*secret*", "*api-key*", "*apikey*", "*password*", "*passwd*",
    "*session*", "*credential*", "*authorization*", "*private-key*", "*signature*",
)

_GLOB = frozenset("*?[")
_NAME_OK = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~?\[\]-]+\Z")
_CACHE_MAX = 4096  # distinct names remembered; a peer inventing names cannot grow it past this

N = TypeVar("N", str, bytes)


def _norm(name: str) -> str:
    return name.lower().replace("_", "-")


def parse_names(text: str) -> tuple[str, ...]:
    """``"x-tenant, *pin*"`` → its names; ValueError naming a bad one."""
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if not _NAME_OK.match(part):
            raise ValueError(f"--redact: {part!r} is not a header or parameter name or glob")
        out.append(part)
    return tuple(out)


class Redactor:
    """Judges names and rewrites headers, paths and authorities.

    Decisions are cached per name as it was seen (bytes or text, any case):
    a proxy's traffic repeats the same few header names, so after the first
    request a header costs one dict lookup.

    Args:
        extra: the user's names and globs, added to the defaults.
    """

    def __init__(self, extra: Iterable[str] = ()) -> None:
        self.extra = tuple(extra)
        names = set(DEFAULT_NAMES)
        globs = list(DEFAULT_PATTERNS)
        for e in self.extra:
            if _GLOB & set(e):
                globs.append(e)
            else:
                names.add(_norm(e))
        self._names = frozenset(names)
        self._globs = re.compile("|".join(fnmatch.translate(_norm(g)) for g in globs))
        self._cache: dict[str | bytes, bool] = {}
        self._url_names: dict[str | bytes, bool] = {}
        self._paths: dict[str, str] = {}
        self._queries: dict[str, str | None] = {}
        #: ``known(name)``: the cached decision, or None: one dict lookup, for hot loops
        #: (the cache is cleared, never replaced, so this stays bound to it).
        self.known = self._cache.get
        #: ``url_known(name)``: likewise, whether the header holds a URL (see url_header).
        self.url_known = self._url_names.get

    def secret(self, name: str | bytes) -> bool:
        """Whether values under this header or parameter name are withheld."""
        hit = self._cache.get(name)
        if hit is None:
            text = _norm(name.decode("latin-1") if isinstance(name, bytes) else name)
            hit = text in self._names or self._globs.match(text) is not None
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[name] = hit
        return hit

    def url_header(self, name: str | bytes) -> bool:
        """Whether this header's value is a URL (:data:`URL_HEADERS`)."""
        hit = self._url_names.get(name)
        if hit is None:
            hit = _norm(name.decode("latin-1") if isinstance(name, bytes) else name) in URL_HEADERS
            if len(self._url_names) >= _CACHE_MAX:
                self._url_names.clear()
            self._url_names[name] = hit
        return hit

    def url(self, value: N) -> N:
        """A URL header's value with its secrets withheld, as :meth:`path` does, and its
        fragment judged as a query too (an OAuth redirect puts its token there:
        ``/cb#access_token=…``); a scheme-relative ``//user@host`` loses its userinfo."""
        if isinstance(value, bytes):
            text = value.decode("latin-1")
            out = self._url(text)
            return value if out == text else out.encode("latin-1")
        return self._url(value)

    def _url(self, text: str) -> str:
        if text.startswith("//") and "@" in text:
            host, slash, tail = text[2:].partition("/")
            text = f"//{self.authority(host)}{slash}{tail}"
        head, hash_, frag = text.partition("#")
        head = self.path(head)
        if frag:
            judged = self._judge_query("?" + frag)
            if judged is not None:
                frag = judged[1:]
        return f"{head}{hash_}{frag}"

    def value(self, name: str | bytes, value: N, redacted: N) -> N:
        """What a header's value may show: ``redacted`` under a secret name, a URL's
        secrets withheld under a URL header's, else the value."""
        if self.secret(name):
            return redacted
        return self.url(value) if self.url_header(name) else value

    def headers(self, pairs: Sequence[tuple[N, N]], redacted: N) -> Sequence[tuple[N, N]]:
        """``pairs`` with secret values replaced by ``redacted`` and URL headers' secrets
        withheld (the same object back when there is none, the common case)."""
        secret, url_header = self.secret, self.url_header
        for name, _ in pairs:
            if secret(name) or url_header(name):
                break
        else:
            return pairs
        return tuple((n, self.value(n, v, redacted)) for n, v in pairs)

    def path(self, path: str) -> str:
        """``/x?token=abc&id=3`` → ``/x?token=<redacted>&id=3``; an absolute URL's
        userinfo too."""
        q = path.find("?")
        if "@" in path and "://" in path:  # rare: the whole path is remembered
            hit = self._paths.get(path)
            if hit is None:
                hit = self._path(path)
                if len(self._paths) >= _CACHE_MAX:
                    self._paths.clear()
                self._paths[path] = hit
            return hit
        if q < 0:
            return path
        query = self._query(path[q:])
        return path if query is None else path[:q] + query

    def _path(self, path: str) -> str:
        scheme, _, rest = path.partition("://")
        host, slash, tail = rest.partition("/")
        path = f"{scheme}://{self.authority(host)}{slash}{tail}"
        q = path.find("?")
        query = None if q < 0 else self._query(path[q:])
        return path if query is None else path[:q] + query

    def _query(self, query: str) -> str | None:
        """``?token=abc&id=3#top`` with secret values withheld; None when none is.
        Paths differ, their queries repeat (``?page=2``): each is judged once."""
        try:
            return self._queries[query]
        except KeyError:
            pass
        hit = self._judge_query(query)
        if len(self._queries) >= _CACHE_MAX:
            self._queries.clear()
        self._queries[query] = hit
        return hit

    def _judge_query(self, query: str) -> str | None:
        params, hash_, frag = query[1:].partition("#")
        parts = params.split("&")
        changed = False
        for i, p in enumerate(parts):
            name, eq, _ = p.partition("=")
            if eq and self.secret(unquote_plus(name) if "%" in name or "+" in name else name):
                parts[i] = f"{name}={REDACTED}"
                changed = True
        if not changed:
            return None
        return f"?{'&'.join(parts)}{hash_}{frag}"

    def authority(self, authority: str) -> str:
        """``user:pass@host:80`` → ``<redacted>@host:80`` (a user name may be a token)."""
        at = authority.rfind("@")
        if at < 0:
            return authority
        return f"{REDACTED}@{authority[at + 1:]}"


#: The defaults alone, for callers the user gave no names to.
DEFAULT = Redactor()
_active = DEFAULT


def use(extra: Iterable[str]) -> Redactor:
    """Makes the defaults plus ``extra`` what this process's clients redact with.

    Process-wide on purpose: the user's names are one setting of the command,
    and every way an event enters the client (wire, replay file) must apply it.
    """
    global _active
    _active = Redactor(extra) if extra else DEFAULT
    return _active


def active() -> Redactor:
    """What the client redacts with (see :func:`use`)."""
    return _active
