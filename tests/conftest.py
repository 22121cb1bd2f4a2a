"""Which tests share a worker when the suite runs in parallel (``make test`` runs
``pytest -n 2 --dist loadgroup``): those that start the demo mesh or change network
namespaces and iptables run one after another on one worker, as do those sharing
the client tests' Prometheus; the rest spread over both."""

from __future__ import annotations

import pytest

# Paths under tests/, by the group their tests run in.
_GROUPS = {
    "demo/": "mesh",
    "proxy/test_proxy_init_netns.py": "mesh",
    "proxy/test_proxy_init_with_proxy.py": "mesh",
    "proxy/test_transparent_netns.py": "mesh",
    "proxy/test_proxy_init_rules.py": "mesh",
    "client/": "prometheus",
}


# First: xdist reads the groups in its own hook of the same name.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        rel = item.nodeid.removeprefix("tests/")
        for prefix, group in _GROUPS.items():
            if rel.startswith(prefix):
                item.add_marker(pytest.mark.xdist_group(group))
                break
