"""HAR 1.2 export checked against the format's required fields, and the curl line run
against a real HTTP server."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from meshkit import announced, process

sys.path.insert(0, str(Path(__file__).parents[1] / "model"))
from tapkit import joined

from meshtui.output.har import curl_line, har, write_har

REQUIRED = {
    "log": {"version", "creator", "entries"},
    "entry": {"startedDateTime", "time", "request", "response", "cache", "timings"},
    "request": {"method", "url", "httpVersion", "cookies", "headers", "queryString",
                "headersSize", "bodySize"},
    "response": {"status", "statusText", "httpVersion", "cookies", "headers", "content",
                 "redirectURL", "headersSize", "bodySize"},
    "content": {"size", "mimeType"},
    "timings": {"send", "wait", "receive"},
}


def test_har_has_every_field_har_1_2_requires() -> None:
    r = joined(path="/api/list?page=2&q=a%20b", status=302, latency_us=1500, total_us=4000)
    assert r.init is not None and r.response is not None
    r.init = replace(r.init, headers=((":method", "GET"), ("accept", "*/*")))
    r.response = replace(r.response, headers=(("content-type", "text/html"),
                                              ("location", "/next")))
    doc = har([r, joined(upto=2)])
    log = doc["log"]
    assert REQUIRED["log"] <= log.keys() and log["version"] == "1.2"
    assert {"name", "version"} <= log["creator"].keys()
    assert len(log["entries"]) == 2
    for e in log["entries"]:
        assert REQUIRED["entry"] <= e.keys()
        assert REQUIRED["request"] <= e["request"].keys()
        assert REQUIRED["response"] <= e["response"].keys()
        assert REQUIRED["content"] <= e["response"]["content"].keys()
        assert REQUIRED["timings"] <= e["timings"].keys()
        assert all(e["timings"][k] >= 0 for k in REQUIRED["timings"])  # -1 not allowed
        assert e["startedDateTime"].endswith("Z") and "T" in e["startedDateTime"]
        for part in ("request", "response"):
            assert isinstance(e[part]["cookies"], list) and isinstance(e[part]["headers"], list)
    e = log["entries"][0]
    assert e["request"]["url"] == "http://emoji-svc.emojivoto:8080/api/list?page=2&q=a%20b"
    assert e["request"]["queryString"] == [{"name": "page", "value": "2"},
                                           {"name": "q", "value": "a b"}]
    assert e["request"]["headers"] == [{"name": "accept", "value": "*/*"}]  # no pseudo-headers
    assert (e["response"]["status"], e["response"]["statusText"]) == (302, "Found")
    assert e["response"]["redirectURL"] == "/next"
    assert e["response"]["content"] == {"size": 512, "mimeType": "text/html"}
    assert (e["timings"]["wait"], e["timings"]["receive"], e["time"]) == (1.5, 2.5, 4.0)
    assert log["entries"][1]["response"]["bodySize"] == -1  # its end was not seen


def test_the_file_written_is_the_document(tmp_path: Path) -> None:
    for n in (0, 1, 1000, 2001):
        requests = [joined(stream=i, path=f"/p?i={i}") for i in range(n)]
        path = tmp_path / f"{n}.har"
        assert write_har(str(path), requests) == n
        assert json.loads(path.read_text()) == har(requests)


def test_the_curl_line_reproduces_the_request(tmp_path: Path) -> None:
    (tmp_path / "it's here.txt").write_text("found me\n")
    log = tmp_path / "server.log"
    with log.open("w") as out, process(
            [sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1",
             "--directory", str(tmp_path)], stdout=out, stderr=subprocess.STDOUT):
        port = announced(log, r"port (\d+)").group(1)
        r = joined(method="GET", authority=f"127.0.0.1:{port}", path="/it%27s%20here.txt")
        assert r.init is not None
        r.init = replace(r.init, headers=((":method", "GET"), ("X-Quote", "a 'b' $HOME"),
                                          ("Host", "ignored")))
        line = curl_line(r)
        got = subprocess.run(["sh", "-c", line], capture_output=True, text=True, timeout=10)
        assert got.returncode == 0, (line, got.stderr)
        assert got.stdout == "found me\n"
        assert "-X GET" in line and "'X-Quote: a '\"'\"'b'\"'\"' $HOME'" in line
        assert line.count("Host:") == 1


def test_the_curl_line_sends_the_original_bytes_not_the_escapes_shown() -> None:
    """The feed shows ``C:\\temp`` and ``\x1b`` escaped; the curl line must send the
    backslash once and the real byte, and still be safe to print."""
    r = joined(method="GET", authority="127.0.0.1:9", path="/a\\\\b")
    assert r.init is not None
    r.init = replace(r.init, headers=(("X-Dir", "C:\\\\temp"), ("X-Esc", "a\\x1b[2Jb"),
                                      ("X-Bin", "\\xff")))
    line = curl_line(r)
    assert "\x1b" not in line and "\xff" not in line  # escaped in the line itself
    # What the shell hands curl, word by word (bash: $'...' is its quoting).
    argv = subprocess.run(
        ["bash", "-c", line.replace("curl", f"{sys.executable} -c 'import sys,os; "
                                    "[os.write(1, a.encode(\"utf-8\", \"surrogateescape\") "
                                    "+ b\"\\0\") for a in sys.argv[1:]]'", 1)],
        capture_output=True, timeout=10).stdout.split(b"\0")
    assert b"X-Dir: C:\\temp" in argv
    assert b"X-Esc: a\x1b[2Jb" in argv
    assert b"X-Bin: \xff" in argv
    assert b"http://127.0.0.1:9/a\\b" in argv


def test_captured_bodies_go_into_har_as_text_or_base64() -> None:
    from meshtui.model.tap import CapturedBody

    r = joined()
    assert r.init is not None and r.end is not None
    r.init = replace(r.init, headers=(("content-type", "application/json"),))
    r.end = replace(r.end, request_body=CapturedBody(b'{"a": "\xc3\xa9\x1b"}', False, 64),
                    response_body=CapturedBody(b"\x89PNG\r\n\x1a\n\x00\x00", True, 10))
    e = har([r])["log"]["entries"][0]
    post = e["request"]["postData"]
    assert post["text"] == '{"a": "\u00e9\x1b"}' and "encoding" not in post
    assert post["mimeType"] == "application/json" and post["params"] == []
    content = e["response"]["content"]
    assert REQUIRED["content"] <= content.keys()
    assert (content["text"], content["encoding"]) == ("iVBORw0KGgoAAA==", "base64")
    assert "first 10 bytes" in content["comment"]
    # Without bodies captured, neither field appears.
    plain = har([joined()])["log"]["entries"][0]
    assert "postData" not in plain["request"] and "text" not in plain["response"]["content"]


def test_a_timestamp_past_what_har_dates_hold_is_written_as_the_last_one(
        tmp_path: Path) -> None:
    """A replayed file may claim any time up to 2**63 µs; HAR's dates end in year 9999."""
    r = joined()
    assert r.init is not None
    r.init = replace(r.init, timestamp_us=2**63 - 1)
    path = tmp_path / "far.har"
    assert write_har(str(path), [r]) == 1
    [e] = json.loads(path.read_text())["log"]["entries"]
    assert e["startedDateTime"] == "9999-12-31T23:59:59.999Z"


def test_har_query_parameters_are_the_originals_read_once() -> None:
    """A path's query is taken back to the original text once: a backslash stays one
    and a percent-encoded backslash is not read as an escape."""
    r = joined(path="/x?a=C:\\\\temp&b=%5Cx41")
    q = har([r])["log"]["entries"][0]["request"]["queryString"]
    assert q == [{"name": "a", "value": "C:\\temp"}, {"name": "b", "value": "\\x41"}]
