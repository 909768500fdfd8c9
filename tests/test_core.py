"""The domain floor: what moved into ``overc.core`` without a direct test of its own, and the
rule that keeps it a floor (no Twisted, no SQL, no other OverC package)."""
from __future__ import annotations

import ast
import sqlite3
import threading
from pathlib import Path

import pytest

import overc.core
from overc.core.alerts import (
    API, INTERNAL, OFFLINE, ONLINE, STATE, Alert, channel_event, severity_rank,
)
from overc.core.counters import Counters
from overc.core.durations import Grace
from overc.core.notification_text import alert_json
from overc.core.states import STATES
from overc.core.watchdog_rules import fresh_deadline
from overc.storage.alert_tables import NotificationStatus
from overc.storage.rows import Columns, chunks, marks
from overc.storage.watchdog_store import fresh_deadline_sql

CORE = Path(overc.core.__file__).parent


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted(CORE.glob("*.py")), ids=lambda p: p.name)
def test_core_imports_only_the_standard_library_and_itself(path):
    for name in _imports(path):
        top = name.split(".")[0]
        assert top not in ("twisted", "klein", "treq", "pymysql", "jinja2", "sqlite3"), name
        if top == "overc":
            assert name.startswith("overc.core."), f"{path.name} imports {name}"


def alert(**changes) -> Alert:
    values = dict(id=7, server_id=1, server_name="web1", service_id=10, service_name="disk",
                  time=1000.0, kind=STATE, severity="WARN", message="m", state="WARN",
                  info="91%")
    values.update(changes)
    return Alert(**values)


def test_severities_rank_in_the_1x_order_and_unknown_counts_as_fail():
    assert [severity_rank(s) for s in STATES] == [0, 1, 2, 3]
    assert severity_rank("warn") == 1
    assert severity_rank("bogus") == severity_rank(None) == severity_rank("FAIL")
    assert not alert(severity="OK").is_problem and alert(severity="UNK").is_problem


def test_each_kind_has_its_1x_channel_event_pair():
    assert channel_event(STATE, "WARN") == ("service:state", "WARN")
    assert channel_event(OFFLINE, "FAIL") == ("plugin", "offline")
    assert channel_event(ONLINE, "OK") == ("plugin", "online")
    assert channel_event(API, "FAIL") == ("api", "alert")
    assert channel_event(INTERNAL, "FAIL") == ("overc", "internal")
    assert channel_event("future", "FAIL") == ("overc", "future")


def test_an_alert_in_a_notification_document():
    assert alert_json(alert()) == {
        "id": 7, "time": 1000.0, "kind": "state", "severity": "WARN", "server": "web1",
        "service": "disk", "message": "m", "state": "WARN", "info": "91%",
        "channel": "service:state", "event": "WARN",
    }


def test_counters_count_by_labels_and_snapshot_is_a_copy():
    counters = Counters()
    counters.inc("reports")
    counters.inc("reports", 2)
    counters.inc("notifications", result="sent", channel="ops")
    snapshot = counters.snapshot()
    assert snapshot["reports"] == {(): 3}
    assert snapshot["notifications"] == {(("channel", "ops"), ("result", "sent")): 1}
    counters.inc("reports")
    assert snapshot["reports"] == {(): 3}


def test_counters_are_safe_across_threads():
    counters = Counters()
    threads = [threading.Thread(target=lambda: [counters.inc("alerts") for _ in range(1000)])
               for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counters.snapshot()["alerts"] == {(): 4000}


@pytest.mark.parametrize("grace", [Grace(), Grace(seconds=30.0, fraction=None),
                                   Grace(seconds=0.2, fraction=None), Grace(fraction=0.0)])
@pytest.mark.parametrize("period", [1, 5, 9, 60, 86400])
@pytest.mark.parametrize("schedule", [None, "0 6 * * *"])
@pytest.mark.parametrize("own_grace", [None, 0.5, 300.0])
def test_the_sql_fresh_deadline_is_the_pure_one(grace, period, schedule, own_grace):
    expression, extra = fresh_deadline_sql(grace)
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (period INTEGER, schedule TEXT, grace REAL)")
    db.execute("INSERT INTO t VALUES (?, ?, ?)", (period, schedule, own_grace))
    (value,) = db.execute(f"SELECT {expression} FROM t", (5000.0, *extra)).fetchone()
    assert value == pytest.approx(fresh_deadline(5000.0, period, grace,
                                                 scheduled=schedule is not None,
                                                 own_grace=own_grace))


def test_rows_are_read_by_name():
    columns = Columns("Due", id="s.id", period="s.period")
    assert columns.sql == "s.id, s.period"
    row = columns.read((3, 60))
    assert (row.id, row.period) == (3, 60) and tuple(row) == (3, 60)
    assert [r.period for r in columns.read_all([(1, 10), (2, 20)])] == [10, 20]
    assert columns.as_dict((3, 60)) == {"id": 3, "period": 60}
    assert marks([1, 2, 3]) == "?, ?, ?"
    assert [list(c) for c in chunks(list(range(5)), 2)] == [[0, 1], [2, 3], [4]]


def test_finished_notifications_are_the_ones_retention_may_delete():
    assert {s.value for s in NotificationStatus.finished()} == {"sent", "failed", "dropped"}
