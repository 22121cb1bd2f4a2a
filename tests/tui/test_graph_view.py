"""The call graph's drawing of what the layout leaves out: a workload calling itself."""

from __future__ import annotations

from textual.app import App, ComposeResult

from meshtui.model.edges import EdgeRow
from meshtui.tui.graph_view import GraphView


class One(App[None]):
    def compose(self) -> ComposeResult:
        yield GraphView(id="graph")


async def test_a_workload_calling_itself_is_marked_with_its_success() -> None:
    """Pods of one deployment calling one another (gossip, a cache ring) make an edge
    from a box to itself: no arrow can show it, a loop mark with the rate does."""
    app = One()
    async with app.run_test(size=(100, 20)):
        view = app.query_one(GraphView)
        edges = [EdgeRow("deployment", "ns", "web", "ns", "cache", success=1.0),
                 EdgeRow("deployment", "ns", "cache", "ns", "cache", success=0.95)]
        nodes = [(("ns", "web"), "web"), (("ns", "cache"), "cache")]
        view.show(nodes, edges, {i: (e.src_key, e.dst_key) for i, e in enumerate(edges)})
        text = view.render().plain
        assert "↻ 95.00%" in text
        assert "▶" in text  # web's call to cache is still an arrow
