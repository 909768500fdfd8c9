"""The overview query on both databases: its tiles travel as JSON, so any text must survive."""
from __future__ import annotations

import pytest_twisted

from overc.storage.queries import Queries

AWKWARD = ['q"uote \\back\\slash', "ctl\x01\ttab\nline", "émoji 😀 <b>&amp;", "x" * 400, ""]


def _txn_fill(cursor) -> None:
    cursor.execute("INSERT INTO servers (name, key_hash, ip, created) VALUES ('a', 'k', NULL, 1)")
    cursor.execute("INSERT INTO servers (name, key_hash, ip, created) VALUES ('empty', 'k', NULL, 1)")
    server_id = cursor.execute("SELECT id FROM servers WHERE name = 'a'").fetchone()[0]
    for n, text in enumerate(AWKWARD):
        cursor.execute(
            "INSERT INTO services (server_id, name, state, info, period, stale, acked, created,"
            " silenced_until) VALUES (?, ?, ?, ?, 60, ?, ?, 1, ?)",
            (server_id, f"{text[:20]} {n}", "WARN" if n % 2 else "OK", text, n % 2, n % 3 == 0,
             1.7e9 + 0.25 if n == 1 else None))
    cursor.execute(
        "INSERT INTO services (server_id, name, state, info, period, created)"
        " VALUES (?, 'never', NULL, NULL, NULL, 1)", (server_id,))


def _txn_plain(cursor, excerpt: int) -> list[tuple]:
    return sorted(tuple(r) for r in cursor.execute(
        f"SELECT server_id, id, name, state, SUBSTR(info, 1, {excerpt}), stale, acked,"
        " silenced_until"
        " FROM services").fetchall())


@pytest_twisted.ensureDeferred
async def test_overview_tiles_equal_the_plain_rows(database):
    await database.run(_txn_fill)
    servers = await Queries(database).overview(excerpt=160)
    assert sorted(s.name for s in servers) == ["a", "empty"]
    tiles = sorted((s.id, *t) for s in servers for t in s.tiles)
    assert tiles == await database.run(_txn_plain, 160)
    assert len(tiles) == len(AWKWARD) + 1
    assert [s.tiles for s in servers if s.name == "empty"] == [[]]


def _txn_alerts_with_notifications(cursor) -> list[int]:
    """Three alerts: one in a failed and a later pending notification on "pager" and a sent
    one on "log"; one in a pending notification only; one in none."""
    cursor.execute("INSERT INTO servers (name, key_hash, ip, created) VALUES ('h', 'k', NULL, 1)")
    server_id = cursor.execute("SELECT id FROM servers WHERE name = 'h'").fetchone()[0]
    alerts = []
    for n in range(3):
        cursor.execute(
            "INSERT INTO alerts (server_id, service_id, time, kind, severity, message)"
            " VALUES (?, NULL, ?, 'api', 'FAIL', ?)", (server_id, 10.0 + n, f"m{n}"))
        alerts.append(cursor.lastrowid)

    def notification(channel, status, attempts, error, *alert_ids):
        cursor.execute(
            "INSERT INTO notifications (channel, server_id, kind, created, status, attempts,"
            " next_attempt, last_error) VALUES (?, ?, 'problem', 1, ?, ?, 1, ?)",
            (channel, server_id, status, attempts, error))
        nid = cursor.lastrowid
        for alert_id in alert_ids:
            cursor.execute("INSERT INTO notification_alerts (notification_id, alert_id)"
                           " VALUES (?, ?)", (nid, alert_id))

    notification("pager", "failed", 6, "exit status 1: no route", alerts[0])
    notification("log", "sent", 1, None, alerts[0], alerts[1])
    notification("pager", "pending", 2, "exit status 1: still no route", alerts[0])
    notification("pager", "pending", 0, None, alerts[1])
    return alerts


@pytest_twisted.ensureDeferred
async def test_alerts_carry_the_latest_notification_of_each_channel(database):
    from overc.core.alerts import ChannelDelivery
    from overc.storage.read_alerts import AlertFilter

    first, second, third = await database.run(_txn_alerts_with_notifications)
    page = {a.id: a for a in await Queries(database).alerts(AlertFilter())}
    assert page[first].deliveries == (
        ChannelDelivery("log", "sent", 1, None),
        ChannelDelivery("pager", "pending", 2, "exit status 1: still no route"))
    assert page[first].delivery == {"failed": 1, "sent": 1, "pending": 1}  # the old counts
    assert page[second].deliveries == (ChannelDelivery("log", "sent", 1, None),
                                       ChannelDelivery("pager", "pending", 0, None))
    assert page[third].deliveries == () and page[third].delivery == {}
