"""Each service's held reason in the read model (SPEC 10, issue 11 item 7), on both databases:
every reason from the rows as they are, the same on the server list, one server and one
service, and a fixed number of queries whatever the number of services."""
from __future__ import annotations

import pytest_twisted

from overc.storage import db as db_module
from overc.storage.queries import Queries

NOW = 1.7e9


def _txn_fill(cursor, extra: int = 0) -> dict[str, int]:
    def server(name: str, offline: int = 0) -> int:
        cursor.execute("INSERT INTO servers (name, key_hash, ip, created, offline)"
                       " VALUES (?, 'k', NULL, 1, ?)", (name, offline))
        return cursor.execute("SELECT id FROM servers WHERE name = ?", (name,)).fetchone()[0]

    ids: dict[str, int] = {}

    def service(server_id: int, name: str, state: str | None = "OK", **columns) -> None:
        names = ", ".join(["server_id", "name", "state", "period", "created", *columns])
        marks = ", ".join("?" * (5 + len(columns)))
        cursor.execute(f"INSERT INTO services ({names}) VALUES ({marks})",
                       (server_id, name, state, 60, 1, *columns.values()))
        ids[name] = cursor.execute("SELECT id FROM services WHERE server_id = ? AND name = ?",
                                   (server_id, name)).fetchone()[0]

    web = server("web1")
    service(web, "db", "FAIL")
    service(web, "app", "FAIL", depends_on="db", flapping=1)  # the parent beats flapping
    service(web, "flappy", "OK", flapping=1, soft_state="FAIL", soft_count=1, attempts=3)
    service(web, "softy", "OK", soft_state="WARN", soft_count=2, attempts=3)
    service(web, "acky", "FAIL", acked=1, ack_sticky=1)
    service(web, "acked-ok", "OK", acked=1)
    service(web, "maint", "FAIL", flapping=1)
    service(web, "fine")
    for n in range(extra):
        service(web, f"more{n}", "FAIL", depends_on="db")
    dead = server("dead1", offline=1)
    service(dead, "cpu", "OK", stale=1, depends_on="nothing")
    batch = server("batch1")
    service(batch, "cron-a", "FAIL", acked=1)
    # A window over one service, a glob window over batch*, one that is over, one to come.
    for server_id, service_id, servers, start, end in [
            (web, ids["maint"], None, NOW - 60, NOW + 60), (None, None, '["batch*"]', NOW - 1,
                                                              NOW + 1),
            (web, None, None, NOW - 120, NOW - 60), (web, None, None, NOW + 60, NOW + 120)]:
        cursor.execute(
            "INSERT INTO maintenance (source, server_id, service_id, servers, start_time,"
            " end_time, reason, created) VALUES ('ui', ?, ?, ?, ?, ?, '', 1)",
            (server_id, service_id, servers, start, end))
    return ids


EXPECTED = {"db": None, "app": "depends on db", "flappy": "flapping", "softy": "soft 2/3",
            "acky": "acknowledged", "acked-ok": None, "maint": "maintenance", "fine": None,
            "cpu": "server offline", "cron-a": "maintenance"}


@pytest_twisted.ensureDeferred
async def test_every_reason_on_every_read(database):
    ids = await database.run(_txn_fill)
    queries = Queries(database)
    listed = {s.name: s.held for v in await queries.servers(now=NOW) for s in v.services}
    assert listed == EXPECTED
    for server in await queries.servers():
        assert all(s.held is None for s in server.services)  # not asked: not computed
    one = {}
    for server in await queries.servers():
        one.update({s.name: s.held for s in (await queries.server(server.id, now=NOW)).services})
    assert one == EXPECTED
    alone = {name: (await queries.service(sid, now=NOW)).held for name, sid in ids.items()}
    assert alone == EXPECTED
    # When every window is over, its own flapping is the reason.
    assert (await queries.service(ids["maint"], now=NOW + 200)).held == "flapping"


@pytest_twisted.ensureDeferred
async def test_a_fixed_number_of_queries_whatever_the_services(database, monkeypatch):
    await database.run(_txn_fill, 200)
    queries = Queries(database)
    calls: list[str] = []
    original = db_module.Cursor.execute

    def counting(self, statement, params=()):
        calls.append(statement)
        return original(self, statement, params)

    monkeypatch.setattr(db_module.Cursor, "execute", counting)
    servers = await queries.servers(now=NOW)
    assert sum(1 for v in servers for s in v.services if s.held == "depends on db") == 201
    without = len(calls)
    calls.clear()
    await queries.servers()
    assert without - len(calls) == 2, calls  # the maintenance windows, read once
    app = next(s.id for v in servers for s in v.services if s.name == "app")
    calls.clear()
    await queries.service(app, now=NOW)
    assert len(calls) <= 4, calls


@pytest_twisted.ensureDeferred
async def test_a_live_page_follows_what_its_held_reason_depends_on(database):
    """The service page's fingerprint changes when its parent recovers, and the server page's
    when a window starts by the clock: both pages' held marks would otherwise stay stale."""
    from overc.storage.read_pulse import PulseScope

    ids = await database.run(_txn_fill)
    queries = Queries(database)
    app = PulseScope("service", ids["app"])
    before = (await queries.pulse(app, NOW)).token
    await database.run(lambda c: c.execute("UPDATE services SET state = 'OK' WHERE name = 'db'"))
    assert (await queries.pulse(app, NOW)).token != before
    web1 = PulseScope("server", (await queries.service(ids["db"])).server_id)
    assert (await queries.pulse(web1, NOW + 30)).token != (await queries.pulse(web1,
                                                                                NOW + 90)).token
