"""tap --filter and top --filter, on a real proxy and controller: response fields
filter after the fact, and a bad expression is shown with a caret under the fault."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from meshkit import MESHTUI, Pod, one_pod_mesh, outputs_while


@pytest.mark.parametrize(("command", "expr", "fault"), [
    ("tap", "status>=500 and (colour=red or GET)", "colour"),
    ("top", "GET and (POST or", ""),
    ("tap", "path~^/(api", "^/(api"),
])
def test_a_bad_filter_is_shown_with_a_caret_and_exits_2(command: str, expr: str,
                                                         fault: str) -> None:
    r = subprocess.run([*MESHTUI, command, "ns/emojivoto", "--filter", expr, "-o", "json"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2, r
    assert r.stdout == ""
    first, caret = r.stderr.splitlines()
    assert first.startswith("meshtui: bad --filter: ") and first.endswith(expr)
    column = caret.index("^")
    if fault:
        assert first[column:column + len(fault)] == fault
    else:  # the expression ended too soon: the caret is past its end
        assert column == len(first)
    assert caret[column + 1:].strip()  # the reason follows the caret


def test_tap_and_top_keep_only_what_the_filter_passes(tmp_path: Path) -> None:
    (tmp_path / "ok.txt").write_text("fine\n")
    commands = {
        "tap": ["tap", "ns/emojivoto", "-o", "json", "--limit", "6",
                "--filter", "status=404 and not path~ok"],
        "top": ["top", "ns/emojivoto", "-o", "json", "--sample", "3",
                "--filter", "status<400 or h.x-pick=yes"],
        "by": ["top", "ns/emojivoto", "-o", "wide", "--sample", "3", "--by", "status,path",
               "--limit", "2"],
    }

    def traffic() -> None:
        for path, extra in (("/ok.txt", b""), ("/missing", b""),
                            ("/picked", b"X-Pick: yes\r\n")):
            mesh.send(f"GET {path} HTTP/1.1\r\nHost: web\r\n".encode() + extra
                      + b"Connection: close\r\n\r\n")

    with one_pod_mesh(tmp_path, Pod("emojivoto", "web", "web-0")) as mesh:
        out = outputs_while(mesh, tmp_path, commands, traffic)
    events = [json.loads(line) for line in out["tap"].splitlines()]
    assert len(events) == 6
    # Whole requests, each held until its end: request, response, end.
    kinds = [next(k for k in e if k.endswith("Event")) for e in events]
    assert kinds == ["requestInitEvent", "responseInitEvent", "responseEndEvent"] * 2
    assert {e["requestInitEvent"]["path"] for e in events[::3]} <= {"/missing", "/picked"}
    assert {e["responseInitEvent"]["httpStatus"] for e in events[1::3]} == {404}
    rows = json.loads(out["top"])
    assert {r["path"] for r in rows} == {"/ok.txt", "/picked"}, rows
    # Grouped by status and path, in the columns' order whatever --by's, and cut at 2:
    # the two 404 paths and /ok.txt make three rows.
    header, *lines = out["by"].splitlines()
    assert header.split() == ["DIRECTION", "PATH", "STATUS", "COUNT", "BEST", "WORST", "LAST",
                              "SUCCESS"]
    assert len(lines) == 2
    assert {line.split()[2] for line in lines} <= {"200", "404"}


def test_bad_grouping_and_limit_exit_2() -> None:
    for args in (["--by", "src,colour"], ["--limit", "0"]):
        r = subprocess.run([*MESHTUI, "top", "ns/emojivoto", "-o", "json", *args],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 2 and len(r.stderr.splitlines()) == 1, r
