"""The filter a user types after ``/`` in the tap feed.

Terms are separated by spaces, and a request must pass all of them::

    GET status=5xx path~/api dst=deploy/emoji latency>10ms

=============================  ===============================================
term                           passes when
=============================  ===============================================
``GET`` (a method, in capitals) the method is GET
``500`` / ``5xx``              the status is 500 / in the 500s
any other bare word            the path contains it
``method=GET,POST``            the method is one of these (any letter case)
``status=500`` ``status=4xx,5xx``  the status is one of these codes or classes
``status>=400`` (also ``>``, ``<``, ``<=``)  the status compares so
``path=/x`` ``path~/api``      the path is ``/x`` / contains ``/api``
``authority=web:80`` ``authority~web``  the same for the authority (any case)
``src=web`` ``dst=deploy/emoji``  the source / destination is that deployment
                               or pod (a bare name: either, or an IP);
                               ``ns/NAME`` for a namespace
``latency>10ms`` (also ``>=``, ``<``, ``<=``)  the time to the response's head
``dir=in`` / ``dir=out``       the proxy saw it inbound / outbound
=============================  ===============================================

``!=`` and ``!~`` negate ``=`` and ``~``. A term about the response (status,
latency) does not pass until the response is known, so a request's first
line shows up under such a filter once its response arrives.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
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
    "dir": "dir", "direction": "dir",
}
FIELDS = "method, status, path, authority, src, dst, latency, dir"
_TERM = re.compile(r"([A-Za-z]+)(!=|!~|<=|>=|=|~|<|>)(.*)", re.DOTALL)
_STATUS = re.compile(r"[1-5](?:\d\d|xx)")
_TOKEN = re.compile(r"[A-Za-z]+")
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}
_OPS = {
    "method": ("=", "!="), "status": ("=", "!=", "<", "<=", ">", ">="),
    "path": ("=", "!=", "~", "!~"), "authority": ("=", "!=", "~", "!~"),
    "src": ("=", "!="), "dst": ("=", "!="), "latency": ("<", "<=", ">", ">="), "dir": ("=",),
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
    def direction(self) -> Direction: ...
    @property
    def source(self) -> Endpoint: ...
    @property
    def destination(self) -> Endpoint: ...


Test = Callable[[Requestlike], bool]


class FilterError(ValueError):
    """A filter that cannot be read; the message is one line for the user."""


@dataclass(frozen=True, slots=True)
class Term:
    """One condition: ``key`` (a field name), ``op`` and the value in canonical spelling."""

    key: str
    op: str
    value: str
    test: Test = field(compare=False, repr=False)

    def __str__(self) -> str:
        return f"{self.key}{self.op}{self.value}"


@dataclass(frozen=True, slots=True)
class FeedFilter:
    """All of ``terms`` must pass; no terms pass everything."""

    terms: tuple[Term, ...] = ()

    @classmethod
    def parse(cls, text: str) -> FeedFilter:
        """Reads what the user typed; FilterError says what was wrong."""
        return cls(tuple(_term(word) for word in text.split()))

    def __str__(self) -> str:
        """The canonical text, which parses back to an equal filter."""
        return " ".join(map(str, self.terms))

    def __bool__(self) -> bool:
        return bool(self.terms)

    def matches(self, request: Requestlike) -> bool:
        return all(t.test(request) for t in self.terms)

    @property
    def test(self) -> Test:
        """:meth:`matches` as one function, as cheap to call as the terms allow
        (a live feed calls it for every line)."""
        tests = tuple(t.test for t in self.terms)
        if len(tests) == 1:
            return tests[0]
        return lambda r: all(t(r) for t in tests)

    @property
    def needs_response(self) -> bool:
        """Whether some term waits for the response (status or latency)."""
        return any(t.key in ("status", "latency") for t in self.terms)


def _term(word: str) -> Term:
    m = _TERM.fullmatch(word)
    if m is None:
        if word in METHODS:
            return _make("method", "=", word)
        if _STATUS.fullmatch(word.lower()):
            return _make("status", "=", word)
        return _make("path", "~", word)
    key, op, value = m.groups()
    name = _ALIASES.get(key.lower())
    if name is None:
        raise FilterError(f"unknown field {key!r} in {word!r}: use {FIELDS}")
    if op not in _OPS[name]:
        raise FilterError(f"{name} takes {', '.join(_OPS[name])}, not {op!r} (in {word!r})")
    if not value:
        raise FilterError(f"{word!r} needs a value after {op!r}")
    return _make(name, op, value)


def _make(name: str, op: str, value: str) -> Term:
    build = {"method": _method, "status": _status, "path": _text, "authority": _text,
             "src": _peer, "dst": _peer, "latency": _latency, "dir": _direction}[name]
    canonical, test = build(name, op, value)
    return Term(name, op, canonical, test)


def _negated(op: str, test: Test, known: Callable[[Requestlike], object]) -> Test:
    """``test`` for ``=``/``~``; for ``!=``/``!~`` its opposite, still failing while unknown."""
    if not op.startswith("!"):
        return test
    return lambda r: known(r) is not None and not test(r)


def _method(name: str, op: str, value: str) -> tuple[str, Test]:
    methods = value.upper().split(",")
    if not all(_TOKEN.fullmatch(m) for m in methods):
        raise FilterError(f"bad method {value!r}: use names like GET or GET,POST")
    wanted = frozenset(methods)

    def test(r: Requestlike) -> bool:
        return r.method is not None and r.method.upper() in wanted

    return ",".join(methods), _negated(op, test, lambda r: r.method)


def _status(name: str, op: str, value: str) -> tuple[str, Test]:
    specs = value.lower().split(",")
    if op in _COMPARE:
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


def _text(name: str, op: str, value: str) -> tuple[str, Test]:
    fold = name == "authority"  # host names have no letter case; paths do
    want = value.lower() if fold else value

    def get(r: Requestlike) -> str | None:
        v = r.authority if fold else r.path
        return v.lower() if fold and v is not None else v

    if op in ("~", "!~"):
        def test(r: Requestlike) -> bool:
            v = get(r)
            return v is not None and want in v
    else:
        def test(r: Requestlike) -> bool:
            return get(r) == want

    return want, _negated(op, test, get)


def _peer(name: str, op: str, value: str) -> tuple[str, Test]:
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
        return is_it(r.source if name == "src" else r.destination)

    return canonical, (test if op == "=" else lambda r: not test(r))


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
