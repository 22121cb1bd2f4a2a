"""The one filter language: the tap feed's ``/``, ``tap --filter`` and ``top --filter``.

An expression is terms joined with ``and``, ``or`` and ``not`` (in that order
of precedence, loosest last: ``not`` binds tightest), grouped with
parentheses; terms side by side are joined with ``and``::

    method=GET and (status>=500 or latency>100ms) and not h.user-agent~curl
    GET 5xx path~^/api dst=deploy/emoji

=================================  ============================================
term                               passes when
=================================  ============================================
``method=GET`` ``method=GET,POST``  the method is one of these (any case)
``path=/x`` ``path~^/api/``        the path is ``/x`` / matches the regex
``authority=web:80`` ``authority~web``  the same for the authority (any case)
``src=web`` ``dst=deploy/emoji``   the source / destination is that deployment
                                   or pod (a bare name: either, or an IP);
                                   ``ns/NAME`` for a namespace; ``~`` a regex
                                   over ``deploy/NAME``, the pod and the address
``status=500`` ``status=4xx,5xx``  the status is one of these codes or classes
``status>=400`` (``>``, ``<``, ``<=``)  the status compares so
``grpc-status=14`` ``grpc-status>0``   the gRPC status of the response's end
``latency>10ms`` (``>=``, ``<``, ``<=``)  the time to the response's head
``bytes>1024``                     the response body's length in bytes
``h.NAME=V`` ``h.NAME~REGEX``      a request or response header (or trailer)
                                   of that name has that value / matches
``dir=in`` / ``dir=out``           the proxy saw it inbound / outbound
``GET`` (a method, in capitals)    the method is GET
``500`` / ``5xx``                  the status is 500 / in the 500s
any other bare word                the path contains it (no regex)
=================================  ============================================

``!=`` and ``!~`` negate ``=`` and ``~``. A value with spaces or parentheses
is written in double quotes (``\\"`` and ``\\\\`` inside); a regex's own
balanced parentheses need none (``path~^/(a|b)$``).

A term about something not yet known fails, whatever its operator: a term on
the response (status, grpc-status, latency, bytes) does not pass until the
response is known, so a request's first line shows up under such a filter once
its response arrives. ``not`` is plain logic: ``not status=500`` passes a
request still waiting for its response.

Errors are :class:`FilterError`, with the position in the text of the fault.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from meshtui.model.selectors import Selector, SelectorError, check_name, parse_kind
from meshtui.model.tap import Direction, Endpoint
from meshtui.model.units import UnitError, parse_duration

METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"})
_ALIASES = {
    "method": "method", "status": "status", "path": "path", "authority": "authority",
    "auth": "authority", "host": "authority", "src": "src", "source": "src", "from": "src",
    "dst": "dst", "destination": "dst", "to": "dst", "latency": "latency", "lat": "latency",
    "dir": "dir", "direction": "dir", "grpc-status": "grpc-status", "grpc": "grpc-status",
    "bytes": "bytes",
}
FIELDS = "method, path, authority, src, dst, status, grpc-status, latency, bytes, h.NAME, dir"
#: Fields only a response brings: a proxy cannot filter on them when a request starts.
RESPONSE_FIELDS = frozenset({"status", "grpc-status", "latency", "bytes"})
_FIELD_OP = re.compile(r"([A-Za-z][A-Za-z0-9_.-]*)[ \t]*(!=|!~|<=|>=|=|~|<|>)")
_STATUS = re.compile(r"[1-5](?:\d\d|xx)")
_TOKEN = re.compile(r"[A-Za-z]+")
_HEADER = re.compile(r"h\.([A-Za-z0-9!#$%&'*+.^_`|~-]+)", re.IGNORECASE)
_KEYWORDS = ("and", "or", "not")
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
    "=": operator.eq, "!=": operator.ne,
}
_MATCH = ("=", "!=", "~", "!~")
_NUMBER = ("=", "!=", "<", "<=", ">", ">=")
_OPS = {
    "method": _MATCH, "status": _NUMBER, "grpc-status": _NUMBER, "bytes": _NUMBER,
    "path": _MATCH, "authority": _MATCH, "src": _MATCH, "dst": _MATCH, "header": _MATCH,
    "latency": ("<", "<=", ">", ">="), "dir": ("=",),
}


class Requestlike(Protocol):
    """What a filter reads of a request: a :class:`~meshtui.model.tap.Request`, or a
    record that answers the same questions without building one (the live feed's)."""

    @property
    def method(self) -> str | None: ...
    @property
    def path(self) -> str | None: ...
    @property
    def authority(self) -> str | None: ...
    @property
    def status(self) -> int | None: ...
    @property
    def latency_us(self) -> int | None: ...
    @property
    def grpc_status(self) -> int | None: ...
    @property
    def response_bytes(self) -> int | None: ...
    @property
    def direction(self) -> Direction: ...
    @property
    def source(self) -> Endpoint: ...
    @property
    def destination(self) -> Endpoint: ...
    def header_values(self, name: str) -> Sequence[str]: ...


Test = Callable[[Requestlike], bool]


class FilterError(ValueError):
    """A filter that cannot be read; the message is one line for the user.

    Attributes:
        position: where in the text the fault is (0 is the first character).
    """

    def __init__(self, message: str, position: int = 0) -> None:
        super().__init__(message)
        self.position = position


# ---- the tree ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Term:
    """One condition: ``key`` (a field name), ``op`` and the value in canonical spelling.

    ``bare`` terms were typed as a lone word (``GET``, ``5xx``, ``api``) and print so.
    """

    key: str
    op: str
    value: str
    bare: bool = False
    test: Test = field(compare=False, repr=False, default=lambda r: True)

    def __str__(self) -> str:
        if self.bare:
            return _quoted(self.value, word=True)
        return f"{self.key}{self.op}{_quoted(self.value)}"

    def terms(self) -> tuple[Term, ...]:
        return (self,)


@dataclass(frozen=True, slots=True)
class Not:
    inner: Node

    def __str__(self) -> str:
        inner = str(self.inner)
        return f"not {inner}" if isinstance(self.inner, Term | Not) else f"not ({inner})"

    @property
    def test(self) -> Test:
        t = self.inner.test
        return lambda r: not t(r)

    def terms(self) -> tuple[Term, ...]:
        return self.inner.terms()


@dataclass(frozen=True, slots=True)
class All:
    """Every part passes (``and``)."""

    parts: tuple[Node, ...]

    def __str__(self) -> str:
        return " and ".join(f"({p})" if isinstance(p, Any_) else str(p) for p in self.parts)

    @property
    def test(self) -> Test:
        tests = tuple(p.test for p in self.parts)
        # Unrolled for the usual sizes: a live feed calls this for every line.
        if len(tests) == 2:
            a, b = tests
            return lambda r: a(r) and b(r)
        if len(tests) == 3:
            a, b, c = tests
            return lambda r: a(r) and b(r) and c(r)
        return lambda r: all(t(r) for t in tests)

    def terms(self) -> tuple[Term, ...]:
        return tuple(t for p in self.parts for t in p.terms())


@dataclass(frozen=True, slots=True)
class Any_:
    """Some part passes (``or``)."""

    parts: tuple[Node, ...]

    def __str__(self) -> str:
        return " or ".join(map(str, self.parts))

    @property
    def test(self) -> Test:
        tests = tuple(p.test for p in self.parts)
        return lambda r: any(t(r) for t in tests)

    def terms(self) -> tuple[Term, ...]:
        return tuple(t for p in self.parts for t in p.terms())


Node = Term | Not | All | Any_


@dataclass(frozen=True, slots=True)
class FeedFilter:
    """A parsed expression; no expression passes everything."""

    root: Node | None = None

    @classmethod
    def parse(cls, text: str) -> FeedFilter:
        """Reads what the user typed; FilterError says what was wrong, and where."""
        return cls(_Parser(text).parse())

    def __str__(self) -> str:
        """The canonical text, which parses back to an equal filter."""
        return "" if self.root is None else str(self.root)

    def __bool__(self) -> bool:
        return self.root is not None

    @property
    def terms(self) -> tuple[Term, ...]:
        return () if self.root is None else self.root.terms()

    def matches(self, request: Requestlike) -> bool:
        return self.test(request)

    @property
    def test(self) -> Test:
        """:meth:`matches` as one function, as cheap to call as the terms allow
        (a live feed calls it for every line)."""
        return (lambda r: True) if self.root is None else self.root.test

    @property
    def needs_response(self) -> bool:
        """Whether some term waits for the response (status, latency, ...)."""
        return any(t.key in RESPONSE_FIELDS for t in self.terms)


def proxy_match(flt: FeedFilter) -> dict[str, str]:
    """What of ``flt`` the proxies can check themselves when a request starts: the
    method, a path prefix and the authority of terms every passing request must
    pass (the filter's top-level ``and``). Those narrow the stream at its source;
    the whole filter is still applied to what comes back.

    Returns:
        ``method``, ``path_prefix`` and ``authority`` keys, for those found.
    """
    root = flt.root
    parts = root.parts if isinstance(root, All) else (root,) if root is not None else ()
    out: dict[str, str] = {}
    for t in parts:
        if not isinstance(t, Term) or t.op not in ("=", "~"):
            continue
        if t.key == "method" and t.op == "=" and "," not in t.value:
            out.setdefault("method", t.value)
        elif t.key == "authority" and t.op == "=":
            out.setdefault("authority", t.value)
        elif t.key == "path" and not t.bare:
            prefix = t.value if t.op == "=" else _literal_prefix(t.value)
            if prefix:
                out.setdefault("path_prefix", prefix)
    return out


def _literal_prefix(regex: str) -> str:
    """The text every match of ``^...`` starts with (empty when not anchored)."""
    if not regex.startswith("^") or "|" in regex:  # an alternation may undo the anchor
        return ""
    out: list[str] = []
    for c in regex[1:]:
        if c in ".^$*+?{}[]\\|()":
            if c in "*?{" and out:
                out.pop()  # a quantifier makes the character before it optional
            break
        out.append(c)
    return "".join(out)


# ---- reading the text -------------------------------------------------------------


def _quoted(value: str, *, word: bool = False) -> str:
    """``value`` as it must be typed to read back the same: quoted when needed."""
    plain = bool(value) and _lex_word(value, 0) == (value, len(value))
    if plain and word:
        plain = (value.lower() not in _KEYWORDS and not value.startswith(("(", ")"))
                 and _FIELD_OP.match(value) is None)
    if plain:
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _lex_word(text: str, i: int) -> tuple[str, int]:
    """The word starting at ``i``: a quoted string, or a run of characters up to a
    space or a closing parenthesis that no opening one in the word balances."""
    n = len(text)
    if i < n and text[i] == '"':
        out: list[str] = []
        j = i + 1
        while j < n:
            c = text[j]
            if c == "\\" and j + 1 < n:
                out.append(text[j + 1])
                j += 2
                continue
            if c == '"':
                return "".join(out), j + 1
            out.append(c)
            j += 1
        raise FilterError("a quote is not closed", i)
    j, depth = i, 0
    while j < n:
        c = text[j]
        if c.isspace():
            break
        if c == "(":
            depth += 1
        elif c == ")":
            if depth == 0:
                break
            depth -= 1
        j += 1
    return text[i:j], j


class _Parser:
    """Recursive descent over the text, keeping positions for the errors."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0

    def parse(self) -> Node | None:
        self._skip()
        if self.i == len(self.text):
            return None
        node = self._or()
        self._skip()
        if self.i < len(self.text):
            # Only a closing parenthesis stops an expression early.
            raise FilterError("a ')' that no '(' opened", self.i)
        return node

    def _skip(self) -> None:
        text, i = self.text, self.i
        while i < len(text) and text[i].isspace():
            i += 1
        self.i = i

    def _keyword(self, word: str) -> bool:
        """Whether the next token is the keyword ``word`` (consumed if so)."""
        self._skip()
        text, i, n = self.text, self.i, len(word)
        if text[i:i + n].lower() != word:
            return False
        end = i + n
        if end < len(text) and not (text[end].isspace() or text[end] in "()"):
            return False
        self.i = end
        return True

    def _at_end_of_group(self) -> bool:
        self._skip()
        return self.i >= len(self.text) or self.text[self.i] == ")"

    def _or(self) -> Node:
        parts = [self._and()]
        while self._keyword("or"):
            parts.append(self._and())
        # Nested groups of the same kind flatten ("a or (b or c)"), as they print.
        flat = [q for p in parts for q in (p.parts if isinstance(p, Any_) else (p,))]
        return flat[0] if len(flat) == 1 else Any_(tuple(flat))

    def _and(self) -> Node:
        parts = [self._unary()]
        while not self._at_end_of_group():
            if self._peek_keyword("or"):
                break
            self._keyword("and")
            parts.append(self._unary())
        flat = [q for p in parts for q in (p.parts if isinstance(p, All) else (p,))]
        return flat[0] if len(flat) == 1 else All(tuple(flat))

    def _peek_keyword(self, word: str) -> bool:
        here = self.i
        found = self._keyword(word)
        self.i = here
        return found

    def _unary(self) -> Node:
        self._skip()
        if self.i >= len(self.text):
            raise FilterError("the expression ends where a term was expected", self.i)
        if self._keyword("not"):
            return Not(self._unary())
        c = self.text[self.i]
        if c == "(":
            opened = self.i
            self.i += 1
            if self._at_end_of_group():
                raise FilterError("empty parentheses", self.i)
            node = self._or()
            self._skip()
            if self.i >= len(self.text):
                raise FilterError("a '(' that is not closed", opened)
            self.i += 1  # the ')'
            return node
        if c == ")":
            raise FilterError("a ')' where a term was expected", self.i)
        for word in ("and", "or"):
            if self._peek_keyword(word):
                raise FilterError(f"{word!r} where a term was expected", self.i)
        return self._term()

    def _term(self) -> Term:
        start = self.i
        m = _FIELD_OP.match(self.text, start)
        if m is None:
            word, self.i = _lex_word(self.text, start)
            return _bare(word, start)
        key, op = m.groups()
        name = _ALIASES.get(key.lower())
        header = _HEADER.fullmatch(key)
        if name is None and header is None:
            raise FilterError(f"unknown field {key!r}: use {FIELDS}", start)
        kind = name or "header"
        if op not in _OPS[kind]:
            shown = name or "a header"
            raise FilterError(f"{shown} takes {', '.join(_OPS[kind])}, not {op!r}", m.start(2))
        at = m.end()
        while at < len(self.text) and self.text[at] in " \t":
            at += 1
        value, self.i = _lex_word(self.text, at)
        if not value and (at >= len(self.text) or self.text[at] != '"'):
            raise FilterError(f"{key}{op} needs a value", at)
        try:
            if header is not None and name is None:
                return _header(header.group(1).lower(), op, value)
            return _make(kind, op, value)
        except FilterError as e:
            raise FilterError(str(e), at) from None


# ---- the terms ----------------------------------------------------------------------


def _bare(word: str, at: int) -> Term:
    if word in METHODS:
        return _make("method", "=", word, bare=True)
    if _STATUS.fullmatch(word.lower()):
        return _make("status", "=", word, bare=True)
    if not word:
        raise FilterError("an empty word", at)

    def test(r: Requestlike) -> bool:
        p = r.path
        return p is not None and word in p

    return Term("path", "~", word, True, test)


def _make(name: str, op: str, value: str, *, bare: bool = False) -> Term:
    build = {"method": _method, "status": _status, "path": _text, "authority": _text,
             "src": _peer, "dst": _peer, "latency": _latency, "dir": _direction,
             "grpc-status": _count, "bytes": _count}[name]
    canonical, test = build(name, op, value)
    return Term(name, op, canonical, bare, test)


def _regex(value: str, flags: int = 0) -> re.Pattern[str]:
    try:
        return re.compile(value, flags)
    except re.error as e:
        raise FilterError(f"bad regex {value!r}: {e}") from None


def _negated(op: str, test: Test, known: Callable[[Requestlike], object]) -> Test:
    """``test`` for ``=``/``~``; for ``!=``/``!~`` its opposite, still failing while unknown."""
    if not op.startswith("!"):
        return test
    return lambda r: known(r) is not None and not test(r)


def _method(name: str, op: str, value: str) -> tuple[str, Test]:
    if "~" in op:
        rx = _regex(value, re.IGNORECASE)

        def match(r: Requestlike) -> bool:
            m = r.method
            return m is not None and rx.search(m) is not None

        return value, _negated(op, match, lambda r: r.method)
    methods = value.upper().split(",")
    if not all(_TOKEN.fullmatch(m) for m in methods):
        raise FilterError(f"bad method {value!r}: use names like GET or GET,POST")
    wanted = frozenset(methods)

    def test(r: Requestlike) -> bool:
        return r.method is not None and r.method.upper() in wanted

    return ",".join(methods), _negated(op, test, lambda r: r.method)


def _status(name: str, op: str, value: str) -> tuple[str, Test]:
    specs = value.lower().split(",")
    if op not in ("=", "!="):
        if not value.isdigit() or len(value) != 3:
            raise FilterError(f"status{op} takes a code like 400, not {value!r}")
        cmp, bound = _COMPARE[op], int(value)

        def compare(r: Requestlike) -> bool:
            status = r.status
            return status is not None and cmp(status, bound)

        return value, compare
    if not all(_STATUS.fullmatch(s) for s in specs):
        raise FilterError(f"bad status {value!r}: use codes like 500 or classes like 5xx")
    codes = frozenset(int(s) for s in specs if s.isdigit())
    classes = frozenset(int(s[0]) for s in specs if not s.isdigit())

    def test(r: Requestlike) -> bool:
        status = r.status
        return status is not None and (status in codes or status // 100 in classes)

    return ",".join(specs), _negated(op, test, lambda r: r.status)


def _count(name: str, op: str, value: str) -> tuple[str, Test]:
    """grpc-status and bytes: whole numbers, compared."""
    if not value.isascii() or not value.isdigit():
        raise FilterError(f"{name}{op} takes a whole number, not {value!r}")
    cmp, bound = _COMPARE[op], int(value)
    grpc = name == "grpc-status"

    def test(r: Requestlike) -> bool:
        v = r.grpc_status if grpc else r.response_bytes
        return v is not None and cmp(v, bound)

    return str(bound), test


def _text(name: str, op: str, value: str) -> tuple[str, Test]:
    fold = name == "authority"  # host names have no letter case; paths do
    want = value.lower() if fold else value

    def get(r: Requestlike) -> str | None:
        v = r.authority if fold else r.path
        return v.lower() if fold and v is not None else v

    if "~" in op:
        rx = _regex(want, re.IGNORECASE if fold else 0)

        def test(r: Requestlike) -> bool:
            v = get(r)
            return v is not None and rx.search(v) is not None
    else:
        def test(r: Requestlike) -> bool:
            return get(r) == want

    return want, _negated(op, test, get)


def _peer(name: str, op: str, value: str) -> tuple[str, Test]:
    src = name == "src"
    if "~" in op:
        rx = _regex(value)

        def is_it(ep: Endpoint) -> bool:
            w = ep.workload
            return any(rx.search(s) is not None
                       for s in (ep.label, w.pod, w.namespace, str(ep)) if s)

        canonical = value
    else:
        kind_text, slash, who = value.partition("/")
        if slash:
            try:
                kind = parse_kind(kind_text)
                sel = Selector(kind, check_name(kind, who))
            except SelectorError as e:
                raise FilterError(f"{name}={value}: {e}") from None
            canonical = str(sel)

            def is_it(ep: Endpoint) -> bool:
                w = ep.workload
                return sel.matches(w.namespace, w.deployment, w.pod)
        else:
            canonical = value

            def is_it(ep: Endpoint) -> bool:
                w = ep.workload
                return value in (w.deployment, w.pod, ep.ip, str(ep))

    def test(r: Requestlike) -> bool:
        return is_it(r.source if src else r.destination)

    return canonical, (test if not op.startswith("!") else lambda r: not test(r))


def _latency(name: str, op: str, value: str) -> tuple[str, Test]:
    try:
        bound_us = parse_duration(value) * 1e6
    except UnitError:
        raise FilterError(f"bad latency {value!r}: use forms like 10ms, 1.5s, 500us") from None
    cmp = _COMPARE[op]

    def test(r: Requestlike) -> bool:
        latency = r.latency_us
        return latency is not None and cmp(latency, bound_us)

    return value.lower(), test


def _direction(name: str, op: str, value: str) -> tuple[str, Test]:
    try:
        d = Direction.parse(value)
    except ValueError as e:
        raise FilterError(str(e)) from None
    return d.short, lambda r: r.direction is d


def _header(name: str, op: str, value: str) -> Term:
    """``h.NAME``: some value of the header passes (for ``!=``/``!~``: the header is
    there and none of its values passes the positive form)."""
    if "~" in op:
        rx = _regex(value)

        def one(v: str) -> bool:
            return rx.search(v) is not None
    else:
        def one(v: str) -> bool:
            return v == value

    def test(r: Requestlike) -> bool:
        return any(map(one, r.header_values(name)))

    def negated(r: Requestlike) -> bool:
        values = r.header_values(name)
        return bool(values) and not any(map(one, values))

    return Term(f"h.{name}", op, value, False, negated if op.startswith("!") else test)
