"""The connection pool, transactions and migrations: the one door to the database.

Every store method is one call to :meth:`Database.run`, which runs a ``_txn_*`` function in a pool
thread inside one transaction. Driver errors that mean "the database is not reachable" become
:class:`DatabaseUnavailable` (the API answers 503); deadlocks are retried a few times.
"""
from __future__ import annotations

import sqlite3
from importlib import resources
from typing import Any, Callable, Sequence, TypeVar

from twisted.enterprise import adbapi
from twisted.internet.interfaces import IReactorThreads
from twisted.logger import Logger

from overc.core.dburl import MySQLTarget, SQLiteTarget
from overc.core.errors import DatabaseUnavailable
from overc.storage.dialect import Dialect, MySQLDialect, SQLiteDialect

T = TypeVar("T")
_FOUND_ROWS = 2  # pymysql.constants.CLIENT.FOUND_ROWS
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
    connection.commit()


class Database:
    """A dialect plus an adbapi pool; ``run`` is the only way SQL reaches the database."""

    def __init__(
        self,
        target: SQLiteTarget | MySQLTarget,
        reactor: IReactorThreads,
        *,
        pool_size: int = 4,
    ) -> None:
        self.target = target
        self.reactor = reactor
        self.dialect: Dialect
        if isinstance(target, SQLiteTarget):
            self.dialect = SQLiteDialect()
            # One connection: SQLite has one writer anyway, and one thread keeps it simple.
            self.pool = adbapi.ConnectionPool(
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
            self.pool = adbapi.ConnectionPool(
                "pymysql",
                host=target.host,
                port=target.port,
                user=target.user,
                password=target.password,
                database=target.database,
                charset="utf8mb4",
                autocommit=False,
                # rowcount = rows matched, not rows changed: conditional UPDATEs are claims.
                client_flag=_FOUND_ROWS,
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

    async def run(self, txn: Callable[..., T], *args: Any, attempts: int = 3) -> T:
        """Run ``txn(cursor, *args)`` in one transaction in a pool thread; return its value."""
        dialect = self.dialect

        def interaction(cursor: Any) -> T:
            dialect.begin(cursor)
            return txn(Cursor(cursor, dialect), *args)

        for attempt in range(attempts):
            try:
                return await self.pool.runInteraction(interaction)
            except Exception as error:
                if dialect.is_retryable(error) and attempt + 1 < attempts:
                    continue
                if dialect.is_unavailable(error):
                    raise DatabaseUnavailable(str(error)) from error
                raise
        raise AssertionError("unreachable")

    async def ping(self) -> None:
        """One trivial query: is the database answering (for /healthz)?"""
        await self.run(_txn_ping, attempts=1)

    def close(self) -> None:
        self.pool.close()

    async def migrate(self) -> int:
        """Create or upgrade the schema; return the version now in place."""
        if isinstance(self.target, MySQLTarget):
            await _ensure_mysql_database(self.target, self.reactor)
            collation = await self.run(_txn_best_collation)
            self.dialect.ddl = {
                **self.dialect.ddl,
                "table_options": f"ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE={collation}",
            }
        return await self.run(_txn_migrate, load_migrations())


class Cursor:
    """A cursor that speaks our portable SQL (``?`` placeholders) to any driver."""

    __slots__ = ("raw", "dialect")

    def __init__(self, raw: Any, dialect: Dialect) -> None:
        self.raw = raw
        self.dialect = dialect

    def execute(self, statement: str, params: Sequence[Any] = ()) -> "Cursor":
        self.raw.execute(self.dialect.sql(statement), tuple(params))
        return self

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


def load_migrations() -> list[tuple[int, str, str]]:
    """``(version, name, sql)`` for every ``migrations/NNNN_name.sql``, in order."""
    found = []
    for entry in resources.files("overc.storage.migrations").iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), name, entry.read_text(encoding="utf-8")))
    found.sort()
    versions = [v for v, _, _ in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations share a version: {[n for _, n, _ in found]}")
    return found


def split_statements(script: str) -> list[str]:
    """Statements of a migration file: separated by ``;`` at the end of a line, ``--`` comments."""
    lines = [line for line in script.splitlines() if not line.strip().startswith("--")]
    statements = (s.strip().rstrip(";").strip() for s in "\n".join(lines).split(";\n"))
    return [s for s in statements if s]


def _txn_best_collation(cursor: Cursor) -> str:
    """A binary collation without PAD SPACE, so "app" and "app " are two services."""
    for collation in ("utf8mb4_nopad_bin", "utf8mb4_0900_bin"):
        cursor.execute(f"SHOW COLLATION LIKE '{collation}'")
        if cursor.fetchall():
            return collation
    return "utf8mb4_bin"


def _schema_version(cursor: Cursor) -> int:
    row = cursor.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return (row[0] if row is not None else None) or 0


#: A migration statement starting with this runs on MariaDB/MySQL only.
MYSQL_ONLY = "{mysql}"


def _txn_migrate(cursor: Cursor, migrations: list[tuple[int, str, str]]) -> int:
    cursor.execute(
        cursor.dialect.format_ddl(
            "CREATE TABLE IF NOT EXISTS schema_version "
            "(version INTEGER NOT NULL, name {name} NOT NULL, applied {double} NOT NULL) "
            "{table_options}"
        )
    )
    current = _schema_version(cursor)
    known = max((v for v, _, _ in migrations), default=0)
    if current > known:
        raise RuntimeError(
            f"the database schema is version {current}, newer than this OverC knows ({known}):"
            " refusing to touch it"
        )
    if cursor.dialect.name == "mysql":
        # Several processes may start at once on one database: one migrates, the others wait.
        cursor.execute("SELECT GET_LOCK('overc_migrate', 60)")
        cursor.fetchall()
        current = _schema_version(cursor)
    import time

    for version, name, script in migrations:
        if version <= current:
            continue
        for statement in split_statements(script):
            if statement.startswith(MYSQL_ONLY):  # e.g. widening a column SQLite never limited
                if cursor.dialect.name != "mysql":
                    continue
                statement = statement[len(MYSQL_ONLY):].lstrip()
            cursor.execute(cursor.dialect.format_ddl(statement))
        cursor.execute(
            "INSERT INTO schema_version (version, name, applied) VALUES (?, ?, ?)",
            (version, name, time.time()),
        )
        log.info("Applied database migration {name}", name=name)
        current = version
    if cursor.dialect.name == "mysql":
        cursor.execute("SELECT RELEASE_LOCK('overc_migrate')")
        cursor.fetchall()
    return current


async def _ensure_mysql_database(target: MySQLTarget, reactor: IReactorThreads) -> None:
    """Create the database itself if the server has none by that name (first start)."""
    from twisted.internet.threads import deferToThreadPool

    def create() -> None:
        import pymysql

        connection = pymysql.connect(
            host=target.host, port=target.port, user=target.user,
            password=target.password, charset="utf8mb4", connect_timeout=5,
        )
        try:
            with connection.cursor() as cursor:
                name = target.database.replace("`", "``")
                cursor.execute(
                    f"CREATE DATABASE IF NOT EXISTS `{name}` "
                    "CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
                )
        finally:
            connection.close()

    try:
        await deferToThreadPool(reactor, reactor.getThreadPool(), create)
    except Exception as error:
        if MySQLDialect().is_unavailable(error):
            raise DatabaseUnavailable(str(error)) from error
        raise
