"""An injected document keeps the spelling of every line inject did not mean to
change: nulls written out, odd spacing, its own indentation of sequences."""

from __future__ import annotations

import difflib

import pytest
from injectkit import container, load_all
from ruamel.yaml import YAML

from meshtui.inject import inject_text
from meshtui.inject.fidelity import loaded_faithfully, restore, same_data

# As `kubectl create deployment web --image=web:1 --dry-run=client -o yaml` writes it.
KUBECTL = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  creationTimestamp: null
  labels:
    app: web
  name: web
spec:
  replicas: 1
  selector:
    matchLabels:
      app: web
  strategy: {}
  template:
    metadata:
      creationTimestamp: null
      labels:
        app: web
    spec:
      containers:
      - image: web:1
        name: web
        resources: {}
status: {}
"""

HAND_WRITTEN = """\
kind:    Deployment          # aligned by hand
metadata: {name: odd}
spec:
  template:
    spec:
      nodeSelector:
        disk: ~
        zone: Null
      containers:
        - name: a
          env:
          - name: X          # this list is indented unlike the others
            value: "1"
          command:
            - sh
"""


def _only_added(before: str, after: str) -> list[str]:
    """The lines of ``before`` that ``after`` does not keep as they were."""
    ops = difflib.SequenceMatcher(a=before.splitlines(), b=after.splitlines(),
                                  autojunk=False).get_opcodes()
    return [ln for op, i1, i2, _, _ in ops if op in ("replace", "delete")
            for ln in before.splitlines()[i1:i2]]


def test_kubectl_output_keeps_its_nulls() -> None:
    result = inject_text(KUBECTL)
    assert result.injected == 1
    assert _only_added(KUBECTL, result.text) == []
    assert "  creationTimestamp: null\n" in result.text
    assert "      creationTimestamp: null\n" in result.text


def test_hand_written_spacing_nulls_and_indentation_are_kept() -> None:
    result = inject_text(HAND_WRITTEN)
    assert result.injected == 1
    assert _only_added(HAND_WRITTEN, result.text) == []
    assert load_all(result.text)[0]["spec"]["template"]["spec"]["nodeSelector"] == {
        "disk": None, "zone": None}


def test_an_inline_list_of_containers_becomes_one_a_line() -> None:
    text = "kind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: a, image: 'a:1'}]\n"
    out = inject_text(text).text
    assert "  - {name: a, image: 'a:1'}\n" in out
    assert "  - name: meshtui-proxy\n" in out
    pod = load_all(out)[0]
    assert pod["spec"]["containers"][0] == {"name": "a", "image": "a:1"}
    container(pod, "meshtui-proxy")


def test_new_pod_metadata_goes_before_its_spec() -> None:
    out = inject_text("apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: a\n").text
    assert list(load_all(out)[0]) == ["apiVersion", "kind", "metadata", "spec"]


def test_a_line_is_not_restored_where_it_would_change_the_data() -> None:
    # Only the indentation differs, but indented it belongs to another mapping.
    assert restore("a:\n  b: 1\n", "a:\nb: 1\n") == "a:\nb: 1\n"
    # One run of lines that holds is kept even when another does not.
    assert restore("x:   1\na:\n  b: 1\n", "x: 1\na:\nb: 1\n") == "x:   1\na:\nb: 1\n"


def test_tags_the_safe_loader_does_not_know_are_compared_too() -> None:
    assert restore("a: !custom   x\n", "a: !custom x\n") == "a: !custom   x\n"
    # Not when the line would change the tag.
    assert restore("a: !other   x\n", "a: !custom x\n") == "a: !custom x\n"


def test_same_data_is_exact() -> None:
    assert same_data("a: 1\nb: null\n", "a:   1\nb:\n")
    assert not same_data("a: 1\nb: 2\n", "b: 2\na: 1\n")  # order matters
    assert not same_data("a: '1'\n", "a: 1\n")
    assert not same_data("a: !x 1\n", "a: !y 1\n")
    assert not same_data("a: &s [*s]\n", "a: [null]\n")
    assert same_data("a: &s [*s]\n", "a: &t [*t]\n")
    assert not same_data("a: [\n", "a: [\n")  # what cannot be read is never the same


def test_a_document_the_round_trip_would_alter_is_left_alone() -> None:
    text = "kind: Pod\nmetadata: {name: p}\nx: &a [*a]\nspec:\n  containers:\n  - name: a\n"
    result = inject_text(text + "---\n" + text.replace("x: &a [*a]\n", ""))
    assert result.text.startswith(text)
    assert [o.injected for o in result.outcomes] == [False, True]
    assert result.outcomes[0].line().startswith(
        'pod "p" skipped: its document cannot be written back with its data unchanged')


@pytest.mark.parametrize("text", [
    "a: 2001-12-14t21:59:43.10-05:00\nb: 2002-12-14\nc: !!binary aGVsbG8=\nd: .nan\n",
    "e: 0o14\nf: 0x1F\ng: !!set {x}\nh: &q yes\ni: &r true\nj: 1_000\nk: *q\n",
    "base: &b {x: 1, y: 2}\nm:\n  <<: *b\n  y: 3\n",
    "base: &b {x: 1}\nm:\n  z: 4\n  <<: [*b, {w: 0}]\n",
    "a: !!str 1\nb: !!int \"2\"\nc: !!float 3\n",
    "a: !Ref x\n",
    "? [1, 2]\n: c\n",
    "x: !!omap [{a: 1}]\n",
    "a: |\n  x\n  y\nb: >-\n  folded\n  text\n",
])
def test_what_the_round_trip_keeps_is_not_taken_for_a_loss(text: str) -> None:
    assert loaded_faithfully(text, YAML(typ="rt").load(text))


@pytest.mark.parametrize("text", ["a: &s [*s]\n", "a: &m {b: *m}\n"])
def test_what_the_round_trip_loses_is_found(text: str) -> None:
    assert not loaded_faithfully(text, YAML(typ="rt").load(text))
