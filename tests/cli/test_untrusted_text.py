"""What a request's sender and an inventory's author write reaches the user's terminal
as visible escapes, never as control characters, in every client output."""

from __future__ import annotations

from pathlib import Path

from meshkit import Mesh, Pod, one_pod_mesh, outputs_while

# Unicode's bidirectional controls: a terminal obeys them (U+202E shows what follows
# reversed), so they must arrive escaped like ESC does.
BIDI = {chr(c) for c in (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F),
                         *range(0x2066, 0x206A))}
RLO = "\u202e".encode()  # right-to-left override, as UTF-8 bytes on the wire


def obeyed(text: str) -> list[str]:
    """The characters of ``text`` a terminal would act on rather than show."""
    return [c for c in text if c in BIDI or c == "\x1b" or "\x80" <= c <= "\x9f"]


def hostile_request(mesh: Mesh) -> None:
    # (The proxy refuses raw bytes past ASCII in a path and controls in a header
    # value with 400; a Host's and a value's UTF-8, and a Host's stray byte, pass.)
    status = mesh.send(b"GET /vote HTTP/1.1\r\nHost: web" + RLO + b"example\xff\r\n"
                       b"X-Note: left" + RLO + b"right\r\nConnection: close\r\n\r\n")
    assert status == b"HTTP/1.1 404 File not found", status


def tap_outputs(mesh: Mesh, tmp_path: Path) -> dict[str, str]:
    """tap -o text/wide/json and top -o json while hostile requests pass."""
    commands = {
        "text": ["tap", "ns/emojivoto", "-o", "text", "--limit", "3"],
        "wide": ["tap", "ns/emojivoto", "-o", "wide", "--limit", "3"],
        "json": ["tap", "ns/emojivoto", "-o", "json", "--limit", "3"],
        "top": ["top", "ns/emojivoto", "-o", "json", "--sample", "4"],
    }
    return outputs_while(mesh, tmp_path, commands, lambda: hostile_request(mesh))

def test_bidi_controls_and_non_utf8_from_traffic_and_names_are_shown_escaped(
        tmp_path: Path) -> None:
    with one_pod_mesh(tmp_path, Pod("emojivoto", "w\u202eeb", "web-\u202e0")) as mesh:
        out = tap_outputs(mesh, tmp_path)
        stat = {f"{kind} {o}": mesh.cli("stat", kind, "-n", "emojivoto", "-o", o).stdout
                for o in ("table", "wide", "json") for kind in ("deploy", "po")}
    for name, text in {**out, **stat}.items():
        assert not obeyed(text), (name, obeyed(text), text)
    # The Host header's bytes were UTF-8: shown as the escape of the character they
    # encode, not as three Latin-1 letters; the byte that is not UTF-8 as itself.
    assert ":authority=web\\u202eexample\\xff" in out["text"], out["text"]
    assert "â" not in out["text"] + out["wide"] + out["json"]
    # tap -o json carries the original text, the control in JSON's own escape.
    assert "left\\u202eright" in out["json"], out["json"]
    assert "_res=deploy/w\\u202eeb" in out["wide"], out["wide"]
    assert "web-\\u202e0" in out["json"]
    assert "w\\u202eeb" in stat["deploy table"] and "web-\\u202e0" in stat["po wide"]
    # JSON carries the names as they are, in its own escapes (ensure_ascii): a
    # program reading it gets the real name.
    import json

    assert "w\u202eeb" in {r["name"] for r in json.loads(stat["deploy json"])}
    assert "web-\u202e0" in {r["name"] for r in json.loads(stat["po json"])}
    assert "w\u202eeb" in json.dumps(json.loads(out["top"]), ensure_ascii=False)
