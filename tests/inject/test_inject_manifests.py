"""``meshtui inject`` on every real manifest of the shared folder, through the
real command line: what it adds, what it leaves alone, what it reports."""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

import pytest
from injectkit import (
    container,
    inject,
    load_all,
    manifest_files,
    need_manifests,
    pod_templates,
    strip_injection,
)

from meshtui import __version__
from meshtui.inject import inject_text

FILES = manifest_files() or [Path("(none)")]
IDS = [p.name for p in FILES]
IMAGE = f"ghcr.io/meshtui/meshtui:{__version__}"


@pytest.fixture(params=FILES, ids=IDS)
def manifest(request: pytest.FixtureRequest) -> Path:
    need_manifests()
    path: Path = request.param
    return path


def _by_name(name: str) -> Path:
    need_manifests()
    path = next((p for p in manifest_files() if p.name == name), None)
    if path is None:
        pytest.skip(f"{name} is not in the shared folder")
    return path


def _in_process(name: str) -> tuple[str, list[str]]:
    """(YAML out, report lines) of one manifest, without a process of its own:
    the command line's own output is compared with this for every manifest."""
    result = inject_text(_by_name(name).read_text())
    return result.text, [o.line() for o in result.outcomes]


def _workloads(doc: Any) -> list[dict[str, Any]]:
    """The workload objects of a plain document, List items included."""
    if not isinstance(doc, dict):
        return []
    if doc.get("kind") == "List":
        return [w for item in doc.get("items") or [] for w in _workloads(item)]
    return [doc] if pod_templates(doc) else []


def test_every_workload_gets_the_sidecar_and_nothing_else_changes(manifest: Path) -> None:
    text = manifest.read_text()
    out = inject(str(manifest))
    assert out.returncode == 0, out.stderr
    before, after = load_all(text), load_all(out.stdout)
    assert len(after) == len(before)
    # Take out exactly what inject adds: what remains is the input, every field.
    assert [strip_injection(d) for d in after] == before
    report = outcome_lines(out.stderr)
    expected_lines = []
    for doc_before, doc_after in zip(before, after, strict=True):
        for workload, (_, pod), (_, old) in zip(
                _workloads(doc_after), pod_templates(doc_after), pod_templates(doc_before),
                strict=True):
            head = f'{workload["kind"].lower()} "{workload["metadata"]["name"]}"'
            expected_lines.append(head)
            if old["spec"].get("hostNetwork"):
                assert pod == old
                continue
            _check_injected(workload, pod)
            # The app's containers first, the proxy after them; meshtui-init
            # before the pod's own init containers.
            assert [c["name"] for c in pod["spec"]["containers"]] == \
                [c["name"] for c in old["spec"]["containers"]] + ["meshtui-proxy"]
            assert [c["name"] for c in pod["spec"]["initContainers"]] == \
                ["meshtui-init"] + [c["name"] for c in old["spec"].get("initContainers") or []]
    # One line per workload, in order, naming it.
    assert len(report) == len(expected_lines), report
    for line, head in zip(report, expected_lines, strict=True):
        assert re.fullmatch(re.escape(head) + r" (injected(; .+)?|skipped: .+)", line), line


def _check_injected(workload: dict[str, Any], pod: dict[str, Any]) -> None:
    proxy = container(pod, "meshtui-proxy")
    assert proxy["image"] == IMAGE
    assert proxy["args"] == ["proxy"]
    assert [(p["name"], p["containerPort"]) for p in proxy["ports"]] == [
        ("meshtui-inbound", 4143), ("meshtui-tap", 4190), ("meshtui-admin", 4191)]
    assert proxy["readinessProbe"]["httpGet"] == {"path": "/ready", "port": 4191}
    assert proxy["livenessProbe"]["httpGet"] == {"path": "/live", "port": 4191}
    assert proxy["securityContext"] == {"runAsUser": 2102, "runAsNonRoot": True,
                                        "readOnlyRootFilesystem": True,
                                        "allowPrivilegeEscalation": False}
    assert set(proxy["resources"]) == {"requests"}  # no limits: never OOM-killed for a burst
    assert set(proxy["resources"]["requests"]) == {"cpu", "memory"}
    env = {e["name"]: e for e in proxy["env"]}
    assert len(env) == len(proxy["env"])
    fields = {n: e["valueFrom"]["fieldRef"]["fieldPath"] for n, e in env.items()
              if "valueFrom" in e}
    values = {n: e["value"] for n, e in env.items() if "value" in e}
    assert fields == {"MESHTUI_POD_NAME": "metadata.name",
                      "MESHTUI_POD_NAMESPACE": "metadata.namespace",
                      "MESHTUI_POD_IP": "status.podIP"}
    app = (pod.get("metadata") or {}).get("labels", {}).get("app")
    name = workload["metadata"]["name"]
    assert values == {
        "MESHTUI_DEPLOYMENT": name if workload["kind"] == "Deployment" else (app or name),
        "MESHTUI_INBOUND_ADDR": "0.0.0.0:4143", "MESHTUI_OUTBOUND_ADDR": "127.0.0.1:4140",
        "MESHTUI_TAP_ADDR": "0.0.0.0:4190", "MESHTUI_ADMIN_ADDR": "0.0.0.0:4191"}
    init = container(pod, "meshtui-init", init=True)
    assert init["image"] == IMAGE
    assert init["args"] == ["proxy-init", "--proxy-uid", "2102", "--inbound-port", "4143",
                            "--outbound-port", "4140", "--inbound-ports-to-ignore", "4190,4191"]
    assert init["securityContext"]["capabilities"] == {"add": ["NET_ADMIN", "NET_RAW"]}
    assert init["securityContext"]["runAsUser"] == 0
    assert init["securityContext"]["runAsNonRoot"] is False
    assert pod["metadata"]["annotations"]["meshtui.io/proxy-version"] == __version__


NOTE = ("note: the proxies' tap (4190) and admin (4191) ports take no credentials yet: any "
        "pod that can reach them can watch requests and read metrics")


def outcome_lines(stderr: str) -> list[str]:
    """The report's line per workload; the note on the ports comes last, once."""
    lines = stderr.splitlines()
    assert lines.count(NOTE) <= 1 and (NOTE not in lines or lines[-1] == NOTE)
    return [line for line in lines if line != NOTE]


def test_every_manifest_through_standard_input_at_once() -> None:
    # `cat *.yaml | meshtui inject -`: one stream, each file's documents
    # injected as they are on their own, the report lines in order.
    need_manifests()
    texts = [p.read_text() for p in manifest_files()]
    alone = [inject_text(t) for t in texts]
    out = inject("-", stdin="---\n".join(texts))
    assert out.returncode == 0, out.stderr
    assert out.stdout == "---\n".join(r.text for r in alone)
    assert outcome_lines(out.stderr) == [o.line() for r in alone for o in r.outcomes]
    assert out.stderr.splitlines()[-1] == NOTE


def test_injecting_the_output_again_changes_nothing(manifest: Path) -> None:
    once = inject_text(manifest.read_text())
    twice = inject_text(once.text)
    assert twice.text == once.text
    assert [(o.kind, o.name) for o in twice.outcomes] == [(o.kind, o.name) for o in once.outcomes]
    for first, second in zip(once.outcomes, twice.outcomes, strict=True):
        assert second.line().endswith(" skipped: already injected" if first.injected
                                      else f" skipped: {first.reason}"), second.line()


def test_injection_only_adds_lines(manifest: Path) -> None:
    # Line for line, the file as it was is still there: nothing reflowed,
    # requoted or reindented, comments included, even in the documents
    # written anew.
    before = manifest.read_text().splitlines()
    after = inject_text(manifest.read_text()).text.splitlines()
    ops = difflib.SequenceMatcher(a=before, b=after, autojunk=False).get_opcodes()
    assert [op for op in ops if op[0] not in ("equal", "insert")] == []
    # And what was added is only ever a whole block inside a workload: never
    # a line between documents.
    added = [ln for op in ops if op[0] == "insert" for ln in after[op[3]:op[4]]]
    assert not [ln for ln in added if ln.startswith(("---", "...", "kind:", "apiVersion:"))]


def test_documents_without_a_workload_are_byte_identical(manifest: Path) -> None:
    text = manifest.read_text()
    out = inject_text(text).text
    # Cut both at the document markers: the documents without a workload come
    # out as the very same text, and there are as many documents as before.
    cut = re.compile(r"^---[ \t]*(?:#.*)?$", re.M)
    docs_in, docs_out = cut.split(text), cut.split(out)
    assert len(docs_in) == len(docs_out)
    for doc_in, doc_out in zip(docs_in, docs_out, strict=True):
        if not any(_workloads(d) for d in load_all(doc_in)):
            assert doc_out == doc_in


def test_host_network_is_skipped_with_the_reason() -> None:
    path = _by_name("emojivoto_deployment_hostNetwork_true.yaml")
    out = inject(str(path))
    assert out.returncode == 0
    assert out.stdout == path.read_text()
    assert out.stderr.splitlines() == [
        'deployment "web" skipped: hostNetwork: true (the pod uses its node\'s network: '
        "its iptables rules would be the node's)"]


def test_udp_ports_are_kept_and_said_to_pass_by_the_proxy() -> None:
    stdout, report = _in_process("emojivoto_deployment_udp.yaml")
    assert report == [
        'deployment "web" injected; UDP port 9100 not proxied (only TCP is)']
    pod = pod_templates(load_all(stdout)[0])[0][1]
    assert container(pod, "web-svc")["ports"] == [
        {"containerPort": 9100, "hostPort": 9100, "name": "http", "protocol": "UDP"}]
    # The rules only ever redirect TCP: nothing is skipped for the UDP port.
    args = container(pod, "meshtui-init", True)["args"]
    assert args[args.index("--inbound-ports-to-ignore") + 1] == "4190,4191"
    assert "--outbound-ports-to-ignore" not in args


def test_list_items_are_injected_each_with_its_own_name() -> None:
    stdout, report = _in_process("emojivoto_list.yaml")
    assert report == ['deployment "web" injected', 'deployment "emoji" injected']
    doc, *rest = load_all(stdout)
    assert rest == [None]  # the empty document after the file's closing ---
    assert doc["kind"] == "List" and doc["metadata"] == {}
    names = []
    for item in doc["items"]:
        env = container(item["spec"]["template"], "meshtui-proxy")["env"]
        names.append(next(e["value"] for e in env if e["name"] == "MESHTUI_DEPLOYMENT"))
    assert names == ["web", "emoji"]  # the Deployments' names, not their app labels


def test_cronjob_reaches_its_job_template_pod() -> None:
    stdout, report = _in_process("emojivoto_cronjob.yaml")
    assert report == [
        'cronjob "hello" injected; the proxy keeps running after the job\'s own '
        "containers finish"]
    doc = load_all(stdout)[0]
    pod = doc["spec"]["jobTemplate"]["spec"]["template"]
    env = {e["name"]: e.get("value") for e in container(pod, "meshtui-proxy")["env"]}
    assert env["MESHTUI_DEPLOYMENT"] == "hello"  # no app label: the CronJob's name
    assert pod["metadata"]["labels"] == {"foo": "bar"}
    assert doc["spec"]["schedule"] == "*/10 * * * *"
    assert '  schedule: "*/10 * * * *"\n' in stdout  # its quotes kept


def test_statefulset_is_named_by_its_app_label() -> None:
    stdout, report = _in_process("emojivoto_statefulset.yaml")
    assert report == ['statefulset "web" injected']
    doc = load_all(stdout)[0]
    assert doc["spec"]["serviceName"] == ""
    assert '  serviceName: ""\n' in stdout
    env = {e["name"]: e.get("value")
           for e in container(doc["spec"]["template"], "meshtui-proxy")["env"]}
    assert env["MESHTUI_DEPLOYMENT"] == "web-svc"


def test_a_pods_own_init_container_runs_after_the_rules_and_is_warned_of() -> None:
    stdout, report = _in_process("contour.yaml")
    (line,) = report
    assert line.startswith('deployment "contour" injected; init container "envoy-initconfig" '
                           "now runs before the proxy starts"), line
    pod = load_all(stdout)[0]["spec"]["template"]
    assert [c["name"] for c in pod["spec"]["initContainers"]] == ["meshtui-init",
                                                                  "envoy-initconfig"]
