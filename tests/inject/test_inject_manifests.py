"""``meshtui inject`` on every real manifest of the shared folder, through the
real command line: what it adds, what it leaves alone, what it reports."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import pytest
from injectkit import (
    container,
    differences,
    inject,
    load_all,
    manifest_files,
    need_manifests,
    pod_templates,
)

from meshtui.inject import inject_text

FILES = manifest_files() or [Path("(none)")]
IDS = [p.name for p in FILES]


@pytest.fixture(params=FILES, ids=IDS)
def manifest(request: pytest.FixtureRequest) -> Path:
    need_manifests()
    path: Path = request.param
    return path


def _is_added(path: tuple[Any, ...], pod_at: tuple[Any, ...], n_containers: int,
              n_inits: int) -> bool:
    """Whether a leaf the injection added is one it may add."""
    rest = path[len(pod_at):]
    if path[:len(pod_at)] != pod_at or not rest:
        return False
    if rest[:2] == ("spec", "containers"):
        return rest[2] >= n_containers  # appended after the app's own
    if rest[:2] == ("spec", "initContainers"):
        return rest[2] >= n_inits
    if rest[:2] == ("metadata", "annotations"):
        return rest[2] == "meshtui.io/proxy-version"
    if rest[:2] == ("metadata", "labels"):
        return str(rest[2]).startswith("meshtui.io/proxy-")
    return False


def test_every_workload_gets_the_sidecar_and_nothing_else_changes(manifest: Path) -> None:
    text = manifest.read_text()
    out = inject(str(manifest))
    assert out.returncode == 0, out.stderr
    before, after = load_all(text), load_all(out.stdout)
    assert len(after) == len(before)
    report = out.stderr.splitlines()
    assert report and all(" injected" in r or " skipped: " in r for r in report), report
    for doc_before, doc_after in zip(before, after, strict=True):
        pods_before = pod_templates(doc_before)
        pods_after = pod_templates(doc_after)
        assert [p for p, _ in pods_before] == [p for p, _ in pods_after]
        added, removed, changed = differences(doc_before, doc_after)
        assert removed == set() and changed == set(), (removed, changed)
        for (at, pod), (_, old) in zip(pods_after, pods_before, strict=True):
            n_app = len(old["spec"]["containers"])
            n_init = len(old["spec"].get("initContainers") or [])
            if old["spec"].get("hostNetwork"):
                assert not [p for p in added if p[:len(at)] == at]
                continue
            _check_injected(pod)
            assert len(pod["spec"]["containers"]) == n_app + 1
            assert len(pod["spec"]["initContainers"]) == n_init + 1
            # The init container runs last of the init containers.
            assert pod["spec"]["initContainers"][-1]["name"] == "meshtui-init"
            stray = [p for p in added if p[:len(at)] == at
                     and not _is_added(p, at, n_app, n_init)]
            assert stray == [], stray
    meshed = [pod for doc in after for _, pod in pod_templates(doc)
              if any(c["name"] == "meshtui-proxy" for c in pod["spec"]["containers"])]
    assert sum(" injected" in r for r in report) == len(meshed)


def _check_injected(pod: dict[str, Any]) -> None:
    proxy = container(pod, "meshtui-proxy")
    assert proxy["args"] == ["proxy"]
    assert {p["name"]: p["containerPort"] for p in proxy["ports"]} == {
        "meshtui-proxy": 4143, "meshtui-tap": 4190, "meshtui-admin": 4191}
    assert proxy["readinessProbe"]["httpGet"] == {"path": "/ready", "port": 4191}
    assert proxy["livenessProbe"]["httpGet"] == {"path": "/live", "port": 4191}
    assert proxy["securityContext"]["runAsUser"] == 2102
    env = {e["name"]: e for e in proxy["env"]}
    assert env["MESHTUI_POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["MESHTUI_POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == \
        "metadata.namespace"
    assert env["MESHTUI_POD_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
    assert env["MESHTUI_INBOUND_ADDR"]["value"] == "0.0.0.0:4143"
    # The proxy's workload comes from a label the pod carries, or from its owner.
    deployment = env["MESHTUI_DEPLOYMENT"]
    if "valueFrom" in deployment:
        path = deployment["valueFrom"]["fieldRef"]["fieldPath"]
        label = path.removeprefix("metadata.labels['").removesuffix("']")
        assert label in pod["metadata"]["labels"]
    init = container(pod, "meshtui-init", init=True)
    args = init["args"]
    assert args[0] == "proxy-init" and all(isinstance(a, str) for a in args)
    assert args[args.index("--inbound-port") + 1] == "4143"
    assert args[args.index("--proxy-uid") + 1] == "2102"
    sc = init["securityContext"]
    assert set(sc["capabilities"]["add"]) == {"NET_ADMIN", "NET_RAW"}
    assert sc["runAsUser"] == 0 and sc["runAsNonRoot"] is False
    assert pod["metadata"]["annotations"]["meshtui.io/proxy-version"]


def test_injecting_the_output_again_changes_nothing(manifest: Path) -> None:
    once = inject_text(manifest.read_text())
    twice = inject_text(once.text)
    assert twice.text == once.text
    assert not any(o.injected for o in twice.outcomes)
    assert {o.reason for o in twice.outcomes if o.reason != "already injected"} <= {
        o.reason for o in once.outcomes if not o.injected}


def test_injection_only_adds_lines(manifest: Path) -> None:
    # Line for line, the file as it was is still there: nothing reflowed,
    # requoted or reindented, even in the documents written anew.
    before = manifest.read_text().splitlines()
    after = inject_text(manifest.read_text()).text.splitlines()
    ops = difflib.SequenceMatcher(a=before, b=after, autojunk=False).get_opcodes()
    assert [op for op in ops if op[0] not in ("equal", "insert")] == []


def test_untouched_documents_are_byte_identical(manifest: Path) -> None:
    text = manifest.read_text()
    result = inject_text(text)
    if result.injected:
        # Every document after the last injected one is as it was: here, the
        # empty document after each file's closing `---`.
        tail = text[text.rindex("\n---\n") + 1:] if "\n---\n" in text else ""
        assert result.text.endswith(tail)
    else:
        assert result.text == text


def test_host_network_is_skipped_with_the_reason() -> None:
    need_manifests()
    path = next((p for p in manifest_files() if "hostNetwork" in p.name), None)
    if path is None:
        pytest.skip("no hostNetwork manifest in the shared folder")
    out = inject(str(path))
    assert out.returncode == 0
    assert out.stdout == path.read_text()
    assert out.stderr.splitlines() == [
        'deployment "web" skipped: hostNetwork: true (the pod uses its node\'s network: '
        "its iptables rules would be the node's)"]


def test_udp_ports_are_kept_and_said_to_pass_by_the_proxy() -> None:
    need_manifests()
    path = next((p for p in manifest_files() if "udp" in p.name.lower()), None)
    if path is None:
        pytest.skip("no UDP manifest in the shared folder")
    out = inject(str(path))
    assert out.returncode == 0
    assert out.stderr.splitlines() == [
        'deployment "web" injected; UDP port 9100 not proxied (only TCP is)']
    pod = pod_templates(load_all(out.stdout)[0])[0][1]
    assert container(pod, "web-svc")["ports"][0]["protocol"] == "UDP"
    # The rules only ever redirect TCP, so nothing needs skipping for it.
    assert "--inbound-ports-to-ignore" not in container(pod, "meshtui-init", True)["args"]


def test_list_and_cronjob_reach_their_pods() -> None:
    need_manifests()
    by_name = {p.name: p for p in manifest_files()}
    if not {"emojivoto_list.yaml", "emojivoto_cronjob.yaml"} <= set(by_name):
        pytest.skip("the List and CronJob manifests are not in the shared folder")
    out = inject(str(by_name["emojivoto_list.yaml"]))
    assert out.stderr.splitlines() == ['deployment "web" injected',
                                       'deployment "emoji" injected']
    out = inject(str(by_name["emojivoto_cronjob.yaml"]))
    doc = load_all(out.stdout)[0]
    pod = doc["spec"]["jobTemplate"]["spec"]["template"]
    container(pod, "meshtui-proxy")
    assert pod["metadata"]["labels"]["meshtui.io/proxy-cronjob"] == "hello"
    assert out.stderr.startswith('cronjob "hello" injected; the proxy keeps running')
