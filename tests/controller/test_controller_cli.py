"""`meshtui controller` as a user runs it: one-line failures, health, reflection, SIGTERM."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest

MESHTUI = str(Path(sys.executable).parent / "meshtui")


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MESHTUI, "controller", *args], capture_output=True, text=True,
                          timeout=30, cwd=cwd, stdin=subprocess.DEVNULL)


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    p = tmp_path / "inv.yaml"
    p.write_text("pods:\n  - {name: a-0, namespace: ns, deployment: a, address: 127.0.0.1:1}\n")
    return p


def test_missing_inventory_is_exit_2_in_one_line(tmp_path: Path) -> None:
    out = run("--inventory", "missing.yaml", cwd=tmp_path)
    assert out.returncode == 2
    assert "missing.yaml" in one_line(out.stderr)


def test_malformed_inventory_is_exit_2_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"pods": [{"name": "x", "address": "nowhere"}]}))
    out = run("--inventory", str(bad), cwd=tmp_path)
    assert out.returncode == 2
    assert "nowhere" in one_line(out.stderr)


@pytest.mark.parametrize(("pod", "said"), [
    ({"name": "b-0", "namespace": "a.b", "deployment": "c"}, "namespace 'a.b'"),
    ({"name": "x/y", "namespace": "a"}, "name 'x/y'"),
    ({"name": "p", "namespace": "a", "serviceaccount": "s/t"}, "serviceaccount 's/t'"),
])
def test_names_that_could_make_two_identities_alike_are_exit_2(
        tmp_path: Path, pod: dict[str, str], said: str) -> None:
    """``c.a.b`` could be serviceaccount c in namespace a.b or serviceaccount c.a in
    namespace b; ``a/x/y`` likewise for a token: such an inventory is refused."""
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"pods": [pod]}))
    out = run("--inventory", str(bad), cwd=tmp_path)
    assert out.returncode == 2
    assert said in one_line(out.stderr)


def test_port_taken_is_exit_1_in_one_line(tmp_path: Path, inventory: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        out = run("--inventory", str(inventory), "--listen", f"127.0.0.1:{port}", cwd=tmp_path)
    assert out.returncode == 1
    line = one_line(out.stderr)
    assert f"127.0.0.1:{port}" in line and "in use" in line


def test_serves_health_and_reflection_and_stops_on_sigterm(
    tmp_path: Path, inventory: Path
) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    port = free_port()
    proc = subprocess.Popen([MESHTUI, "controller", "--inventory", str(inventory),
                             "--listen", f"127.0.0.1:{port}"],
                            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            grpc.channel_ready_future(ch).result(timeout=10)
            health = health_pb2_grpc.HealthStub(ch).Check(
                health_pb2.HealthCheckRequest(service="meshtui.v1.Stats"), timeout=5)
            assert health.status == health_pb2.HealthCheckResponse.SERVING
            refl = reflection_pb2_grpc.ServerReflectionStub(ch)
            (resp,) = refl.ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5)
            names = {s.name for s in resp.list_services_response.service}
            assert {"meshtui.v1.Mesh", "meshtui.v1.Stats", "meshtui.v1.ResourceTap",
                    "grpc.health.v1.Health"} <= names
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert time.monotonic() - t0 < 5
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()


def test_bad_listen_address_is_exit_2(tmp_path: Path, inventory: Path) -> None:
    out = run("--inventory", str(inventory), "--listen", "nonsense", cwd=tmp_path)
    assert out.returncode == 2
    assert "nonsense" in one_line(out.stderr)


def test_an_identity_port_that_is_the_api_port_is_exit_2(tmp_path: Path,
                                                         inventory: Path) -> None:
    port = free_port()
    out = run("--inventory", str(inventory), "--listen", f"0.0.0.0:{port}",
              "--state-dir", str(tmp_path / "state"),
              "--identity-listen", f"127.0.0.1:{port}", cwd=tmp_path)
    assert out.returncode == 2
    assert "a port of its own" in one_line(out.stderr)
