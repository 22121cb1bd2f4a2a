"""tap --replay and top --replay read back what tap -o json wrote, in real processes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from meshkit import MESHTUI

sys.path.insert(0, str(Path(__file__).parents[1] / "model"))
from tapkit import steps

from meshtui.model.tap_json import tap_json_line


def saved(tmp_path: Path) -> tuple[Path, list[str]]:
    good = [tap_json_line(ev) for i in range(6)
            for ev in steps(i, status=(200, 503)[i % 2], path=f"/p{i % 3}")]
    lines = [*good[:4], "garbage \x1b[2J", *good[4:10], '{"proxyDirection": 7}', *good[10:]]
    path = tmp_path / "saved.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path, good


def meshtui(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MESHTUI, *args], capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL)


def test_tap_replay_prints_the_file_again_and_says_what_it_skipped(tmp_path: Path) -> None:
    path, good = saved(tmp_path)
    r = meshtui("tap", "--replay", str(path), "-o", "json")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == good
    (note,) = r.stderr.splitlines()
    assert note == "meshtui: 2 bad lines skipped in saved.jsonl (first at line 5: not JSON " \
                   "(JSONDecodeError))"
    failing = meshtui("tap", "--replay", str(path), "-o", "json", "--filter", "status>=500")
    statuses = [json.loads(x)["responseInitEvent"]["httpStatus"]
                for x in failing.stdout.splitlines() if "responseInitEvent" in x]
    assert statuses == [503, 503, 503]


def test_top_replay_groups_the_file(tmp_path: Path) -> None:
    path, _ = saved(tmp_path)
    r = meshtui("top", "--replay", str(path), "-o", "json", "--by", "status")
    assert r.returncode == 0, r.stderr
    assert {row["status"]: row["count"] for row in json.loads(r.stdout)} == {200: 3, 503: 3}


def test_a_missing_file_is_bad_input(tmp_path: Path) -> None:
    r = meshtui("tap", "--replay", str(tmp_path / "nope.jsonl"), "-o", "json")
    assert r.returncode == 2 and "no such file" in r.stderr
    assert meshtui("tap", "-o", "json").returncode == 2  # neither a resource nor a file
