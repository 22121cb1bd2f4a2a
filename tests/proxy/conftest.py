"""Fixtures for the proxy tests. They live in proxymesh.py, a module with a name
of its own: every test folder has a conftest.py, and ``from conftest import``
would pick whichever folder's was imported first."""

from proxymesh import mesh  # noqa: F401
