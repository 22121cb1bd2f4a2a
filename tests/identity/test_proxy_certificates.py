"""`meshtui check` judges each proxy's certificate from what the proxy itself reports in
its scrapes, and the proxy's /metrics says the same: real controllers, real proxies."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from meshtui.checks import run_checks
from meshtui.controller.server import Controller
from meshtui.identity import identity_name
from meshtui.identity.authority import Authority
from meshtui.model.inventory import Address, parse_address
from meshtui.proxy.config import ProxyConfig
from meshtui.proxy.server import ProxyServer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pods(**serviceaccounts: str) -> list[dict[str, str]]:
    """Meshed pods of namespace ns, one per name given (its service account, or '')."""
    return [{"name": name, "namespace": "ns", "deployment": name.split("-")[0],
             "serviceaccount": sa, "address": "127.0.0.1:1",
             "proxy": f"127.0.0.1:{free_port()}"} for name, sa in serviceaccounts.items()]


def write_inventory(path: Path, inventory: list[dict[str, str]]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"pods": inventory}))
    tmp.replace(path)  # the controller's watch never reads half a file


@asynccontextmanager
async def controller(inv: Path, auth: Authority) -> AsyncIterator[Controller]:
    ctl = Controller(inv, "127.0.0.1:0", identity=auth, scrape_interval_s=0.2,
                     inventory_poll_s=0.1)
    await ctl.start()
    try:
        yield ctl
    finally:
        await ctl.stop(None)


@asynccontextmanager
async def proxies(ctl: Controller, auth: Authority, inv: Path,
                  inventory: list[dict[str, str]]) -> AsyncIterator[list[ProxyServer]]:
    """A proxy for every pod of ``inventory``, each with its certificate."""
    started: list[ProxyServer] = []
    try:
        for p in inventory:
            proxy = ProxyServer(ProxyConfig(
                inbound=Address("127.0.0.1", 0), outbound=None,
                tap=parse_address(p["proxy"]),
                admin=Address("127.0.0.1", 0), pod=p["name"], namespace=p["namespace"],
                deployment=p["deployment"], serviceaccount=p["serviceaccount"],
                inventory=str(inv), identity=Address("127.0.0.1", ctl.identity_port),
                identity_token=auth.pod_token(p["namespace"], p["name"])))
            await proxy.start()
            started.append(proxy)
        yield started
    finally:
        for proxy in started:
            await proxy.stop(grace=0.2)


async def scraped(ctl: Controller, timeout: float = 10.0) -> None:
    """Until every reachable proxy of the controller's inventory has answered a scrape."""
    deadline = time.monotonic() + timeout
    while not all(st.last_ok is not None for st in ctl.store.proxied()):
        assert time.monotonic() < deadline, "no scrape answered"
        await asyncio.sleep(0.05)


async def check(ctl: Controller, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = await run_checks(f"127.0.0.1:{ctl.port}")
    return code, capsys.readouterr().out


def hint_lines(out: str) -> list[str]:
    """The lines under the failed certificate check."""
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if "holds a current certificate" in line)
    return [line for line in lines[at + 1:] if line.startswith("    ")]


async def test_a_restarted_controller_knows_every_certificate_from_the_proxies(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Its record of what it issued is empty after a restart, and the proxies renew only
    hours later: what they hold comes from their scrapes."""
    inv = tmp_path / "inventory.json"
    inventory = pods(**{"web-0": "", "emoji-0": "emoji-sa"})
    write_inventory(inv, inventory)
    state = tmp_path / "state"
    auth = Authority.in_state_dir(state)
    first = Controller(inv, "127.0.0.1:0", identity=auth, scrape_interval_s=0.2)
    await first.start()
    try:
        async with proxies(first, auth, inv, inventory) as started:
            await scraped(first)
            await first.stop(None)
            # The same state directory: the same trust anchor the proxies hold.
            async with controller(inv, Authority.in_state_dir(state)) as second:
                await scraped(second)
                code, out = await check(second, capsys)
                assert code == 0, out
                assert "√ every meshed proxy holds a current certificate for its identity" \
                    in out
                held = started[1].identity.bundle.leaf.not_valid_after_utc.timestamp()
                name, _, until, refreshes, _ = second.store.pods[("ns", "emoji-0")].certificate \
                    or ("", 0, 0, 0, 0)
                assert (name, until, refreshes) == (
                    identity_name("emoji-sa", "ns"), int(held * 1000), 1)
    finally:
        await first.stop(None)


async def test_a_certificate_near_its_end_or_of_another_identity_fails_by_pod(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inv = tmp_path / "inventory.json"
    inventory = pods(**{"web-0": "", "emoji-0": "emoji-sa"})
    write_inventory(inv, inventory)
    # Certificates of 30 minutes: renewed at 70 %, so still held when checked.
    auth = Authority.in_state_dir(tmp_path / "state", leaf_lifetime_s=1800)
    async with controller(inv, auth) as ctl, proxies(ctl, auth, inv, inventory):
        await scraped(ctl)
        code, out = await check(ctl, capsys)
        assert code == 1, out
        assert "× every meshed proxy holds a current certificate for its identity" in out
        assert hint_lines(out) == ["    ns/web-0: its certificate expires in 30 min",
                                   "    ns/emoji-0: its certificate expires in 30 min"], out

    auth = Authority.in_state_dir(tmp_path / "state2")
    async with controller(inv, auth) as ctl, proxies(ctl, auth, inv, inventory):
        await scraped(ctl)
        code, out = await check(ctl, capsys)
        assert code == 0, out
        # The inventory now gives web-0 another service account: its proxy still holds
        # the certificate of the old one.
        inventory[0]["serviceaccount"] = "billing"
        write_inventory(inv, inventory)
        deadline = time.monotonic() + 10
        while ctl.store.pods[("ns", "web-0")].pod.serviceaccount != "billing":
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        code, out = await check(ctl, capsys)
        assert code == 1, out
        assert hint_lines(out) == [
            f"    ns/web-0: holds a certificate for {identity_name('web', 'ns')}, "
            f"not {identity_name('billing', 'ns')}"], out


async def test_a_proxy_not_scraped_yet_is_not_called_healthy(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inv = tmp_path / "inventory.json"
    inventory = pods(**{"web-0": "", "emoji-0": ""})
    write_inventory(inv, inventory)
    auth = Authority.in_state_dir(tmp_path / "state")
    async with controller(inv, auth) as ctl, proxies(ctl, auth, inv, inventory[:1]):
        await asyncio.sleep(0.5)  # a few scrapes: web-0 answers, emoji-0 has no proxy
        code, out = await check(ctl, capsys)
    assert code == 1, out
    assert hint_lines(out)[-1] == \
        "    ns/emoji-0: not scraped yet since the controller started", out


async def test_metrics_carry_the_certificate_the_proxy_holds(tmp_path: Path) -> None:
    inv = tmp_path / "inventory.json"
    inventory = pods(**{"web-0": ""})
    write_inventory(inv, inventory)
    auth = Authority.in_state_dir(tmp_path / "state")
    async with controller(inv, auth) as ctl, proxies(ctl, auth, inv, inventory) as started:
        proxy = started[0]
        assert proxy.admin_address is not None

        def metrics() -> dict[str, float]:
            host, port = proxy.admin_address  # type: ignore[misc]
            with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as r:
                text = r.read().decode()
            assert "# TYPE identity_cert_expiration_timestamp_seconds gauge" in text
            assert "# TYPE identity_cert_refreshes_total counter" in text
            return {k: float(v) for k, _, v in (line.rpartition(" ") for line in
                    text.splitlines()) if k.startswith("identity_cert_")}

        def leaf_end() -> float:
            return float(proxy.identity.bundle.leaf.not_valid_after_utc.timestamp())

        got = await asyncio.to_thread(metrics)
        assert got["identity_cert_expiration_timestamp_seconds"] == leaf_end()
        assert got['identity_cert_refreshes_total{result="ok"}'] == 1
        assert got['identity_cert_refreshes_total{result="error"}'] == 0
        assert abs(got["identity_cert_refresh_timestamp_seconds"] - time.time()) < 30
        first_end = leaf_end()
        await asyncio.sleep(1.1)  # certificates carry whole seconds
        await proxy.identity.refresh()
        got = await asyncio.to_thread(metrics)
        assert got['identity_cert_refreshes_total{result="ok"}'] == 2
        assert got["identity_cert_expiration_timestamp_seconds"] == leaf_end() > first_end


def test_each_way_a_proxy_can_fail_is_one_line() -> None:
    from meshtui.checks import identity_results
    from meshtui.v1 import identity_pb2, proxy_pb2

    now = 1_800_000_000.0
    far = int((now + 86400) * 1000)
    name = identity_name("web", "ns")

    def proxy(pod: str, reported: bool = True, **kw: object) -> identity_pb2.ProxyCertificate:
        out = identity_pb2.ProxyCertificate(namespace="ns", pod=pod, expected_identity=name,
                                            scraped=True)
        if reported:
            held: dict[str, object] = dict(identity=name, not_before_ms=0, not_after_ms=far)
            out.held.CopyFrom(proxy_pb2.HeldCertificate(**{**held, **kw}))  # type: ignore[arg-type]
        return out

    status = identity_pb2.IdentityStatus(anchor_not_after_ms=far * 400,
                                         issuer_not_after_ms=far * 400, proxies=[
        proxy("good-0"), proxy("old-0", not_after_ms=int((now - 7200) * 1000)),
        proxy("plain-0", reported=False),
        proxy("early-0", not_before_ms=int((now + 600) * 1000)),
        proxy("odd\x1b[2J-0", identity="x\u202ey")])
    *_, certs = identity_results(status, 5, now)
    assert not certs.ok
    assert certs.hint.split("\n    ") == [
        "ns/old-0: its certificate expired 2 h ago",
        "ns/plain-0: its proxy reports no certificate (running without identity?)",
        "ns/early-0: its certificate is valid only in 10 min",
        f"ns/odd\\x1b[2J-0: holds a certificate for x\\u202ey, not {identity_name('web', 'ns')}"]
    # A controller that does not report its proxies (older than the client) is no pass.
    *_, certs = identity_results(identity_pb2.IdentityStatus(), 2, now)
    assert not certs.ok and "does not say" in certs.hint
