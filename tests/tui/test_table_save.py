"""ctrl+s on a table writes what it shows, as CSV or JSON by the file's extension."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from textual.widgets import Input

from meshtui.client.fake_source import FakeSource
from meshtui.client.queries import StatQuery, TapQuery
from meshtui.output.table_file import write_table
from meshtui.tui.app import MeshApp
from meshtui.tui.table import VirtualTable


async def save_as(pilot, path: Path) -> None:  # type: ignore[no-untyped-def]
    await pilot.press("ctrl+s")
    await pilot.pause(0.1)
    pilot.app.screen.query_one("#save-path", Input).value = str(path)
    await pilot.press("enter")
    await pilot.pause(0.2)


async def test_the_stat_table_as_csv_and_json(tmp_path: Path) -> None:
    app = MeshApp(FakeSource(), StatQuery("deployment", namespace="emojivoto"), interval=3600)
    async with app.run_test(size=(140, 30)) as pilot:
        await pilot.pause(0.6)
        table = app.screen.query_one(VirtualTable)
        header, rows = table.shown_text()
        assert len(rows) >= 3
        await save_as(pilot, tmp_path / "deploys.csv")
        with (tmp_path / "deploys.csv").open(newline="") as f:
            assert list(csv.reader(f)) == [header, *rows]
        await save_as(pilot, tmp_path / "deploys.JSON")
        data = json.loads((tmp_path / "deploys.JSON").read_text())
        assert data == [dict(zip(header, row, strict=True)) for row in rows]
        assert any("deploys.JSON" in str(n.message) and "JSON" in str(n.message)
                   for n in app._notifications)
        await save_as(pilot, tmp_path / "deploys.txt")
        assert not (tmp_path / "deploys.txt").exists()
        assert any(".csv or .json" in str(n.message) for n in app._notifications)


async def test_the_top_table_as_shown(tmp_path: Path) -> None:
    app = MeshApp(FakeSource(tap_rps=400), TapQuery("deployment", "emojivoto", "web"),
                  top=True, by=("dst", "status"))
    async with app.run_test(size=(140, 30)) as pilot:
        await pilot.pause(1.4)
        await save_as(pilot, tmp_path / "top.json")
        data = json.loads((tmp_path / "top.json").read_text())
        assert data and list(data[0])[:3] == ["DESTINATION", "STATUS", "COUNT"]


def test_cells_a_spreadsheet_would_run_are_quoted(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    write_table(str(path), ["PATH", "N"], [["=cmd|' /C calc'!A0", "-"], ["/ok", "-1"]])
    with path.open(newline="") as f:
        assert list(csv.reader(f))[1:] == [["'=cmd|' /C calc'!A0", "-"], ["/ok", "-1"]]
