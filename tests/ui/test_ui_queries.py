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
