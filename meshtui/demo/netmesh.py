"""The demo with iptables interception: every pod in a network namespace of its own.

The way Conduit built it: each pod gets its own namespace and IP on a bridge
(``netns.py``), ``meshtui proxy-init`` installs the NAT rules there before the
pod's processes start, and the apps know nothing of the mesh — they resolve
service names with kube-dns and connect to pod IPs; iptables hands those
connections to the proxies, which find the real destination with
SO_ORIGINAL_DST. The proxy's own connections carry a socket mark the rules
let through. Clients on the host reach the controller through a port-forward
at the usual address.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

from meshtui.demo import prometheus as prom
from meshtui.demo.netns import PodNetwork
from meshtui.demo.topology import (
    EMOJIVOTO,
    SERVES,
    Plan,
    PodTokens,
    ProcessSpec,
    app_stage,
    pod_name,
)
from meshtui.errors import RuntimeFailure
from meshtui.identity.authority import ANCHOR_CRT, Authority
from meshtui.identity.credential import path_for
from meshtui.model.inventory import Address, Inventory, Pod, Service

MARK = "0x4d54"  # "MT": the proxies' own connections, passed by proxy-init's rules
INBOUND, OUTBOUND, TAP, ADMIN = 4143, 4140, 4190, 4191
# The controller's identity service (Certify, over TLS of its own). Every pod's rules
# let connections to it through untouched both ways: a proxy asks for its first
# certificate before its own listeners are up (its gRPC client's connections carry no
# mark), and has no certificate yet for the controller pod's proxy to check.
IDENTITY = 8087
# The port each app listens on in its own namespace: its Service's port.
APP_PORTS = {"web": 80, "emoji": 8080, "voting": 8080, "vote-bot": 8080, "kube-dns": 53,
             "controller": 8086, "legacy-app": 80, "prometheus": 9090}
SERVICES = {"web-svc": "web", "emoji-svc": "emoji", "voting-svc": "voting"}


def _py(*args: str) -> list[str]:
    return [sys.executable, *args]


def plan_iptables(net: PodNetwork, server: Address, state_dir: Path, scale: int = 1,
                  rps: float = 20.0, seed: int | None = None,
                  prometheus: prom.PrometheusSpec | None = None) -> Plan:
    """Creates a namespace per pod, installs proxy-init's rules in each meshed one,
    and returns the processes to start (each inside its pod's namespace).

    With ``prometheus``, a Prometheus pod too, port-forwarded to ``prometheus.listen``.
    """
    rng = random.Random(seed)
    inventory_path = state_dir / "inventory.json"
    report = state_dir / "vote-bot.json"
    pods: list[Pod] = []
    procs: list[ProcessSpec] = []
    dns_ip = ""
    # Identity is on, as in explicit mode: the anchor and issuer are made now, so that
    # each proxy can be handed its pod's token before anything starts.
    ctl_state = state_dir / "controller"
    tokens = PodTokens(Authority.in_state_dir(ctl_state))
    anchor = str(ctl_state / "identity" / ANCHOR_CRT)

    def add(ns: str, deploy: str, app: str, env: dict[str, str], meshed: bool = True) -> Pod:
        name = pod_name(deploy, rng)
        netns, ip = net.add_pod(f"{deploy}-{len(pods)}")
        port = APP_PORTS[deploy]
        pod = Pod(name=name, namespace=ns, deployment=deploy, address=Address(ip, port),
                  proxy=Address(ip, TAP) if meshed else None,
                  inbound=Address(ip, INBOUND) if meshed else None,
                  admin=Address(ip, ADMIN) if meshed else None)
        pods.append(pod)
        enter = PodNetwork.exec_prefix(netns)
        if meshed:
            _proxy_init(netns, skip_in=(IDENTITY,) if app == "controller" else ())
            token = state_dir / "identity-tokens" / name
            tokens.add(ns, name, token)
            procs.append(ProcessSpec(name, "proxy", [*enter, *_py(
                "-m", "meshtui", "proxy", "--inbound", f"0.0.0.0:{INBOUND}",
                "--outbound", f"127.0.0.1:{OUTBOUND}", "--tap", f"0.0.0.0:{TAP}",
                "--admin", f"0.0.0.0:{ADMIN}", "--pod", name, "--namespace", ns,
                "--deployment", deploy, "--pod-ip", ip, "--mark", MARK,
                "--inventory", str(inventory_path))], {
                    "MESHTUI_IDENTITY_TOKEN_FILE": str(token),
                    "MESHTUI_IDENTITY_TRUST_ANCHOR": anchor},
                ready_http=pod.admin))
        argv = ([*enter, *_py("-m", "meshtui", "controller", "--listen", f"0.0.0.0:{port}",
                              "--inventory", str(inventory_path), "--credential-file",
                              str(path_for(str(server))), "--state-dir", str(ctl_state),
                              "--identity-listen", f"0.0.0.0:{IDENTITY}")]
                if app == "controller"
                else [*enter, *_py("-m", "meshtui.demo.apps", app)])
        procs.append(ProcessSpec(name, "app", argv, {"MESHTUI_APP_LISTEN": f"0.0.0.0:{port}",
                                                     **env},
                                 # Asked inside the pod: from the host, the pod's port is
                                 # its proxy's (loopback passes the pod's rules).
                                 ready_cmd=[*enter, "bash", "-c",
                                            f"exec 3<>/dev/tcp/127.0.0.1/{port}"]
                                 if deploy in SERVES else None,
                                 stage=0 if app == "controller" else app_stage(deploy)))
        return pod

    dns = add("kube-system", "kube-dns", "kube-dns", {})
    assert dns.address is not None
    dns_ip = dns.address.host
    names = [f"{s}.emojivoto.svc.cluster.local" for s in SERVICES]
    app_env = {"MESHTUI_DEMO_DNS": f"{dns_ip}:53", "MESHTUI_DEMO_DNS_TCP": f"{dns_ip}:53",
               "MESHTUI_DEMO_DNS_NAMES": json.dumps(names)}
    for deploy in EMOJIVOTO:
        for i in range(scale):
            env = dict(app_env)
            if deploy == "vote-bot":
                env.update({"MESHTUI_DEMO_RPS": str(rps),
                            "MESHTUI_DEMO_REPORT": str(report if i == 0 else
                                                       report.with_name(f"vote-bot-{i}.json")),
                            "MESHTUI_DEMO_EXTRA_URLS": "http://kube-dns.kube-system:53/health"})
            add("emojivoto", deploy, deploy, env)
    ctl = add("meshtui", "controller", "controller", {})
    prom_pod = prom_app = None
    if prometheus is not None:
        prom_pod = add(prom.NAMESPACE, prom.DEPLOYMENT, "prometheus", {})
        prom_app = procs[-1]
    legacy = add("default", "legacy-app", "idle", {}, meshed=False)
    assert ctl.address is not None and legacy.address is not None
    procs[-1].ready_tcp = legacy.address
    # Clients on the host reach the controller's pod at the usual address.
    procs.append(ProcessSpec("port-forward", "app", _py(
        "-m", "meshtui.demo.forward", str(server), str(ctl.address)), ready_tcp=server))
    if prometheus is not None and prom_pod is not None:
        procs.append(ProcessSpec("port-forward-prometheus", "app", _py(
            "-m", "meshtui.demo.forward", str(prometheus.listen), str(prom_pod.address)),
            ready_tcp=prometheus.listen))

    def endpoints(deploy: str) -> tuple[Address, ...]:
        return tuple(p.address for p in pods if p.deployment == deploy and p.address)

    services = [Service(s, "emojivoto", APP_PORTS[d], endpoints(d)) for s, d in SERVICES.items()]
    services.append(Service("kube-dns", "kube-system", 53, endpoints("kube-dns")))
    records: dict[str, list[str]] = {}
    for svc in services:
        for name in (svc.fqdn, f"{svc.name}.{svc.namespace}"):
            records[name] = [a.host for a in svc.endpoints]
    for proc in procs:
        if proc.argv[-1] == "kube-dns":
            proc.env["MESHTUI_DEMO_DNS_RECORDS"] = json.dumps(records)
    inventory = Inventory(tuple(pods), tuple(services))
    inventory_path.write_text(json.dumps(inventory.to_data(), indent=2))
    for proc in procs:
        if proc.role == "proxy":  # every meshed pod's certificate comes from the controller
            proc.argv += ["--identity", f"{ctl.address.host}:{IDENTITY}"]
    if prometheus is not None and prom_pod is not None and prom_app is not None:
        # The same way into the pod's namespace, then the server. iptables hands
        # its scrapes to its proxy: no proxy_url.
        enter = prom_app.argv[:prom_app.argv.index(sys.executable)]
        prom_app.argv = [*enter, *prom.prepare(
            state_dir, inventory, prometheus.binary, f"0.0.0.0:{APP_PORTS['prometheus']}",
            None, prometheus.interval)]
        prom_app.ready_http, prom_app.ready_path = prom_pod.address, "/-/ready"
    return Plan(inventory, procs, server, report,
                prometheus.listen if prometheus is not None else None, tokens)


def _proxy_init(netns: str, skip_in: tuple[int, ...] = ()) -> None:
    ignore = ["--outbound-ports-to-ignore", str(IDENTITY)]
    if skip_in:
        ignore += ["--inbound-ports-to-ignore", ",".join(map(str, skip_in))]
    out = subprocess.run(_py("-m", "meshtui", "proxy-init", "--netns", netns, "--proxy-uid",
                             "none", "--proxy-mark", MARK, *ignore),
                         capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise RuntimeFailure(f"demo: proxy-init in {netns} failed: "
                             f"{(out.stderr or out.stdout).strip().splitlines()[-1:]}")
