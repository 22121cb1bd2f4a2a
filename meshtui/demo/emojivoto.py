"""The demo's apps: emojivoto (web, emoji, voting, vote-bot) and kube-dns.

Modelled on the application Linkerd's tutorials use: ``web`` serves the page
and calls ``emoji`` and ``voting``; voting for the doughnut always fails with
500; ``vote-bot`` drives a steady load with bursts. Each runs as its own
process (``python -m meshtui.demo.apps NAME``) and knows nothing of the mesh:
it calls services by name, through ``HTTP_PROXY`` when that is set.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from meshtui.demo.httpkit import Client, Request, Response

EMOJI = [
    (":joy:", "😂"), (":sunglasses:", "😎"), (":doughnut:", "🍩"), (":stuck_out_tongue:", "😛"),
    (":rocket:", "🚀"), (":100:", "💯"), (":pizza:", "🍕"), (":ghost:", "👻"),
    (":champagne:", "🍾"), (":see_no_evil:", "🙈"), (":crossed_fingers:", "🤞"),
    (":flushed:", "😳"), (":unicorn:", "🦄"), (":wave:", "👋"), (":fire:", "🔥"),
    (":taco:", "🌮"), (":tada:", "🎉"), (":sun_with_face:", "🌞"), (":heart_eyes:", "😍"),
    (":rainbow:", "🌈"),
]
FAILING_CHOICE = ":doughnut:"  # as in Linkerd's demo: this vote always fails


async def _think(median_ms: float, sigma: float = 0.6, tail_p: float = 0.01,
                 tail_ms: float = 80.0) -> None:
    """Sleeps like a service does: log-normal work with a rare slow tail."""
    ms = random.lognormvariate(0, sigma) * median_ms
    if random.random() < tail_p:
        ms += random.uniform(0.5, 1.0) * tail_ms
    await asyncio.sleep(ms / 1000)


def _json(status: int, obj: object) -> Response:
    return Response(status, json.dumps(obj).encode())


def emoji_handler() -> Callable[[Request], object]:
    by_code = dict(EMOJI)

    async def handle(req: Request) -> Response:
        await _think(1.0)
        if req.path == "/api/list":
            return _json(200, [{"shortcode": c, "unicode": u} for c, u in EMOJI])
        if req.path == "/api/find":
            code = req.query.get("shortcode", "")
            if code in by_code:
                return _json(200, {"shortcode": code, "unicode": by_code[code]})
            return _json(404, {"error": f"no emoji {code}"})
        return _json(404, {"error": "not found"})

    return handle


def voting_handler() -> Callable[[Request], object]:
    votes: Counter[str] = Counter()

    async def handle(req: Request) -> Response:
        await _think(2.0, tail_p=0.02, tail_ms=120.0)
        if req.path == "/api/vote":
            choice = req.query.get("choice", "")
            if choice == FAILING_CHOICE:
                return _json(500, {"error": "doughnut votes are broken"})
            votes[choice] += 1
            return _json(200, {"ok": True})
        if req.path == "/api/leaderboard":
            return _json(200, [{"shortcode": c, "votes": n} for c, n in votes.most_common(10)])
        return _json(404, {"error": "not found"})

    return handle


def web_handler(client: Client, emoji_url: str, voting_url: str) -> Callable[[Request], object]:
    async def call(url: str) -> Response:
        try:
            return await client.request("GET", url)
        except (OSError, TimeoutError) as e:
            return Response(502, f"upstream failed: {e}".encode())

    async def handle(req: Request) -> Response:
        await _think(0.5, tail_p=0.005)
        if req.path == "/":
            return Response(200, b"<html><body>emojivoto</body></html>",
                            {"content-type": "text/html"})
        if req.path == "/api/list":
            return await call(f"{emoji_url}/api/list")
        if req.path == "/api/vote":
            choice = req.query.get("choice", "")
            found = await call(f"{emoji_url}/api/find?shortcode={choice}")
            if found.status != 200:
                return Response(found.status, found.body)
            voted = await call(f"{voting_url}/api/vote?choice={choice}")
            return Response(voted.status, voted.body)
        if req.path == "/api/leaderboard":
            return await call(f"{voting_url}/api/leaderboard")
        return _json(404, {"error": "not found"})

    return handle


def kube_dns_health_handler() -> Callable[[Request], object]:
    async def handle(req: Request) -> Response:
        if req.path in ("/health", "/ready"):
            return _json(200, {"status": "ok"})
        return _json(404, {"error": "not found"})

    return handle


class VoteBot:
    """Drives the demo's load: a steady rate with a burst every so often.

    Every second it writes what it sent to ``report_path`` (JSON), so tests can
    check the mesh's figures against it.
    """

    def __init__(self, client: Client, web_url: str, rps: float = 20.0,
                 burst_every_s: float = 30.0, burst_len_s: float = 5.0, burst_factor: float = 3.0,
                 report_path: Path | None = None, extra: list[tuple[str, float]] | None = None
                 ) -> None:
        self.client = client
        self.web_url = web_url
        self.rps = rps
        self.burst_every_s = burst_every_s
        self.burst_len_s = burst_len_s
        self.burst_factor = burst_factor
        self.report_path = report_path
        self.extra = extra or []  # (url, per-second rate) for side traffic such as health checks
        self.sent: Counter[str] = Counter()
        self.by_status: Counter[str] = Counter()
        self.started = time.time()
        self._inflight: set[asyncio.Task[None]] = set()

    def current_rps(self, now: float) -> float:
        in_burst = (now - self.started) % self.burst_every_s < self.burst_len_s
        return self.rps * (self.burst_factor if in_burst else 1.0)

    def _pick(self) -> str:
        r = random.random()
        if r < 0.5:
            code = random.choice(EMOJI)[0]
            return f"{self.web_url}/api/vote?choice={code}"
        if r < 0.85:
            return f"{self.web_url}/api/list"
        if r < 0.95:
            return f"{self.web_url}/api/leaderboard"
        return f"{self.web_url}/"

    async def _one(self, url: str) -> None:
        path = url.split("://", 1)[-1].split("/", 1)[-1].split("?", 1)[0]
        self.sent["/" + path] += 1
        try:
            resp = await self.client.request("GET", url)
            self.by_status[str(resp.status)] += 1
        except (OSError, TimeoutError):
            self.by_status["error"] += 1

    def _spawn(self, url: str) -> None:
        if len(self._inflight) > 500:  # the mesh is wedged: don't pile up
            self.by_status["skipped"] += 1
            return
        t = asyncio.create_task(self._one(url))
        self._inflight.add(t)
        t.add_done_callback(self._inflight.discard)

    async def run(self) -> None:
        next_report = time.monotonic() + 1
        extra_due = [time.monotonic()] * len(self.extra)
        while True:
            now = time.monotonic()
            rate = self.current_rps(time.time())
            self._spawn(self._pick())
            for i, (url, per_s) in enumerate(self.extra):
                if now >= extra_due[i]:
                    extra_due[i] = now + 1.0 / per_s
                    self._spawn(url)
            if now >= next_report:
                next_report = now + 1
                self.write_report()
            # Poisson arrivals, like independent users.
            await asyncio.sleep(random.expovariate(rate))

    def write_report(self) -> None:
        if self.report_path is None:
            return
        data = {"started": self.started, "at": time.time(), "sent": dict(self.sent),
                "total": sum(self.sent.values()), "by_status": dict(self.by_status)}
        tmp = self.report_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, self.report_path)
