"""The controller API's bearer credential: where it lives, made and read.

`meshtui controller` (and so `meshtui demo`) writes a random token for the local
user, 0600, at :func:`path_for` its clients' address; the CLI and the dashboard read
it from there by default (``MESHTUI_CREDENTIAL`` names another file).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from meshtui.identity.certs import write_private

ENV = "MESHTUI_CREDENTIAL"
METADATA_KEY = "authorization"


def path_for(server: str) -> Path:
    """The credential file of the controller clients reach at ``server`` (HOST:PORT)."""
    given = os.environ.get(ENV)
    if given:
        return Path(given)
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(Path.home(), ".local", "state")
    safe = "".join(c if c.isalnum() or c in ".-" else "_" for c in server)
    return Path(base) / "meshtui" / "credentials" / safe


def new_token() -> str:
    return secrets.token_urlsafe(32)


def clients_address(listen: str) -> str:
    """The address local clients use for a controller listening on ``listen``: a
    wildcard (every interface) is reached, and its credential looked for, at loopback."""
    host, _, port = listen.rpartition(":")
    if host.strip("[]") in ("0.0.0.0", "::", ""):
        return f"127.0.0.1:{port}"
    return listen


def create(path: Path, token: str | None = None) -> str:
    """Writes ``token`` (a new one if None) where clients will look for it."""
    token = token or new_token()
    write_private(path, token.encode())
    return token


def read(server: str) -> str | None:
    """The credential for ``server``, or None when there is no readable file."""
    try:
        return path_for(server).read_text(encoding="utf-8").strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def bearer(token: str) -> str:
    return f"Bearer {token}"
