"""A Prometheus that is not there, hangs, or answers an error: one line, exit 1;
bad options: one line, exit 2."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from promkit import free_port


def meshtui(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "MESHTUI_PROMETHEUS"}
    return subprocess.run([sys.executable, "-m", "meshtui", *args], capture_output=True,
                          text=True, timeout=30, stdin=subprocess.DEVNULL, env=env)


def one_line(out: subprocess.CompletedProcess[str]) -> str:
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    return lines[0]


def test_nothing_listening() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    out = meshtui("stat", "deploy", "--prometheus", url, "-o", "json")
    assert out.returncode == 1
    assert one_line(out).startswith(f"meshtui: cannot reach Prometheus at {url}: ")


def test_a_server_that_never_answers_times_out_in_5s() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        t0 = time.monotonic()
        out = meshtui("stat", "deploy", "--prometheus", url, "-o", "json")
        took = time.monotonic() - t0
    assert out.returncode == 1
    assert one_line(out) == f"meshtui: Prometheus at {url} did not answer within 5s"
    assert 5 <= took < 12


@contextlib.contextmanager
def _serving(answer: Callable[[str], tuple[int, str]]) -> Iterator[str]:
    """A local HTTP server answering each GET with ``answer(path)``; its URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = answer(self.path)
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def answering() -> Iterator[tuple[str, list[tuple[int, str]]]]:
    """A server answering each request with the next (status, body) queued."""
    answers: list[tuple[int, str]] = []
    with _serving(lambda _: answers[0] if len(answers) == 1 else answers.pop(0)) as url:
        yield url, answers


@pytest.mark.parametrize(("status", "kind"), [(422, "execution"), (503, "unavailable")])
def test_an_error_answer_is_said_in_one_line(answering, status: int, kind: str) -> None:  # type: ignore[no-untyped-def]
    url, answers = answering
    answers.append((status, json.dumps({"status": "error", "errorType": kind,
                                        "error": "query processing would load too many\n"
                                                 "samples \x1b[2J"})))
    out = meshtui("stat", "deploy", "--prometheus", url, "-o", "json")
    assert out.returncode == 1
    assert one_line(out) == (f"meshtui: Prometheus at {url} answered {status}: {kind}: "
                             "query processing would load too many\\nsamples \\x1b[2J")


def test_something_else_than_prometheus(answering) -> None:  # type: ignore[no-untyped-def]
    url, answers = answering
    answers.append((200, "<html>hello</html>"))
    out = meshtui("stat", "deploy", "--prometheus", url)
    assert out.returncode == 1 and "no API answer (is it a Prometheus?)" in one_line(out)


def test_nan_figures_show_as_no_traffic(answering) -> None:  # type: ignore[no-untyped-def]
    url, answers = answering

    def vector(*samples: tuple[dict[str, str], str]) -> str:
        return json.dumps({"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": m, "value": [time.time(), v]} for m, v in samples]}})

    web = {"namespace": "emojivoto", "deployment": "web"}
    # The flags, config and build of the server first, then every query of the refresh:
    # one series, NaN everywhere (a Prometheus over a window with no requests answers so).
    for _ in range(3):
        answers.append((200, json.dumps({"status": "success", "data": {}})))
    answers.append((200, vector((web, "NaN"))))
    out = meshtui("stat", "deploy", "-n", "emojivoto", "--prometheus", url, "-o", "json")
    assert out.returncode == 0, out.stderr
    [row] = json.loads(out.stdout)
    assert row["name"] == "web" and row["rps"] is None and row["latency_ms_p99"] is None


@pytest.mark.parametrize(("args", "says"), [
    (["--prometheus", "localhost:9090"], "is not a URL: give one like http://127.0.0.1:9090"),
    (["--since", "yesterday"], "use 14:00, 14:00:30, an ISO time"),
    (["--since", "15:00", "--until", "14:00"], "is not before"),
    (["-t", "1h"], "the controller keeps 15m, --prometheus URL reads longer ones"),
    (["--since", "-1h"], "the controller keeps 15m, --prometheus URL reads longer ones"),
    (["--since", "-1h", "-t", "5m"], "give -t or --since, not both"),
])
def test_bad_options_exit_2_in_one_line(args: list[str], says: str) -> None:
    out = meshtui("stat", "deploy", "-o", "json", *args)
    assert out.returncode == 2
    assert says in one_line(out)


def test_a_status_page_refused_leaves_the_others_read() -> None:
    """A server (or a proxy in front) that refuses buildinfo still says what it keeps."""
    pages = {"/api/v1/status/flags": (200, {"status": "success", "data": {
                 "storage.tsdb.retention.time": "2h"}}),
             "/api/v1/status/buildinfo": (404, {"status": "error", "errorType": "not_found",
                                                "error": "no such page"})}

    empty = (200, {"status": "success", "data": {"resultType": "vector", "result": []}})

    def answer(path: str) -> tuple[int, str]:
        status, doc = pages.get(path.split("?")[0], empty)
        return status, json.dumps(doc)

    with _serving(answer) as url:
        out = meshtui("stat", "deploy", "--prometheus", url, "--since", "-3h", "-o", "json")
    assert out.returncode == 2 and "keeps 2h" in one_line(out)
