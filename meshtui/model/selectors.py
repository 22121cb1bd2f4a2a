"""Resource selectors as kubectl spells them: ``deploy/web``, ``ns``, ``po -A``.

Namespace rules follow kubectl and ``linkerd viz stat``: without ``-n`` a
namespaced type means the ``default`` namespace; ``-A`` means every namespace
and cannot be combined with a name; namespaces themselves ignore ``-n``.
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
VALID_TYPES = "ns, deploy or po (also namespace(s), deployment(s), pod(s))"


class SelectorError(ValueError):
    """A resource the user typed that names nothing meshtui knows how to select."""


@dataclass(frozen=True, slots=True)
class Selector:
    kind: str
    name: str | None = None
    namespace: str | None = None  # None: every namespace (and always for namespaces)

    def __str__(self) -> str:
        short = SHORT[self.kind]
        return f"{short}/{self.name}" if self.name else short

    def describe(self) -> str:
        """For messages: ``deploy/web in namespace emojivoto``."""
        where = "" if self.kind == NAMESPACE else (
            f" in namespace {self.namespace}" if self.namespace else " in every namespace")
        return f"{self}{where}"

    def matches(self, namespace: str, deployment: str, pod: str) -> bool:
        """Whether a pod with this placement belongs to the selection."""
        if self.kind == NAMESPACE:
            return self.name in (None, namespace)
        if self.namespace is not None and namespace != self.namespace:
            return False
        if self.name is None:
            return self.kind != DEPLOYMENT or bool(deployment)
        return (deployment if self.kind == DEPLOYMENT else pod) == self.name


def parse_kind(text: str) -> str:
    kind = _SPELLINGS.get(text.strip().lower())
    if kind is None:
        raise SelectorError(f"unknown resource type {text!r}; use {VALID_TYPES}")
    return kind


def _check_name(kind: str, name: str) -> None:
    pattern = _LABEL if kind == NAMESPACE else _SUBDOMAIN
    if len(name) > (63 if kind == NAMESPACE else 253) or not pattern.fullmatch(name):
        raise SelectorError(
            f"invalid {kind} name {name!r}: lower-case letters, digits and '-'"
            + ("" if kind == NAMESPACE else " (and '.')") + ", starting and ending alphanumeric")


def parse_resource(text: str, namespace: str | None = None, all_namespaces: bool = False
                   ) -> Selector:
    """``TYPE`` or ``TYPE/NAME`` with kubectl's ``-n`` / ``-A`` rules."""
    raw = text.strip()
    if not raw:
        raise SelectorError(f"no resource given; use {VALID_TYPES}, optionally /NAME")
    type_part, slash, name = raw.partition("/")
    kind = parse_kind(type_part)
    if slash and not name:
        raise SelectorError(f"resource {text!r} has a '/' but no name")
    if "/" in name:
        raise SelectorError(f"resource {text!r} has more than one '/'")
    if name:
        _check_name(kind, name)
    if namespace is not None:
        _check_name(NAMESPACE, namespace)
    if all_namespaces and name and kind != NAMESPACE:
        raise SelectorError("a resource cannot be retrieved by name across all namespaces")
    if all_namespaces and namespace is not None:
        raise SelectorError("-n/--namespace and -A/--all-namespaces cannot be used together")
    if kind == NAMESPACE:
        return Selector(kind, name or None, None)
    ns = None if all_namespaces else (namespace or DEFAULT_NAMESPACE)
    return Selector(kind, name or None, ns)
