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


def _mapping_at(parent: CommentedMap, key: str, before: str | None = None) -> CommentedMap:
    """``parent[key]``, made an empty mapping when absent or null; a new one goes
    just before the key ``before`` when there is one (metadata before spec)."""
    node = parent.get(key)
    if not isinstance(node, dict):
        node = CommentedMap()
        if key not in parent and before in parent:
            parent.insert(list(parent).index(before), key, node)
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


def _malformed(pod: CommentedMap) -> str | None:
    """What in a pod is not shaped as Kubernetes takes it, where inject would
    otherwise have to overwrite it (the API server would refuse it anyway)."""
    meta = pod.get("metadata")
    if meta is not None and not isinstance(meta, dict):
        return "its pod's metadata is not a mapping"
    annotations = _get(meta, "annotations")
    if annotations is not None and not isinstance(annotations, dict):
        return "its pod's metadata.annotations is not a mapping"
    spec = pod["spec"]
    if not all(isinstance(c, dict) for c in spec["containers"]):
        return "a container of its pod is not a mapping"
    inits = spec.get("initContainers")
    if inits is not None and not isinstance(inits, list):
        return "its pod's spec.initContainers is not a list"
    return None


def _skip_reason(obj: CommentedMap, pod: Any) -> str | None:
    spec = _get(pod, "spec")
    containers = _get(spec, "containers")
    if not isinstance(containers, list) or not containers:
        return "no pod spec with containers"
    malformed = _malformed(pod)
    if malformed:
        return f"not a valid pod: {malformed}"
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
                  if isinstance(port, dict) and str(_get(port, "protocol")).upper() == "UDP"
                  and _get(port, "containerPort") is not None})
    if not udp:
        return ""
    s = "s" if len(udp) > 1 else ""
    return f"UDP port{s} {', '.join(clean(p) for p in udp)} not proxied (only TCP is)"


# A job's pod ends when its containers do; a sidecar that runs on holds it open.
_JOB_NOTE = "the proxy keeps running after the job's own containers finish"


def _init_note(inits: list[Any], uid: int) -> str:
    """What becomes of the pod's own init containers, which now run after the
    rules are in place but before the proxy listens."""
    names = [f'"{clean(str(_get(c, "name")))}"' for c in inits if isinstance(c, dict)]
    if not names:
        return ""
    if len(names) == 1:
        return (f"init container {names[0]} now runs before the proxy starts: TCP it opens "
                f"fails unless it runs as UID {uid} or those ports are skipped "
                "(--skip-outbound-ports)")
    return (f"init containers {', '.join(names)} now run before the proxy starts: TCP "
            f"they open fails unless they run as UID {uid} or those ports are skipped "
            "(--skip-outbound-ports)")


def _block_style(*lists: Any) -> None:
    """Lists written inline (``containers: [{name: a}]``) become one item a line:
    otherwise the sidecar would be a line two thousand characters long. (Inside
    a mapping that is itself inline, the writer keeps them inline all the same.)"""
    for items in lists:
        if isinstance(items, CommentedSeq) and items.fa.flow_style():
            items.fa.set_block_style()


def deployment_name(kind: str, workload_name: str, pod: Any) -> str:
    """The name the proxy's telemetry gives its workload: a Deployment's own
    name, else the pod's ``app`` label, else the workload's name."""
    if kind == "Deployment":
        return workload_name
    app = _get(pod, "metadata", "labels", "app")
    return app if isinstance(app, str) and app else workload_name


def unfaithful(obj: CommentedMap, document: int) -> Outcome:
    """The outcome of a workload whose document cannot be written back as it was."""
    return Outcome(str(obj["kind"]), _name(obj), document, False,
                   "its document cannot be written back with its data unchanged "
                   "(a collection that contains itself through an alias, for one)")


def inject_workload(obj: CommentedMap, document: int, config: InjectConfig) -> Outcome:
    """Adds the sidecar to one workload in place (or leaves it as it was)."""
    kind = str(obj["kind"])
    name = _name(obj)
    pod = _get(obj, *POD_PATHS[kind]) if POD_PATHS[kind] else obj
    reason = _skip_reason(obj, pod)
    if reason:
        return Outcome(kind, name, document, False, reason)
    meta = _mapping_at(pod, "metadata", before="spec")
    annotations = meta.get("annotations")
    try:
        skip_in = sidecar.annotation_ports(annotations, sidecar.SKIP_INBOUND_ANNOTATION)
        skip_out = sidecar.annotation_ports(annotations, sidecar.SKIP_OUTBOUND_ANNOTATION)
    except UsageError as e:
        return Outcome(kind, name, document, False, clean(str(e)))
    spec = pod["spec"]
    raw_name = _get(obj, "metadata", "name")
    workload_name = raw_name if isinstance(raw_name, str) and raw_name else ""
    _mapping_at(meta, "annotations")[sidecar.VERSION_ANNOTATION] = sidecar.quoted(
        config.version)
    spec["containers"].append(
        sidecar.proxy_container(config, deployment_name(kind, workload_name, pod)))
    inits = spec.get("initContainers")
    if not isinstance(inits, list):
        inits = spec["initContainers"] = CommentedSeq()
    notes = [_udp_note(spec), _init_note(inits, config.proxy_uid),
             _JOB_NOTE if kind in ("Job", "CronJob") else ""]
    # First of the init containers, as Conduit and Linkerd place theirs: the
    # pod's network is meshed before any of its own code runs.
    inits.insert(0, sidecar.init_container(config, skip_in, skip_out))
    _block_style(spec["containers"], inits)
    return Outcome(kind, name, document, True, "; ".join(n for n in notes if n))
