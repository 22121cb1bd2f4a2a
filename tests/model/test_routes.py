"""Route aggregation for `meshtui top`."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tapkit import EMOJI, OUTSIDE, WEB, joined, steps

from meshtui.model.columns import ROUTE_COLUMNS, route_columns, route_json
from meshtui.model.routes import (
    GROUPS,
    SORT_KEYS,
    RouteKey,
    RouteTable,
    normalize_path,
    parse_by,
)
from meshtui.model.tap import Direction, RequestTracker


def test_counts_success_and_best_worst_last_per_route() -> None:
    table = RouteTable()
    for total, status in ((3000, 200), (1000, 200), (9000, 500), (2000, 200)):
        assert table.observe(joined(total_us=total, latency_us=500, status=status))
    table.observe(joined(path="/api/vote", total_us=700))
    rows = table.snapshot()
    assert len(rows) == 2
    top = rows[0]
    assert top.key == RouteKey("deploy/web", "deploy/emoji", "GET", "/api/list",
                               "emojivoto", "emojivoto", Direction.OUTBOUND)
    assert (top.count, top.successes) == (4, 3)
    assert top.success_rate == pytest.approx(0.75)
    assert (top.best_us, top.worst_us, top.last_us) == (1000, 9000, 2000)
    assert rows[1].key.path == "/api/vote" and rows[1].count == 1


def test_query_strings_do_not_split_a_route() -> None:
    table = RouteTable()
    for q in ("?page=1", "?page=2", "", "#frag"):
        table.observe(joined(path="/api/list" + q))
    (row,) = table.snapshot()
    assert row.count == 4 and row.key.path == "/api/list"
    assert normalize_path("/a/b?c=d?e") == "/a/b"
    assert normalize_path("") == ""


def test_routes_differ_by_method_peer_and_direction() -> None:
    table = RouteTable()
    table.observe(joined())
    table.observe(joined(method="POST"))
    table.observe(joined(src=OUTSIDE))
    table.observe(joined(dst=WEB, src=EMOJI))
    table.observe(joined(direction=Direction.INBOUND))  # the same request at the other proxy
    keys = {r.key for r in table.snapshot()}
    assert len(keys) == 5
    assert any(k.source == "192.0.2.7" and k.source_namespace == "" for k in keys)


def test_grpc_and_reset_outcomes_count_as_linkerd_does() -> None:
    table = RouteTable()
    table.observe(joined(grpc_status=0))
    table.observe(joined(grpc_status=13))
    table.observe(joined(reset_code=1))
    (row,) = table.snapshot()
    assert (row.count, row.successes) == (3, 1)


def test_unfinished_or_headless_requests_are_skipped_and_counted() -> None:
    table = RouteTable()
    tracker = RequestTracker()
    req, rsp, end = steps()
    assert not table.observe(tracker.observe(req))  # not finished
    midway = RequestTracker()
    midway.observe(rsp)
    assert not table.observe(midway.observe(end))  # start never seen
    lone_end = RequestTracker().observe(end)
    assert not table.observe(lone_end)  # neither start nor outcome
    assert table.skipped == 3 and len(table) == 0


def test_least_recently_seen_route_makes_room_and_is_counted() -> None:
    table = RouteTable(max_routes=2)
    table.observe(joined(path="/a"))
    table.observe(joined(path="/b"))
    table.observe(joined(path="/a"))  # /a is now the most recent
    table.observe(joined(path="/c"))
    assert {r.key.path for r in table.snapshot()} == {"/a", "/c"}
    assert table.evicted == 1
    with pytest.raises(ValueError, match="max_routes"):
        RouteTable(max_routes=0)


def test_sorting_by_any_column_either_way() -> None:
    table = RouteTable()
    for path, n, total in (("/a", 3, 500), ("/b", 1, 9000), ("/c", 2, 100)):
        for _ in range(n):
            table.observe(joined(path=path, total_us=total, latency_us=50))

    def paths(rows: tuple) -> list[str]:
        return [r.key.path for r in rows]

    assert paths(table.snapshot()) == ["/a", "/c", "/b"]
    assert paths(table.snapshot("count", reverse=False)) == ["/b", "/c", "/a"]
    assert paths(table.snapshot("worst")) == ["/b", "/a", "/c"]
    assert paths(table.snapshot("path", reverse=False)) == ["/a", "/b", "/c"]


def test_snapshot_rows_are_frozen_and_detached() -> None:
    table = RouteTable()
    table.observe(joined())
    (before,) = table.snapshot()
    table.observe(joined(total_us=99_999))
    assert before.count == 1 and before.worst_us == 1500
    with pytest.raises(AttributeError):
        before.count = 5  # type: ignore[misc]
    assert route_json(before) == {
        "source": "deploy/web", "sourceNamespace": "emojivoto", "destination": "deploy/emoji",
        "destinationNamespace": "emojivoto", "direction": "outbound", "method": "GET",
        "path": "/api/list", "count": 1, "success": 1.0, "best_ms": 1.5, "worst_ms": 1.5,
        "last_ms": 1.5,
    }


observations = st.lists(
    st.tuples(st.sampled_from(["/a", "/b", "/c", "/d", "/e"]), st.sampled_from(["GET", "PUT"]),
              st.integers(1, 10**9), st.booleans()),
    max_size=120,
)


def recount(obs: list, max_routes: int) -> tuple[dict, int]:
    """A plain model of the table: a recency list and each live route's observations."""
    order: list[tuple[str, str]] = []
    seen: dict[tuple[str, str], list[tuple[int, bool]]] = {}
    evicted = 0
    for path, method, lat, ok in obs:
        key = (method, path)
        if key in seen:
            order.remove(key)
        elif len(order) == max_routes:
            del seen[order.pop(0)]
            evicted += 1
        order.append(key)
        seen.setdefault(key, []).append((lat, ok))
    return seen, evicted


@settings(max_examples=60, deadline=None)
@given(observations, st.integers(1, 12), st.sampled_from(sorted(SORT_KEYS)), st.booleans())
def test_table_agrees_with_a_plain_recount(obs, max_routes, sort_key, reverse) -> None:
    table = RouteTable(max_routes=max_routes)
    for path, method, lat, ok in obs:
        table.add(RouteKey("s", "d", method, path), lat, ok)
    rows = table.snapshot(sort_key, reverse)
    expected, evicted = recount(obs, max_routes)
    assert table.evicted == evicted
    assert {(r.key.method, r.key.path) for r in rows} == set(expected)
    for row in rows:
        mine = expected[(row.key.method, row.key.path)]
        assert row.count == len(mine)
        assert row.successes == sum(ok for _, ok in mine)
        assert row.best_us == min(lat for lat, _ in mine)
        assert row.worst_us == max(lat for lat, _ in mine)
        assert row.last_us == mine[-1][0]
    values = [SORT_KEYS[sort_key](r) for r in rows]
    assert values == sorted(values, reverse=reverse)


def test_grouping_merges_routes_and_keeps_their_figures() -> None:
    table = RouteTable()
    table.observe(joined(path="/a", status=200, total_us=3000, t0=1))
    table.observe(joined(path="/b", status=500, total_us=1000, t0=3))
    table.observe(joined(path="/a", status=503, total_us=5000, t0=2, authority="x:80"))
    (one,) = table.snapshot(by=("src", "dst"))
    assert (one.count, one.successes) == (3, 1)
    assert (one.best_us, one.worst_us, one.last_us) == (1000, 5000, 1000)  # /b came last
    assert one.key.path == "" and one.key.status == 0 and one.key.source == "deploy/web"
    by_status = {r.key.status: r.count for r in table.snapshot(by=("status",))}
    assert by_status == {200: 1, 500: 1, 503: 1}
    by_path = {(r.key.path, r.key.authority): r.count
               for r in table.snapshot(by=("path", "authority"))}
    assert by_path == {("/a", "emoji-svc.emojivoto:8080"): 1, ("/b", "emoji-svc.emojivoto:8080"): 1,
                       ("/a", "x:80"): 1}
    assert len(table.snapshot(by=GROUPS)) == 3
    # The default grouping is the one top always had.
    assert {r.key.path for r in table.snapshot()} == {"/a", "/b"}


def test_by_names_groups_and_orders_them_as_the_columns() -> None:
    assert parse_by("status, SRC,path") == ("src", "path", "status")
    for bad in ("", "src,colour", ","):
        with pytest.raises(ValueError, match="--by takes some of"):
            parse_by(bad)
    assert route_columns(("status", "dst")) == [
        "DESTINATION", "STATUS", "COUNT", "BEST", "WORST", "LAST", "SUCCESS"]
    assert route_columns(("src",), wide=True)[:3] == ["SOURCE", "SRC_NS", "DIRECTION"]


def test_json_holds_what_the_wide_table_shows() -> None:
    table = RouteTable()
    table.observe(joined(status=404))
    (row,) = table.snapshot(by=("dst", "status"))
    j = route_json(row, ("dst", "status"))
    assert j == {"destination": "deploy/emoji", "destinationNamespace": "emojivoto",
                 "direction": "outbound", "status": 404, "count": 1, "best_ms": 1.5,
                 "worst_ms": 1.5, "last_ms": 1.5, "success": 1.0}
    shown = route_columns(("dst", "status"), wide=True)
    assert sum(len(ROUTE_COLUMNS[c].json) for c in shown) == len(j)
