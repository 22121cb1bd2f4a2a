"""Selectors read as kubectl reads them; errors are one line a user can act on."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshtui.model.selectors import (
    DEPLOYMENT,
    KINDS,
    NAMESPACE,
    POD,
    VALID_TYPES,
    Selector,
    SelectorError,
    parse_resource,
)


@pytest.mark.parametrize(("text", "kind"), [
    ("ns", NAMESPACE), ("namespace", NAMESPACE), ("namespaces", NAMESPACE),
    ("deploy", DEPLOYMENT), ("deployment", DEPLOYMENT), ("Deployments", DEPLOYMENT),
    ("po", POD), ("pod", POD), ("pods", POD), ("PO/web-1", POD), (" deploy/web ", DEPLOYMENT),
])
def test_kubectl_spellings(text: str, kind: str) -> None:
    sel = parse_resource(text)
    assert sel.kind == kind
    assert sel.type == kind


def test_namespace_rules() -> None:
    assert parse_resource("deploy/web") == Selector(DEPLOYMENT, "web", "default")
    assert parse_resource("deploy/web", "").namespace == "default"
    assert parse_resource("deploy/web", "emojivoto").namespace == "emojivoto"
    assert parse_resource("deploy", all_namespaces=True).namespace is None
    # Namespaces live in none: -n and -A change nothing for them.
    assert parse_resource("ns/emojivoto", "other") == Selector(NAMESPACE, "emojivoto", None)
    assert parse_resource("ns/emojivoto", all_namespaces=True) == Selector(NAMESPACE, "emojivoto")
    assert parse_resource("ns", "other", all_namespaces=True) == Selector(NAMESPACE)


def test_canonical_text_and_command_form() -> None:
    assert str(parse_resource("deployments/web", "emojivoto")) == "deploy/web"
    assert str(parse_resource("namespaces")) == "ns"
    assert parse_resource("pods/web-1", "e").command_form() == "po/web-1 -n e"
    assert parse_resource("pod", all_namespaces=True).command_form() == "po -A"
    assert parse_resource("namespace/e").command_form() == "ns/e"
    assert parse_resource("deploy", all_namespaces=True).describe() == "deploy in every namespace"


def test_wire_style_empty_strings_mean_all() -> None:
    assert Selector(DEPLOYMENT, "", "") == Selector(DEPLOYMENT, None, None)
    assert Selector(NAMESPACE, "e", "ignored").namespace is None


@pytest.mark.parametrize(("text", "kwargs", "message"), [
    ("foo/bar", {}, "unknown resource type 'foo'"),
    ("svc", {}, "unknown resource type"),
    ("/web", {}, "unknown resource type ''"),
    ("deploy/", {}, "no name"),
    ("deploy/a/b", {}, "more than one '/'"),
    ("deploy/Web", {}, "invalid deployment name 'Web'"),
    ("po/web_1", {}, "invalid pod name"),
    ("ns/a.b", {}, "invalid namespace name 'a.b'"),
    ("deploy/-web", {}, "starting and ending alphanumeric"),
    ("deploy/web", {"all_namespaces": True}, "across all namespaces"),
    ("deploy", {"namespace": "a", "all_namespaces": True}, "cannot be used together"),
    ("deploy", {"namespace": "a.b"}, "invalid namespace name 'a.b'"),
    ("", {}, "no resource given"),
])
def test_errors_are_one_clear_line(text: str, kwargs: dict, message: str) -> None:
    with pytest.raises(SelectorError, match=message) as info:
        parse_resource(text, **kwargs)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, ValueError)


def test_unknown_types_list_the_valid_ones() -> None:
    with pytest.raises(SelectorError) as info:
        parse_resource("service/web")
    assert VALID_TYPES in str(info.value)
    with pytest.raises(SelectorError):
        Selector("service")


def test_name_length_limits() -> None:
    parse_resource("ns/" + "a" * 63)
    with pytest.raises(SelectorError, match="at most 63"):
        parse_resource("ns/" + "a" * 64)
    long_name = ".".join(["a" * 63] * 4)[:253]
    assert parse_resource("deploy/" + long_name).name == long_name
    with pytest.raises(SelectorError, match="at most 253"):
        parse_resource("deploy/" + long_name + "b")


def test_matches_pods_by_placement() -> None:
    web = parse_resource("deploy/web", "emojivoto")
    assert web.matches("emojivoto", "web", "web-1")
    assert not web.matches("emojivoto", "emoji", "emoji-1")
    assert not web.matches("other", "web", "web-1")
    assert parse_resource("ns/emojivoto").matches("emojivoto", "x", "y")
    assert not parse_resource("ns/emojivoto").matches("other", "x", "y")
    assert parse_resource("po", all_namespaces=True).matches("any", "", "p")
    assert parse_resource("po/web-1", "e").matches("e", "web", "web-1")
    assert not parse_resource("po/web-1", "e").matches("e", "web-1", "web-2")
    # Unknown placements (addresses outside the mesh, bare pods) are never selected.
    assert not parse_resource("deploy", all_namespaces=True).matches("any", "", "bare-pod")
    assert not parse_resource("po", all_namespaces=True).matches("", "", "")
    assert not parse_resource("ns").matches("", "", "")


labels = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?", fullmatch=True)
subdomains = st.lists(labels, min_size=1, max_size=3).map(".".join)


@st.composite
def selectors(draw: st.DrawFn) -> Selector:
    kind = draw(st.sampled_from(KINDS))
    name = draw(st.one_of(st.none(), labels if kind == NAMESPACE else subdomains))
    namespace = None if name is not None and draw(st.booleans()) else draw(labels)
    if kind != NAMESPACE and name is not None and namespace is None:
        namespace = draw(labels)  # -A cannot take a name
    return Selector(kind, name, namespace)


@given(selectors(), st.sampled_from([str.lower, str.upper, str.title]))
def test_round_trip_through_text(sel: Selector, case) -> None:
    typed, _, name = str(sel).partition("/")
    text = case(typed) + ("/" + name if name else "")
    again = parse_resource(text, sel.namespace, all_namespaces=sel.namespace is None)
    assert again == sel
    assert str(again) == str(sel)


@given(selectors())
def test_round_trip_through_command_form(sel: Selector) -> None:
    resource, *flags = sel.command_form().split()
    ns = flags[1] if flags[:1] == ["-n"] else None
    assert parse_resource(resource, ns, all_namespaces=flags == ["-A"]) == sel


@given(st.sampled_from(KINDS), st.text(max_size=12))
def test_any_name_is_either_accepted_verbatim_or_refused_in_one_line(kind: str, name: str
                                                                     ) -> None:
    try:
        sel = parse_resource(f"{kind}/{name}", "e")
    except SelectorError as e:
        assert "\n" not in str(e)
        return
    assert sel.name == name.strip() and sel.name
    assert all(c.islower() or c.isdigit() or c in "-." for c in sel.name)
