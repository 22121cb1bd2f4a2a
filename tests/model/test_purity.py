"""meshtui.model must stay free of UI and network libraries."""

import subprocess
import sys
from pathlib import Path

import meshtui.model

FORBIDDEN = ("textual", "grpc", "rich", "google.protobuf")


def test_model_imports_no_ui_or_network_library() -> None:
    pkg = Path(meshtui.model.__file__).parent
    mods = sorted(f"meshtui.model.{p.stem}" for p in pkg.glob("*.py") if p.stem != "__init__")
    assert mods, "no model modules found"
    code = (
        "import sys\n"
        f"for m in {mods!r}: __import__(m)\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}"
        f" or any(m.startswith(f + '.') or m == f for f in {FORBIDDEN!r}))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"meshtui.model pulled in: {out.stdout.strip()}"
