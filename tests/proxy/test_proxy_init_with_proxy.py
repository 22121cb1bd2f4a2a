"""A pod as ``meshtui inject`` describes it, run for real in a network
namespace: the init container's command (``meshtui proxy-init`` with the
arguments inject writes), then ``meshtui proxy`` as the proxy's user with the
environment inject writes (its Downward API fields filled in as the kubelet
would). A client in a second namespace and the app's own calls out pass
through the proxy and show in its metrics; after ``--uninstall`` they no
longer do.

Needs root, ``ip``, ``iptables`` and ``setpriv``; skipped with the reason otherwise.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from test_proxy_init_netns import MESHTUI, PEER_IP, POD_IP, Pod, namespaces
from test_transparent_netns import APP, GET  # a tiny app that says who called it

from meshtui.inject.sidecar import InjectConfig, init_container, proxy_container

pytestmark = [pytest.mark.root, pytest.mark.slow]

APP_PORT, OUTSIDE_PORT = 8080, 9090

POD_FIELDS = {"metadata.name": "web-0", "metadata.namespace": "shop",
              "status.podIP": POD_IP, "metadata.labels['app']": "web"}


class Running:
    def __init__(self, p: Pod) -> None:
        self.pod = p
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, ns: str, *argv: str, env: dict[str, str] | None = None) -> None:
        self.procs.append(subprocess.Popen(
            ["ip", "netns", "exec", ns, *argv], stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, env={**os.environ, **(env or {})}))

    def get(self, ns: str, url: str, timeout: float = 15.0) -> str:
        end = time.monotonic() + timeout
        while True:
            out = self.pod.ns_exec(ns, sys.executable, "-c", GET, url)
            if out.returncode == 0:
                return out.stdout.strip()
            if time.monotonic() > end:
                dead = [(p.args, p.returncode) for p in self.procs if p.poll() is not None]
                raise AssertionError(f"GET {url}: {out.stderr.strip()[-300:]}; exited: {dead}")
            time.sleep(0.2)

    def stop(self) -> None:
        for p in self.procs:
            p.kill()
            p.wait(5)
            if p.stderr:
                p.stderr.close()


@pytest.fixture
def running() -> Iterator[Running]:
    setpriv = shutil.which("setpriv")
    with namespaces() as p:
        if setpriv is None:
            pytest.skip("needs `setpriv` (util-linux) to run the proxy as its own user")
        r = Running(p)
        try:
            yield r
        finally:
            r.stop()


def _metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _proxy_env(config: InjectConfig) -> dict[str, str]:
    """The proxy container's environment as the kubelet would give it."""
    env: dict[str, str] = {}
    for e in proxy_container(config, ("label", "app"))["env"]:
        if "value" in e:
            env[e["name"]] = e["value"]
        else:
            env[e["name"]] = POD_FIELDS[e["valueFrom"]["fieldRef"]["fieldPath"]]
    return env


def test_an_injected_pod_sends_its_traffic_through_its_proxy(running: Running) -> None:
    p = running.pod
    config = InjectConfig()
    probe = p.ns_exec(p.pod, "setpriv", f"--reuid={config.proxy_uid}",
                      f"--regid={config.proxy_uid}", "--clear-groups", sys.executable,
                      "-c", "import meshtui.proxy.server")
    if probe.returncode != 0:
        pytest.skip(f"the proxy's user cannot run this Python: {probe.stderr.strip()[-200:]}")

    running.start(p.pod, sys.executable, "-c", APP, "0.0.0.0", "app", str(APP_PORT))
    running.start(p.peer, sys.executable, "-c", APP, PEER_IP, "outside", str(OUTSIDE_PORT))

    # The init container's command, word for word as inject writes it.
    args = [str(a) for a in init_container(config)["args"]]
    done = p.ns_exec(p.pod, MESHTUI, *args)
    assert done.returncode == 0, done.stderr
    running.start(p.pod, "setpriv", f"--reuid={config.proxy_uid}",
                  f"--regid={config.proxy_uid}", "--clear-groups", MESHTUI, "proxy",
                  env=_proxy_env(config))
    # The kubelet's readiness probe, from outside the pod: the admin port is not redirected.
    assert running.get(p.peer, f"http://{POD_IP}:{config.admin_port}/ready") != ""

    for i in range(3):
        got = running.get(p.peer, f"http://{POD_IP}:{APP_PORT}/in/{i}")
        assert got == f"app /in/{i} from 127.0.0.1"  # handed over by the proxy
    got = running.get(p.pod, f"http://{PEER_IP}:{OUTSIDE_PORT}/out")
    assert got == f"outside /out from {POD_IP}"
    # The app reaching itself stays direct (the proxy is not in the way).
    assert running.get(p.pod, f"http://127.0.0.1:{APP_PORT}/self") == \
        "app /self from 127.0.0.1"

    metrics = running.get(p.pod, f"http://127.0.0.1:{config.admin_port}/metrics")
    assert _metric(metrics, "request_total", direction="inbound",
                   authority=f"{POD_IP}:{APP_PORT}", pod="web-0", namespace="shop") == 3
    assert _metric(metrics, "request_total", direction="outbound",
                   authority=f"{PEER_IP}:{OUTSIDE_PORT}") == 1
    assert _metric(metrics, "request_total", direction="outbound",
                   authority=f"127.0.0.1:{APP_PORT}") == 0

    undo = p.ns_exec(p.pod, MESHTUI, "proxy-init", "--uninstall")
    assert undo.returncode == 0, undo.stderr
    assert running.get(p.peer, f"http://{POD_IP}:{APP_PORT}/direct") == \
        f"app /direct from {PEER_IP}"
