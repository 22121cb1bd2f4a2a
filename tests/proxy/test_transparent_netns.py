"""Transparent interception for real, as the demo runs a pod: two network
namespaces joined by a veth pair (a /30 that exists only inside them), a "pod"
namespace holding an app, ``meshtui proxy`` and the rules ``meshtui
proxy-init`` installs there, and a "peer" namespace holding a client and a
server of its own. The proxy is told apart by the socket mark it puts on its
connections (``--mark`` / ``--proxy-mark``).

A client's requests to the app and the app's own call out are redirected to
the proxy, which finds where each was going with SO_ORIGINAL_DST and counts
them; after ``proxy-init --uninstall`` the same traffic passes untouched and
the counts stop growing.

Needs root, ``ip`` and ``iptables``; skipped with the reason otherwise.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from test_proxy_init_netns import MESHTUI, PEER_IP, POD_IP, Pod, namespaces

pytestmark = [pytest.mark.root, pytest.mark.slow]

APP_PORT, OUTSIDE_PORT = 8080, 9090
INBOUND, OUTBOUND, TAP, ADMIN = 4143, 4140, 4190, 4191
MARK = 0x2102  # the proxy's own connections carry it, and the rules let them pass

# A tiny HTTP app: says who called it (the proxy, over loopback, when the call
# was intercepted). GET /call/HOST:PORT/PATH makes the app itself call out and
# answer with what it got.
APP = """
import http.server, sys, urllib.request
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        if self.path.startswith("/call/"):
            body = urllib.request.urlopen("http://" + self.path[6:], timeout=5).read()
        else:
            body = f"{sys.argv[2]} {self.path} from {self.client_address[0]}".encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer((sys.argv[1], int(sys.argv[3])), H).serve_forever()
"""

# Fetches each URL in turn and prints the bodies as one JSON list.
GET = """
import json, sys, urllib.request
print(json.dumps([urllib.request.urlopen(u, timeout=5).read().decode() for u in sys.argv[1:]]))
"""

# No proxy variables: urllib would otherwise send the calls to them.
_ENV = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}


class Running:
    """Processes started inside the namespaces; all killed by :meth:`stop`."""

    def __init__(self, p: Pod) -> None:
        self.pod = p
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, ns: str, *argv: str, env: dict[str, str] | None = None) -> None:
        self.procs.append(subprocess.Popen(
            ["ip", "netns", "exec", ns, *argv], stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, env={**_ENV, **(env or {})}))

    def app(self, ns: str, host: str, name: str, port: int) -> None:
        self.start(ns, sys.executable, "-c", APP, host, name, str(port))

    def get(self, ns: str, *urls: str, timeout: float = 15.0) -> list[str]:
        """The bodies of GETs made from ``ns``, retried until the first answers."""
        end = time.monotonic() + timeout
        while True:
            out = self.pod.ns_exec(ns, sys.executable, "-c", GET, *urls)
            if out.returncode == 0:
                return list(json.loads(out.stdout))
            if time.monotonic() > end:
                dead = [(p.args, p.returncode) for p in self.procs if p.poll() is not None]
                raise AssertionError(f"GET {urls}: {out.stderr.strip()[-300:]}; exited: {dead}")
            time.sleep(0.1)

    def metrics(self, admin_port: int = ADMIN) -> str:
        return self.get(self.pod.pod, f"http://127.0.0.1:{admin_port}/metrics")[0]

    def alive(self) -> None:
        dead = [(p.args, p.returncode) for p in self.procs if p.poll() is not None]
        assert not dead, f"exited: {dead}"

    def stop(self) -> None:
        for p in self.procs:
            p.kill()
            p.wait(5)
            if p.stderr:
                p.stderr.close()


@pytest.fixture
def running() -> Iterator[Running]:
    with namespaces() as p:
        r = Running(p)
        try:
            yield r
        finally:
            r.stop()


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def requests(text: str) -> tuple[float, float]:
    """(inbound requests to the app, outbound requests to the peer's server)."""
    return (metric(text, "request_total", direction="inbound",
                   authority=f"{POD_IP}:{APP_PORT}"),
            metric(text, "request_total", direction="outbound",
                   authority=f"{PEER_IP}:{OUTSIDE_PORT}"))


def test_client_and_app_calls_go_through_the_proxy_until_uninstall(running: Running) -> None:
    p = running.pod
    running.app(p.pod, "0.0.0.0", "app", APP_PORT)
    running.app(p.peer, PEER_IP, "outside", OUTSIDE_PORT)
    # What the init container runs, in the pod's own namespace.
    done = p.ns_exec(p.pod, MESHTUI, "proxy-init", "--proxy-uid", "none",
                     "--proxy-mark", hex(MARK))
    assert done.returncode == 0, done.stderr
    running.start(
        p.pod, MESHTUI, "proxy",
        "--inbound", f"0.0.0.0:{INBOUND}", "--outbound", f"127.0.0.1:{OUTBOUND}",
        "--tap", f"127.0.0.1:{TAP}", "--admin", f"127.0.0.1:{ADMIN}",
        "--pod", "app-0", "--namespace", "test", "--deployment", "app", "--pod-ip", POD_IP,
        "--mark", hex(MARK))
    running.get(p.pod, f"http://127.0.0.1:{ADMIN}/ready")

    sent = 4
    urls = [f"http://{POD_IP}:{APP_PORT}/in/{i}" for i in range(sent)]
    call = f"http://{POD_IP}:{APP_PORT}/call/{PEER_IP}:{OUTSIDE_PORT}/out"
    got = running.get(p.peer, *urls, call)
    # The client called the app's own address; the app saw the proxy hand it over
    # on loopback. Its call out reached the server (from the pod's address).
    assert got == [f"app /in/{i} from 127.0.0.1" for i in range(sent)] + [
        f"outside /out from {POD_IP}"]
    text = running.metrics()
    assert requests(text) == (sent + 1, 1)
    assert metric(text, "response_total", direction="inbound",
                  classification="success") == sent + 1
    # Connections were counted with their bytes, each direction.
    assert metric(text, "tcp_open_total", direction="inbound") >= 1
    assert metric(text, "tcp_read_bytes_total", direction="outbound") > 0

    # A non-HTTP conversation passes through the same interception.
    out = p.ns_exec(p.peer, sys.executable, "-c", (
        f"import socket; s = socket.create_connection(('{POD_IP}', {APP_PORT}), timeout=5); "
        "s.sendall(b'\\x16\\x03\\x01 not http\\r\\n\\r\\n'); print(s.recv(100))"))
    # The app's own error page (http.server's), not the proxy's: the bytes reached it.
    assert "Error resp" in out.stdout and "meshtui-proxy-error" not in out.stdout, out

    undo = p.ns_exec(p.pod, MESHTUI, "proxy-init", "--uninstall")
    assert undo.returncode == 0, undo.stderr
    got = running.get(p.peer, *urls, call)
    # Now the app sees the client itself, and the proxy sees nothing new.
    assert got == [f"app /in/{i} from {PEER_IP}" for i in range(sent)] + [
        f"outside /out from {POD_IP}"]
    assert requests(running.metrics()) == (sent + 1, 1)
    running.alive()
