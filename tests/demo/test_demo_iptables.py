"""The demo the way Conduit built it: a network namespace per pod, proxy-init's
iptables rules, apps that know nothing of the mesh (root only)."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from demokit import MESHTUI, _free_port

from meshtui.demo import prometheus as prom
from meshtui.demo.netns import can_make_namespaces

pytestmark = [pytest.mark.slow, pytest.mark.root]

WHY = can_make_namespaces() if shutil.which("ip") else "needs the ip command (iproute2)"


@pytest.mark.skipif(WHY is not None, reason=f"iptables demo {WHY}")
def test_iptables_demo_intercepts_transparently_and_cleans_up() -> None:
    server = f"127.0.0.1:{_free_port()}"
    prometheus = f"127.0.0.1:{_free_port()}"
    before = set(subprocess.run(["ip", "netns", "list"], capture_output=True,
                                text=True).stdout.split())
    proc = subprocess.Popen([*MESHTUI, "--server", server, "demo", "--headless",
                             "--intercept", "iptables", "--prometheus-listen", prometheus],
                            stderr=subprocess.PIPE, text=True)
    try:
        line = ""
        deadline = time.monotonic() + 60
        while "controller at" not in line and time.monotonic() < deadline:
            line = proc.stderr.readline()  # type: ignore[union-attr]
            assert proc.poll() is None, f"demo exited: {line}"
        rows: dict = {}
        while time.monotonic() < deadline:
            out = subprocess.run([*MESHTUI, "--server", server, "stat", "deploy", "-n",
                                  "emojivoto", "-o", "json"], capture_output=True, text=True)
            if out.returncode == 0:
                rows = {r["name"]: r for r in json.loads(out.stdout)}
                if all(rows.get(d, {}).get("rps") for d in ("web", "emoji", "voting")):
                    break
            time.sleep(0.5)
        assert all(rows[d]["rps"] for d in ("web", "emoji", "voting")), rows
        # Started in stages, each app once the peers it calls answer inside their pods:
        # the bot's only failures are the doughnut's (web's 500), none refused.
        from test_demo_mesh import _series

        state = Path(line.split("logs in ", 1)[1].split(";", 1)[0])
        bot = next(p for p in json.loads((state / "inventory.json").read_text())["pods"]
                   if p["deployment"] == "vote-bot")
        failed = [(lab, v) for lab, v in _series(bot["admin"])
                  if lab["direction"] == "outbound" and lab["classification"] == "failure"]
        assert all(lab["status_code"] == "500" for lab, _ in failed), failed
        tap = subprocess.run([*MESHTUI, "--server", server, "tap", "deploy/voting", "-n",
                              "emojivoto", "-o", "json", "--limit", "30"],
                             capture_output=True, text=True, timeout=30)
        events = [json.loads(x) for x in tap.stdout.splitlines()]
        assert events
        # Real pod IPs, named by the mesh: web calls voting, transparently intercepted.
        assert all(e["destination"]["ip"].startswith("10.77.") for e in events)
        assert {e["source"]["metadata"].get("deployment") for e in events} == {"web"}
        # gRPC: web dialled the pod IP kube-dns gave, named the service as authority.
        starts = [e["requestInitEvent"] for e in events if "requestInitEvent" in e]
        assert starts and all(s["path"].startswith("/emojivoto.v1.VotingService/")
                              and s["authority"] == "voting-svc.emojivoto:8080"
                              for s in starts), starts
        # Identity is on here too: web's proxy dialled voting's pod address, voting's
        # rules handed the connection to its inbound proxy, and both ends spoke mutual
        # TLS, as voting's inbound proxy tells from the client's certificate.
        assert all(e["tls"] is True for e in events), events
        # The controller's scrapes are mutual TLS from the controller itself to each
        # tap port: its own proxy relays them as bytes it cannot read, so tap of its
        # outbound shows no Scrape calls.
        try:  # (the controller scrapes each proxy every second: 5 s would see some)
            ctl = subprocess.run([*MESHTUI, "--server", server, "tap", "deploy/controller",
                                  "-n", "meshtui", "--to", "ns/emojivoto", "--path",
                                  "/meshtui.v1.Metrics/Scrape", "-o", "json", "--limit", "1"],
                                 capture_output=True, text=True, timeout=5)
            seen = ctl.stdout
        except subprocess.TimeoutExpired as e:
            seen = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        assert seen == "", seen
        # And the calls above reached it through the port-forward and its pod's
        # inbound rules: its proxy counted them.
        meshtui = subprocess.run([*MESHTUI, "--server", server, "stat", "deploy", "-n",
                                  "meshtui", "-o", "json"], capture_output=True, text=True)
        rows = {r["name"]: r for r in json.loads(meshtui.stdout)}
        assert rows["controller"]["rps"] and rows["controller"]["latency_ms_p50"], rows
        if prom.find_binary() is not None:
            # Prometheus is given no proxy here: iptables hands its scrapes of the
            # other pods to its own proxy, which shows them in tap as outbound.
            scrapes = subprocess.run([*MESHTUI, "--server", server, "tap", "deploy/prometheus",
                                      "-n", "meshtui", "--to", "ns/emojivoto", "-o", "json",
                                      "--limit", "2"], capture_output=True, text=True, timeout=30)
            starts = [e for e in map(json.loads, scrapes.stdout.splitlines())
                      if "requestInitEvent" in e]
            assert starts, scrapes.stderr
            assert all(e["proxyDirection"] == "OUTBOUND"
                       and e["requestInitEvent"]["path"] == "/metrics"
                       and e["destination"]["ip"].startswith("10.77.") for e in starts), starts
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    after = set(subprocess.run(["ip", "netns", "list"], capture_output=True,
                               text=True).stdout.split())
    assert not {n for n in after - before if not n.startswith("(")}, "namespaces left behind"


def _netns() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def _start(server: str) -> tuple[subprocess.Popen[str], list[str]]:
    """A headless iptables demo without Prometheus, and its lines up to the ready one."""
    proc = subprocess.Popen([*MESHTUI, "--server", server, "demo", "--headless",
                             "--intercept", "iptables", "--prometheus-listen", "none"],
                            stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while not any("controller at" in line for line in lines) and time.monotonic() < deadline:
        lines.append(proc.stderr.readline())  # type: ignore[union-attr]
        assert proc.poll() is None, f"demo exited: {lines}"
    return proc, lines


@pytest.mark.skipif(WHY is not None, reason=f"iptables demo {WHY}")
def test_a_start_removes_what_a_killed_demo_left_behind() -> None:
    before = _netns()
    first, _ = _start(f"127.0.0.1:{_free_port()}")
    first.kill()  # SIGKILL: no clean-up of its own
    first.wait(10)
    left = _netns() - before
    assert len(left) >= 8  # the node and every pod
    second, lines = _start(f"127.0.0.1:{_free_port()}")
    try:
        said = [line for line in lines if "left behind" in line]
        assert len(said) == 1, lines
        assert said[0].startswith(f"demo: removed what an earlier demo (pid {first.pid}, no "
                                  f"longer running) left behind: {len(left)} network "
                                  "namespaces, interface ")
        assert not (left & _netns())
    finally:
        second.send_signal(signal.SIGINT)
        second.wait(30)
    assert not (_netns() - before)


@pytest.mark.skipif(WHY is not None, reason=f"iptables demo {WHY}")
def test_two_pod_networks_at_once_take_different_subnets() -> None:
    """A second iptables demo on the host gets a /24 of its own (both had taken
    10.77.0.0/24, and each answered for the other's addresses)."""
    from meshtui.demo.netns import PodNetwork

    first, second = PodNetwork(prefix="mtsubA"), PodNetwork(prefix="mtsubB")
    try:
        first.setup()
        second.setup()
        assert first.subnet != second.subnet
        assert first.subnet.startswith("10.77.") and second.subnet.startswith("10.77.")
    finally:
        second.teardown()
        first.teardown()
