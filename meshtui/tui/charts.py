"""Chart widgets of the dashboard, drawn by :mod:`meshtui.tui.plot`.

A chart is handed its data whole (``show``) and draws it on the next frame;
the drawing is kept until the data or the size change, so a screen
refreshing its status line never pays for re-plotting. Axes carry their
unit on every tick (``12rps``, ``98%``, ``4ms``) and each line has a legend
entry.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

from meshtui.model.units import format_latency_ms
from meshtui.tui.chart_data import (
    Bin,
    Series,
    quantile_bin,
    time_ticks,
    value_ticks,
    y_range,
)
from meshtui.tui.plot import Bar, Grid, Line, bar_chart, line_chart, sparkline


def rgb(color: tuple[int, int, int]) -> str:
    return "rgb({},{},{})".format(*color)


class ChartBase(Widget):
    """A chart widget that re-plots only when what it shows, or its size, has changed.

    It hands Textual finished lines (the line API): a chart is hundreds of
    small coloured spans, and laying those out as text again on every resize
    cost more than plotting them.
    """

    DEFAULT_CSS = """
    ChartBase { height: 1fr; width: 1fr; }
    """

    MIN_SIZE = (20, 6)  # smaller than this, a chart says so instead

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._version = 0
        self._drawn: tuple[Any, ...] | None = None
        self._lines: list[Strip] = []
        self._styles: dict[str, Style] = {}
        self._styles_base: Style | None = None
        self.builds = 0  # how often it really plotted (tests and benchmarks read it)

    def changed(self) -> None:
        self._version += 1
        self.refresh()

    def _style(self, name: str, base: Style) -> Style:
        """The widget's style with ``name`` over it, parsed and combined once."""
        if self._styles_base != base:
            self._styles, self._styles_base = {}, base
        style = self._styles.get(name)
        if style is None:
            style = self._styles[name] = base + (Style.parse(name) if name else Style())
        return style

    def _build(self, width: int, height: int) -> None:
        key = (width, height, self._version, self.app.theme)
        if key == self._drawn:
            return
        base = self.rich_style
        if width >= self.MIN_SIZE[0] and height >= self.MIN_SIZE[1]:
            runs = self.plot(width, height).runs()
        else:
            runs = [[("(too small to draw)"[:width], "dim")]]
        self._lines = [
            Strip([Segment(text, self._style(style, base)) for text, style in line]
                  ).extend_cell_length(width, base).crop(0, width)
            for line in runs]
        self._drawn = key
        self.builds += 1

    def render_line(self, y: int) -> Strip:
        width, height = self.size.width, self.size.height
        self._build(width, height)
        if y < len(self._lines):
            return self._lines[y]
        return Strip.blank(width, self.rich_style)

    def text(self) -> str:
        """What the chart shows, as plain text (tests read it)."""
        return "\n".join(strip.text for strip in self._lines)

    def plot(self, width: int, height: int) -> Grid:
        raise NotImplementedError


class TimeChart(ChartBase):
    """Lines over the last minutes: x in time before now, y in one unit."""

    def __init__(self, title: str, fmt: Callable[[float], str], *, span_s: float = 900,
                 floor: float | None = 0.0, ceiling: float | None = None,
                 minimum_span: float = 1.0, zero: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.title = title
        self.zero = zero  # the axis starts at the floor: rates and latencies read true
        self.fmt = fmt
        self.span_s = span_s
        self.floor = floor
        self.ceiling = ceiling
        self.minimum_span = minimum_span
        self.series: list[Series] = []
        self.headline = ""

    def show(self, series: Sequence[Series], headline: str = "") -> None:
        self.series = list(series)
        self.headline = headline
        self.changed()

    def plot(self, width: int, height: int) -> Grid:
        drawn = [s for s in self.series if s.points]
        headline = self.headline.rstrip(" ·")
        title = self.title + (f" · {headline}" if headline else "")
        if not drawn:
            title += " · no requests"
        lo, hi = y_range(drawn, floor=self.floor, ceiling=self.ceiling,
                         minimum_span=self.minimum_span)
        if self.zero and self.floor is not None:
            lo = self.floor
        ticks = [v for v in value_ticks(lo, hi, max(2, (height - 3) // 3)) if lo <= v <= hi]
        return line_chart(
            [Line(s.label, s.points, rgb(s.color)) for s in drawn], width, height,
            title=title, xlim=(-self.span_s, 0.0),
            xticks=time_ticks(self.span_s, 5 if width >= 60 else 3),
            ylim=(lo, hi), yticks=[(v, self.fmt(v)) for v in ticks])


# Explicit RGB: named colours go through the terminal's 16-colour palette,
# which themes remap.
COLORS = {"rps": (80, 190, 230), "success": (120, 200, 80), "p50": (80, 190, 230),
          "p95": (235, 200, 60), "p99": (230, 80, 80)}
# The distribution's bars: within p50, to p95, to p99, beyond.
BAND_COLORS = ((120, 200, 80), (235, 200, 60), (240, 140, 50), (230, 80, 80))
BAND_NAMES = ("≤ p50", "p50–p95", "p95–p99", "> p99")


class DistributionChart(ChartBase):
    """The current window's requests by latency, in 1-2-5 bins, coloured by quantile band."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bins: list[Bin] = []
        self.quantiles: tuple[float | None, float | None, float | None] = (None, None, None)
        self.headline = ""

    def show(self, bins: Sequence[Bin], p50: float | None, p95: float | None,
             p99: float | None, headline: str = "") -> None:
        self.bins = list(bins)
        self.quantiles = (p50, p95, p99)
        self.headline = headline
        self.changed()

    def bands(self) -> list[int]:
        """For each bin, which band (0..3) its requests are in."""
        marks = [quantile_bin(self.bins, q) for q in self.quantiles]
        out = []
        for i in range(len(self.bins)):
            band = 0
            for k, m in enumerate(marks):
                if m is not None and i > m:
                    band = k + 1
            out.append(band)
        return out

    def band_label(self, band: int) -> str:
        """The legend of a band, with the quantile that bounds it: ``p50–p95 (7ms)``."""
        bound = self.quantiles[min(band, 2)]
        if bound is None:
            return BAND_NAMES[band]
        return f"{BAND_NAMES[band]} ({format_latency_ms(bound)})"

    def plot(self, width: int, height: int) -> Grid:
        title = "latency distribution" + (f" · {self.headline}" if self.headline else "")
        if not self.bins:
            return bar_chart([], width, height, title=title + " · no requests in the window",
                             yticks=[], ymax=1.0)
        bands = self.bands()
        top = max(b.count for b in self.bins) * 1.1
        ticks = [v for v in value_ticks(0, top, max(2, (height - 4) // 3)) if v <= top]
        return bar_chart(
            [Bar(b.label, b.count, rgb(BAND_COLORS[band])) for b, band in zip(
                self.bins, bands, strict=True)],
            width, height, title=title, ymax=top, yticks=[(v, f"{v:g}") for v in ticks],
            legend=[(self.band_label(band), rgb(BAND_COLORS[band]))
                    for band in sorted(set(bands))])


class Spark(ChartBase):
    """A sparkline: the last minutes of one figure, as bars (``data`` as on Textual's)."""

    MIN_SIZE = (1, 1)

    def __init__(self, data: Sequence[float] = (), *, style: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._data: list[float] = list(data)
        self.bar_style = style

    @property
    def data(self) -> list[float]:
        return self._data

    @data.setter
    def data(self, values: Sequence[float]) -> None:
        values = list(values)
        if values != self._data:
            self._data = values
            self.changed()

    def plot(self, width: int, height: int) -> Grid:
        return sparkline(self._data, width, height, self.bar_style or "rgb(80,190,230)")
