"""Transparent interception for real: two network namespaces joined by a veth
pair (10.213.7.0/30, which exists only inside them), a "pod" namespace with an
app, ``meshtui proxy`` and iptables NAT rules, and a "client" namespace. The
client's requests to the app and the app's own calls out are redirected to the
proxy, which finds where each was going with SO_ORIGINAL_DST.

Needs root, ``ip`` and ``iptables``; skipped with the reason otherwise.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

pytestmark = [pytest.mark.root, pytest.mark.slow]

CLIENT_IP, POD_IP = "10.213.7.1", "10.213.7.2"
APP_PORT, OUTSIDE_PORT = 8080, 9090
INBOUND, OUTBOUND, TAP, ADMIN = 4143, 4140, 4190, 4191
MARK = 0x2102  # the proxy's own connections carry it, and the rules let them pass

# A tiny HTTP app: says who called it (the proxy, over loopback, when intercepted).
APP = """
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = f"{sys.argv[2]} {self.path} from {self.client_address[0]}".encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer((sys.argv[1], int(sys.argv[3])), H).serve_forever()
"""

GET = """
import sys, urllib.request
print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())
"""


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces and iptables)"
    for tool in ("ip", "iptables"):
        if shutil.which(tool) is None and not os.path.exists(f"/usr/sbin/{tool}"):
            return f"needs {tool} (scripts/install-tools.sh)"
    return None


def sh(*args: str) -> str:
    p = subprocess.run(args, capture_output=True, text=True, timeout=20)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {p.stderr.strip()}")
    return p.stdout


def install_rules(ns: str) -> str:
    """``meshtui proxy-init`` in the pod's namespace, the proxy known by its mark;
    where this version has no proxy-init yet, the same rules at their smallest.
    Returns which of the two it was."""
    p = subprocess.run([sys.executable, "-m", "meshtui", "proxy-init", "--netns", ns,
                        "--proxy-uid", "none", "--proxy-mark", hex(MARK)],
                       capture_output=True, text=True, timeout=30)
    if p.returncode == 0:
        return "proxy-init"
    if "not built" not in p.stderr:
        raise RuntimeError(f"meshtui proxy-init failed: {p.stderr.strip()}")
    minimal_rules(ns)
    return "minimal rules"


def minimal_rules(ns: str) -> None:
    """Inbound TCP to the inbound port (the proxy's own ports excepted), outbound TCP
    to the outbound port (loopback and the proxy's marked connections excepted)."""
    def ipt(*a: str) -> None:
        sh("ip", "netns", "exec", ns, "iptables", "-w", "-t", "nat", *a)

    ipt("-N", "MT_TEST_IN")
    for port in (TAP, ADMIN):
        ipt("-A", "MT_TEST_IN", "-p", "tcp", "--dport", str(port), "-j", "RETURN")
    ipt("-A", "MT_TEST_IN", "-p", "tcp", "-j", "REDIRECT", "--to-ports", str(INBOUND))
    ipt("-A", "PREROUTING", "-p", "tcp", "-j", "MT_TEST_IN")
    ipt("-N", "MT_TEST_OUT")
    ipt("-A", "MT_TEST_OUT", "-m", "mark", "--mark", hex(MARK), "-j", "RETURN")
    ipt("-A", "MT_TEST_OUT", "-o", "lo", "-j", "RETURN")
    ipt("-A", "MT_TEST_OUT", "-p", "tcp", "-j", "REDIRECT", "--to-ports", str(OUTBOUND))
    ipt("-A", "OUTPUT", "-p", "tcp", "-j", "MT_TEST_OUT")


@dataclass
class Net:
    client: str
    pod: str
    procs: list[subprocess.Popen[bytes]]

    def start(self, ns: str, *argv: str) -> subprocess.Popen[bytes]:
        p = subprocess.Popen(["ip", "netns", "exec", ns, *argv], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": os.getcwd()})
        self.procs.append(p)
        return p

    def run(self, ns: str, *argv: str) -> str:
        return sh("ip", "netns", "exec", ns, *argv)


@pytest.fixture
def net() -> Iterator[Net]:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    tag = uuid.uuid4().hex[:6]
    client, pod = f"mtc-{tag}", f"mtp-{tag}"
    try:
        sh("ip", "netns", "add", client)
    except RuntimeError as e:
        pytest.skip(f"cannot create a network namespace here: {e}")
    n = Net(client, pod, [])
    try:
        sh("ip", "netns", "add", pod)
        sh("ip", "link", "add", f"vc{tag}", "netns", client, "type", "veth",
           "peer", "name", f"vp{tag}", "netns", pod)
        for ns, dev, ip in ((client, f"vc{tag}", CLIENT_IP), (pod, f"vp{tag}", POD_IP)):
            n.run(ns, "ip", "addr", "add", f"{ip}/30", "dev", dev)
            n.run(ns, "ip", "link", "set", dev, "up")
            n.run(ns, "ip", "link", "set", "lo", "up")
        yield n
    finally:
        for p in n.procs:
            p.kill()
            p.wait(5)
            if p.stderr is not None:
                p.stderr.close()
        for ns in (client, pod):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def wait_http(net: Net, ns: str, url: str, timeout: float = 15.0) -> str:
    end = time.monotonic() + timeout
    while True:
        try:
            return net.run(ns, sys.executable, "-c", GET, url).strip()
        except RuntimeError:
            if time.monotonic() > end:
                raise
            time.sleep(0.2)


def metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_client_and_app_calls_are_intercepted(net: Net) -> None:
    net.start(net.pod, sys.executable, "-c", APP, "0.0.0.0", "pod-app", str(APP_PORT))
    net.start(net.client, sys.executable, "-c", APP, CLIENT_IP, "outside", str(OUTSIDE_PORT))
    install_rules(net.pod)
    proxy = net.start(
        net.pod, sys.executable, "-m", "meshtui", "proxy",
        "--inbound", f"0.0.0.0:{INBOUND}", "--outbound", f"127.0.0.1:{OUTBOUND}",
        "--tap", f"127.0.0.1:{TAP}", "--admin", f"127.0.0.1:{ADMIN}",
        "--pod", "app-0", "--namespace", "test", "--deployment", "app", "--pod-ip", POD_IP,
        "--mark", hex(MARK))
    wait_http(net, net.pod, f"http://127.0.0.1:{ADMIN}/ready")

    # The client calls the app's own address; the proxy answers for it and the app
    # sees the call come from the proxy over loopback.
    for i in range(3):
        got = wait_http(net, net.client, f"http://{POD_IP}:{APP_PORT}/hello/{i}")
        assert got == f"pod-app /hello/{i} from 127.0.0.1"
    # The app's own call out goes through the proxy's outbound side.
    got = wait_http(net, net.pod, f"http://{CLIENT_IP}:{OUTSIDE_PORT}/out")
    assert got == f"outside /out from {POD_IP}"

    text = net.run(net.pod, sys.executable, "-c", GET, f"http://127.0.0.1:{ADMIN}/metrics")
    assert metric(text, "request_total", direction="inbound",
                  authority=f"{POD_IP}:{APP_PORT}") == 3
    assert metric(text, "request_total", direction="outbound",
                  authority=f"{CLIENT_IP}:{OUTSIDE_PORT}") == 1
    assert metric(text, "response_total", direction="inbound", classification="success") == 3
    # Connections were counted per original destination, with their bytes.
    assert metric(text, "tcp_open_total", direction="inbound") >= 3
    assert metric(text, "tcp_read_bytes_total", direction="outbound") > 0
    assert proxy.poll() is None, "the proxy died"
    # And a non-HTTP conversation passes through the same interception.
    out = net.run(net.client, sys.executable, "-c", (
        f"import socket; s = socket.create_connection(('{POD_IP}', {APP_PORT}), timeout=5); "
        "s.sendall(b'\\x16\\x03\\x01 not http\\r\\n\\r\\n'); print(s.recv(100))"))
    # The app's own error page (http.server's), not the proxy's: the bytes reached it.
    assert "Error resp" in out and "meshtui-proxy-error" not in out, out
