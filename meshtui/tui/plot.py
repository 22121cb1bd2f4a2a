"""Charts drawn in text: braille lines and block bars, with axes, ticks and a legend.

Pure functions from data and a size to a :class:`Grid` of styled characters
(``.runs()`` for a widget's lines, ``.text()`` for a rich ``Text``): a 160×20 chart of three
90-point lines costs about a millisecond, so a chart can be redrawn whenever
its pane changes size without stalling the app, and is tested without a terminal.

A braille character holds a 2×4 grid of dots, so a ``w``×``h`` plot area has
``2w``×``4h`` dots; a cell shows the colour of the last series drawn through it.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text

AXIS = "grey50"
BLOCKS = " ▁▂▃▄▅▆▇█"
# The bit of dot (dx, dy) in a braille cell: _DOT[dy][dx].
_DOT = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))

Point = tuple[float, float]
Tick = tuple[float, str]


@dataclass(frozen=True)
class Line:
    """One series of a line chart; ``style`` is a rich colour (``"rgb(80,190,230)"``)."""

    label: str
    points: Sequence[Point]
    style: str


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    style: str


class Grid:
    """Characters and their styles, turned into one ``Text`` at the end."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.chars = [[" "] * width for _ in range(height)]
        self.styles = [[""] * width for _ in range(height)]

    def put(self, x: int, y: int, text: str, style: str = "") -> None:
        if not 0 <= y < self.height:
            return
        for i, ch in enumerate(text):
            if 0 <= x + i < self.width:
                self.chars[y][x + i] = ch
                self.styles[y][x + i] = style

    def runs(self) -> list[list[tuple[str, str]]]:
        """Each line as runs of (text, style); blanks are runs of their own, unstyled.

        Blanks apart because SVG exports drop whitespace-only spans and the
        leading spaces of others, which would shift what follows them.
        """
        out = []
        for y in range(self.height):
            chars, styles = self.chars[y], self.styles[y]
            line: list[tuple[str, str]] = []
            start = 0
            for x in range(1, self.width + 1):
                if x == self.width or styles[x] != styles[start] or (
                        (chars[x] == " ") != (chars[start] == " ")):
                    run = "".join(chars[start:x])
                    line.append((run, "" if run.isspace() else styles[start]))
                    start = x
            out.append(line)
        return out

    def text(self) -> Text:
        out = Text(no_wrap=True, overflow="crop")
        for y, line in enumerate(self.runs()):
            if y:
                out.append("\n")
            for run, style in line:
                out.append(run, style=style or None)
        return out


class Braille:
    """A dot canvas of ``width``×``height`` cells (``2w``×``4h`` dots)."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.bits = [[0] * width for _ in range(height)]
        self.style = [[""] * width for _ in range(height)]

    def dot(self, px: int, py: int, style: str) -> None:
        cx, cy = px >> 1, py >> 2
        if 0 <= cx < self.width and 0 <= cy < self.height:
            self.bits[cy][cx] |= _DOT[py & 3][px & 1]
            self.style[cy][cx] = style

    def line(self, x0: float, y0: float, x1: float, y1: float, style: str) -> None:
        # One dot per step along the longer axis; inlined: a resized dashboard
        # draws tens of thousands of dots.
        steps = max(int(max(abs(x1 - x0), abs(y1 - y0))), 1)
        sx, sy = (x1 - x0) / steps, (y1 - y0) / steps
        bits, styles, width, height = self.bits, self.style, self.width, self.height
        x, y = x0 + 0.5, y0 + 0.5
        for _ in range(steps + 1):
            px, py = int(x), int(y)
            cx, cy = px >> 1, py >> 2
            if 0 <= cx < width and 0 <= cy < height:
                bits[cy][cx] |= _DOT[py & 3][px & 1]
                styles[cy][cx] = style
            x += sx
            y += sy

    def onto(self, grid: Grid, left: int, top: int) -> None:
        for cy in range(self.height):
            for cx in range(self.width):
                if self.bits[cy][cx]:
                    grid.put(left + cx, top + cy, chr(0x2800 + self.bits[cy][cx]),
                             self.style[cy][cx])


def _legend(grid: Grid, y: int, items: Sequence[tuple[str, str]], right: int) -> int:
    """Legend entries (``━ label``) right-aligned to ``right``; returns where they start."""
    width = sum(len(label) + 3 for label, _ in items)
    x = max(right - width, 0)
    start = x
    for label, style in items:
        grid.put(x, y, "━", style)
        grid.put(x + 2, y, label, "")
        x += len(label) + 3
    return start


def _title(grid: Grid, title: str, room: int) -> None:
    if room <= 1:
        return
    if len(title) > room:
        title = title[: room - 1] + "…"
    grid.put(0, 0, title, "bold")


def _y_axis(grid: Grid, ticks: Sequence[Tick], lo: float, hi: float, top: int,
            rows: int) -> int:
    """Tick labels and the axis line; returns the column of the axis."""
    label_w = max((len(label) for _, label in ticks), default=0)
    axis_x = label_w + 1
    for row in range(rows):
        grid.put(axis_x, top + row, "│", AXIS)
    span = (hi - lo) or 1.0
    for v, label in ticks:
        row = round((hi - v) / span * (rows - 1))
        if 0 <= row < rows:
            grid.put(label_w - len(label), top + row, label, AXIS)
            grid.put(axis_x, top + row, "┤", AXIS)
    return axis_x


def _x_labels(grid: Grid, y: int, placed: Sequence[tuple[int, str]], left: int,
              right: int) -> None:
    """Labels centred under their columns, kept inside [left, right) and apart."""
    free = left
    for x, label in placed:
        start = min(max(x - len(label) // 2, left), right - len(label))
        if start >= free:
            grid.put(start, y, label, AXIS)
            free = start + len(label) + 1


def line_chart(lines: Sequence[Line], width: int, height: int, *, title: str,
               xlim: tuple[float, float], xticks: Sequence[Tick], ylim: tuple[float, float],
               yticks: Sequence[Tick]) -> Grid:
    """Title and legend on top, y labels at the left, x labels below; lines in braille.

    Consecutive points further apart than 2.5 times the closest pair are not
    joined: a stretch without data shows as a gap, not as a made-up slope.
    """
    grid = Grid(width, height)
    legend_x = _legend(grid, 0, [(ln.label, ln.style) for ln in lines], width - 1)
    _title(grid, title, legend_x - 2 if lines else width)
    top, rows = 1, height - 3
    axis_x = _y_axis(grid, yticks, ylim[0], ylim[1], top, rows)
    left = axis_x + 1
    cols = width - left - 1
    if rows < 1 or cols < 2:
        return grid
    xlo, xhi = xlim
    ylo, yhi = ylim
    xspan, yspan = (xhi - xlo) or 1.0, (yhi - ylo) or 1.0
    dots_x, dots_y = cols * 2 - 1, rows * 4 - 1
    canvas = Braille(cols, rows)
    for ln in lines:
        pts = [((x - xlo) / xspan * dots_x, (yhi - min(max(y, ylo), yhi)) / yspan * dots_y, x)
               for x, y in ln.points if xlo <= x <= xhi]
        gaps = [b[2] - a[2] for a, b in itertools.pairwise(pts) if b[2] > a[2]]
        join = min(gaps) * 2.5 if gaps else 0.0
        for a, b in itertools.pairwise(pts):
            if b[2] - a[2] <= join:
                canvas.line(a[0], a[1], b[0], b[1], ln.style)
            else:
                canvas.dot(round(b[0]), round(b[1]), ln.style)
        if pts:
            canvas.dot(round(pts[0][0]), round(pts[0][1]), ln.style)
    canvas.onto(grid, left, top)
    axis_y = top + rows
    grid.put(axis_x, axis_y, "└" + "─" * cols, AXIS)
    placed = []
    for x, label in xticks:
        col = left + round((x - xlo) / xspan * (cols - 1))
        grid.put(col, axis_y, "┬", AXIS)
        placed.append((col, label))
    _x_labels(grid, axis_y + 1, placed, left - 1, width)
    return grid


def bar_chart(bars: Sequence[Bar], width: int, height: int, *, title: str,
              yticks: Sequence[Tick], ymax: float, legend: Sequence[tuple[str, str]] = ()
              ) -> Grid:
    """Vertical bars in eighths of a cell, labels under them, the legend on the last line."""
    grid = Grid(width, height)
    _title(grid, title, width)
    bottom_rows = 3 if legend else 2
    top, rows = 1, height - 1 - bottom_rows
    axis_x = _y_axis(grid, yticks, 0.0, ymax, top, rows)
    left = axis_x + 1
    cols = width - left - 1
    if rows < 1 or not bars or cols < len(bars):
        return grid
    slot = cols // len(bars)
    bar_w = max(slot - 1, 1)
    axis_y = top + rows
    grid.put(axis_x, axis_y, "└" + "─" * cols, AXIS)
    placed = []
    for i, bar in enumerate(bars):
        x = left + i * slot + (1 if slot > 2 else 0)
        eighths = round(bar.value / ymax * rows * 8) if ymax > 0 else 0
        if bar.value > 0:
            eighths = max(eighths, 1)  # a bin with any request shows
        for row in range(rows):
            fill = min(max(eighths - row * 8, 0), 8)
            if fill:
                grid.put(x, axis_y - 1 - row, BLOCKS[fill] * bar_w, bar.style)
        placed.append((x + bar_w // 2, bar.label))
    # Every label when they fit, else every other one.
    widest = max(len(b.label) for b in bars)
    every = 1 if widest < slot else 2
    _x_labels(grid, axis_y + 1, placed[::every], left, width)
    if legend:
        x = left
        for label, style in legend:
            grid.put(x, height - 1, "■", style)
            grid.put(x + 2, height - 1, label, "")
            x += len(label) + 4
    return grid


def sparkline(values: Sequence[float], width: int, height: int, style: str) -> Grid:
    """Bars in eighths of a cell, newest at the right, scaled from the smallest value
    to the largest; more values than columns are grouped, each column their largest."""
    grid = Grid(width, height)
    if width < 1 or height < 1 or not values:
        return grid
    if len(values) > width:
        size = len(values) / width
        cols = [max(values[int(i * size): max(int((i + 1) * size), int(i * size) + 1)])
                for i in range(width)]
    else:
        cols = list(values)
    lo, hi = min(cols), max(cols)
    levels = height * 8
    left = width - len(cols)
    for i, v in enumerate(cols):
        # Never below one eighth: every sample stays visible.
        eighths = levels if hi == lo else 1 + round((v - lo) / (hi - lo) * (levels - 1))
        for row in range(height):
            fill = min(max(eighths - row * 8, 0), 8)
            if fill:
                grid.put(left + i, height - 1 - row, BLOCKS[fill], style)
    return grid
