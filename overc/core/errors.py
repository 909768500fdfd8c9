"""Errors every layer shares: storage raises them, services and the web layer catch them."""
from __future__ import annotations


class DatabaseUnavailable(Exception):
    """The database cannot be reached now; nothing was stored. Retry later."""


class StartupRefused(Exception):
    """A known reason not to start, said in its own words (one line, exit status 1)."""
