from hypothesis import given
from hypothesis import strategies as st

from meshtui.model.columns import STAT_COLUMNS, sort_rows
from meshtui.model.stats import StatRow


def row(name: str, rps: float | None, ns: str = "emojivoto") -> StatRow:
    return StatRow("deployment", ns, name, 1, 1, rps=rps, success=None if rps is None else 1.0)


def test_numbers_sort_as_numbers_and_missing_values_go_last_both_ways() -> None:
    rows = [row("a", 9.0), row("b", None), row("c", 10.0), row("d", 100.0)]
    assert [r.name for r in sort_rows(rows, "RPS")] == ["a", "c", "d", "b"]
    assert [r.name for r in sort_rows(rows, "RPS", reverse=True)] == ["d", "c", "a", "b"]


def test_json_uses_linkerd_field_names_and_null_without_traffic() -> None:
    quiet = row("idle", None).to_json()
    assert quiet["rps"] is None and quiet["success"] is None and quiet["latency_ms_p99"] is None
    busy = StatRow("deployment", "ns", "web", 2, 3, success=0.5, rps=4.0, p50_ms=1.0,
                   p95_ms=2.0, p99_ms=3.0, tcp_conn=7).to_json()
    assert busy == {
        "namespace": "ns", "kind": "deployment", "name": "web", "meshed": "2/3",
        "success": 0.5, "rps": 4.0, "latency_ms_p50": 1.0, "latency_ms_p95": 2.0,
        "latency_ms_p99": 3.0, "tcp_open_connections": 7, "tcp_read_bytes_rate": None,
        "tcp_write_bytes_rate": None, "partial": False, "missing_pods": [],
    }
    # A row some of whose proxies did not answer says so, and names them.
    partial = StatRow("deployment", "ns", "web", 1, 2, missing=("web-2",)).to_json()
    assert (partial["partial"], partial["missing_pods"]) == (True, ["web-2"])


rows_st = st.lists(
    st.builds(row, st.text(alphabet="abcdef", min_size=1, max_size=4),
              st.one_of(st.none(), st.floats(0, 1e6))),
    max_size=30,
)


@given(rows_st, st.sampled_from(sorted(STAT_COLUMNS)), st.booleans())
def test_sorting_keeps_every_row_and_orders_present_values(rows, column, reverse) -> None:
    out = sort_rows(rows, column, reverse)
    assert sorted(map(id, out)) == sorted(map(id, rows))
    values = [STAT_COLUMNS[column].raw(r) for r in out if STAT_COLUMNS[column].raw(r) is not None]
    assert values == sorted(values, reverse=reverse)
