"""What differs between SQLite and MySQL/MariaDB, in one small object per database.

SQL in the store is written once, with ``?`` placeholders and portable syntax; the dialect turns
placeholders into the driver's style, fills the DDL type slots, writes the one upsert form each
database has, and says which driver errors mean "the database is not there right now".
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

_PLACEHOLDER = re.compile(r"\?")


class Dialect:
    name = "abstract"
    #: Type slots used by migrations: ``{id}``, ``{ref}``, ``{name}``, ``{text}``, ...
    ddl: dict[str, str] = {}

    def sql(self, statement: str) -> str:
        return statement

    def format_ddl(self, statement: str) -> str:
        return statement.format(**self.ddl)

    def begin(self, cursor: Any) -> None:
        """Start a write transaction (called first in every interaction)."""

    def is_unavailable(self, error: BaseException) -> bool:
        """True when ``error`` means the database cannot be reached (answer 503, retry later)."""
        return False

    def will_not_open(self, error: BaseException) -> bool:
        """True when an "unavailable" ``error`` at start is a set-up fault that waiting cannot
        cure (nothing comes back to fix it): start-up then fails in one line instead."""
        return False

    def is_retryable(self, error: BaseException) -> bool:
        """True for deadlocks, lock timeouts and Galera certification failures (1213, at any
        statement, COMMIT included): nothing was written, run the whole transaction again."""
        return False

    def is_connection_error(self, error: BaseException) -> bool:
        """True when this connection is lost or its node unusable: drop it and connect again
        (to the next host of the URL when this one does not answer)."""
        return False

    def is_duplicate(self, error: BaseException) -> bool:
        """True when ``error`` is a unique-key violation (someone inserted the row first)."""
        return False

    def upsert_suffix(self, keys: tuple[str, ...], columns: tuple[str, ...],
                      also: str = "") -> str:
        """``ON CONFLICT``/``ON DUPLICATE KEY`` clause: set ``columns`` from the new row, plus
        the literal assignments in ``also`` (literals stay out of VALUES, see store.py)."""
        raise NotImplementedError

    # -- Read model (overc.storage.read_*), added by the web side of issue 8 --------------

    #: ``JOIN`` whose tables the planner must take in the written order (/metrics).
    join_in_written_order = "JOIN"

    #: ``services.changed_at`` (migration 0014): what the ingest's upsert adds to set it
    #: ("" where the database keeps it by itself), the database's clock in Unix seconds, and
    #: the condition "changed at or after ``?``" (Unix seconds).
    set_changed_at = ""
    clock = ""
    changed_since = ""

    def floor_to_int(self, expression: str) -> str:
        """SQL for ``expression`` (>= 0) rounded down to an integer."""
        return f"FLOOR({expression})"

    def json_array_aggregate(self, cursor: Any) -> tuple[str, str]:
        """``(statement prefix, aggregate function)`` that collects JSON arrays per group,
        never cut short (the overview: one array of tiles per server)."""
        return "", "JSON_ARRAYAGG"

    def has_group_concat_limit(self, cursor: Any) -> bool:
        """``GROUP_CONCAT(... LIMIT n)`` and ``SET STATEMENT ... FOR`` exist (MariaDB)."""
        return False


class SQLiteDialect(Dialect):
    name = "sqlite"
    ddl = {
        "id": "INTEGER PRIMARY KEY AUTOINCREMENT",
        "ref": "INTEGER",
        "bigint": "INTEGER",
        "name": "TEXT",
        "short": "TEXT",
        "text": "TEXT",
        "double": "REAL",
        "bool": "INTEGER",
        "table_options": "",
    }

    def begin(self, cursor: Any) -> None:
        # IMMEDIATE takes the write lock up front: a transaction that reads, then writes, can
        # never fail half-way with SQLITE_BUSY when a second process shares the file.
        cursor.execute("BEGIN IMMEDIATE")

    def is_unavailable(self, error: BaseException) -> bool:
        import sqlite3

        if isinstance(error, sqlite3.OperationalError):
            text = str(error).lower()
            return any(
                word in text
                for word in ("unable to open", "locked", "disk i/o", "readonly", "busy")
            )
        return False

    def will_not_open(self, error: BaseException) -> bool:
        # An embedded file with no folder, no permission or read-only: no server will come
        # back to fix it. Locked or busy may free itself, and stays "unavailable" only.
        import sqlite3

        text = str(error).lower()
        return isinstance(error, sqlite3.OperationalError) and (
            "unable to open" in text or "readonly" in text)

    def is_duplicate(self, error: BaseException) -> bool:
        import sqlite3

        return isinstance(error, sqlite3.IntegrityError) and "UNIQUE" in str(error)

    def upsert_suffix(self, keys: tuple[str, ...], columns: tuple[str, ...],
                      also: str = "") -> str:
        sets = ", ".join([f"{c} = excluded.{c}" for c in columns] + ([also] if also else []))
        return f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {sets}"

    # -- Read model (overc.storage.read_*), added by the web side of issue 8 --------------

    join_in_written_order = "CROSS JOIN"  # SQLite's way to say "this order"

    clock = "(julianday('now') - 2440587.5) * 86400.0"  # 'now' has milliseconds
    set_changed_at = f"changed_at = {clock}"  # the trigger then leaves the row alone
    changed_since = "s.changed_at >= ?"

    def floor_to_int(self, expression: str) -> str:
        return f"CAST({expression} AS INTEGER)"

    def json_array_aggregate(self, cursor: Any) -> tuple[str, str]:
        return "", "json_group_array"


# pymysql error codes. A connection that is lost, or whose node cannot serve: 2006 gone away,
# 2013 lost during query, 2055 lost at handshake, 1053 server shutdown, 1927 connection killed,
# 4031 disconnected for inactivity, 1047 Galera node not ready (WSREP has not yet prepared the
# node: joining, donor, or outside the primary component).
_MYSQL_CONNECTION = {2006, 2013, 2055, 1053, 1927, 4031, 1047}
# ...plus no connection at all: 2002/2003 cannot connect, 1040 too many connections, 1049 no
# such database (yet).
_MYSQL_UNAVAILABLE = _MYSQL_CONNECTION | {2002, 2003, 1040, 1049}
# Deadlock (and Galera's certification failure and brute-force abort), lock wait timeout.
_MYSQL_RETRY = {1213, 1205}


class SQLiteReaderDialect(SQLiteDialect):
    """SQLite for a process that only reads (the /metrics process): a deferred ``BEGIN``.

    ``BEGIN IMMEDIATE`` would take the write lock for every read, and each of the reader's
    transactions would hold the server's commits (they waited in ``busy_timeout``: the push
    p99 rose with every scrape). A deferred read transaction in WAL mode blocks no writer."""

    def begin(self, cursor: Any) -> None:
        cursor.execute("BEGIN")


class MySQLDialect(Dialect):
    name = "mysql"
    ddl = {
        "id": "BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY",
        "ref": "BIGINT",
        "bigint": "BIGINT",
        "name": "VARCHAR(255)",
        "short": "VARCHAR(32)",
        "text": "MEDIUMTEXT",
        "double": "DOUBLE",
        "bool": "TINYINT",
        "table_options": "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
    }

    def sql(self, statement: str) -> str:
        return _mysql_sql(statement)

    def is_unavailable(self, error: BaseException) -> bool:
        import pymysql
        from twisted.enterprise.adbapi import ConnectionLost

        from overc.storage.pool import CommitInDoubt, NodeNotReady

        if isinstance(error, (ConnectionLost, CommitInDoubt, NodeNotReady)):
            return True
        if isinstance(error, (pymysql.err.OperationalError, pymysql.err.InterfaceError,
                              pymysql.err.InternalError)):
            code = error.args[0] if error.args else None
            return code in _MYSQL_UNAVAILABLE or not isinstance(code, int) or code == 0
        return isinstance(error, (ConnectionError, TimeoutError, OSError))

    def is_connection_error(self, error: BaseException) -> bool:
        import pymysql
        from twisted.enterprise.adbapi import ConnectionLost

        from overc.storage.pool import NodeNotReady

        if isinstance(error, (ConnectionLost, NodeNotReady)):
            return True
        if isinstance(error, (pymysql.err.OperationalError, pymysql.err.InterfaceError,
                              pymysql.err.InternalError)):
            code = error.args[0] if error.args else None
            return code in _MYSQL_CONNECTION or not isinstance(code, int) or code == 0
        return isinstance(error, (ConnectionError, TimeoutError, OSError))

    def is_retryable(self, error: BaseException) -> bool:
        import pymysql

        return (
            isinstance(error, pymysql.err.OperationalError)
            and bool(error.args)
            and error.args[0] in _MYSQL_RETRY
        )

    def is_duplicate(self, error: BaseException) -> bool:
        import pymysql

        return isinstance(error, pymysql.err.IntegrityError) and bool(error.args) \
            and error.args[0] == 1062

    def upsert_suffix(self, keys: tuple[str, ...], columns: tuple[str, ...],
                      also: str = "") -> str:
        sets = ", ".join([f"{c} = VALUES({c})" for c in columns] + ([also] if also else []))
        return f" ON DUPLICATE KEY UPDATE {sets}"

    # -- Read model (overc.storage.read_*), added by the web side of issue 8 --------------

    # A plain JOIN let MariaDB start from perfdata with a full scan (/metrics: 1.5 s a slice).
    join_in_written_order = "STRAIGHT_JOIN"

    clock = "UNIX_TIMESTAMP(NOW(6))"  # sessions run at time_zone '+00:00' (db.py)
    changed_since = "s.changed_at >= FROM_UNIXTIME(?)"  # ON UPDATE keeps changed_at

    def json_array_aggregate(self, cursor: Any) -> tuple[str, str]:
        # JSON_ARRAYAGG is capped by group_concat_max_len (1 MB by default): lift it, so a
        # server with many services is never cut short.
        if self.has_group_concat_limit(cursor):  # MariaDB: for this statement only
            return "SET STATEMENT group_concat_max_len = 1073741824 FOR ", "JSON_ARRAYAGG"
        # MySQL 8 has no SET STATEMENT: lift the cap for this pooled connection instead.
        cursor.execute("SET SESSION group_concat_max_len = 1073741824")
        return "", "JSON_ARRAYAGG"

    def has_group_concat_limit(self, cursor: Any) -> bool:
        # One URL scheme serves MariaDB and MySQL 8: the connected server tells which.
        info = getattr(getattr(cursor.raw, "connection", None), "get_server_info", None)
        return bool(info and "mariadb" in str(info()).lower())


@lru_cache(maxsize=512)
def _mysql_sql(statement: str) -> str:
    return _PLACEHOLDER.sub("%s", statement.replace("%", "%%"))
