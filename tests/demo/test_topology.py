"""The demo's plan: every namespace, deployment and pod the issue names, on distinct ports."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from meshtui.demo import prometheus as prom
from meshtui.demo import run
from meshtui.demo.topology import plan_explicit
from meshtui.model.inventory import Address, Inventory


def test_plan_has_the_demo_namespaces_and_deployments(tmp_path: Path) -> None:
    plan = plan_explicit(Address("127.0.0.1", 18086), tmp_path, scale=2, seed=1)
    inv = plan.inventory
    assert inv.namespaces() == ["default", "emojivoto", "kube-system", "meshtui"]
    deploys = {(p.namespace, p.deployment) for p in inv.pods}
    assert deploys == {
        ("emojivoto", "web"), ("emojivoto", "emoji"), ("emojivoto", "voting"),
        ("emojivoto", "vote-bot"), ("kube-system", "kube-dns"), ("meshtui", "controller"),
        ("default", "legacy-app"),
    }
    assert sum(p.deployment == "web" for p in inv.pods) == 2
    unmeshed = [p for p in inv.pods if not p.meshed]
    assert [p.deployment for p in unmeshed] == ["legacy-app"]
    # clients reach the controller through its proxy's inbound port
    ctl = next(p for p in inv.pods if p.deployment == "controller")
    assert ctl.inbound == Address("127.0.0.1", 18086)


def test_every_listener_has_its_own_port(tmp_path: Path) -> None:
    plan = plan_explicit(Address("127.0.0.1", 18086), tmp_path, seed=2)
    used = []
    for p in plan.inventory.pods:
        used += [a for a in (p.address, p.proxy, p.inbound, p.admin) if a is not None]
    assert len(used) == len(set(used))


def test_inventory_file_is_what_the_controller_and_proxies_read(tmp_path: Path) -> None:
    plan = plan_explicit(Address("127.0.0.1", 18086), tmp_path, seed=3)
    again = Inventory.from_data(json.loads((tmp_path / "inventory.json").read_text()))
    assert again == plan.inventory
    svc = again.service("emoji-svc.emojivoto.svc.cluster.local", 8080)
    assert svc is not None and svc.endpoints
    assert again.resolve(svc.endpoints[0].host, svc.endpoints[0].port).deployment == "emoji"
    dns_proc = next(p for p in plan.processes if p.argv[-1] == "kube-dns")
    records = json.loads(dns_proc.env["MESHTUI_DEMO_DNS_RECORDS"])
    assert "web-svc.emojivoto.svc.cluster.local" in records


def test_the_plan_has_a_meshed_prometheus_pod_when_asked(tmp_path: Path) -> None:
    spec = prom.PrometheusSpec("/usr/bin/prometheus", Address("127.0.0.1", 19096))
    plan = plan_explicit(Address("127.0.0.1", 18086), tmp_path, seed=1, prometheus=spec)
    assert plan.prometheus == spec.listen
    pod = next(p for p in plan.inventory.pods if p.deployment == "prometheus")
    assert pod.namespace == "meshtui" and pod.meshed
    assert pod.inbound == spec.listen  # clients reach it through its proxy
    app = next(s for s in plan.processes if s.pod == pod.name and s.role == "app")
    assert app.argv[0] == spec.binary
    assert "--storage.tsdb.retention.time=6h" in app.argv
    assert f"--storage.tsdb.path={tmp_path / 'prometheus' / 'data'}" in app.argv
    conf = json.loads((tmp_path / "prometheus" / "prometheus.yml").read_text())
    # Its scrapes leave through its own proxy, as the other apps' calls do.
    assert conf["scrape_configs"][0]["proxy_url"] == app.env["HTTP_PROXY"]
    targets = json.loads(prom.targets_path(tmp_path).read_text())
    assert sorted(t["labels"]["pod"] for t in targets) == sorted(
        p.name for p in plan.inventory.pods if p.meshed)


def test_without_prometheus_the_plan_has_none(tmp_path: Path) -> None:
    plan = plan_explicit(Address("127.0.0.1", 18086), tmp_path, seed=1)
    assert plan.prometheus is None
    assert "prometheus" not in {p.deployment for p in plan.inventory.pods}
    assert not (tmp_path / "prometheus").exists()


def test_a_missing_program_or_a_busy_port_is_one_line_and_no_prometheus(monkeypatch) -> None:
    said: list[str] = []
    monkeypatch.setattr(prom, "find_binary", lambda: None)
    assert run._prometheus(Address("127.0.0.1", 19096), said.append) is None
    assert len(said) == 1 and "apt-get install prometheus" in said[0] and "make tools" in said[0]
    monkeypatch.setattr(prom, "find_binary", lambda: "/usr/bin/prometheus")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        addr = Address("127.0.0.1", busy.getsockname()[1])
        assert run._prometheus(addr, said.append) is None
    assert len(said) == 2 and str(addr) in said[1] and "--prometheus-listen" in said[1]
    assert run._prometheus(None, said.append) is None and len(said) == 2


def test_each_process_starts_after_the_proxies_and_peers_it_calls(tmp_path: Path) -> None:
    plan = plan_explicit(Address("127.0.0.1", 18086), tmp_path, seed=4)
    deploy = {p.name: p.deployment for p in plan.inventory.pods}

    def stage(d: str, role: str = "app") -> int:
        return next(s.stage for s in plan.processes
                    if deploy.get(s.pod) == d and s.role == role)

    proxies = {s.stage for s in plan.processes if s.role == "proxy"}
    assert proxies == {0} and stage("controller") == 0  # certificates come from it
    apps = [s for s in plan.processes if s.role == "app" and deploy[s.pod] != "controller"]
    assert min(s.stage for s in apps) > 0
    # kube-dns before those that resolve names, web's peers before the bot calls web
    assert stage("kube-dns") < stage("emoji") == stage("voting") == stage("web")
    assert stage("web") < stage("vote-bot")
    # a stage is waited for only where a process says when it is ready
    for s in apps:
        if deploy[s.pod] in ("web", "emoji", "voting", "kube-dns"):
            assert s.ready_tcp is not None


def test_the_demo_writes_the_pods_tokens_again_before_they_expire(tmp_path: Path) -> None:
    import time

    from meshtui.identity.authority import Authority, Refused
    from meshtui.identity.names import TOKEN_LIFETIME_S

    plan = plan_explicit(Address("127.0.0.1", 18086), tmp_path, seed=1)
    assert plan.tokens is not None and len(plan.tokens.files) == 6
    (ns, pod), path = next(iter(plan.tokens.files.items()))
    auth = Authority.in_state_dir(tmp_path / "controller")
    first = path.read_text()
    auth.check_token(first, ns, pod)
    start = time.time()
    plan.tokens.refresh(start + 60)  # too soon: kept
    assert path.read_text() == first
    half = start + TOKEN_LIFETIME_S / 2 + 1
    plan.tokens.refresh(half)
    later = start + TOKEN_LIFETIME_S + 60  # past the first token's end
    with pytest.raises(Refused, match="expired"):
        auth.check_token(first, ns, pod, now=later)
    auth.check_token(path.read_text(), ns, pod, now=later)
