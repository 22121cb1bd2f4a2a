"""A pod as ``meshtui inject`` writes it, run for real in a network namespace:
a small Pod manifest goes through ``meshtui inject``; its init container's
command (``meshtui proxy-init`` with the arguments inject wrote) runs first,
then ``meshtui proxy`` as the user and with the environment inject wrote (the
Downward API fields filled in as the kubelet would). A client in a second
namespace and the app's own call out pass through the proxy and show in its
metrics; after ``--uninstall`` they no longer do.

Needs root, ``ip``, ``iptables`` and ``setpriv``; skipped with the reason otherwise.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from ruamel.yaml import YAML
from test_proxy_init_netns import MESHTUI, PEER_IP, POD_IP, namespaces
from test_transparent_netns import APP_PORT, OUTSIDE_PORT, Running, metric, requests

pytestmark = [pytest.mark.root, pytest.mark.slow]

MANIFEST = f"""\
apiVersion: v1
kind: Pod
metadata: {{name: web-0, namespace: shop, labels: {{app: web}}}}
spec:
  containers:
  - {{name: web, image: "web:1", ports: [{{containerPort: {APP_PORT}}}]}}
"""
# What the kubelet puts in the Downward API fields of this pod.
POD_FIELDS = {"metadata.name": "web-0", "metadata.namespace": "shop",
              "status.podIP": POD_IP, "metadata.labels['app']": "web"}


@dataclass
class Injected:
    """What the kubelet would take from the injected manifest."""

    init_argv: list[str]
    proxy_argv: list[str]
    proxy_uid: int
    proxy_env: dict[str, str]


def inject() -> Injected:
    out = subprocess.run([MESHTUI, "inject", "-"], input=MANIFEST, capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    spec = YAML(typ="safe").load(out.stdout)["spec"]
    (init,) = [c for c in spec["initContainers"] if "proxy-init" in c.get("args", [])]
    (proxy,) = [c for c in spec["containers"] if c.get("args", [])[:1] == ["proxy"]]
    env = {e["name"]: e["value"] if "value" in e
           else POD_FIELDS[e["valueFrom"]["fieldRef"]["fieldPath"]] for e in proxy["env"]}
    return Injected([str(a) for a in init["args"]], [str(a) for a in proxy["args"]],
                    int(proxy["securityContext"]["runAsUser"]), env)


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


def test_an_injected_pod_sends_its_traffic_through_its_proxy(running: Running) -> None:
    p = running.pod
    pod = inject()
    admin_port = int(pod.proxy_env["MESHTUI_ADMIN_ADDR"].rsplit(":", 1)[1])
    as_proxy = ("setpriv", f"--reuid={pod.proxy_uid}", f"--regid={pod.proxy_uid}",
                "--clear-groups")
    probe = p.ns_exec(p.pod, *as_proxy, sys.executable, "-c", "import meshtui.proxy.server")
    if probe.returncode != 0:
        pytest.skip(f"the proxy's user cannot run this Python: {probe.stderr.strip()[-200:]}")

    running.app(p.pod, "0.0.0.0", "app", APP_PORT)
    running.app(p.peer, PEER_IP, "outside", OUTSIDE_PORT)

    # The init container's command, word for word as inject wrote it.
    done = p.ns_exec(p.pod, MESHTUI, *pod.init_argv)
    assert done.returncode == 0, done.stderr
    # The proxy as its own user: no capability, no mark; the rules know it by its UID.
    running.start(p.pod, *as_proxy, MESHTUI, *pod.proxy_argv, env=pod.proxy_env)
    # The kubelet's readiness probe, from outside the pod: the admin port is not redirected.
    assert running.get(p.peer, f"http://{POD_IP}:{admin_port}/ready") != [""]

    sent = 3
    urls = [f"http://{POD_IP}:{APP_PORT}/in/{i}" for i in range(sent)]
    call = f"http://{POD_IP}:{APP_PORT}/call/{PEER_IP}:{OUTSIDE_PORT}/out"
    assert running.get(p.peer, *urls, call) == [
        f"app /in/{i} from 127.0.0.1" for i in range(sent)] + [f"outside /out from {POD_IP}"]
    # The app reaching itself stays direct (the proxy is not in the way).
    assert running.get(p.pod, f"http://127.0.0.1:{APP_PORT}/self") == [
        "app /self from 127.0.0.1"]

    metrics = running.metrics(admin_port)
    assert requests(metrics) == (sent + 1, 1)
    assert metric(metrics, "request_total", direction="inbound", pod="web-0",
                  namespace="shop") == sent + 1
    assert metric(metrics, "request_total", direction="outbound",
                  authority=f"127.0.0.1:{APP_PORT}") == 0

    undo = p.ns_exec(p.pod, MESHTUI, "proxy-init", "--uninstall")
    assert undo.returncode == 0, undo.stderr
    assert running.get(p.peer, *urls, call) == [
        f"app /in/{i} from {PEER_IP}" for i in range(sent)] + [f"outside /out from {POD_IP}"]
    assert requests(running.metrics(admin_port)) == (sent + 1, 1)
    running.alive()
