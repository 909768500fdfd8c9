"""A command channel that records each notification as a JSON file, and the check that the
pipeline has settled: shared by the end-to-end tests with real server processes.

``alert.d/record.sh [NAME]`` (``format = json``) writes ``got/[NAME/]<notification id>.json``,
whole, then renamed, so a test never reads a file half written.
"""
from __future__ import annotations

from realserver import RealServer

RECORD = """#!/bin/sh
# One file per notification (format = json), written whole, then renamed.
dir="got${1:+/$1}"
mkdir -p "$dir"
cat > "$dir/.$OVERC_NOTIFICATION_ID"
mv "$dir/.$OVERC_NOTIFICATION_ID" "$dir/$OVERC_NOTIFICATION_ID.json"
"""


def settled(server: RealServer) -> bool:
    """Every alert dispatched and every notification delivered (or failed for good)."""
    return server.query(
        "SELECT (SELECT COUNT(*) FROM alerts WHERE dispatched = 0) +"
        " (SELECT COUNT(*) FROM notifications WHERE status IN ('pending', 'sending'))"
    )[0][0] == 0
