"""Migrations: safe when several processes on several database nodes start at once.

No ``GET_LOCK`` (a Galera node grants it locally: two nodes both got it). Instead:

- one process at a time migrates, by a **lease** decided by a committed conditional write
  (``UPDATE schema_lock ... WHERE owner IS NULL OR expires < now``): two processes on two
  Galera nodes both match the row, and the second COMMIT fails with 1213, retried, matching
  nothing. The others wait until the version is in place (or the lease of a dead process ends);
- every statement may meet its work already done (a process whose lease ran out, a
  half-applied migration after a crash): on MySQL "already exists" errors are skipped, so
  migrations are re-runnable; Galera replicates DDL in total order;
- a version is recorded by an insert into ``schema_version`` (primary key ``version``).

Write migrations so that running one twice leaves the same schema and data (``UPDATE`` guarded
by a ``WHERE`` that the first run made false, ``INSERT`` of fixed keys).
"""
from __future__ import annotations

import os
import socket
import time
import uuid
from importlib import resources
from typing import TYPE_CHECKING, Any, cast

from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import deferLater
from twisted.logger import Logger

from overc.core.dburl import MySQLTarget
from overc.core.errors import DatabaseUnavailable

if TYPE_CHECKING:
    from overc.storage.db import Cursor, Database

log = Logger()

#: How long a migrating process holds the lease; it renews it after each migration.
LEASE = 300.0
#: MySQL errors meaning "this statement's work is already done": table, column, key exists,
#: duplicate row, multiple primary keys, nothing to drop.
_ALREADY_DONE = {1050, 1060, 1061, 1062, 1068, 1091, 1022}


#: A migration statement starting with this runs on MariaDB/MySQL only.
MYSQL_ONLY = "{mysql}"
#: ... and with this, on SQLite only.
SQLITE_ONLY = "{sqlite}"


def for_dialect(statement: str, dialect: str) -> str | None:
    """``statement`` without its ``{mysql}``/``{sqlite}`` prefix, or None where it belongs to
    the other database (e.g. widening a column SQLite never limited, or a trigger that does
    what MariaDB's ``ON UPDATE`` does)."""
    for prefix, owner in ((MYSQL_ONLY, "mysql"), (SQLITE_ONLY, "sqlite")):
        if statement.startswith(prefix):
            return statement[len(prefix):].lstrip() if dialect == owner else None
    return statement


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


async def migrate(db: "Database", *, poll: float = 0.2) -> int:
    """Create or upgrade ``db``'s schema; return the version now in place."""
    if isinstance(db.target, MySQLTarget):
        await _ensure_mysql_database(db)
        collation = await db.run(_txn_best_collation)
        db.dialect.ddl = {
            **db.dialect.ddl,
            "table_options": f"ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE={collation}",
        }
    migrations = load_migrations()
    known = max((v for v, _, _ in migrations), default=0)
    await db.run(_txn_prepare)
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    waiting = False
    while True:
        current = await db.run(_txn_version, known)
        if current >= known:
            return current
        if await db.run(_txn_claim, owner, time.time(), LEASE):
            try:
                return await db.run(_txn_migrate, migrations, owner)
            finally:
                try:
                    await db.run(_txn_release, owner)
                except DatabaseUnavailable:
                    pass  # the lease runs out by itself
        if not waiting:
            log.info("Another process is migrating the database; waiting for it")
            waiting = True
        await deferLater(cast(IReactorTime, db.reactor), poll, lambda: None)


def _txn_best_collation(cursor: "Cursor") -> str:
    """A binary collation without PAD SPACE, so "app" and "app " are two services."""
    for collation in ("utf8mb4_nopad_bin", "utf8mb4_0900_bin"):
        cursor.execute(f"SHOW COLLATION LIKE '{collation}'")
        if cursor.fetchall():
            return collation
    return "utf8mb4_bin"


def _tolerant(cursor: "Cursor", statement: str, params: tuple = ()) -> bool:
    """Run a statement; on MySQL, False instead of an error when its work is already done."""
    try:
        cursor.execute(statement, params)
        return True
    except Exception as error:
        code = error.args[0] if getattr(error, "args", None) else None
        if cursor.dialect.name == "mysql" and code in _ALREADY_DONE:
            return False
        if cursor.dialect.name == "sqlite" and cursor.dialect.is_duplicate(error):
            return False
        raise


def _txn_prepare(cursor: "Cursor") -> None:
    """The two bookkeeping tables, each with a primary key (Galera needs one on every table)."""
    ddl = cursor.dialect.format_ddl
    cursor.execute(ddl(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL PRIMARY KEY,"
        " name {name} NOT NULL, applied {double} NOT NULL) {table_options}"
    ))
    if cursor.dialect.name == "mysql":
        # Databases made before the key existed get it now (a no-op when it is there).
        cursor.execute("SHOW KEYS FROM schema_version WHERE Key_name = 'PRIMARY'")
        if not cursor.fetchall():
            _tolerant(cursor, "ALTER TABLE schema_version ADD PRIMARY KEY (version)")
    else:
        cursor.execute("CREATE UNIQUE INDEX IF NOT EXISTS schema_version_version"
                       " ON schema_version (version)")
    cursor.execute(ddl(
        "CREATE TABLE IF NOT EXISTS schema_lock (id INTEGER NOT NULL PRIMARY KEY,"
        " owner {name}, expires {double} NOT NULL) {table_options}"
    ))
    if cursor.execute("SELECT id FROM schema_lock WHERE id = 1").fetchone() is None:
        _tolerant(cursor, "INSERT INTO schema_lock (id, owner, expires) VALUES (1, NULL, 0)")


def _schema_version(cursor: "Cursor") -> int:
    row = cursor.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return (row[0] if row is not None else None) or 0


def _txn_version(cursor: "Cursor", known: int) -> int:
    current = _schema_version(cursor)
    if current > known:
        raise RuntimeError(
            f"the database schema is version {current}, newer than this OverC knows ({known}):"
            " refusing to touch it"
        )
    return current


def _txn_claim(cursor: "Cursor", owner: str, now: float, lease: float) -> bool:
    cursor.execute(
        "UPDATE schema_lock SET owner = ?, expires = ? WHERE id = 1"
        " AND (owner IS NULL OR expires < ?)",
        (owner, now + lease, now),
    )
    return cursor.rowcount == 1  # the claim holds once this transaction commits


def _txn_release(cursor: "Cursor", owner: str) -> None:
    cursor.execute("UPDATE schema_lock SET owner = NULL, expires = 0 WHERE id = 1"
                   " AND owner = ?", (owner,))


def _txn_migrate(cursor: "Cursor", migrations: list[tuple[int, str, str]], owner: str) -> int:
    current = _schema_version(cursor)
    for version, name, script in migrations:
        if version <= current:
            continue
        for statement in split_statements(script):
            own = for_dialect(statement, cursor.dialect.name)
            if own is None:  # the other database's
                continue
            if not _tolerant(cursor, cursor.dialect.format_ddl(own)):
                log.info("Migration {name}: already done: {statement}", name=name,
                         statement=statement.splitlines()[0])
        if _tolerant(cursor, "INSERT INTO schema_version (version, name, applied)"
                             " VALUES (?, ?, ?)", (version, name, time.time())):
            log.info("Applied database migration {name}", name=name)
        cursor.execute("UPDATE schema_lock SET expires = ? WHERE id = 1 AND owner = ?",
                       (time.time() + LEASE, owner))
        current = version
    return current


async def _ensure_mysql_database(db: "Database") -> None:
    """Create the database itself if the server has none by that name (first start), on the
    first host of the URL that answers."""
    from twisted.internet.threads import deferToThreadPool

    target = db.target
    assert isinstance(target, MySQLTarget)

    def create() -> None:
        import pymysql

        failures: list[Any] = []
        for host, port in target.hosts:
            try:
                connection = pymysql.connect(
                    host=host, port=port, user=target.user,
                    password=target.password, charset="utf8mb4", connect_timeout=5,
                )
                try:
                    with connection.cursor() as cursor:
                        name = target.database.replace("`", "``")
                        cursor.execute(
                            f"CREATE DATABASE IF NOT EXISTS `{name}` "
                            "CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
                        )
                    return
                finally:
                    connection.close()
            except pymysql.err.OperationalError as error:  # down, or a node not ready (1047)
                failures.append(error)
        raise failures[-1]

    reactor = db.reactor
    try:
        await deferToThreadPool(cast(Any, reactor), reactor.getThreadPool(), create)
    except Exception as error:
        if db.dialect.is_unavailable(error):
            raise DatabaseUnavailable(str(error)) from error
        raise
