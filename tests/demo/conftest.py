"""The demo fixture, from demokit.py (a module name no other test folder uses)."""

from demokit import demo  # noqa: F401
