"""A namespace's call graph laid out on a character grid, with no terminal.

Workloads are boxes in layers, left to right: a workload nobody in the graph
calls is in the first layer, and every other one a layer to the right of its
furthest caller (calls that close a cycle are left out when layering, so a
cycle still lays out). Within a layer boxes are ordered by where their callers
sit, which keeps most arrows from crossing. Each call is an orthogonal path
from the right side of its caller to the left side of its callee, turning in
the gap between layers; the widget draws the paths and colours them.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from itertools import pairwise

BOX_HEIGHT = 3  # a border line, the name, a border line
ROW_GAP = 1
MARGIN = 3  # left of the first layer, right of the last: room for calls going back
COL_GAP = 14  # room for each layer's arrows to turn apart and a success rate by each head


@dataclass(frozen=True, slots=True)
class Box:
    key: Hashable
    label: str
    x: int
    y: int
    width: int
    layer: int

    @property
    def mid_y(self) -> int:
        return self.y + BOX_HEIGHT // 2

    def contains(self, x: int, y: int) -> bool:
        return self.x <= x < self.x + self.width and self.y <= y < self.y + BOX_HEIGHT


@dataclass(frozen=True, slots=True)
class Route:
    src: Hashable
    dst: Hashable
    points: tuple[tuple[int, int], ...]  # corners, first at the caller, last at the callee


@dataclass(frozen=True, slots=True)
class Layout:
    boxes: tuple[Box, ...]
    routes: tuple[Route, ...]
    width: int
    height: int

    def box(self, key: Hashable) -> Box | None:
        return next((b for b in self.boxes if b.key == key), None)

    def box_at(self, x: int, y: int) -> Box | None:
        return next((b for b in self.boxes if b.contains(x, y)), None)


def layers(nodes: Sequence[Hashable], calls: Sequence[tuple[Hashable, Hashable]]
           ) -> dict[Hashable, int]:
    """Each node's layer: 0 for those no one calls, else one past its furthest caller."""
    out_of: dict[Hashable, list[Hashable]] = {n: [] for n in nodes}
    for a, b in calls:
        if a != b and a in out_of and b in out_of:
            out_of[a].append(b)
    # Depth-first from every node in order; an edge to a node still on the path
    # closes a cycle and is dropped, leaving a graph that has an order.
    order: list[Hashable] = []
    state: dict[Hashable, int] = {}  # 1 on the path, 2 done
    kept: list[tuple[Hashable, Hashable]] = []
    for root in nodes:
        if root in state:
            continue
        stack = [(root, iter(out_of[root]))]
        state[root] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[node] = 2
                order.append(node)
                stack.pop()
            elif state.get(nxt) == 1:
                continue
            else:
                kept.append((node, nxt))
                if nxt not in state:
                    state[nxt] = 1
                    stack.append((nxt, iter(out_of[nxt])))
    layer = dict.fromkeys(nodes, 0)
    into: dict[Hashable, list[Hashable]] = {n: [] for n in nodes}
    for a, b in kept:
        into[b].append(a)
    for n in reversed(order):  # callers before callees
        for a in into[n]:
            layer[n] = max(layer[n], layer[a] + 1)
    return layer


def layout(nodes: Sequence[tuple[Hashable, str]], calls: Sequence[tuple[Hashable, Hashable]]
           ) -> Layout:
    """Boxes for ``(key, label)`` nodes and a route per ``(caller, callee)`` call."""
    keys = [k for k, _ in nodes]
    labels = dict(nodes)
    layer = layers(keys, calls)
    columns: list[list[Hashable]] = [[] for _ in range(max(layer.values(), default=-1) + 1)]
    for k in keys:
        columns[layer[k]].append(k)
    # Order each layer by the mean row of its callers (the first keeps its order).
    row: dict[Hashable, float] = {k: i for i, k in enumerate(columns[0])} if columns else {}
    given = {k: i for i, k in enumerate(keys)}
    for col in columns[1:]:
        def mean_caller(k: Hashable) -> tuple[float, int]:
            rows = [row[a] for a, b in calls if b == k and a in row]
            return (sum(rows) / len(rows) if rows else float("inf"), given[k])
        col.sort(key=mean_caller)
        row.update({k: i for i, k in enumerate(col)})
    boxes: dict[Hashable, Box] = {}
    # A call back to an earlier layer runs left of its callee and right of its
    # caller: margins on both sides keep it on the grid.
    x = MARGIN if columns else 0
    for i, col in enumerate(columns):
        width = max(len(labels[k]) for k in col) + 4
        for j, k in enumerate(col):
            boxes[k] = Box(k, labels[k], x, j * (BOX_HEIGHT + ROW_GAP), width, i)
        x += width + COL_GAP
    routes = tuple(_route(boxes[a], boxes[b], n) for n, (a, b) in enumerate(calls)
                   if a in boxes and b in boxes and a != b)
    height = max((b.y + BOX_HEIGHT for b in boxes.values()), default=0)
    width = x - COL_GAP + MARGIN if columns else 0
    return Layout(tuple(boxes[k] for k in keys), routes, width, height)


def _route(a: Box, b: Box, n: int) -> Route:
    """Out of the caller's right side, down or up in the gap, into the callee's left side.

    A call back to an earlier layer turns in the gap right of its caller, runs
    below every box row it passes, and comes back into the callee from the left.
    """
    start = (a.x + a.width, a.mid_y)
    end = (b.x - 1, b.mid_y)
    if b.x > a.x:
        # Spread the turns of a gap's calls so that they do not overlap.
        turn = a.x + a.width + 2 + n % max(1, COL_GAP - 4)
        turn = min(turn, b.x - 3)
        return Route(a.key, b.key, (start, (turn, start[1]), (turn, end[1]), end))
    below = max(a.y, b.y) + BOX_HEIGHT
    right, left = a.x + a.width + 2, b.x - 3
    return Route(a.key, b.key, (start, (right, start[1]), (right, below), (left, below),
                                (left, end[1]), end))


def cells(route: Route) -> list[tuple[int, int, str]]:
    """The characters of a route: lines, corners, and an arrowhead at the callee."""
    pts = route.points
    out: dict[tuple[int, int], str] = {}
    for (x0, y0), (x1, y1) in pairwise(pts):
        if y0 == y1:
            for x in range(min(x0, x1), max(x0, x1) + 1):
                out[(x, y0)] = "─"
        else:
            for y in range(min(y0, y1), max(y0, y1) + 1):
                out[(x0, y)] = "│"
    for i in range(1, len(pts) - 1):
        (px, py), (x, y), (nx, ny) = pts[i - 1], pts[i], pts[i + 1]
        if (px, py) == (x, y) or (x, y) == (nx, ny):
            continue
        dx = nx - x if ny == y else px - x
        dy = ny - y if nx == x else py - y
        right, down = dx > 0, dy > 0
        out[(x, y)] = {(True, True): "┌", (True, False): "└",
                       (False, True): "┐", (False, False): "┘"}[(right, down)]
    out[pts[-1]] = "▶"
    return [(x, y, c) for (x, y), c in out.items()]
