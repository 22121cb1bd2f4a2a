"""Fixtures for the client tests live in promkit.py (a module with a name of its own)."""
