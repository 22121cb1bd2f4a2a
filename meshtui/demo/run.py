"""``meshtui demo``: plan the mesh, start it, keep it running, stop it cleanly."""

from __future__ import annotations

import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from meshtui.demo import leftovers
from meshtui.demo import prometheus as prom
from meshtui.demo.supervisor import Supervisor, port_in_use
from meshtui.demo.topology import Plan, plan_explicit
from meshtui.errors import RuntimeFailure, UsageError
from meshtui.model.inventory import Address

READY_TIMEOUT_S = 30.0


def _say(msg: str) -> None:
    print(f"demo: {msg}", file=sys.stderr, flush=True)


class _Stop(Exception):
    pass


def _raise_stop(_sig: int, _frame: FrameType | None) -> None:
    # Once: a second signal during clean-up (timeout(1) signals the process and
    # then its group; an impatient second Ctrl-C) must not cut the clean-up short.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise _Stop


def _prometheus(listen: Address | None, log: Callable[[str], None],
                interval: str = prom.SCRAPE_INTERVAL) -> prom.PrometheusSpec | None:
    """What to run Prometheus with, or None, said in one line, when it cannot run.

    A missing program or a busy port leaves the mesh without Prometheus rather
    than without a mesh: everything else works from the controller.
    """
    if listen is None:
        return None
    binary = prom.find_binary()
    if binary is None:
        log(f"no Prometheus: the `prometheus` program is not installed ({prom.HOW_TO_GET})")
        return None
    if port_in_use(listen):
        log(f"no Prometheus: {listen} is already in use (another demo running?); "
            "choose another address with `meshtui demo --prometheus-listen HOST:PORT`")
        return None
    return prom.PrometheusSpec(binary, listen, interval)


class _Tender:
    """What keeps the running mesh as planned: restarts, and Prometheus's targets."""

    def __init__(self, plan: Plan, sup: Supervisor, log: Callable[[str], None] = _say) -> None:
        self.sup = sup
        self.log = log
        self.tokens = plan.tokens
        self.targets = (prom.TargetsSync(plan.state_dir / "inventory.json",
                                         prom.targets_path(plan.state_dir))
                        if plan.prometheus is not None else None)

    def tend(self) -> None:
        self.sup.tend()
        if self.tokens is not None:
            try:
                self.tokens.refresh(time.time())
            except OSError as e:  # the proxies keep the certificates they have
                self.log(f"identity tokens not rewritten: {e}")
        if self.targets is not None:
            try:
                self.targets.check()
            except OSError as e:  # the mesh goes on; Prometheus keeps the targets it has
                self.log(f"Prometheus's targets not rewritten: {e}")


@contextmanager
def running_mesh(server: Address, *, intercept: str = "proxy", scale: int = 1,
                 rps: float = 20.0, log: Callable[[str], None] = _say,
                 prometheus: Address | None = prom.DEFAULT_LISTEN,
                 prometheus_interval: str = prom.SCRAPE_INTERVAL
                 ) -> Iterator[tuple[Plan, Supervisor]]:
    """Starts the whole demo mesh and yields once every pod is ready.

    ``prometheus`` is where the demo's Prometheus serves (None: run none).
    Leaving the block (normally, by an exception, or by SIGTERM turned into
    one) stops every process it started.
    """
    if scale < 1:
        raise UsageError("demo: --scale must be at least 1")
    if intercept == "iptables" and 5 * scale + 3 > 240:
        raise UsageError("demo: --intercept iptables holds at most --scale 47")
    if port_in_use(server):
        raise RuntimeFailure(
            f"demo: {server} is already in use (another demo running?); "
            "choose another address with `meshtui --server HOST:PORT demo`")
    net = None
    if intercept == "iptables":
        from meshtui.demo.netns import PodNetwork, can_make_namespaces

        why = can_make_namespaces()
        if why:
            raise RuntimeFailure(f"demo: --intercept iptables {why}")
        net = PodNetwork()
    leftovers.sweep(log)
    prom_spec = _prometheus(prometheus, log, prometheus_interval)
    state = Path(tempfile.mkdtemp(prefix=leftovers.PREFIX))
    leftovers.claim(state)
    sup = Supervisor(state, log=log)
    ok = False
    try:
        if net is not None:
            from meshtui.demo.netmesh import plan_iptables

            leftovers.record_netns(state, net.prefix)
            net.setup()
            plan = plan_iptables(net, server, state, scale=scale, rps=rps,
                                 prometheus=prom_spec)
        else:
            plan = plan_explicit(server, state, scale=scale, rps=rps, prometheus=prom_spec)
        for stage in sorted({spec.stage for spec in plan.processes}):
            for spec in plan.processes:
                if spec.stage == stage:
                    sup.start(spec)
            sup.wait_ready(READY_TIMEOUT_S)
        ok = True
        yield plan, sup
    finally:
        sup.stop()
        from meshtui.identity.credential import path_for

        path_for(str(server)).unlink(missing_ok=True)  # the controller's, now gone
        if net is not None:
            net.teardown()
        if ok:
            shutil.rmtree(state, ignore_errors=True)
        else:
            leftovers.release(state)
            log(f"logs of the failed start are in {state}")


def _live_table(server: Address, tender: _Tender, prometheus_url: str | None) -> int:
    """The dashboard over the demo, from the namespaces down; quitting stops the mesh.

    The supervisor keeps tending the mesh from a thread while the app owns the
    main thread (and the terminal). Children it restarts there get that
    thread as their "parent" for PR_SET_PDEATHSIG, so they end when it does:
    at shutdown, which is what should happen anyway.
    """
    import threading

    from meshtui.client.queries import StatQuery
    from meshtui.client.source import open_source
    from meshtui.tui.app import MeshApp, run_app

    done = threading.Event()

    def tend() -> None:
        while not done.wait(0.5):
            tender.tend()

    keeper = threading.Thread(target=tend, name="demo-tend", daemon=True)
    keeper.start()
    try:
        return run_app(MeshApp(open_source(str(server), prometheus_url), StatQuery("namespace"),
                               dashboard=True))
    finally:
        done.set()
        keeper.join()


def run_demo(server: Address, *, headless: bool, intercept: str = "proxy", scale: int = 1,
             prometheus: Address | None = prom.DEFAULT_LISTEN, source: str = "controller",
             prometheus_interval: str = prom.SCRAPE_INTERVAL
             ) -> int:
    """Runs the demo mesh until stopped; without ``headless``, with the dashboard on it,
    reading its figures from the controller or (``source="prometheus"``) the demo's
    Prometheus."""
    old_term = signal.signal(signal.SIGTERM, _raise_stop)
    old_int = signal.signal(signal.SIGINT, _raise_stop) if headless else None
    try:
        with running_mesh(server, intercept=intercept, scale=scale,
                          prometheus=prometheus,
                          prometheus_interval=prometheus_interval) as (plan, sup):
            tender = _Tender(plan, sup)
            namespaces = plan.inventory.namespaces()
            if (url := plan.prometheus_url) is not None:
                _say(f"Prometheus at {url} (scrapes every proxy each {prometheus_interval}, "
                     f"keeps {prom.RETENTION}; web UI and API there, e.g. {url}/graph)")
            _say(f"{len(plan.inventory.pods)} pods in {len(namespaces)} namespaces "
                 f"({', '.join(namespaces)}); logs in {plan.report_path.parent}; "
                 f"controller at {server}")
            if not headless:
                url = plan.prometheus_url if source == "prometheus" else None
                if source == "prometheus" and url is None:
                    _say("no Prometheus running: the dashboard reads the controller instead")
                return _live_table(server, tender, url)
            _say(f"try: meshtui --server {server} stat deploy -n emojivoto   (Ctrl-C stops)")
            while True:
                tender.tend()
                time.sleep(0.2)
    except (KeyboardInterrupt, _Stop):
        _say("stopped")
        return 0
    finally:
        signal.signal(signal.SIGTERM, old_term)
        if old_int is not None:
            signal.signal(signal.SIGINT, old_int)
