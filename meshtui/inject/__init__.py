"""``meshtui inject``: Kubernetes YAML in, the same YAML with the mesh's sidecar added.

Every workload (Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet,
ReplicationController, Job, CronJob, in any document and inside ``kind: List``)
gets the ``meshtui-proxy`` container and the ``meshtui-init`` init container;
everything else is left exactly as it was.

    result = inject_text(open("app.yaml").read())
    sys.stdout.write(result.text)
    for outcome in result.outcomes:
        print(outcome.line(), file=sys.stderr)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from meshtui.inject.documents import ParseError
from meshtui.inject.sidecar import InjectConfig
from meshtui.inject.workloads import Outcome

__all__ = ["InjectConfig", "Outcome", "ParseError", "Result", "inject_text"]


@dataclass
class Result:
    """The YAML out, and what became of each workload, in the order they came."""

    text: str
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def injected(self) -> int:
        return sum(o.injected for o in self.outcomes)


def inject_text(text: str, config: InjectConfig | None = None) -> Result:
    """Adds the sidecar to every workload of a YAML stream.

    Documents with nothing injected come out byte for byte as they went in;
    documents with something injected are written anew by ruamel.yaml, which
    keeps their comments, key order and quoting, and then given back the
    spelling of every line they share with the input (spacing, indentation,
    nulls). A document that the round trip would alter is not injected.

    Raises:
        ParseError: a document is not YAML (its number and line are in the error).
    """
    from meshtui.inject import documents, fidelity
    from meshtui.inject.workloads import inject_workload, unfaithful, workloads

    config = config or InjectConfig()
    docs = documents.split(text)
    documents.parse(docs)
    out: list[str] = []
    outcomes: list[Outcome] = []
    for doc in docs:
        changed = False
        found = list(workloads(doc.data))
        # A document the round trip would alter is left as it is, whole.
        faithful = not found or fidelity.loaded_faithfully(doc.body, doc.data)
        for obj in found:
            outcome = (inject_workload(obj, doc.number, config) if faithful
                       else unfaithful(obj, doc.number))
            outcomes.append(outcome)
            changed |= outcome.injected
        out.append(documents.render(doc) if changed else doc.text)
    return Result("".join(out), outcomes)
