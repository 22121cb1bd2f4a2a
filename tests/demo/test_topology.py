"""The demo's plan: every namespace, deployment and pod the issue names, on distinct ports."""

from __future__ import annotations

import json
from pathlib import Path

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
