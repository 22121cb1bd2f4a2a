"""What the demo mesh consists of: pods, their processes, ports and the inventory.

Planning is separate from running (``supervisor.py``) so the plan can be read
and tested without starting anything. Explicit interception: every pod's
processes listen on their own loopback ports; apps call services by name
through ``HTTP_PROXY`` (their proxy's outbound port) and the proxies route by
the inventory's services to the peer pod's inbound port (web's gRPC channels
likewise dial the outbound port and name the service as their authority).
"""

from __future__ import annotations

import json
import random
import socket
import string
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from meshtui.demo import prometheus as prom
from meshtui.identity import credential
from meshtui.identity.authority import ANCHOR_CRT, Authority
from meshtui.identity.certs import write_private
from meshtui.identity.names import TOKEN_LIFETIME_S
from meshtui.model.inventory import Address, Inventory, Pod, Service

EMOJIVOTO = ("web", "emoji", "voting", "vote-bot")
SERVICE_PORTS = {"web": 80, "emoji": 8080, "voting": 8080}
DNS_PORT = 53


@dataclass
class ProcessSpec:
    """One process of a pod."""

    pod: str
    role: str  # "app" or "proxy"
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    ready_http: Address | None = None  # GET ready_path here answers 200 once it is up
    ready_path: str = "/ready"
    ready_tcp: Address | None = None  # or: this port accepts connections
    ready_cmd: list[str] | None = None  # or: this command succeeds (a check inside a netns)
    # Started once every process of a lower stage is ready, as a pod's app waits for
    # its proxy and a Service lists only ready pods: a caller never meets a peer
    # whose proxy or app is still starting (the first calls would fail).
    stage: int = 0

    @property
    def label(self) -> str:
        return f"{self.pod} ({self.role})"


# Proxies and the controller are stage 0; apps by what they call (kube-dns first,
# then emojivoto's servers, then the bot that drives them).
APP_STAGES = {"kube-dns": 1, "emoji": 2, "voting": 2, "web": 2, "vote-bot": 3}
SERVES = frozenset({"kube-dns", "emoji", "voting", "web"})  # apps a ready_tcp can wait for


def app_stage(deploy: str) -> int:
    return APP_STAGES.get(deploy, 1)


@dataclass
class Plan:
    inventory: Inventory
    processes: list[ProcessSpec]
    server: Address  # where clients reach the controller
    report_path: Path  # vote-bot's account of what it sent
    prometheus: Address | None = None  # where clients reach the demo's Prometheus, if it runs
    tokens: PodTokens | None = None  # the meshed pods' identity tokens, kept current

    @property
    def state_dir(self) -> Path:
        return self.report_path.parent

    @property
    def prometheus_url(self) -> str | None:
        """The demo's Prometheus as a query client names it, if it runs."""
        return f"http://{self.prometheus}" if self.prometheus is not None else None


class PodTokens:
    """Each meshed pod's identity token file, written again once half a token's life
    has passed, as the kubelet refreshes a projected service-account token: a proxy
    reads it at each renewal, and always finds one good for half a day or more."""

    def __init__(self, authority: Authority) -> None:
        self.authority = authority
        self.files: dict[tuple[str, str], Path] = {}
        self._written = time.time()

    def add(self, namespace: str, pod: str, path: Path) -> None:
        self.files[(namespace, pod)] = path
        write_private(path, authority_token(self.authority, namespace, pod))

    def refresh(self, now: float) -> None:
        if now - self._written < TOKEN_LIFETIME_S / 2:
            return
        for (ns, pod), path in self.files.items():
            write_private(path, authority_token(self.authority, ns, pod, now))
        self._written = now


def authority_token(authority: Authority, namespace: str, pod: str,
                    now: float | None = None) -> bytes:
    return authority.pod_token(namespace, pod, now=now).encode()


class PortAllocator:
    """Hands out free loopback ports (asked of the kernel, then released)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self._given: set[tuple[str, int]] = set()

    def take(self, host: str | None = None) -> Address:
        host = host or self.host
        for _ in range(100):
            with socket.socket() as s:
                s.bind((host, 0))
                port = s.getsockname()[1]
            if (host, port) not in self._given:
                self._given.add((host, port))
                return Address(host, port)
        raise OSError("no free port")  # pragma: no cover


def pod_ip(index: int) -> str:
    """Every pod of the explicit-mode demo has a loopback address of its own
    (127.0.1.1, 127.0.1.2, ...), as it would have a pod IP: a peer's proxy then
    knows who calls it, and `tap` can name the source."""
    return f"127.0.{1 + index // 250}.{1 + index % 250}"


def pod_name(deployment: str, rng: random.Random) -> str:
    """A name shaped like a ReplicaSet's pod: ``web-5f7d8b9c4-x2k9p``."""
    alnum = "bcdfghjklmnpqrstvwxz2456789"
    rs = "".join(rng.choice(string.hexdigits.lower()) for _ in range(9))
    return f"{deployment}-{rs}-{''.join(rng.choice(alnum) for _ in range(5))}"


def _meshtui(*args: str) -> list[str]:
    return [sys.executable, "-m", "meshtui", *args]


def _app(name: str) -> list[str]:
    return [sys.executable, "-m", "meshtui.demo.apps", name]


def plan_explicit(server: Address, state_dir: Path, scale: int = 1, rps: float = 20.0,
                  seed: int | None = None, prometheus: prom.PrometheusSpec | None = None
                  ) -> Plan:
    """The demo with explicit interception, every process on 127.0.0.1.

    With ``prometheus``, a Prometheus pod too, its proxy's inbound port at
    ``prometheus.listen`` as the controller's is at ``server``.
    """
    rng = random.Random(seed)
    ports = PortAllocator()
    inventory_path = state_dir / "inventory.json"
    # Identity is on: the controller's anchor and issuer are made now, so that each
    # proxy can be handed its pod's token before anything starts.
    ctl_state = state_dir / "controller"
    authority = Authority.in_state_dir(ctl_state)
    tokens = PodTokens(authority)
    report = state_dir / "vote-bot.json"
    pods: list[Pod] = []
    procs: list[ProcessSpec] = []

    def meshed_pod(ns: str, deploy: str, app_argv: list[str], app_env: dict[str, str],
                   inbound: Address | None = None) -> Pod:
        name = pod_name(deploy, rng)
        ip = pod_ip(len(pods))
        app = ports.take(ip)
        pod = Pod(name=name, namespace=ns, deployment=deploy, address=app,
                  proxy=ports.take(ip), inbound=inbound or ports.take(ip), admin=ports.take(ip))
        outbound = ports.take(ip)
        assert pod.proxy and pod.inbound and pod.admin
        token = state_dir / "identity-tokens" / name
        tokens.add(ns, name, token)
        procs.append(ProcessSpec(name, "proxy", _meshtui(
            "proxy", "--inbound", str(pod.inbound), "--outbound", str(outbound),
            "--app", str(app), "--tap", str(pod.proxy), "--admin", str(pod.admin),
            "--pod", name, "--namespace", ns, "--deployment", deploy, "--pod-ip", ip,
            "--inventory", str(inventory_path)), {
                "MESHTUI_IDENTITY_TOKEN_FILE": str(token),
                # The anchor out of band, as a cluster's would be mounted into each pod.
                "MESHTUI_IDENTITY_TRUST_ANCHOR": str(ctl_state / "identity" / ANCHOR_CRT)},
            ready_http=pod.admin))
        procs.append(ProcessSpec(name, "app", app_argv, {
            "MESHTUI_APP_LISTEN": str(app), "HTTP_PROXY": f"http://{outbound}", **app_env},
            ready_tcp=app if deploy in SERVES else None, stage=app_stage(deploy)))
        pods.append(pod)
        return pod

    dns_pod = meshed_pod("kube-system", "kube-dns", _app("kube-dns"), {})
    assert dns_pod.inbound is not None
    dns_names = [f"{d}-svc.emojivoto.svc.cluster.local" for d in SERVICE_PORTS]
    dns_env = {"MESHTUI_DEMO_DNS_TCP": str(dns_pod.inbound),
               "MESHTUI_DEMO_DNS_NAMES": json.dumps(dns_names)}
    # Each replica set of emojivoto gets `scale` pods.
    for deploy in EMOJIVOTO:
        for i in range(scale):
            env = dict(dns_env)
            if deploy == "vote-bot":
                env.update({"MESHTUI_DEMO_RPS": str(rps), "MESHTUI_DEMO_REPORT": str(report),
                            "MESHTUI_DEMO_EXTRA_URLS": "http://kube-dns.kube-system:53/health"})
                if scale > 1:  # one report per bot
                    env["MESHTUI_DEMO_REPORT"] = str(report.with_name(f"vote-bot-{i}.json"))
            if deploy == "web":
                # Its proxy sends each gRPC connection to one replica: as many
                # connections as replicas spread the calls.
                env["MESHTUI_DEMO_CHANNELS"] = str(scale)
            meshed_pod("emojivoto", deploy, _app(deploy), env)

    # The controller, behind its own proxy: clients reach it through the
    # proxy's inbound port, and it reaches the other proxies through the
    # outbound one, so the mesh's own control traffic shows up both ways.
    ctl = meshed_pod("meshtui", "controller", [], {}, inbound=server)
    assert ctl.address is not None
    outbound = procs[-1].env["HTTP_PROXY"].split("://", 1)[-1]
    # Where the proxies ask for certificates: the controller's TLS port, straight.
    identity = ports.take(ctl.address.host)
    procs[-1].argv = _meshtui("controller", "--listen", str(ctl.address),
                              "--inventory", str(inventory_path), "--via", outbound,
                              "--state-dir", str(ctl_state), "--identity-listen", str(identity),
                              "--credential-file", str(credential.path_for(str(server))))
    procs[-1].ready_tcp = ctl.address
    procs[-1].stage = 0  # the proxies' certificates come from it

    prom_pod = None
    if prometheus is not None:
        prom_pod = meshed_pod(prom.NAMESPACE, prom.DEPLOYMENT, [prometheus.binary], {},
                              inbound=prometheus.listen)
        assert prom_pod.address is not None
        prom_app = procs[-1]

    # One pod with no proxy, so the overview has something not meshed.
    legacy = Pod(name=pod_name("legacy-app", rng), namespace="default",
                 deployment="legacy-app", address=ports.take(pod_ip(len(pods))))
    pods.append(legacy)
    procs.append(ProcessSpec(legacy.name, "app", _app("idle"),
                             {"MESHTUI_APP_LISTEN": str(legacy.address)},
                             ready_tcp=legacy.address, stage=app_stage("legacy-app")))

    def endpoints(deploy: str) -> tuple[Address, ...]:
        return tuple(p.address for p in pods if p.deployment == deploy and p.address)

    services = [Service(f"{d}-svc", "emojivoto", port, endpoints(d))
                for d, port in SERVICE_PORTS.items()]
    services.append(Service("kube-dns", "kube-system", DNS_PORT, endpoints("kube-dns")))
    inventory = Inventory(tuple(pods), tuple(services))
    dns_records = {}
    for svc in services:
        if svc.endpoints:
            for name in (svc.fqdn, f"{svc.name}.{svc.namespace}"):
                dns_records[name] = svc.endpoints[0].host
    for proc in procs:
        if proc.argv[-1] == "kube-dns":
            proc.env["MESHTUI_DEMO_DNS_RECORDS"] = json.dumps(dns_records)
    for proc in procs:
        if proc.role == "proxy":  # every meshed pod's certificate comes from the controller
            proc.argv += ["--identity", str(identity)]
    inventory_path.write_text(json.dumps(inventory.to_data(), indent=2))
    if prom_pod is not None and prometheus is not None:
        # Prometheus reads no HTTP_PROXY: its scrape configuration names the
        # same outbound port the other apps are given.
        prom_app.argv = prom.prepare(state_dir, inventory, prometheus.binary,
                                     str(prom_pod.address), prom_app.env["HTTP_PROXY"],
                                     prometheus.interval)
        prom_app.ready_http, prom_app.ready_path = prom_pod.address, "/-/ready"
    return Plan(inventory, procs, server, report,
                prometheus.listen if prometheus is not None else None, tokens)


def reports(plan: Plan) -> Iterator[Path]:
    """Every vote-bot report file the plan's bots write."""
    yield plan.report_path
    yield from plan.report_path.parent.glob("vote-bot-*.json")
