"""The connection pool, transactions and migrations: the one door to the database.

Every store method is one call to :meth:`Database.run`, which runs a ``_txn_*`` function in a pool
thread inside one transaction and commits it there. A transaction that fails with a conflict
(1213/1205, Galera's certification failure at COMMIT included) or loses its connection before
COMMIT is run again whole, after a capped, jittered backoff, on the next host that answers; one
that loses its connection during COMMIT, or keeps failing, becomes :class:`DatabaseUnavailable`
(the API answers 503 with Retry-After): never a 500, and nothing is acknowledged before COMMIT.
"""
from __future__ import annotations

import random
import sqlite3
from typing import Any, Callable, Sequence, TypeVar, cast

from twisted.internet.interfaces import IReactorThreads, IReactorTime
from twisted.internet.task import deferLater
from twisted.logger import Logger

from overc.core.dburl import MySQLTarget, SQLiteTarget
from overc.core.errors import DatabaseUnavailable
from overc.storage.dialect import Dialect, MySQLDialect, SQLiteDialect, SQLiteReaderDialect
from overc.storage.pool import CommitInDoubt, NodeNotReady, Pool, RetryPolicy

T = TypeVar("T")
_FOUND_ROWS = 2  # pymysql.constants.CLIENT.FOUND_ROWS
#: pymysql.constants.CLIENT.MULTI_STATEMENTS: used only by Cursor.execute_all, whose
#: statements hold literals written by overc.storage.bulk_rows, never a formatted parameter.
_MULTI_STATEMENTS = 1 << 16
log = Logger()


def _sqlite_open(connection: sqlite3.Connection) -> None:
    connection.isolation_level = None  # we issue BEGIN ourselves (see SQLiteDialect.begin)
    connection.execute("PRAGMA journal_mode=WAL")
    # FULL: a 200 survives power loss too. Group commit makes the extra fsync cheap.
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute("PRAGMA foreign_keys=ON")
    connection.execute("PRAGMA busy_timeout=5000")


def _mysql_open(connection: Any) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
        cursor.execute("SET SESSION time_zone = '+00:00'")
        cursor.execute("SHOW VARIABLES LIKE 'wsrep_on'")
        galera = cursor.fetchall()
        if galera and str(galera[0][1]).upper() == "ON":  # a Galera node
            cursor.execute("SHOW STATUS LIKE 'wsrep_ready'")
            ready = cursor.fetchall()
            if not ready or str(ready[0][1]).upper() != "ON":
                raise NodeNotReady("wsrep_ready is OFF (joining, donor or not primary)")
            # Reads wait until this node has applied what the cluster committed before them:
            # a report acknowledged through one node is seen by a read on any other.
            cursor.execute("SET SESSION wsrep_sync_wait = 1")
    connection.commit()


class Database:
    """A dialect plus an adbapi pool; ``run`` is the only way SQL reaches the database."""

    def __init__(
        self,
        target: SQLiteTarget | MySQLTarget,
        reactor: IReactorThreads,
        *,
        pool_size: int = 4,
        retry: RetryPolicy = RetryPolicy(),
        rng: random.Random | None = None,
        reader: bool = False,
    ) -> None:
        """``reader``: this process only reads (on SQLite its transactions then take no write
        lock: :class:`~overc.storage.dialect.SQLiteReaderDialect`)."""
        self.target = target
        self.reactor = reactor
        self.retry = retry
        self.rng = rng or random.Random()
        #: Runs again after a conflict (1213/1205) and after a lost connection, for /metrics.
        self.retries = {"conflict": 0, "connection": 0}
        self.dialect: Dialect
        if isinstance(target, SQLiteTarget):
            self.dialect = SQLiteReaderDialect() if reader else SQLiteDialect()
            # One connection: SQLite has one writer anyway, and one thread keeps it simple.
            self.pool = Pool(
                "sqlite3",
                str(target.path),
                check_same_thread=False,
                timeout=5.0,
                cp_min=1,
                cp_max=1,
                cp_openfun=_sqlite_open,
                cp_reactor=reactor,
                cp_noisy=False,
            )
        else:
            self.dialect = MySQLDialect()
            self.pool = Pool(
                "pymysql",
                hosts=target.hosts,
                is_connection_error=self.dialect.is_connection_error,
                user=target.user,
                password=target.password,
                database=target.database,
                charset="utf8mb4",
                autocommit=False,
                # rowcount = rows matched, not rows changed: conditional UPDATEs are claims.
                client_flag=_FOUND_ROWS | _MULTI_STATEMENTS,
                connect_timeout=5,
                read_timeout=30,
                write_timeout=30,
                cp_min=1,
                cp_max=pool_size,
                cp_reconnect=True,
                cp_openfun=_mysql_open,
                cp_reactor=reactor,
                cp_noisy=False,
            )

    async def run(self, txn: Callable[..., T], *args: Any, attempts: int | None = None) -> T:
        """Run ``txn(cursor, *args)`` in one transaction in a pool thread, commit it, and
        return its value; run it again whole on a conflict or a connection lost before COMMIT.
        ``txn`` must therefore do nothing but SQL (it may run several times)."""
        dialect = self.dialect
        limit = attempts or self.retry.attempts

        def interaction(connection: Any) -> T:
            raw = connection.cursor()
            try:
                dialect.begin(raw)
                result = txn(Cursor(raw, dialect), *args)
            finally:
                raw.close()
            try:
                connection.commit()
            except Exception as error:
                if dialect.is_connection_error(error):
                    raise CommitInDoubt(f"connection lost during COMMIT: {error}") from error
                raise
            return result

        for attempt in range(1, limit + 1):
            try:
                return cast(T, await self.pool.runWithConnection(interaction))
            except CommitInDoubt as error:  # maybe committed: only the caller may decide
                raise DatabaseUnavailable(str(error)) from error
            except Exception as error:
                conflict = dialect.is_retryable(error)
                lost = not conflict and dialect.is_connection_error(error)
                if (conflict or lost) and attempt < limit:
                    self.retries["conflict" if conflict else "connection"] += 1
                    delay = self.retry.delay(attempt, self.rng)
                    await deferLater(cast(IReactorTime, self.reactor), delay, lambda: None)
                    continue
                if conflict:  # contention that outlasted every retry: busy, try again later
                    raise DatabaseUnavailable(f"gave up after {attempt} conflicts: {error}"
                                              ) from error
                if dialect.is_unavailable(error):
                    raise DatabaseUnavailable(str(error)) from error
                raise
        raise AssertionError("unreachable")

    def host_in_use(self) -> str | None:
        """``host:port`` of the database host new connections go to (None for SQLite)."""
        return self.pool.host_in_use()

    async def ping(self) -> None:
        """One trivial query: is the database answering (for /healthz)?"""
        await self.run(_txn_ping, attempts=2)

    def close(self) -> None:
        self.pool.close()

    async def migrate(self) -> int:
        """Create or upgrade the schema; return the version now in place."""
        from overc.storage.migrate import migrate

        return await migrate(self)


class Cursor:
    """A cursor that speaks our portable SQL (``?`` placeholders) to any driver."""

    __slots__ = ("raw", "dialect")

    def __init__(self, raw: Any, dialect: Dialect) -> None:
        self.raw = raw
        self.dialect = dialect

    def execute(self, statement: str, params: Sequence[Any] = ()) -> "Cursor":
        self.raw.execute(self.dialect.sql(statement), tuple(params))
        return self

    def execute_all(self, statements: Sequence[str]) -> None:
        """Statements without parameters, in one round trip on MySQL/MariaDB (the connection
        allows several statements per query); the first failing one raises, and the rest are
        not run. One by one on SQLite."""
        if self.dialect.name != "mysql":
            for statement in statements:
                self.raw.execute(statement)
            return
        self.raw.execute(";".join(statements))
        while self.raw.nextset():  # a later statement's error is raised here
            pass

    def executemany(self, statement: str, rows: list) -> None:
        if rows:
            self.raw.executemany(self.dialect.sql(statement), rows)

    def fetchone(self) -> tuple | None:
        return self.raw.fetchone()

    def fetchall(self) -> list[tuple]:
        return list(self.raw.fetchall())

    @property
    def lastrowid(self) -> int:
        return self.raw.lastrowid

    @property
    def rowcount(self) -> int:
        return self.raw.rowcount


def _txn_ping(cursor: "Cursor") -> None:
    cursor.execute("SELECT 1").fetchall()


# Migrations live in overc.storage.migrate; these names stay importable from here.
from overc.storage.migrate import load_migrations, split_statements  # noqa: E402

__all__ = ["Cursor", "Database", "DatabaseUnavailable", "load_migrations", "split_statements"]
