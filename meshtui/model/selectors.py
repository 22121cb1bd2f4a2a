"""Resource selectors as kubectl spells them: ``deploy/web``, ``ns``, ``po -A``.

Namespace rules follow kubectl and ``linkerd viz stat``: without ``-n`` a
namespaced type means the ``default`` namespace; ``-A`` means every namespace
and cannot be combined with a name; namespaces themselves ignore ``-n``.
Types are ``ns|namespace|namespaces``, ``deploy|deployment|deployments`` and
``po|pod|pods`` in any letter case; names are DNS-1123 (namespaces labels,
deployments and pods subdomains). Conversion to and from the wire form
belongs to the client, not here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

NAMESPACE, DEPLOYMENT, POD = "namespace", "deployment", "pod"
KINDS = (NAMESPACE, DEPLOYMENT, POD)
SHORT = {NAMESPACE: "ns", DEPLOYMENT: "deploy", POD: "po"}
DEFAULT_NAMESPACE = "default"

_SPELLINGS = {
    **dict.fromkeys(("ns", "namespace", "namespaces"), NAMESPACE),
    **dict.fromkeys(("deploy", "deployment", "deployments"), DEPLOYMENT),
    **dict.fromkeys(("po", "pod", "pods"), POD),
}
# DNS-1123: namespaces are labels; deployments and pods may be subdomains.
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
MAX_LABEL, MAX_SUBDOMAIN = 63, 253
VALID_TYPES = "ns, deploy or po (also namespace(s), deployment(s), pod(s))"


class SelectorError(ValueError):
    """A resource the user typed that names nothing meshtui knows how to select."""


@dataclass(frozen=True, slots=True)
class Selector:
    """Which resources a command is about.

    Attributes:
        kind: ``namespace``, ``deployment`` or ``pod`` (also readable as ``type``).
        name: one resource, or None for every resource of the kind.
        namespace: where deployments and pods are looked for; None means every
            namespace (``-A``). Always None for namespaces, which live in none.

    Empty strings (the wire's "all") are taken as None.
    """

    kind: str
    name: str | None = None
    namespace: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise SelectorError(f"unknown resource type {self.kind!r}; use {VALID_TYPES}")
        if not self.name:
            object.__setattr__(self, "name", None)
        if not self.namespace or self.kind == NAMESPACE:
            object.__setattr__(self, "namespace", None)

    @property
    def type(self) -> str:
        """The kind, under kubectl's word for it."""
        return self.kind

    @property
    def short(self) -> str:
        """``ns``, ``deploy`` or ``po``."""
        return SHORT[self.kind]

    def __str__(self) -> str:
        """The canonical spelling: ``deploy/web``, ``ns``, ``po/web-1``."""
        return f"{self.short}/{self.name}" if self.name else self.short

    def describe(self) -> str:
        """For messages: ``deploy/web in namespace emojivoto``."""
        where = "" if self.kind == NAMESPACE else (
            f" in namespace {self.namespace}" if self.namespace else " in every namespace")
        return f"{self}{where}"

    def command_form(self) -> str:
        """The argument as a user types it: ``deploy/web -n emojivoto``, ``po -A``, ``ns``."""
        if self.kind == NAMESPACE:
            return str(self)
        return f"{self} -n {self.namespace}" if self.namespace else f"{self} -A"

    def matches(self, namespace: str, deployment: str, pod: str) -> bool:
        """Whether a pod with this placement (empty strings: unknown) is selected.

        A placement whose part for this kind is unknown is never selected:
        ``deploy -A`` means traffic of deployments, not of addresses outside
        the mesh or of bare pods.
        """
        if self.kind == NAMESPACE:
            return bool(namespace) and self.name in (None, namespace)
        if self.namespace is not None and namespace != self.namespace:
            return False
        own = deployment if self.kind == DEPLOYMENT else pod
        return bool(own) and self.name in (None, own)


def parse_kind(text: str) -> str:
    """``deploy`` / ``Deployments`` / … → ``deployment``; SelectorError if unknown."""
    kind = _SPELLINGS.get(text.strip().lower())
    if kind is None:
        raise SelectorError(f"unknown resource type {text.strip()!r}; use {VALID_TYPES}")
    return kind


def check_name(kind: str, name: str) -> str:
    """``name`` if valid for ``kind``; SelectorError saying the rule otherwise."""
    label = kind == NAMESPACE
    pattern = _LABEL if label else _SUBDOMAIN
    if len(name) > (MAX_LABEL if label else MAX_SUBDOMAIN) or not pattern.fullmatch(name):
        raise SelectorError(
            f"invalid {kind} name {name!r}: at most {MAX_LABEL if label else MAX_SUBDOMAIN}"
            " lower-case letters, digits and '-'" + ("" if label else " (and '.')")
            + ", starting and ending alphanumeric")
    return name


def parse_resource(text: str, namespace: str | None = None, all_namespaces: bool = False
                   ) -> Selector:
    """Reads ``TYPE`` or ``TYPE/NAME`` with the ``-n`` and ``-A`` the user gave.

    Args:
        text: the resource argument, e.g. ``deploy/web``.
        namespace: the ``-n`` value; None or empty means ``default``.
        all_namespaces: ``-A`` was given.

    Raises:
        SelectorError: one line saying what was wrong (and the valid types,
            when the type was).
    """
    raw = text.strip()
    if not raw:
        raise SelectorError(f"no resource given; use {VALID_TYPES}, optionally /NAME")
    type_part, slash, name = raw.partition("/")
    kind = parse_kind(type_part)
    if slash and not name:
        raise SelectorError(f"resource {raw!r} has a '/' but no name")
    if "/" in name:
        raise SelectorError(f"resource {raw!r} has more than one '/'")
    if name:
        check_name(kind, name)
    namespace = (namespace or "").strip() or None
    if namespace is not None:
        check_name(NAMESPACE, namespace)
    if kind == NAMESPACE:
        return Selector(kind, name or None, None)
    if all_namespaces and name:
        raise SelectorError("a resource cannot be retrieved by name across all namespaces")
    if all_namespaces and namespace is not None:
        raise SelectorError("-n/--namespace and -A/--all-namespaces cannot be used together")
    ns = None if all_namespaces else (namespace or DEFAULT_NAMESPACE)
    return Selector(kind, name or None, ns)
