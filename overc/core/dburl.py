"""Database URLs (``sqlite:///overc.db``, ``mysql://user:pw@host:3306/overc``) into targets.

A MySQL URL may name several hosts, ``mysql://user:pw@db1:3306,db2:3306,db3/overc`` (a Galera
cluster): the pool uses the first that answers and moves on to the next when it is lost.
Kept pure so config validation can reject a bad URL before anything connects.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit


class DatabaseURLError(ValueError):
    """The URL cannot name a database we support."""


@dataclass(frozen=True)
class SQLiteTarget:
    path: Path

    def describe(self) -> str:
        return f"sqlite:///{self.path}"


@dataclass(frozen=True)
class MySQLTarget:
    host: str
    port: int
    user: str
    password: str
    database: str
    #: Every ``(host, port)`` of the URL in the operator's order; the first is ``host, port``.
    hosts: tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        if not self.hosts:
            object.__setattr__(self, "hosts", ((self.host, self.port),))

    def describe(self) -> str:
        hosts = ",".join(f"{host}:{port}" for host, port in self.hosts)
        return f"mysql://{self.user}@{hosts}/{self.database}"


def parse_database_url(url: str, base_dir: Path) -> SQLiteTarget | MySQLTarget:
    """Parse ``url``; relative SQLite paths are relative to ``base_dir`` (the config's folder)."""
    url = url.strip()
    if url.startswith("sqlite:///"):
        rest = url[len("sqlite:///"):]
        if not rest or rest == "/":
            raise DatabaseURLError("sqlite URL names no file (sqlite:///overc.db)")
        if rest == ":memory:":
            raise DatabaseURLError("an in-memory SQLite database would lose every report")
        path = Path(unquote(rest))
        return SQLiteTarget(path if path.is_absolute() else (base_dir / path))
    parts = urlsplit(url)
    if parts.scheme in ("mysql", "mariadb", "mysql+pymysql"):
        database = parts.path.lstrip("/")
        if not database or "/" in database:
            raise DatabaseURLError("MySQL URL names no database (mysql://user@host:3306/overc)")
        credentials, _, hostlist = parts.netloc.rpartition("@")
        user, _, password = credentials.partition(":")
        entries = hostlist.split(",")
        if len(entries) > 1 and not all(entry.strip() for entry in entries):
            raise DatabaseURLError(f"an empty host in the host list {hostlist!r}")
        hosts = tuple(_parse_host(entry) for entry in entries)
        if len(set(hosts)) != len(hosts):
            raise DatabaseURLError(f"a host appears twice in {hostlist!r}")
        return MySQLTarget(
            host=hosts[0][0],
            port=hosts[0][1],
            user=unquote(user or "root"),
            password=unquote(password),
            database=unquote(database),
            hosts=hosts,
        )
    raise DatabaseURLError(
        "unsupported database URL (use sqlite:///FILE or mysql://user:password@host:3306/db)"
    )


def _parse_host(entry: str) -> tuple[str, int]:
    """``db1:3306``, ``db1`` (port 3306), ``[::1]:3306``; an empty list means 127.0.0.1."""
    entry = entry.strip()
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else rest
    elif entry.count(":") == 1:
        host, _, port_text = entry.partition(":")
    else:
        host, port_text = entry, ""
    if not host and entry:
        raise DatabaseURLError(f"a host in the URL has no name: {entry!r}")
    if port_text == "":
        port = 3306
    else:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise DatabaseURLError(f"bad port {port_text!r} for host {host!r}")
        port = int(port_text)
    return (host or "127.0.0.1", port)
