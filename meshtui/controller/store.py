"""What the controller knows: the inventory in force and, per pod, its proxy's
reachability and windowed history.

Group keys, the unit queries select on, are ``(direction, namespace,
deployment, pod)`` of the series' destination (for inbound series, the pod
itself). Direction numbers are the wire's (1 inbound, 2 outbound).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from meshtui.model.inventory import Inventory, Pod
from meshtui.model.windows import Series, SourceWindows

log = logging.getLogger("meshtui.controller")

INBOUND, OUTBOUND = 1, 2
GroupKey = tuple[int, str, str, str]
PodKey = tuple[str, str]  # (namespace, name)


@dataclass
class PodState:
    """One pod of the inventory and what the controller learned of its proxy."""

    pod: Pod
    windows: SourceWindows | None  # None: the pod has no proxy
    last_ok: float | None = None  # monotonic time of the last good scrape
    last_ok_wall: float = 0.0
    last_error: str = ""
    run_id: str = ""
    version: str = ""
    start_time_ms: int = 0
    # (direction, dst ns, dst deploy, dst pod, dst addr) → group, for this inventory
    groups: dict[tuple[int, str, str, str, str], GroupKey] = field(default_factory=dict)
    last_series: dict[tuple, Series] = field(default_factory=dict)  # the last scrape's
    # The certificate the proxy said it holds in its last good scrape: (identity,
    # notBefore, notAfter, refreshes, refresh errors), the times in ms; None when it
    # reported none.
    certificate: tuple[str, int, int, int, int] | None = None

    @property
    def key(self) -> PodKey:
        return (self.pod.namespace, self.pod.name)


class MeshStore:
    """The inventory in force and every pod's state.

    Args:
        inventory: the first inventory.
        stale_after_s: a proxy with no good scrape for this long counts as
            unreachable (and its pod as not meshed).
    """

    def __init__(self, inventory: Inventory, stale_after_s: float = 2.5,
                 horizon_s: float = 900.0) -> None:
        self.stale_after_s = stale_after_s
        self.horizon_s = horizon_s
        # Wall clock that queries call "now" (a benchmark replaying history sets it).
        self.clock: Callable[[], float] = time.time
        self.inventory = Inventory()
        self.pods: dict[PodKey, PodState] = {}
        self.generation = 0  # bumped on every inventory change
        self.set_inventory(inventory)

    def set_inventory(self, inv: Inventory) -> None:
        """Takes a new inventory: new pods start fresh, gone pods are forgotten,
        a pod whose proxy moved starts a new history (it is another process)."""
        old = self.pods
        new: dict[PodKey, PodState] = {}
        for pod in inv.pods:
            key = (pod.namespace, pod.name)
            prev = old.get(key)
            if prev is not None and prev.pod.proxy == pod.proxy:
                prev.pod = pod
                prev.groups.clear()  # addresses may name other pods now
                prev.last_series = {}
                new[key] = prev
            else:
                new[key] = PodState(pod, SourceWindows(horizon_s=self.horizon_s)
                                    if pod.proxy is not None else None)
        added = len(new.keys() - old.keys())
        removed = len(old.keys() - new.keys())
        if old and (added or removed):
            log.info("inventory: %d pods (%d added, %d removed)", len(new), added, removed)
        self.pods = new
        self.inventory = inv
        self.generation += 1

    def reachable(self, st: PodState, now: float | None = None) -> bool:
        if st.windows is None or st.last_ok is None:
            return False
        now = time.monotonic() if now is None else now
        return now - st.last_ok <= self.stale_after_s

    def states(self) -> Iterator[PodState]:
        return iter(self.pods.values())

    def proxied(self) -> list[PodState]:
        return [s for s in self.pods.values() if s.windows is not None]

    def group_for(self, st: PodState, direction: int, ns: str, deploy: str, pod: str,
                  addr: str) -> GroupKey:
        """The group of a series: its destination, named by the inventory when
        the proxy could not (or for inbound, the pod itself)."""
        key = (direction, ns, deploy, pod, addr)
        g = st.groups.get(key)
        if g is not None:
            return g
        if direction == INBOUND:
            p = st.pod
            g = (INBOUND, p.namespace, p.deployment, p.name)
        elif not pod and addr:
            found = self._resolve(addr)
            if found is not None:
                g = (direction, found.namespace, found.deployment, found.name)
            else:
                g = (direction, ns, deploy, pod)
        else:
            g = (direction, ns, deploy, pod)
        if len(st.groups) < 100_000:  # a proxy reporting endless addresses stays bounded
            st.groups[key] = g
        return g

    def _resolve(self, addr: str) -> Pod | None:
        host, sep, port = addr.rpartition(":")
        if not sep:
            return self.inventory.resolve(addr)
        host = host.strip("[]")
        known = port.isascii() and port.isdigit()
        return self.inventory.resolve(host, int(port) if known else None)
