"""Finding the pods in Kubernetes objects, and deciding whether each gets a sidecar."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from meshtui.errors import UsageError
from meshtui.inject import sidecar
from meshtui.inject.sidecar import InjectConfig
from meshtui.model.sanitize import clean

# Where each kind keeps its pod: () is the object itself.
POD_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": (),
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}

# Other meshes' sidecars: a pod with one is left alone.
FOREIGN_PROXIES = ("linkerd-proxy", "istio-proxy", "conduit-proxy")


@dataclass(frozen=True)
class Outcome:
    """What became of one workload.

    Attributes:
        kind, name: the workload (name cleaned of control characters).
        document: its document's number in the stream (from 1).
        injected: True when the sidecar was added.
        reason: why not, when it was not; notes on what was done, when it was.
    """

    kind: str
    name: str
    document: int
    injected: bool
    reason: str = ""

    def line(self) -> str:
        """One line for the report: ``deployment "web" injected``."""
        head = f'{self.kind.lower()} "{self.name}"'
        if self.injected:
            return f"{head} injected" + (f"; {self.reason}" if self.reason else "")
        return f"{head} skipped: {self.reason}"


def _get(node: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def _mapping_at(parent: CommentedMap, key: str, first: bool = False) -> CommentedMap:
    """``parent[key]``, made an empty mapping when absent or null."""
    node = parent.get(key)
    if not isinstance(node, dict):
        node = CommentedMap()
        if key in parent:
            parent[key] = node
        elif first:
            parent.insert(0, key, node)
        else:
            parent[key] = node
    return node


def workloads(data: Any) -> Iterator[Any]:
    """Every workload in a document, into ``kind: List`` (and ``...List``) items."""
    if not isinstance(data, dict):
        return
    kind = data.get("kind")
    if isinstance(kind, str) and kind in POD_PATHS:
        yield data
    elif isinstance(kind, str) and kind.endswith("List") and isinstance(data.get("items"), list):
        for item in data["items"]:
            yield from workloads(item)


def _name(obj: Any) -> str:
    meta = _get(obj, "metadata")
    name = _get(meta, "name") or (f"{_get(meta, 'generateName')}*"
                                  if _get(meta, "generateName") else "")
    return clean(str(name)) if name else "(unnamed)"


def _disabled_by(*annotation_maps: Any) -> str | None:
    for found in annotation_maps:
        if not isinstance(found, dict):
            continue
        for key in sidecar.INJECT_ANNOTATIONS:
            value = found.get(key)
            if isinstance(value, str) and value.strip().lower() in ("disabled", "false"):
                return f"injection disabled by annotation {key}: {clean(value)}"
    return None


def _skip_reason(obj: CommentedMap, pod: Any) -> str | None:
    spec = _get(pod, "spec")
    containers = _get(spec, "containers")
    if not isinstance(containers, list) or not containers:
        return "no pod spec with containers"
    names = [_get(c, "name") for c in containers]
    init_names = [_get(c, "name") for c in _get(spec, "initContainers") or []
                  if isinstance(c, dict)]
    annotations = _get(pod, "metadata", "annotations")
    if (sidecar.PROXY_CONTAINER in names or sidecar.INIT_CONTAINER in init_names
            or (isinstance(annotations, dict) and sidecar.VERSION_ANNOTATION in annotations)):
        return "already injected"
    foreign = next((n for n in names if n in FOREIGN_PROXIES), None)
    if foreign:
        return f"it already has a {foreign} sidecar"
    disabled = _disabled_by(annotations, _get(obj, "metadata", "annotations"))
    if disabled:
        return disabled
    if _get(spec, "hostNetwork") is True:
        return ("hostNetwork: true (the pod uses its node's network: "
                "its iptables rules would be the node's)")
    return None


def _udp_note(spec: Any) -> str:
    udp = sorted({str(_get(port, "containerPort"))
                  for c in _get(spec, "containers") or [] if isinstance(c, dict)
                  for port in _get(c, "ports") or []
                  if isinstance(port, dict) and str(_get(port, "protocol")).upper() == "UDP"})
    if not udp:
        return ""
    s = "s" if len(udp) > 1 else ""
    return f"UDP port{s} {', '.join(clean(p) for p in udp)} not proxied (only TCP is)"


# A job's pod ends when its containers do; a sidecar that runs on holds it open.
_JOB_NOTE = "the proxy keeps running after the job's own containers finish"


def _deployment_source(kind: str, obj: Any, labels: CommentedMap, name: str
                       ) -> tuple[str, str] | None:
    """How the proxy learns its workload's name, labelling the pod where needed."""
    if kind != "Pod":
        # As Linkerd does: a label naming the owner, which the proxy reads back.
        label = f"{sidecar.ANNOTATION_PREFIX}proxy-{kind.lower()}"
        labels[label] = name
        return ("label", label)
    owners = _get(obj, "metadata", "ownerReferences")
    if isinstance(owners, list) and owners and _get(owners[0], "name"):
        return ("value", str(_get(owners[0], "name")))
    if isinstance(_get(obj, "metadata", "labels", "app"), str):
        return ("label", "app")
    return None


def inject_workload(obj: CommentedMap, document: int, config: InjectConfig) -> Outcome:
    """Adds the sidecar to one workload in place (or leaves it as it was)."""
    kind = str(obj["kind"])
    name = _name(obj)
    pod = _get(obj, *POD_PATHS[kind]) if POD_PATHS[kind] else obj
    reason = _skip_reason(obj, pod)
    if reason:
        return Outcome(kind, name, document, False, reason)
    meta = _mapping_at(pod, "metadata", first=True)
    annotations = meta.get("annotations")
    try:
        skip_in = sidecar.annotation_ports(annotations, sidecar.SKIP_INBOUND_ANNOTATION)
        skip_out = sidecar.annotation_ports(annotations, sidecar.SKIP_OUTBOUND_ANNOTATION)
    except UsageError as e:
        return Outcome(kind, name, document, False, clean(str(e)))
    spec = pod["spec"]
    raw_name = _get(obj, "metadata", "name")
    source = None
    if isinstance(raw_name, str) and raw_name:
        labels = _mapping_at(meta, "labels") if kind != "Pod" else CommentedMap()
        source = _deployment_source(kind, obj, labels, raw_name)
    _mapping_at(meta, "annotations")[sidecar.VERSION_ANNOTATION] = sidecar.quoted(
        config.version)
    spec["containers"].append(sidecar.proxy_container(config, source))
    inits = spec.get("initContainers")
    if not isinstance(inits, list):
        inits = spec["initContainers"] = CommentedSeq()
    # Last among the init containers: those before it run with the network as it
    # was (their calls would otherwise meet rules whose proxy is not running yet).
    inits.append(sidecar.init_container(config, skip_in, skip_out))
    notes = [n for n in (_udp_note(spec), _JOB_NOTE if kind in ("Job", "CronJob") else "")
             if n]
    return Outcome(kind, name, document, True, "; ".join(notes))
