"""The demo's Prometheus: a real server, meshed like any other pod, scraping every proxy.

It runs as the deployment ``prometheus`` in the control plane's namespace, as
Linkerd viz's does, and its scrapes leave through its own proxy, so they show up
as that pod's outbound traffic. What it scrapes follows the inventory: the demo
turns every meshed pod into a ``file_sd_configs`` target group and writes the
file again whenever the inventory file changes. The target labels are the ones
Linkerd viz's relabelling gives a proxy's target (``namespace``, ``deployment``
and ``pod`` from the pod, ``control_plane_ns`` from its control-plane label) and
the job keeps viz's name, so queries written for viz's Prometheus read this one.

Everything here is importable without starting anything: the constants, the
files' contents and the process's arguments.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meshtui.model.inventory import Address, Inventory

#: Where ``meshtui demo`` serves Prometheus's API unless told otherwise. Not
#: 9090: Debian's ``prometheus`` package starts a system Prometheus there.
DEFAULT_LISTEN = Address("127.0.0.1", 9096)
#: The namespace and deployment of the demo's Prometheus pod.
NAMESPACE = "meshtui"
DEPLOYMENT = "prometheus"
#: Linkerd viz's job for the proxies' targets.
JOB = "linkerd-proxy"
#: Linkerd viz's scrape interval, kept although the controller scrapes every
#: second: viz's latency query takes irate() over its window, that is the last
#: two samples, so its p99 means over 10 s here what it means in viz. The price
#: is a wait at start: Prometheus hands new targets to its scrapers every 5 s,
#: and increase() needs two scrapes, so per-deployment figures come 22-25 s
#: after the demo starts (measured), once per demo.
SCRAPE_INTERVAL = "10s"
#: What Linkerd viz keeps.
RETENTION = "6h"
#: How to get the program, in the one line the demo says when it is missing.
HOW_TO_GET = "apt-get install prometheus, or make tools"


@dataclass(frozen=True)
class PrometheusSpec:
    """What the plan needs to run Prometheus: the program and where clients reach it."""

    binary: str
    listen: Address
    interval: str = SCRAPE_INTERVAL  # how often it scrapes every proxy


def find_binary() -> str | None:
    """The ``prometheus`` program on PATH, or None."""
    return shutil.which("prometheus")


def target_groups(inventory: Inventory, control_plane_ns: str = NAMESPACE
                  ) -> list[dict[str, Any]]:
    """One file_sd target group per meshed pod: its proxy's /metrics address and labels.

    Pods without a proxy admin port are left out, as viz keeps only targets on
    the proxy container's admin port.
    """
    groups = []
    for pod in inventory.pods:
        if pod.admin is None:
            continue
        groups.append({"targets": [str(pod.admin)], "labels": {
            "namespace": pod.namespace, "deployment": pod.deployment, "pod": pod.name,
            "control_plane_ns": control_plane_ns}})
    return groups


def write_atomically(path: Path, text: str) -> None:
    """Replaces ``path`` in one rename, so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_targets(path: Path, inventory: Inventory) -> None:
    write_atomically(path, json.dumps(target_groups(inventory), indent=2))


def config(targets: Path, proxy_url: str | None, interval: str = SCRAPE_INTERVAL
           ) -> dict[str, Any]:
    """The server's configuration.

    Args:
        targets: the file_sd file.
        proxy_url: the pod's proxy for outgoing scrapes (explicit interception);
            None where iptables sends them through it anyway.
    """
    job: dict[str, Any] = {
        "job_name": JOB,
        "file_sd_configs": [{"files": [str(targets)]}],
        # The proxies label their own series with namespace, deployment and pod
        # too. The target's labels win, as in viz where only the target has
        # them, and the copies Prometheus keeps as exported_* are dropped.
        "metric_relabel_configs": [
            {"action": "labeldrop", "regex": "exported_(namespace|deployment|pod)"}],
    }
    if proxy_url is not None:
        job["proxy_url"] = proxy_url
    return {
        "global": {"scrape_interval": interval, "scrape_timeout": interval,
                   "evaluation_interval": interval},
        "scrape_configs": [job],
    }


def prepare(state_dir: Path, inventory: Inventory, binary: str, listen: str,
            proxy_url: str | None, interval: str = SCRAPE_INTERVAL) -> list[str]:
    """Writes the configuration and the first targets into ``state_dir/prometheus``
    and returns the server's command line (listening on ``listen``)."""
    home = state_dir / "prometheus"
    home.mkdir(exist_ok=True)
    write_targets(targets_path(state_dir), inventory)
    conf = home / "prometheus.yml"
    # JSON is YAML: no YAML writer is needed for a file nobody edits.
    conf.write_text(json.dumps(config(targets_path(state_dir), proxy_url, interval),
                               indent=2))
    return [binary, f"--config.file={conf}", f"--storage.tsdb.path={home / 'data'}",
            f"--storage.tsdb.retention.time={RETENTION}", f"--web.listen-address={listen}"]


def targets_path(state_dir: Path) -> Path:
    return state_dir / "prometheus" / "targets.json"


class TargetsSync:
    """Writes the targets again whenever the inventory file changes: pods came or went.

    Call :meth:`check` every so often (the demo does, as it tends its processes);
    Prometheus notices the renamed file by itself.
    """

    def __init__(self, inventory_path: Path, targets: Path) -> None:
        from meshtui.inventory_watch import InventoryWatcher

        self.targets = targets
        self._watch = InventoryWatcher(inventory_path, on_change=self._write)

    def _write(self, inventory: Inventory) -> None:
        write_targets(self.targets, inventory)

    def check(self) -> bool:
        """Rewrites the targets if the inventory changed; returns whether it did."""
        return self._watch.check()
