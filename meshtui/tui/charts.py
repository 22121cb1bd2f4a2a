"""Chart widgets of the dashboard, drawn with plotext (through textual-plotext).

A chart is handed its data whole (``show``) and draws it on the next frame;
the drawing is kept until the data, the size or the theme change, so a
screen refreshing its status line never pays for re-plotting. Axes carry
their unit on every tick (``12rps``, ``98%``, ``4ms``) and each line has a
legend entry.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rich.text import Text
from textual.app import RenderResult
from textual_plotext import PlotextPlot

from meshtui.model.units import format_latency_ms
from meshtui.tui.chart_data import (
    Bin,
    Series,
    quantile_bin,
    time_ticks,
    value_ticks,
    y_range,
)


def fit_title(title: str, width: int) -> str:
    """The title cut to what plotext will draw (it leaves out a title wider than
    its plot area, about the width less the y labels)."""
    room = max(width - 12, 8)
    return title if len(title) <= room else title[: room - 1] + "…"


class _CachedPlot(PlotextPlot):
    """A plotext widget that re-plots only when what it shows has changed."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._version = 0
        self._drawn: tuple[Any, ...] | None = None
        self._text: Text = Text()
        self.builds = 0  # how often it really plotted (tests and benchmarks read it)

    def changed(self) -> None:
        self._version += 1
        self.refresh()

    def render(self) -> RenderResult:
        w, h = self.size.width, self.size.height
        key = (w, h, self.app.theme, self._version)
        if key == self._drawn:
            return self._text
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.plotsize(w, h)
        plt._set_size(w, h)
        plt.theme(self._get_plotext_theme_name(self.app.theme))
        if w >= 20 and h >= 6:
            self.plot(w, h)
            self._text = Text.from_ansi(plt.build())
        else:
            self._text = Text("(too small to draw)", style="dim")
        self._text.no_wrap = True
        self._drawn = key
        self.builds += 1
        return self._text

    def plot(self, width: int, height: int) -> None:
        raise NotImplementedError


class TimeChart(_CachedPlot):
    """Lines over the last minutes: x in time before now, y in one unit."""

    def __init__(self, title: str, fmt: Callable[[float], str], *, span_s: float = 900,
                 floor: float | None = 0.0, ceiling: float | None = None,
                 minimum_span: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.title = title
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

    def plot(self, width: int, height: int) -> None:
        plt = self.plt
        drawn = [s for s in self.series if s.points]
        for s in drawn:
            xs = [p[0] for p in s.points]
            ys = [p[1] for p in s.points]
            plt.plot(xs, ys, label=s.label, marker="braille", color=s.color)
        headline = self.headline.rstrip(" ·")
        title = self.title + (f" · {headline}" if headline else "")
        if not drawn:
            title += " · no requests"
        plt.title(fit_title(title, width))
        plt.xlim(-self.span_s, 0)
        xt = time_ticks(self.span_s, 5 if width >= 60 else 3)
        plt.xticks([x for x, _ in xt], [label for _, label in xt])
        lo, hi = y_range(drawn, floor=self.floor, ceiling=self.ceiling,
                         minimum_span=self.minimum_span)
        ticks = [v for v in value_ticks(lo, hi, max(2, (height - 5) // 3)) if lo <= v <= hi]
        plt.ylim(lo, hi)
        plt.yticks(ticks, [self.fmt(v) for v in ticks])


# Explicit RGB: plotext's colour names go through the terminal's 16-colour
# palette, which themes remap (its "yellow" came out blue).
COLORS = {"rps": (80, 190, 230), "success": (120, 200, 80), "p50": (80, 190, 230),
          "p95": (235, 200, 60), "p99": (230, 80, 80)}
# The distribution's bars: within p50, to p95, to p99, beyond.
BAND_COLORS = ((120, 200, 80), (235, 200, 60), (240, 140, 50), (230, 80, 80))
BAND_NAMES = ("≤ p50", "p50–p95", "p95–p99", "> p99")


class DistributionChart(_CachedPlot):
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

    def plot(self, width: int, height: int) -> None:
        plt = self.plt
        title = "latency distribution" + (f" · {self.headline}" if self.headline else "")
        if not self.bins:
            plt.title(title + " · no requests in the window")
            plt.xticks([], [])
            plt.yticks([], [])
            return
        plt.title(fit_title(title, width))
        bands = self.bands()
        for band in range(4):
            xs = [i for i, b in enumerate(bands) if b == band]
            if xs:
                plt.bar(xs, [self.bins[i].count for i in xs], color=BAND_COLORS[band],
                        label=self.band_label(band), width=0.8)
        # Every bin labelled when they fit, else every other one.
        every = 1 if width - 8 >= 7 * len(self.bins) else 2
        labelled = range(0, len(self.bins), every)
        plt.xticks([float(i) for i in labelled], [self.bins[i].label for i in labelled])
        plt.xlim(-0.6, len(self.bins) - 0.4)
        top = max(b.count for b in self.bins)
        ticks = [v for v in value_ticks(0, top * 1.1, max(2, (height - 5) // 3))
                 if v <= top * 1.1]
        plt.ylim(0, top * 1.1)
        plt.yticks(ticks, [f"{v:g}" for v in ticks])
