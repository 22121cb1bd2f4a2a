"""Reading the inventory file, and reading it again whenever it changes.

Pods come and go while the controller runs: whoever runs the mesh rewrites the
file, and the watcher notices by polling its size, mtime and inode (no inotify
needed, and a file replaced by rename is seen too). A file that does not parse
keeps the previous inventory in force and is reported in one log line, once per
bad version of the file.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from meshtui.model.inventory import Inventory, InventoryError

log = logging.getLogger("meshtui.controller")


def _parse(text: str, path: Path) -> Any:
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise InventoryError(f"inventory {path}: not valid JSON: {e}") from None
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        return YAML(typ="safe", pure=True).load(text)
    except YAMLError as e:
        first = " ".join(str(e).split())[:200]
        raise InventoryError(f"inventory {path}: not valid YAML: {first}") from None


def load_inventory(path: str | Path) -> Inventory:
    """Reads and checks an inventory file; InventoryError (one line) if it cannot."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InventoryError(f"inventory {p}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InventoryError(f"inventory {p}: cannot read it: {e}") from None
    inv = Inventory.from_data(_parse(text, p))
    return inv


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class InventoryWatcher:
    """Holds the inventory in force and re-reads the file when it changes.

    Args:
        path: the YAML or JSON file.
        on_change: called with each new inventory that parsed.
        interval_s: how often to look at the file.
    """

    def __init__(
        self,
        path: str | Path,
        on_change: Callable[[Inventory], None] | None = None,
        interval_s: float = 0.5,
    ) -> None:
        self.path = Path(path)
        self.on_change = on_change
        self.interval_s = interval_s
        self._sig = _signature(self.path)
        self.inventory = load_inventory(self.path)  # the first read must succeed
        self._bad_sig: tuple[int, int, int] | None = None
        self.reloads = 0

    def check(self) -> bool:
        """Re-reads the file if it changed; returns whether a new inventory took effect."""
        sig = _signature(self.path)
        if sig == self._sig:
            return False
        if sig is None:
            if self._bad_sig != (0, 0, 0):
                log.warning("inventory %s is gone; keeping the previous %d pods",
                            self.path, len(self.inventory.pods))
                self._bad_sig = (0, 0, 0)
            return False
        try:
            inv = load_inventory(self.path)
        except InventoryError as e:
            if self._bad_sig != sig:
                log.warning("%s; keeping the previous %d pods", e, len(self.inventory.pods))
                self._bad_sig = sig
            self._sig = sig  # do not re-read the same bad version every poll
            return False
        self._sig = sig
        self._bad_sig = None
        self.reloads += 1
        self.inventory = inv
        if self.on_change is not None:
            self.on_change(inv)
        return True

    async def run(self) -> None:
        """Polls until cancelled."""
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                self.check()
            except Exception as e:  # never let one odd read end the watch
                log.warning("inventory %s: %s", self.path, " ".join(str(e).split()))
