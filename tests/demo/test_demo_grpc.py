"""The shared demo speaks gRPC where emojivoto does, and the mesh watches itself."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from demokit import MESHTUI, _descendants, until

pytestmark = pytest.mark.slow

_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _cli(server: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MESHTUI, "--server", server, *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def _events(out: subprocess.CompletedProcess[str]) -> list[dict]:
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


def test_top_of_web_lists_its_grpc_calls_with_their_success(demo) -> None:
    server, _proc, _, _state = demo

    def routes() -> list[dict]:
        out = _cli(server, "top", "deploy/web", "-n", "emojivoto", "-o", "json", "--sample", "3")
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    got = until(routes, lambda rs: {"/emojivoto.v1.EmojiService/ListAll",
                                    "/emojivoto.v1.EmojiService/FindByShortcode"}
                <= {r["path"] for r in rs}, 30)
    by_path = {r["path"]: r for r in got}
    # vote-bot's HTTP/1.1 to web, and web's gRPC to emoji and voting, in one table.
    assert by_path["/api/list"]["method"] == "GET"
    listing = by_path["/emojivoto.v1.EmojiService/ListAll"]
    assert listing["method"] == "POST" and listing["destination"] == "deploy/emoji"
    assert listing["source"] == "deploy/web" and listing["direction"] == "outbound"
    votes = [p for p in by_path if p.startswith("/emojivoto.v1.VotingService/Vote")]
    assert votes
    for path in votes:
        assert by_path[path]["success"] == (0.0 if path.endswith("VoteDoughnut") else 1.0)


def test_doughnut_votes_fail_with_grpc_unknown_and_web_answers_500(demo) -> None:
    server, _proc, _, state = demo
    report = Path(state, "vote-bot.json")
    before = json.loads(report.read_text())["by_status"]
    out = _cli(server, "tap", "deploy/voting", "-n", "emojivoto", "--path",
               "/emojivoto.v1.VotingService/VoteDoughnut", "-o", "json", "--limit", "3")
    start, rsp, end = _events(out)
    assert start["requestInitEvent"]["authority"] == "voting-svc.emojivoto:8080"
    assert start["source"]["metadata"]["deployment"] == "web"
    assert rsp["responseInitEvent"]["httpStatus"] == 200  # gRPC's failures are in its status
    assert end["responseEndEvent"]["grpcStatusCode"] == 2  # UNKNOWN
    # The proxy counts them failed (Linkerd's classification), and only them.
    pods = json.loads((state / "inventory.json").read_text())["pods"]
    admin = next(p["admin"] for p in pods if p["deployment"] == "voting")
    with _DIRECT.open(f"http://{admin}/metrics", timeout=5) as r:
        lines = [ln for ln in r.read().decode().splitlines()
                 if ln.startswith("response_total{") and 'direction="inbound"' in ln]
    failed = [ln for ln in lines if 'classification="failure"' in ln]
    assert failed and all('grpc_status="2"' in ln for ln in failed), failed
    assert any('grpc_status="0"' in ln and 'classification="success"' in ln for ln in lines)
    # web turns the failure into a 500 for vote-bot, and nothing else fails. (Since
    # the test began: vote-bot starts with the mesh, and what it sent before web and
    # the services listened failed otherwise.)
    def since() -> dict[str, int]:
        now = json.loads(report.read_text())["by_status"]
        return {k: n - before.get(k, 0) for k, n in now.items() if n != before.get(k, 0)}

    sent = until(since, lambda d: d.get("500", 0) > 0, 30)
    assert set(sent) <= {"200", "500"}, sent


def test_the_controller_serves_through_its_proxy(demo) -> None:
    server, _proc, _, _state = demo
    # Someone watching the controller while someone else asks it for figures.
    tap = subprocess.Popen([*MESHTUI, "--server", server, "tap", "deploy/controller", "-n",
                            "meshtui", "--path", "/meshtui.v1.Stats/", "-o", "json",
                            "--limit", "3"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
    try:
        deadline = time.monotonic() + 30
        rows: dict = {}
        while tap.poll() is None and time.monotonic() < deadline:
            out = _cli(server, "stat", "deploy", "-n", "meshtui", "-o", "json")
            assert out.returncode == 0, out.stderr
            rows = {r["name"]: r for r in json.loads(out.stdout)}
            time.sleep(0.3)
        stdout, stderr = tap.communicate(timeout=10)
    finally:
        if tap.poll() is None:
            tap.kill()
            tap.wait()
    inbound = [json.loads(line) for line in stdout.splitlines()]
    assert inbound and inbound[0]["proxyDirection"] == "INBOUND", stderr
    assert inbound[0]["requestInitEvent"]["path"].startswith("/meshtui.v1.Stats/")
    # The stat calls above are the controller's inbound requests: figures, not dashes.
    ctl = rows["controller"]
    assert ctl["rps"] and ctl["rps"] > 0
    assert ctl["success"] is not None and ctl["latency_ms_p50"] is not None


def test_only_the_controller_itself_gets_through_a_tap_port(demo) -> None:
    """Its pod's proxy holds the controller's identity, and its outbound port answers
    any local process; the controller dials the tap ports itself, with its own
    certificate, and that proxy sends what it is given for a tap port on in plain, which
    the tap port refuses: a client naming a tap port through it gets nothing, while
    `meshtui tap` (through the controller, with its credential) works."""
    import asyncio

    import grpc

    from meshtui.v1 import proxy_pb2, proxy_pb2_grpc

    server, proc, _, state = demo
    argvs = [Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
             for pid in _descendants(proc.pid) if Path(f"/proc/{pid}/cmdline").exists()]
    [lender] = [[a.decode() for a in argv] for argv in argvs
                if b"proxy" in argv and b"--deployment" in argv
                and argv[argv.index(b"--deployment") + 1] == b"controller"]
    outbound = lender[lender.index("--outbound") + 1]
    pods = json.loads((state / "inventory.json").read_text())["pods"]
    tap_port = next(p["proxy"] for p in pods if p["deployment"] == "voting")

    async def through_the_controllers_proxy() -> str:
        async with grpc.aio.insecure_channel(outbound, options=[
                ("grpc.default_authority", tap_port), ("grpc.enable_http_proxy", 0)]) as ch:
            try:
                got = await proxy_pb2_grpc.MetricsStub(ch).Scrape(proxy_pb2.ScrapeRequest(),
                                                                  timeout=3)
            except grpc.aio.AioRpcError as e:
                return f"refused: {e.code().name}"
            return f"scraped {got.proxy.workload.pod}"

    assert asyncio.run(through_the_controllers_proxy()).startswith("refused")
    events = _events(_cli(server, "tap", "deploy/voting", "-n", "emojivoto", "-o", "json",
                          "--limit", "2"))
    assert events
