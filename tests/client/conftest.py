"""The client tests' shared Prometheus (the kit itself is promkit.py, a module with a
name of its own: every test folder has a conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from promkit import WINDOW, Exporter, Prometheus, Route, free_port


@pytest.fixture(scope="session")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    """web (2 pods: 8+2 and 10 rps at 4 ms, web-1 also calling voting at 5 rps over mTLS) and
    voting (one pod answering at 5 rps in 30 ms, one whose proxy is gone)."""
    exporters = [
        Exporter([Route(8, 2, 4.0), Route(5, 0, 30.0, 1, {"dst_namespace": "emojivoto",
                                                           "dst_deployment": "voting",
                                                           "tls": "true"})]),
        Exporter([Route(10, 0, 4.0)]),
        Exporter([Route(5, 0, 30.0)]),
    ]
    pods = [("web", "web-1"), ("web", "web-2"), ("voting", "voting-1")]
    targets = {e.address: {"namespace": "emojivoto", "deployment": d, "pod": p}
               for e, (d, p) in zip(exporters, pods, strict=True)}
    targets[f"127.0.0.1:{free_port()}"] = {"namespace": "emojivoto", "deployment": "voting",
                                           "pod": "voting-2"}
    p = Prometheus(tmp_path_factory.mktemp("prom"), targets)
    try:
        # A whole window of scrapes (one a second), so that increase() over it is not
        # extrapolated from a few.
        def scraped_long_enough() -> bool:
            got = p.query(f"min(count_over_time(up[1m])) >= {WINDOW + 3}")
            return bool(got) and len(p.query("up")) == 4

        p.wait(scraped_long_enough, 40, "a window of scrapes")
        yield p
    finally:
        p.close()
        for e in exporters:
            e.close()


