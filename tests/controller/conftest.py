"""Fixtures for the controller tests, from ctlkit.py (a module name no other
test folder uses, unlike conftest)."""

from ctlkit import mesh, real_mesh  # noqa: F401
