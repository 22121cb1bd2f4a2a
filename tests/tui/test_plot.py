"""The text charts (meshtui.tui.plot): what a reader of the chart would check."""

from __future__ import annotations

from meshtui.tui.plot import BLOCKS, Bar, Line, bar_chart, line_chart

XT = [(-900.0, "-15m"), (-450.0, "-7m"), (0.0, "now")]
YT = [(0.0, "0ms"), (10.0, "10ms"), (20.0, "20ms")]


def chart(lines: list[Line], width: int = 60, height: int = 14) -> list[str]:
    grid = line_chart(lines, width, height, title="latency · web", xlim=(-900.0, 0.0),
                      xticks=XT, ylim=(0.0, 20.0), yticks=YT)
    return grid.text().plain.split("\n")


def dots(row: str) -> list[int]:
    """Columns holding braille dots."""
    return [i for i, ch in enumerate(row) if 0x2801 <= ord(ch) <= 0x28FF]


def test_every_line_is_the_chart_width_and_title_legend_axes_are_placed() -> None:
    rows = chart([Line("p50", [(-900.0, 5.0), (0.0, 5.0)], "red"),
                  Line("p99", [(-900.0, 15.0), (0.0, 15.0)], "blue")])
    assert len(rows) == 14 and all(len(r) == 60 for r in rows)
    assert rows[0].startswith("latency · web")
    assert rows[0].endswith("━ p50 ━ p99  ")  # a blank column before the next pane
    # y labels: the top tick on the first plot row, 0 on the last, right-aligned to the axis
    assert rows[1].startswith("20ms ┤") and rows[11].startswith(" 0ms ┤")
    assert rows[12].startswith("     └┬")
    assert rows[13].lstrip().startswith("-15m") and rows[13].rstrip().endswith("now")


def test_a_flat_line_is_drawn_on_one_row_across_the_whole_span() -> None:
    rows = chart([Line("p50", [(-900.0 + 10 * i, 10.0) for i in range(91)], "red")])
    marked = [y for y, r in enumerate(rows[1:12], start=1) if dots(r)]
    assert len(marked) == 1
    row = rows[marked[0]]
    assert dots(row)[0] == 6 and dots(row)[-1] == 58  # from the axis to the right edge


def test_a_rising_line_goes_from_bottom_left_to_top_right() -> None:
    rows = chart([Line("rps", [(-900.0, 0.0), (0.0, 20.0)], "red")])
    plot = rows[1:12]
    assert dots(plot[-1])[0] == 6  # bottom row starts at the left
    assert dots(plot[0])[-1] == 58  # top row ends at the right
    # every plot row is crossed: the segment is joined, not two dots
    assert all(dots(r) for r in plot)


def test_a_stretch_without_data_is_a_gap_not_a_slope() -> None:
    early = [(-900.0 + 10 * i, 5.0) for i in range(10)]
    late = [(-100.0 + 10 * i, 15.0) for i in range(11)]
    rows = chart([Line("rps", early + late, "red")])
    middle = range(20, 48)  # columns well inside the missing stretch
    assert not any(c in middle for r in rows[1:12] for c in dots(r))


def test_values_outside_the_axis_are_clamped_to_its_edges() -> None:
    rows = chart([Line("p99", [(-900.0, 500.0), (0.0, -3.0)], "red")])
    assert dots(rows[1]) and dots(rows[11])


def test_bars_rise_in_proportion_and_a_tiny_one_still_shows() -> None:
    bars = [Bar("≤1ms", 1000, "green"), Bar("≤2ms", 500, "green"), Bar("≤5ms", 1, "red")]
    grid = bar_chart(bars, 40, 14, title="latency distribution",
                     yticks=[(0, "0"), (1000, "1000")], ymax=1000,
                     legend=[("≤ p50 (1ms)", "green"), ("> p99", "red")])
    rows = grid.text().plain.split("\n")
    assert all(len(r) == 40 for r in rows)
    plot = rows[1:11]  # 14 rows less the title, axis, labels and legend

    def height(col_text: str) -> int:
        col = rows[12].index(col_text)
        return sum(1 for r in plot if r[col] in BLOCKS[1:])

    assert height("≤1ms") == 10
    assert height("≤2ms") == 5
    assert height("≤5ms") == 1  # 0.1 % of the top still gets a sliver
    assert "■ ≤ p50 (1ms)" in rows[13] and "■ > p99" in rows[13]


def test_runs_never_start_with_a_blank_before_text() -> None:
    grid = line_chart([Line("p50", [(-900.0, 5.0), (0.0, 15.0)], "red")], 50, 10,
                      title="t", xlim=(-900.0, 0.0), xticks=XT, ylim=(0.0, 20.0), yticks=YT)
    for line in grid.runs():
        assert "".join(t for t, _ in line) and sum(len(t) for t, _ in line) == 50
        for text, style in line:
            assert text.isspace() or not text[0].isspace()
            if text.isspace():
                assert style == ""


def test_chart_range_steps_fit_the_chart_and_zoom_within_what_is_held() -> None:
    from meshtui.tui.chart_data import ChartRange

    assert [ChartRange(s).step_s for s in (900, 3600, 6 * 3600)] == [10, 40, 240]
    assert ChartRange(900).zoomed(900) == ChartRange(900)  # the controller: 15 minutes
    assert ChartRange(900).zoomed(6 * 3600) == ChartRange(3600)
    assert ChartRange(3600, 1e9).zoomed(6 * 3600) == ChartRange(6 * 3600, 1e9)
    assert ChartRange(6 * 3600).zoomed(6 * 3600) == ChartRange(900)
