"""SPEC 12 on one machine without a cluster: several hosts in one URL, failover to the next host
(through real TCP proxies to the real MariaDB), whole-transaction retries with a capped,
jittered backoff (task.Clock), migrations racing without GET_LOCK, and group commit on a
conflict. The same on a real Galera cluster: tests/galera/."""
from __future__ import annotations

import random
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pymysql
import pytest
import pytest_twisted
from twisted.internet import defer
from twisted.internet.task import Clock

from overc.core.dburl import DatabaseURLError, MySQLTarget, SQLiteTarget, parse_database_url
from overc.core.errors import DatabaseUnavailable
from overc.ingest.groupcommit import GroupCommit
from overc.storage.db import Database
from overc.storage.dialect import MySQLDialect
from overc.storage.pool import CommitInDoubt, RetryPolicy

from helpers import reactor, wait_for
from realserver import RealServer
from test_database_outage import CuttableProxy


# -- URLs ----------------------------------------------------------------------------------

def test_several_hosts_in_one_url_keep_their_order_and_ports():
    target = parse_database_url("mysql://u:p%40w@db1:3307,db2,[::1]:3309/overc", Path("."))
    assert isinstance(target, MySQLTarget)
    assert target.hosts == (("db1", 3307), ("db2", 3306), ("::1", 3309))
    assert (target.host, target.port, target.user, target.password) == ("db1", 3307, "u", "p@w")
    assert target.describe() == "mysql://u@db1:3307,db2:3306,::1:3309/overc"
    one = parse_database_url("mysql://overc@db.local/overc", Path("."))
    assert one == MySQLTarget("db.local", 3306, "overc", "", "overc")


@pytest.mark.parametrize("url, words", [
    ("mysql://u@db1,,db3/overc", "empty host"),
    ("mysql://u@db1:99999/overc", "bad port '99999'"),
    ("mysql://u@db1:x/overc", "bad port 'x'"),
    ("mysql://u@db1,db1:3306/overc", "appears twice"),
    ("mysql://u@db1,db2/", "names no database"),
])
def test_a_bad_host_list_is_named(url, words):
    with pytest.raises(DatabaseURLError, match=words):
        parse_database_url(url, Path("."))


# -- Retries: whole transaction, capped backoff with jitter ---------------------------------

def test_backoff_is_capped_and_jittered():
    policy = RetryPolicy(attempts=10, base=0.01, cap=0.5)
    rng = random.Random(7)
    delays = [policy.delay(attempt, rng) for attempt in range(1, 10)]
    assert all(0 <= d <= min(0.5, 0.01 * 2 ** (n - 1)) for n, d in enumerate(delays, 1))
    assert len(set(delays)) == len(delays)  # jitter: two colliding writers drift apart
    assert max(policy.delay(30, random.Random(s)) for s in range(200)) <= 0.5


class FakePool:
    """Stands for the adbapi pool: each run fails with the next error, then succeeds."""

    def __init__(self, errors: list[Exception]) -> None:
        self.errors = list(errors)
        self.runs = 0

    def runWithConnection(self, interaction):
        self.runs += 1
        if self.errors:
            return defer.fail(self.errors.pop(0))
        return defer.succeed("committed")

    def host_in_use(self):
        return "db2:3306"


def _database(errors: list[Exception], tmp_path: Path, attempts: int = 5):
    clock = Clock()
    db = Database(SQLiteTarget(tmp_path / "unused.db"), reactor(),
                  retry=RetryPolicy(attempts=attempts, base=0.01, cap=0.05),
                  rng=random.Random(1))
    db.pool.close()
    db.dialect = MySQLDialect()
    db.pool = FakePool(errors)  # type: ignore[assignment]
    db.reactor = clock  # type: ignore[assignment]
    return db, clock


def _drive(db, clock: Clock):
    outcome = defer.ensureDeferred(db.run(lambda cursor: None))
    for _ in range(100):
        clock.advance(0.05)
    return outcome


def test_conflicts_anywhere_rerun_the_whole_transaction_after_a_backoff(tmp_path):
    deadlock = pymysql.err.OperationalError(1213, "Deadlock found; try restarting transaction")
    db, clock = _database([deadlock, deadlock, pymysql.err.OperationalError(1205, "wait")],
                          tmp_path)
    outcome = defer.ensureDeferred(db.run(lambda cursor: None))
    assert db.pool.runs == 1
    assert not outcome.called  # waiting out the backoff, not spinning
    for _ in range(100):
        clock.advance(0.05)
    assert outcome.result == "committed"
    assert db.pool.runs == 4 and db.retries == {"conflict": 3, "connection": 0}


def test_endless_conflicts_become_503_never_500(tmp_path):
    deadlock = pymysql.err.OperationalError(1213, "Deadlock")
    db, clock = _database([deadlock] * 10, tmp_path, attempts=4)
    failure = _drive(db, clock)
    assert db.pool.runs == 4
    assert isinstance(failure.result.value, DatabaseUnavailable)
    failure.addErrback(lambda _: None)


def test_a_connection_lost_before_commit_is_rerun_on_the_next_host(tmp_path):
    lost = pymysql.err.OperationalError(2013, "Lost connection to server during query")
    not_ready = pymysql.err.OperationalError(1047, "WSREP has not yet prepared node")
    db, clock = _database([lost, not_ready], tmp_path)
    assert _drive(db, clock).result == "committed"
    assert db.retries == {"conflict": 0, "connection": 2}
    assert db.host_in_use() == "db2:3306"


def test_a_connection_lost_during_commit_is_not_guessed(tmp_path):
    db, clock = _database([CommitInDoubt("lost during COMMIT")], tmp_path)
    failure = _drive(db, clock)
    assert db.pool.runs == 1  # it may have committed: never run twice
    assert isinstance(failure.result.value, DatabaseUnavailable)
    failure.addErrback(lambda _: None)


def test_other_errors_are_not_retried(tmp_path):
    duplicate = pymysql.err.IntegrityError(1062, "Duplicate entry")
    db, clock = _database([duplicate], tmp_path)
    failure = _drive(db, clock)
    assert db.pool.runs == 1 and failure.result.value is duplicate
    failure.addErrback(lambda _: None)


# -- Group commit: a conflicting batch fails nobody --------------------------------------------

def test_a_batch_that_conflicts_is_retried_whole_and_fails_none_of_its_requests(tmp_path):
    deadlock = pymysql.err.OperationalError(1213, "Deadlock")
    db, clock = _database([deadlock, deadlock], tmp_path)
    calls = []

    async def commit(items):
        calls.append(list(items))
        await db.run(lambda cursor: None)
        return [None] * len(items)

    group = GroupCommit(commit)
    group._in_flight = 1  # hold the queue so that three requests share one batch
    waiters = [group.submit(n) for n in range(3)]
    group._in_flight = 0
    group._pump()
    for _ in range(100):
        clock.advance(0.05)
    assert [w.result for w in waiters] == [None, None, None]
    assert calls == [[0, 1, 2]]  # one batch, never split into single commits


# -- Real MariaDB behind two proxies: the pool moves to the next host ---------------------------

def _proxied_url(mysql_url: str, ports: list[int]) -> str:
    parts = urlsplit(mysql_url)
    hosts = ",".join(f"127.0.0.1:{port}" for port in ports)
    return urlunsplit(parts._replace(netloc=f"{parts.username or 'root'}@{hosts}"))


def _proxies(mysql_url: str, count: int) -> list[CuttableProxy]:
    parts = urlsplit(mysql_url)
    return [CuttableProxy((parts.hostname or "127.0.0.1", parts.port or 3306)).start()
            for _ in range(count)]


@pytest.mark.mysql
@pytest_twisted.ensureDeferred
async def test_the_pool_skips_a_dead_host_and_moves_on_when_its_host_goes(mysql_url, tmp_path):
    from realserver import free_port

    first, second = _proxies(mysql_url, 2)
    dead = free_port()  # nobody listens: connection refused
    url = _proxied_url(mysql_url, [dead, first.port, second.port])
    db = Database(parse_database_url(url, tmp_path), reactor())
    try:
        await db.migrate()
        assert db.host_in_use() == f"127.0.0.1:{first.port}"
        first.cut()  # open connections reset mid-life, new ones refused
        for _ in range(10):  # every pool thread finds its connection gone: no error surfaces
            await db.ping()
            await db.run(lambda cursor: cursor.execute("SELECT 1").fetchall())
        assert db.host_in_use() == f"127.0.0.1:{second.port}"
        assert db.retries["connection"] >= 1
    finally:
        db.close()
        first.cut()
        second.cut()


@pytest.mark.mysql
@pytest_twisted.ensureDeferred
async def test_processes_starting_at_once_migrate_once_without_get_lock(mysql_url, tmp_path):
    from overc.storage.migrate import load_migrations

    known = max(v for v, _, _ in load_migrations())
    dbs = [Database(parse_database_url(mysql_url, tmp_path), reactor()) for _ in range(4)]
    try:
        versions = await defer.gatherResults(
            [defer.Deferred.fromCoroutine(db.migrate()) for db in dbs])
        assert versions == [known] * 4
        rows = await dbs[0].run(lambda c: c.execute(
            "SELECT version FROM schema_version ORDER BY version").fetchall())
        assert [v for (v,) in rows] == sorted(v for v, _, _ in load_migrations())
        lock = await dbs[0].run(lambda c: c.execute(
            "SELECT owner FROM schema_lock").fetchall())
        assert lock == [(None,)]  # released
    finally:
        for db in dbs:
            db.close()


@pytest.mark.mysql
@pytest_twisted.ensureDeferred
async def test_an_old_schema_version_table_gets_its_primary_key(mysql_url, tmp_path):
    db = Database(parse_database_url(mysql_url, tmp_path), reactor())
    try:
        await db.migrate()
        await db.run(lambda c: c.execute("ALTER TABLE schema_version DROP PRIMARY KEY"))
        await db.migrate()
        keys = await db.run(lambda c: c.execute(
            "SHOW KEYS FROM schema_version WHERE Key_name = 'PRIMARY'").fetchall())
        assert keys
    finally:
        db.close()


@pytest.mark.mysql
@pytest.mark.slow
def test_a_real_server_fails_over_between_hosts_with_no_500(tmp_path, mysql_url):
    first, second = _proxies(mysql_url, 2)
    server = RealServer(tmp_path, database=_proxied_url(mysql_url, [first.port, second.port]))
    server.start()
    try:
        def push(info: str) -> int:
            return server.post("api/set/service/status", {
                "server": {"name": "fo", "key": "k"}, "period": 60,
                "services": [{"name": "svc", "state": "OK", "info": info}]})[0]

        assert push("before") == 200
        assert server.get("healthz")[2]["database"]["host"] == f"127.0.0.1:{first.port}"
        first.cut()
        statuses = [push(f"after-{n}") for n in range(20)]
        assert set(statuses) <= {200, 503} and statuses[-1] == 200, statuses
        health = wait_for(lambda: (lambda h: h[0] == 200 and h)(server.get("healthz")), 10,
                          "/healthz to answer 200 on the second host")
        assert health[2]["database"]["host"] == f"127.0.0.1:{second.port}"
        stored = {info for (info,) in RealServer(tmp_path, mysql_url, name="reader").query(
            "SELECT info FROM states")}
        assert {f"after-{n}" for n, s in enumerate(statuses) if s == 200} <= stored
    finally:
        server.stop()
        first.cut()
        second.cut()
