"""Any Prometheus holding Linkerd-shaped metrics, as a source.

The demo's own Prometheus, or a Linkerd installation's
(``kubectl -n linkerd-viz port-forward svc/prometheus 9090``): stat rows and
charts come from Linkerd viz's queries (:mod:`meshtui.client.promql`) over the
HTTP API, every query of one refresh in parallel under one deadline; p50, p95
and p99 are taken here from one answer of latency bucket rates, by Prometheus's
own ``histogram_quantile`` rules, rather than asked as three queries that each
evaluate those rates again. MESHED is
what Prometheus knows: the proxies it scrapes per resource, and how many of
them answered their last scrape. Prometheus has no requests to stream, so tap
goes to the controller, when there is one.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import AsyncGenerator, Iterable
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from meshtui.client.controller_source import SourceRangeError
from meshtui.client.promql import (
    LATENCY,
    PROXY_JOB,
    QUANTILE_NAMES,
    group_by,
    history_queries,
    stat_queries,
)
from meshtui.client.queries import (
    EdgeQuery,
    HistoryPoint,
    StatQuery,
    StatSnapshot,
    TapBatch,
    TapQuery,
)
from meshtui.client.source import Source
from meshtui.errors import RuntimeFailure, UsageError
from meshtui.model.edges import EdgeRow
from meshtui.model.histogram import Histogram
from meshtui.model.prom_quantile import series_quantiles, tolerance_for
from meshtui.model.sanitize import clean
from meshtui.model.stats import StatRow

DEADLINE_S = 5.0
# What Linkerd viz's Prometheus keeps; assumed when a server does not say.
DEFAULT_RETENTION_S = 6 * 3600
DEFAULT_SCRAPE_S = 10.0  # Linkerd viz's scrape interval

_PROM_DURATION = re.compile(r"(\d+)(ms|y|w|d|h|m|s)")
_PROM_SCALE = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400,
               "y": 365 * 86400}

Sample = tuple[dict[str, str], float]
RangeSeries = tuple[dict[str, str], list[tuple[float, float]]]


def check_url(url: str) -> str:
    """A Prometheus base URL as given to --prometheus; UsageError naming the form."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--prometheus {url!r} is not a URL: give one like "
                         "http://127.0.0.1:9090")
    try:
        parts.port  # noqa: B018 - raises for a port out of range
    except ValueError:
        raise UsageError(f"--prometheus {url!r} has no valid port") from None
    return url.strip().rstrip("/")


def prom_duration(text: str) -> float | None:
    """A Prometheus duration (``6h``, ``15d``, ``1y2w``) in seconds; None if unreadable."""
    pos, total = 0, 0.0
    for m in _PROM_DURATION.finditer(text):
        if m.start() != pos:
            return None
        total += int(m.group(1)) * _PROM_SCALE[m.group(2)]
        pos = m.end()
    return total if pos == len(text) and pos else None


def _number(text: Any, url: str) -> float:
    try:
        return float(text)  # "NaN", "+Inf" included: the callers decide what they mean
    except (TypeError, ValueError):
        raise RuntimeFailure(f"Prometheus at {url} gave a value meshtui cannot read: "
                             f"{clean(str(text))[:40]}") from None


def _finite(v: float | None) -> float | None:
    return v if v is not None and math.isfinite(v) else None


def _rate(v: float | None, window: float) -> float | None:
    v = _finite(v)
    return None if v is None else v / window


def _count(v: float | None) -> int:
    """A count from a sample: 0 where there is none, or it is NaN."""
    return int(v) if v is not None and math.isfinite(v) else 0


class PrometheusSource:
    """Stat and charts over Prometheus's HTTP API; tap through ``tap`` (the controller)."""

    def __init__(self, url: str, *, tap: Source | None = None,
                 deadline_s: float = DEADLINE_S) -> None:
        self.url = url.rstrip("/")
        self.deadline_s = deadline_s
        self._tap = tap
        self._session: Any = None
        self._retention_s: float | None = None
        self._scrape_s: float | None = None
        self._version: str | None = None  # its histogram_quantile rules depend on it

    @property
    def label(self) -> str:
        return f"prometheus {self.url}"

    #: Prometheus knows no pods without a proxy: MESHED is what it scrapes.
    meshed_note = "MESHED: proxies Prometheus scrapes"

    @property
    def tap_label(self) -> str:
        return self._tap.tap_label if self._tap is not None else "no controller for tap"

    @property
    def history_s(self) -> int:
        return int(self._retention_s or DEFAULT_RETENTION_S)

    # --- HTTP ----------------------------------------------------------------

    def _http(self) -> Any:
        if self._session is None:
            import aiohttp

            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.deadline_s))
        return self._session

    async def _get(self, path: str, params: dict[str, str]) -> Any:
        """The ``data`` of one API call; RuntimeFailure with one line otherwise."""
        import aiohttp

        try:
            async with self._http().get(self.url + path, params=params) as resp:
                body = await resp.text()
                status = resp.status
        except TimeoutError:
            raise RuntimeFailure(f"Prometheus at {self.url} did not answer within "
                                 f"{self.deadline_s:g}s") from None
        except aiohttp.ClientConnectorError as e:
            raise RuntimeFailure(f"cannot reach Prometheus at {self.url}: "
                                 f"{e.os_error.strerror or e.os_error}") from None
        except aiohttp.ClientError as e:
            raise RuntimeFailure(f"Prometheus at {self.url}: {type(e).__name__}: "
                                 f"{clean(str(e))}") from None
        return self._data(status, body)

    def _data(self, status: int, body: str) -> Any:
        import json

        try:
            answer = json.loads(body)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise RuntimeFailure(f"Prometheus at {self.url} answered {status} with no API "
                                 f"answer (is it a Prometheus?)")
        if status != 200 or answer.get("status") != "success":
            kind = clean(str(answer.get("errorType", "error")))
            why = clean(str(answer.get("error", "")))[:200]
            raise RuntimeFailure(f"Prometheus at {self.url} answered {status}: {kind}: {why}")
        return answer.get("data")

    async def instant(self, query: str, at: float) -> list[Sample]:
        data = await self._get("/api/v1/query", {"query": query, "time": f"{at:.3f}"})
        return [(s.get("metric", {}), _number(s.get("value", [0, None])[1], self.url))
                for s in _vector(data, self.url)]

    async def range(self, query: str, start: float, end: float, step: float
                    ) -> list[RangeSeries]:
        data = await self._get("/api/v1/query_range", {
            "query": query, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"})
        return [(s.get("metric", {}), [(float(t), _number(v, self.url))
                                       for t, v in s.get("values", [])])
                for s in _vector(data, self.url, "matrix")]

    async def _all(self, calls: Iterable[Any]) -> list[Any]:
        """The queries of one refresh, in parallel, under one deadline."""
        try:
            return await asyncio.wait_for(asyncio.gather(*calls), self.deadline_s)
        except TimeoutError:
            raise RuntimeFailure(f"Prometheus at {self.url} did not answer within "
                                 f"{self.deadline_s:g}s") from None

    async def _learn_server(self) -> None:
        """What the server keeps (its --storage.tsdb.retention.time), how often it
        scrapes (its global scrape_interval) and its version, asked once."""
        if self._retention_s is not None:
            return
        try:
            flags, config, build = await self._all(
                self._status(page) for page in ("flags", "config", "buildinfo"))
        except RuntimeFailure:  # past the deadline: the queries will say it
            flags = config = build = {}
        version = build.get("version")
        self._version = version if isinstance(version, str) else None
        held = prom_duration(str(flags.get("storage.tsdb.retention.time", "")))
        self._retention_s = held or DEFAULT_RETENTION_S
        m = re.search(r"^\s+scrape_interval:\s*(\S+)", str(config.get("yaml", "")), re.M)
        self._scrape_s = (prom_duration(m.group(1)) if m else None) or DEFAULT_SCRAPE_S

    async def _status(self, page: str) -> dict[str, Any]:
        """One status page's data; empty where the server gives none (older servers and
        proxies in front may not answer each page): defaults stand in for it."""
        try:
            data = await self._get(f"/api/v1/status/{page}", {})
        except RuntimeFailure:
            return {}
        return data if isinstance(data, dict) else {}

    async def _check_range(self, query: StatQuery, span_s: float) -> None:
        """Refuses a window longer than what the server keeps, or one that ended before
        anything it keeps; one reaching partly past it is asked (Prometheus drops its
        data in whole blocks of hours, so it often holds more than it is told to)."""
        await self._learn_server()
        end = query.until if query.until is not None else time.time()
        if span_s > self.history_s + 60 or time.time() - end > self.history_s:
            from meshtui.model.units import format_window

            raise SourceRangeError(f"Prometheus at {self.url} keeps "
                                   f"{format_window(self.history_s)} of figures; the range "
                                   f"asked for reaches further back")

    # --- the Source ----------------------------------------------------------

    async def ready(self, timeout: float) -> None:
        saved, self.deadline_s = self.deadline_s, timeout
        try:
            await self._get("/api/v1/status/buildinfo", {})
        finally:
            self.deadline_s = saved

    async def stats(self, query: StatQuery) -> StatSnapshot:
        await self._check_range(query, query.window_s)
        queries, group = stat_queries(query)
        at = query.until if query.until is not None else time.time()
        names = list(queries)
        results = dict(zip(names, await self._all(self.instant(queries[n], at) for n in names),
                           strict=True))
        results.update(_quantiles(results.pop(LATENCY), tolerance_for(self._version)))
        rows = _rows(query, group, results)
        if not rows:
            await self._check_scrapes_proxies(at)
        reachable = sum(_count(v) for _, v in results["up"])
        total = sum(_count(v) for _, v in results["targets"])
        scraped = [v for _, v in results["scraped"] if math.isfinite(v)]
        return StatSnapshot(tuple(rows), taken_at=at, proxies_reachable=reachable,
                            proxies_total=total, last_scrape=max(scraped, default=None))

    async def _check_scrapes_proxies(self, at: float) -> None:
        """An empty answer is either an empty selection or a Prometheus with no
        proxies to scrape at all (the wrong server): tell the second apart."""
        anything = await self.instant(f'count(up{{job="{PROXY_JOB}"}})', at)
        if not anything:
            raise RuntimeFailure(f"Prometheus at {self.url} scrapes no proxies (no "
                                 f'up{{job="{PROXY_JOB}"}} series): is it the mesh\'s?')

    async def history(self, query: StatQuery, span_s: int, step_s: int
                      ) -> dict[tuple[str, str, str], list[HistoryPoint]]:
        await self._check_range(query, span_s)
        queries, group = history_queries(query, step_s, self._scrape_s or DEFAULT_SCRAPE_S)
        end = query.until if query.until is not None else time.time()
        # Whole steps, so that successive fetches land on the same timestamps.
        end -= end % step_s
        start = end - span_s
        names = list(queries)
        answers = dict(zip(names, await self._all(self.range(queries[n], start, end, step_s)
                                                  for n in names), strict=True))
        answers.update(_range_quantiles(answers.pop(LATENCY), tolerance_for(self._version)))
        series: dict[tuple[str, str, str], dict[float, dict[str, float | None]]] = {}
        for name, answer in answers.items():
            for labels, values in answer:
                key = _key(query.kind, group, labels)
                per_t = series.setdefault(key, {})
                for t, v in values:
                    per_t.setdefault(t, {})[name] = _finite(v)
        out: dict[tuple[str, str, str], list[HistoryPoint]] = {}
        for key, per_t in series.items():
            out[key] = [HistoryPoint(t, f.get("rps"), f.get("success"), f.get("p50"),
                                     f.get("p95"), f.get("p99"))
                        for t, f in sorted(per_t.items())]
        return out

    async def edges(self, query: EdgeQuery) -> list[EdgeRow]:
        from meshtui.client.prom_edges import edge_queries, edge_rows

        await self._check_range(StatQuery(query.kind, until=query.until), query.window_s)
        queries, _ = edge_queries(query)
        at = query.until if query.until is not None else time.time()
        names = list(queries)
        answers = dict(zip(names, await self._all(self.instant(queries[n], at) for n in names),
                           strict=True))
        answers.update(_quantiles(answers.pop(LATENCY), tolerance_for(self._version)))
        rows = edge_rows(query, answers)
        if not rows:
            await self._check_scrapes_proxies(at)
        return rows

    async def tap(self, query: TapQuery) -> AsyncGenerator[TapBatch, None]:
        if self._tap is None:
            raise RuntimeFailure("tap streams from the controller; Prometheus has no requests "
                                 "to show")
        async for batch in self._tap.tap(query):
            yield batch

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._tap is not None:
            await self._tap.close()


def _vector(data: Any, url: str, kind: str = "vector") -> list[dict[str, Any]]:
    if not isinstance(data, dict) or data.get("resultType") != kind:
        got = data.get("resultType") if isinstance(data, dict) else None
        raise RuntimeFailure(f"Prometheus at {url} answered a {got or 'malformed'} result "
                             f"where a {kind} was expected")
    result = data.get("result")
    return result if isinstance(result, list) else []


def _quantiles(rates: list[Sample], tolerance: float) -> dict[str, list[Sample]]:
    """p50, p95 and p99 by name, as viz's three ``histogram_quantile`` queries would
    have answered them, from the one answer of the latency buckets' rates."""
    answers = series_quantiles(rates, tuple(QUANTILE_NAMES.values()), tolerance)
    return {name: [(labels, qs[i]) for labels, qs in answers]
            for i, name in enumerate(QUANTILE_NAMES)}


def _range_quantiles(rates: list[RangeSeries], tolerance: float
                     ) -> dict[str, list[RangeSeries]]:
    """The same for a range query: each step's buckets give that step's quantiles."""
    at_step: dict[float, list[Sample]] = {}
    for labels, values in rates:
        for t, v in values:
            at_step.setdefault(t, []).append((labels, v))
    out: dict[str, dict[tuple[tuple[str, str], ...], RangeSeries]] = {
        name: {} for name in QUANTILE_NAMES}
    for t in sorted(at_step):
        for name, answer in _quantiles(at_step[t], tolerance).items():
            for labels, v in answer:
                key = tuple(sorted(labels.items()))
                out[name].setdefault(key, (labels, []))[1].append((t, v))
    return {name: list(series.values()) for name, series in out.items()}


def _key(kind: str, group: list[str], labels: dict[str, str]) -> tuple[str, str, str]:
    """A row's identity from a series' labels: the last group label names it, the one
    before it (if any) is its namespace; a namespace's row has none, as the controller's."""
    name = labels.get(group[-1], "")
    namespace = labels.get(group[-2], "") if len(group) >= 2 else ""
    return (kind, clean(namespace), clean(name))


def _rows(query: StatQuery, group: list[str], results: dict[str, list[Sample]]
          ) -> list[StatRow]:
    """Viz's ``processPrometheusMetrics``: counts by classification, the quantiles,
    TCP; plus MESHED from the scrape targets."""
    meshed_group = group_by(query.kind)  # the targets' grouping, whatever --from asks
    ok: dict[tuple[str, str, str], float] = {}
    failed: dict[tuple[str, str, str], float] = {}
    for labels, v in results["requests"]:
        key = _key(query.kind, group, labels)
        target = ok if labels.get("classification") == "success" else failed
        if labels.get("classification") in ("success", "failure") and math.isfinite(v):
            target[key] = target.get(key, 0.0) + v
        else:
            target.setdefault(key, 0.0)

    def by_key(name: str, grouping: list[str] = group) -> dict[tuple[str, str, str], float]:
        return {_key(query.kind, grouping, labels): v for labels, v in results[name]}

    quantiles = {n: by_key(n) for n in QUANTILE_NAMES}
    tcp, read, write = by_key("tcp"), by_key("read"), by_key("write")
    targets = by_key("targets", meshed_group)
    up = by_key("up", meshed_group)
    owners = {_key(query.kind, meshed_group, labels): clean(labels.get("deployment", ""))
              for labels, _ in results["targets"]}
    down: dict[tuple[str, str, str], list[str]] = {}
    for labels, _ in results["down"]:
        down.setdefault(_key(query.kind, meshed_group, labels), []).append(
            clean(labels.get("pod", "")))
    keys = set(ok) | set(failed) | set(tcp)
    if query.from_ is None and query.to is None:
        keys |= set(targets)  # every resource Prometheus knows, traffic or not
    window = float(query.window_s)
    rows = []
    for key in sorted(keys, key=lambda k: (k[1], k[2])):
        kind, namespace, name = key
        n = ok.get(key, 0.0) + failed.get(key, 0.0)
        has_requests = n > 0
        total, meshed = _count(targets.get(key)), _count(up.get(key))
        rows.append(StatRow(
            kind=kind, namespace=namespace, name=name, meshed=meshed, total=total,
            reachable=meshed == total,
            success=ok.get(key, 0.0) / n if has_requests else None,
            rps=n / window if has_requests else None,
            p50_ms=_finite(quantiles["p50"].get(key)) if has_requests else None,
            p95_ms=_finite(quantiles["p95"].get(key)) if has_requests else None,
            p99_ms=_finite(quantiles["p99"].get(key)) if has_requests else None,
            tcp_conn=_count(tcp[key]) if _finite(tcp.get(key)) is not None else None,
            read_bytes_rate=_rate(read.get(key), window),
            write_bytes_rate=_rate(write.get(key), window),
            window_s=window, owner=owners.get(key, ""),
            missing=tuple(sorted(down.get(key, ())))))
    if "buckets" in results:
        rows = [replace(r, latency=_histogram(r.key, query.kind, group, results["buckets"]))
                if r.has_traffic else r for r in rows]
    return rows


def _histogram(key: tuple[str, str, str], kind: str, group: list[str],
               buckets: list[Sample]) -> Histogram | None:
    """A row's window as a latency histogram, from Prometheus's cumulative buckets.

    Each bucket's requests are put just under its upper bound (Linkerd's bounds
    are 1, 2, 3, 4, 5, 10, 20, ... ms), so the chart's 1-2-5 bins hold them
    whole; the +Inf bucket is left out, having no bound to place it at.
    """
    bounds = sorted((float(labels["le"]), v) for labels, v in buckets
                    if _key(kind, group, labels) == key and labels.get("le") not in (None, "+Inf")
                    and math.isfinite(v))
    hist = Histogram()
    below = 0.0
    for le, cumulative in bounds:
        n = round(cumulative - below)
        if n > 0:
            hist.record(le * 1000 * 0.999, n)
        below = max(below, cumulative)
    return hist if hist.count else None
