"""A slow command channel that a real server process can be SIGKILLed in the middle of, and the
checks that every notification was still delivered (once, unless its process died holding it).

Shared by the tests that kill one of two real processes mid-delivery: on one MariaDB
(tests/monitoring/test_two_real_servers.py) and on a Galera cluster (tests/galera/).
``q`` below is any ``sql -> rows`` reader of the servers' database (``RealServer.query``, a
Galera node's ``query``).
"""
from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Callable

from helpers import wait_for
from realserver import RealServer

Query = Callable[[str], list[tuple]]

SLOW_RECORD = """#!/bin/sh
# A slow channel, so that a process can be killed while it delivers. One file per attempt.
mkdir -p deliveries
cat > "deliveries/.$OVERC_NOTIFICATION_ID-$$"
sleep 2
mv "deliveries/.$OVERC_NOTIFICATION_ID-$$" "deliveries/$OVERC_NOTIFICATION_ID-$$.json"
"""

CONFIG = """[overc]
watchdog-interval = 0.5
grace = 1
[alert:log]
command = ./alert.d/record.sh
format = json
timeout = 5
"""


def install(workdir: Path) -> None:
    """``alert.d/record.sh`` in the servers' working folder (CONFIG's channel runs it)."""
    (workdir / "alert.d").mkdir(exist_ok=True)
    (workdir / "alert.d" / "record.sh").write_text(SLOW_RECORD)
    (workdir / "alert.d" / "record.sh").chmod(0o755)


def kill_the_deliverer(q: Query, a: RealServer, b: RealServer) -> tuple[RealServer, RealServer]:
    """SIGKILL whichever of ``a`` and ``b`` holds a delivery lease; ``(victim, survivor)``."""
    by_pid = {str(a.process.pid): a, str(b.process.pid): b}
    # An attempt started less than a second ago still has over a second of `sleep 2` left.
    owner = wait_for(lambda: [o for (o,) in q(
        "SELECT owner FROM notification_attempts WHERE finished IS NULL"
        f" AND started > {time.time() - 1.0}")],
        20, "a process to be delivering")[0]
    victim = by_pid[owner.split(":")[1]]
    victim.kill()
    return victim, (b if victim is a else a)


def wait_all_delivered(q: Query) -> None:
    wait_for(lambda: q(
        "SELECT (SELECT COUNT(*) FROM alerts WHERE dispatched = 0) +"
        " (SELECT COUNT(*) FROM notifications WHERE status IN ('pending', 'sending'))"
    )[0][0] == 0, 45, "every alert to be delivered (the survivor takes over the leases)")


def check_deliveries(q: Query, workdir: Path) -> set[int]:
    """Every notification sent and delivered; a repeat only where a lease expired (its process
    died mid-way: the orphaned command may still finish, the repeat carries the same id).
    Returns the notifications whose lease was taken over (at least one: the victim held one)."""
    notifications = q("SELECT id, status FROM notifications")
    assert {status for _, status in notifications} == {"sent"}
    delivered: Counter = Counter()
    cut_short = set()
    for path in (workdir / "deliveries").glob("*.json"):
        try:
            delivered[json.loads(path.read_text())["notification"]] += 1
        except ValueError:
            # The victim was SIGKILLed while writing this delivery's stdin: its orphaned
            # command got a truncated document. Only a taken-over lease may explain that.
            cut_short.add(int(path.name.split("-")[0]))
    assert set(delivered) == {n for n, _ in notifications}, "nothing lost"
    repeated = {n for n, count in delivered.items() if count > 1}
    expired = {n for (n,) in q("SELECT notification_id FROM notification_attempts"
                                " WHERE error LIKE 'lease expired%'")}
    assert repeated <= expired, "only a delivery whose process died may repeat"
    assert cut_short <= expired
    assert expired, "the victim was killed holding a lease: the survivor took it over"
    return expired
