"""The live stat table at 10,000 rows: re-sort time, and CPU per refresh.

Targets: a re-sort in ≤ 50 ms; refreshing every second at ≤ 10 % of a core.
Runs the real app headless against a source whose figures all move every
second, so every refresh changes every row.

Run: .venv/bin/python benchmarks/stat_table.py [--rows 10000] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import time


class MovingSource:
    """``rows`` pods whose figures all change every call, made as cheaply as a
    source can, so that what is measured is the table, not the data."""

    label = "bench"

    def __init__(self, rows: int) -> None:
        self.rows = rows
        self.calls = 0
        self.cpu = 0.0  # spent making rows: subtracted from the table's share

    async def stats(self, query):  # type: ignore[no-untyped-def]
        from meshtui.client.queries import StatSnapshot
        from meshtui.model.stats import StatRow

        self.calls += 1
        c0 = cpu()
        k = self.calls
        out = tuple(
            StatRow("pod", "load", f"svc-{i:06d}", 1, 1, True, 0.9 + ((i + k) % 10) / 100,
                    1.0 + (i * 7 + k) % 97, 1.0 + (i + k) % 23, 3.0 + (i + k) % 29,
                    9.0 + (i + 3 * k) % 31, 1 + i % 5)
            for i in range(self.rows))
        self.cpu += cpu() - c0
        return StatSnapshot(out, time.time(), self.rows, self.rows)

    async def history(self, query, span_s, step_s):  # type: ignore[no-untyped-def]
        return {}

    async def close(self) -> None:
        pass


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def main(rows: int, seconds: float) -> None:
    from meshtui.client.queries import StatQuery
    from meshtui.tui.app import MeshApp
    from meshtui.tui.stat_table import StatTable

    source = MovingSource(rows)
    app = MeshApp(source, StatQuery("pod", namespace="load"), interval=1.0)
    async with app.run_test(size=(160, 50)) as pilot:
        while True:
            table = app.screen.query_one(StatTable)
            if table.row_count >= rows:
                break
            await pilot.pause(0.2)
        sorts = []
        for column in ("RPS", "LATENCY_P99", "SUCCESS", "NAME", "RPS", "TCP_CONN") * 2:
            t = time.perf_counter()
            table.set_sort(column)
            sorts.append((time.perf_counter() - t) * 1000)
        await pilot.pause(1.0)
        calls0, cpu0, wall0, src0 = source.calls, cpu(), time.monotonic(), source.cpu
        await pilot.pause(seconds)
        refreshes = source.calls - calls0
        wall = time.monotonic() - wall0
        src_share = (source.cpu - src0) / wall
        share = (cpu() - cpu0) / wall - src_share
    print(f"rows: {rows}")
    print(f"re-sort: median {statistics.median(sorts):.1f} ms, max {max(sorts):.1f} ms "
          f"over {len(sorts)} sorts (target <= 50 ms)")
    print(f"steady refresh: {refreshes} refreshes in {seconds:.0f}s, "
          f"{share * 100:.1f}% of a core for the UI (target <= 10%), "
          f"plus {src_share * 100:.1f}% making the rows")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--seconds", type=float, default=20.0)
    a = ap.parse_args()
    asyncio.run(main(a.rows, a.seconds))
