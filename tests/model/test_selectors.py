import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshtui.model.selectors import (
    DEPLOYMENT,
    NAMESPACE,
    POD,
    Selector,
    SelectorError,
    parse_resource,
)


@pytest.mark.parametrize(("text", "kind"), [
    ("ns", NAMESPACE), ("namespace", NAMESPACE), ("namespaces", NAMESPACE),
    ("deploy", DEPLOYMENT), ("deployment", DEPLOYMENT), ("Deployments", DEPLOYMENT),
    ("po", POD), ("pod", POD), ("pods", POD),
])
def test_kubectl_spellings(text: str, kind: str) -> None:
    assert parse_resource(text).kind == kind


def test_namespace_rules() -> None:
    assert parse_resource("deploy/web") == Selector(DEPLOYMENT, "web", "default")
    assert parse_resource("deploy/web", "emojivoto").namespace == "emojivoto"
    assert parse_resource("deploy", all_namespaces=True).namespace is None
    assert parse_resource("ns/emojivoto", "other") == Selector(NAMESPACE, "emojivoto", None)


@pytest.mark.parametrize(("text", "kwargs", "message"), [
    ("foo/bar", {}, "unknown resource type 'foo'"),
    ("svc", {}, "unknown resource type"),
    ("deploy/", {}, "no name"),
    ("deploy/a/b", {}, "more than one '/'"),
    ("deploy/Web", {}, "invalid deployment name"),
    ("deploy/web", {"all_namespaces": True}, "across all namespaces"),
    ("deploy", {"namespace": "a", "all_namespaces": True}, "cannot be used together"),
    ("deploy", {"namespace": "a.b"}, "invalid namespace name"),
    ("", {}, "no resource given"),
])
def test_errors_are_one_clear_line(text: str, kwargs: dict, message: str) -> None:
    with pytest.raises(SelectorError, match=message) as info:
        parse_resource(text, **kwargs)
    assert "\n" not in str(info.value)


def test_matches_pods_by_placement() -> None:
    web = parse_resource("deploy/web", "emojivoto")
    assert web.matches("emojivoto", "web", "web-1")
    assert not web.matches("emojivoto", "emoji", "emoji-1")
    assert not web.matches("other", "web", "web-1")
    assert parse_resource("ns/emojivoto").matches("emojivoto", "x", "y")
    assert parse_resource("po", all_namespaces=True).matches("any", "", "p")
    assert not parse_resource("deploy", all_namespaces=True).matches("any", "", "bare-pod")


names = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?", fullmatch=True)


@given(st.sampled_from([NAMESPACE, DEPLOYMENT, POD]), st.one_of(st.none(), names), names)
def test_round_trip_through_text(kind: str, name: str | None, ns: str) -> None:
    sel = parse_resource(str(Selector(kind, name, None)), None if kind == NAMESPACE else ns)
    assert sel.kind == kind and sel.name == name
    assert parse_resource(str(sel), sel.namespace) == sel
