"""The cyclic garbage collector of a long-running server process.

A full (generation 2) collection walks every object the process holds, and nothing is answered
meanwhile: under ingest load one ran every few seconds and took ~36 ms each time, enough to
show in the push p99 at 50 connections (measured with ``gc.callbacks`` on a real server,
bench/RESULTS.md). Most of those objects were built while starting (modules, the config, the
Klein apps, templates, the migrations) and live until the process exits. ``gc.freeze()``, once
the reactor runs, moves them to a permanent generation that no collection walks again; what
the process allocates later is collected as before.
"""
from __future__ import annotations

import gc


def freeze_startup_heap() -> None:
    """Collect once, then exempt every surviving object from later collections."""
    gc.collect()
    gc.freeze()
