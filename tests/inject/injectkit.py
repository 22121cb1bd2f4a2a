"""Helpers for the inject tests: the shared manifests, the real CLI, and a way to
take exactly what an injection adds back out of a document."""

from __future__ import annotations

import copy
import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = Path(os.environ.get("MESHTUI_MANIFESTS", REPO.parent / "shared" / "manifests"))
MESHTUI = str(Path(sys.executable).parent / "meshtui")

Path_ = tuple[Any, ...]


def manifest_files() -> list[Path]:
    """Every manifest of the shared folder (the tests using it skip when it is absent)."""
    if not MANIFESTS.is_dir():
        return []
    return sorted(p for p in MANIFESTS.iterdir() if p.suffix in (".yaml", ".yml"))


def need_manifests() -> None:
    if not manifest_files():
        pytest.skip(f"no manifests in {MANIFESTS} (the shared folder beside the repository)")


def load_all(text: str) -> list[Any]:
    """Plain Python data of every document (dicts, lists, scalars)."""
    return list(YAML(typ="safe", pure=True).load_all(io.StringIO(text)))


def pod_templates(doc: Any) -> list[tuple[Path_, dict[str, Any]]]:
    """(path, pod) of each workload's pod in a plain document, Lists included."""
    paths = {"Pod": (), "Deployment": ("spec", "template"), "StatefulSet": ("spec", "template"),
             "DaemonSet": ("spec", "template"), "ReplicaSet": ("spec", "template"),
             "ReplicationController": ("spec", "template"), "Job": ("spec", "template"),
             "CronJob": ("spec", "jobTemplate", "spec", "template")}
    found: list[tuple[Path_, dict[str, Any]]] = []

    def walk(node: Any, at: Path_) -> None:
        if not isinstance(node, dict):
            return
        kind = node.get("kind")
        if kind in paths:
            pod = node
            for key in paths[kind]:
                pod = pod[key]
            found.append(((*at, *paths[kind]), pod))
        elif kind == "List":
            for i, item in enumerate(node.get("items") or []):
                walk(item, (*at, "items", i))
    walk(doc, ())
    return found


def strip_injection(doc: Any) -> Any:
    """A copy of a plain document with exactly what inject adds taken out again:
    the two containers, the version annotation, and any mapping or list that
    was made to hold them."""
    doc = copy.deepcopy(doc)
    for _, pod in pod_templates(doc):
        spec, meta = pod.get("spec") or {}, pod.get("metadata") or {}
        for key, name in (("containers", "meshtui-proxy"), ("initContainers", "meshtui-init")):
            if isinstance(spec.get(key), list):
                spec[key] = [c for c in spec[key] if c.get("name") != name]
        if spec.get("initContainers") == []:
            del spec["initContainers"]
        annotations = meta.get("annotations")
        if isinstance(annotations, dict):
            annotations.pop("meshtui.io/proxy-version", None)
            if not annotations:
                del meta["annotations"]
        if "metadata" in pod and not meta:
            del pod["metadata"]
    return doc


def container(pod: dict[str, Any], name: str, init: bool = False) -> dict[str, Any]:
    key = "initContainers" if init else "containers"
    matches = [c for c in pod["spec"].get(key) or [] if c.get("name") == name]
    assert len(matches) == 1, f"{len(matches)} {key} named {name}"
    return matches[0]


def inject(*argv: str, stdin: str | bytes | None = None) -> subprocess.CompletedProcess[str]:
    """The real command line: ``meshtui inject ARGV``."""
    data = stdin.encode() if isinstance(stdin, str) else stdin
    p = subprocess.run([MESHTUI, "inject", *argv], input=data, capture_output=True,
                       timeout=60)
    return subprocess.CompletedProcess(p.args, p.returncode, p.stdout.decode(),
                                       p.stderr.decode())
