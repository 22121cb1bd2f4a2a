"""`tap --capture-body N` end to end: a real proxy, controller and CLI; bodies in
`-o json` (base64) and in text (escaped), the proxies' ceiling said in one line."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import pytest
from meshkit import MESHTUI, Pod, one_pod_mesh, outputs_while

WEB = Pod("emojivoto", "web", "web-0")
CONTENT = b"hi\x1b[2J\x00there, a body long enough to be cut"


def get(mesh, name: str) -> None:  # type: ignore[no-untyped-def]
    mesh.send(b"GET /%b HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n" % name.encode())


def ends(out: str) -> list[dict]:  # type: ignore[type-arg]
    lines = [json.loads(ln) for ln in out.splitlines() if ln.startswith("{")]
    return [ln["responseEndEvent"] for ln in lines if "responseEndEvent" in ln]


def test_json_and_text_carry_the_first_n_bytes_of_bodies(tmp_path: Path) -> None:
    (tmp_path / "body.bin").write_bytes(CONTENT)
    with one_pod_mesh(tmp_path, WEB) as mesh:
        tap = ["tap", "deploy/web", "-n", "emojivoto", "--path", "/body.bin", "--limit", "3"]
        out = outputs_while(mesh, tmp_path, {
            "json": [*tap, "-o", "json", "--capture-body", "30"],
            "text": [*tap, "--capture-body", "30"],
            "none": [*tap, "-o", "json"],
        }, lambda: get(mesh, "body.bin"))
    [end] = ends(out["json"])
    body = end["capturedResponseBody"]
    assert base64.b64decode(body["base64"]) == CONTENT[:30]
    assert (body["truncated"], body["limit"]) == (True, 30)
    assert base64.b64decode(end["capturedRequestBody"]["base64"]) == b""  # a GET
    # Text: the escape sequence and the NUL shown escaped, never passed to the terminal.
    assert "\x1b" not in out["text"] and "\x00" not in out["text"]
    assert 'response-body="hi\\x1b[2J\\x00there, a body long enou"…' in out["text"], out["text"]
    # Not asked: no body anywhere.
    [plain] = ends(out["none"])
    assert "capturedResponseBody" not in plain and "capturedRequestBody" not in plain


def test_the_proxies_ceiling_clamps_and_the_cli_says_so_once(tmp_path: Path) -> None:
    (tmp_path / "body.bin").write_bytes(CONTENT)
    with one_pod_mesh(tmp_path, WEB, ("--max-capture-body", "4")) as mesh:
        out = outputs_while(mesh, tmp_path, {"json": [
            "tap", "deploy/web", "-n", "emojivoto", "--path", "/body.bin", "--limit", "6",
            "-o", "json", "--capture-body", "65536"]}, lambda: get(mesh, "body.bin"))
    found = ends(out["json"])
    assert found and all(base64.b64decode(e["capturedResponseBody"]["base64"]) == CONTENT[:4]
                         for e in found)
    notes = [ln for ln in out["json"].splitlines() if "captured up to 4 bytes" in ln]
    assert len(notes) == 1, out["json"]


@pytest.mark.parametrize("n", ["65537", "-1"])
def test_capture_body_out_of_range_is_bad_usage(n: str) -> None:
    r = subprocess.run([*MESHTUI, "--server", "127.0.0.1:1", "tap", "deploy/web",
                        "--capture-body", n, "-o", "json"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "--capture-body" in r.stderr
    assert "Traceback" not in r.stderr
