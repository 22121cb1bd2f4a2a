"""The demo's apps: emojivoto (web, emoji, voting, vote-bot) and kube-dns.

Modelled on the application Linkerd's tutorials use: ``web`` serves the page
and HTTP/1.1 JSON to ``vote-bot`` and calls ``emoji`` and ``voting`` over gRPC
(:mod:`meshtui.demo.emojivoto_grpc`); voting for the doughnut always fails
(gRPC UNKNOWN) and web answers that vote with 500; ``vote-bot`` drives a
steady load with bursts. Each runs as its own process
(``python -m meshtui.demo.apps NAME``) and knows nothing of the mesh: it calls
services by name, through ``HTTP_PROXY`` when that is set.
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

import grpc

from meshtui.demo.emojivoto_grpc import (
    CALL_TIMEOUT_S,
    VOTE_METHODS,
    Backends,
    serve_emoji,
    serve_voting,
    vote_method,
)
from meshtui.demo.emojivoto_v1 import emoji_pb2, voting_pb2
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


async def start_emoji(listen: str) -> tuple[grpc.aio.Server, int]:
    """The emoji service on ``listen`` (HOST:PORT); the server and its port."""
    return await serve_emoji(EMOJI, _think, listen)


async def start_voting(listen: str) -> tuple[grpc.aio.Server, int]:
    """The voting service on ``listen``: a little slower than emoji, with a longer tail."""

    async def think(median_ms: float) -> None:
        await _think(median_ms, tail_p=0.02, tail_ms=120.0)

    return await serve_voting(EMOJI, FAILING_CHOICE, think, listen)


# What web answers vote-bot when a call fails: the gRPC status's HTTP sense.
# UNKNOWN (the doughnut's failure) and anything unexpected are web's 500, as in
# the original app.
_HTTP_OF_GRPC = {grpc.StatusCode.NOT_FOUND: 404, grpc.StatusCode.INVALID_ARGUMENT: 400,
                 grpc.StatusCode.UNAVAILABLE: 502, grpc.StatusCode.DEADLINE_EXCEEDED: 504}


def web_handler(backends: Backends) -> Callable[[Request], object]:
    """vote-bot's HTTP/1.1 JSON API, each request answered with gRPC calls."""

    async def api(req: Request) -> Response:
        if req.path == "/api/list":
            listing = await (await backends.emoji()).ListAll(
                emoji_pb2.ListAllEmojiRequest(), timeout=CALL_TIMEOUT_S)
            return _json(200, [{"shortcode": e.shortcode, "unicode": e.unicode}
                               for e in listing.list])
        if req.path == "/api/vote":
            choice = req.query.get("choice", "")
            await (await backends.emoji()).FindByShortcode(
                emoji_pb2.FindByShortcodeRequest(shortcode=choice), timeout=CALL_TIMEOUT_S)
            method = vote_method(choice)
            if method not in VOTE_METHODS:
                return _json(400, {"error": f"no vote for {choice[:50]}"})
            vote = getattr(await backends.voting(), method)
            await vote(voting_pb2.VoteRequest(), timeout=CALL_TIMEOUT_S)
            return _json(200, {"ok": True})
        if req.path == "/api/leaderboard":
            results = await (await backends.voting()).Results(
                voting_pb2.ResultsRequest(), timeout=CALL_TIMEOUT_S)
            return _json(200, [{"shortcode": r.shortcode, "votes": r.votes}
                               for r in results.results])
        return _json(404, {"error": "not found"})

    async def handle(req: Request) -> Response:
        await _think(0.5, tail_p=0.005)
        if req.path == "/":
            return Response(200, b"<html><body>emojivoto</body></html>",
                            {"content-type": "text/html"})
        try:
            return await api(req)
        except grpc.aio.AioRpcError as e:
            return _json(_HTTP_OF_GRPC.get(e.code(), 500),
                         {"error": f"{e.code().name}: {e.details() or ''}"})
        except OSError as e:  # kube-dns did not name the service
            return _json(502, {"error": f"upstream failed: {e}"})

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
