"""Database URLs (``sqlite:///overc.db``, ``mysql://user:pw@host:3306/overc``) into targets.

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

    def describe(self) -> str:
        return f"mysql://{self.user}@{self.host}:{self.port}/{self.database}"


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
        try:
            port = parts.port or 3306
        except ValueError as e:
            raise DatabaseURLError(f"bad port: {e}") from None
        return MySQLTarget(
            host=parts.hostname or "127.0.0.1",
            port=port,
            user=unquote(parts.username or "root"),
            password=unquote(parts.password or ""),
            database=unquote(database),
        )
    raise DatabaseURLError(
        "unsupported database URL (use sqlite:///FILE or mysql://user:password@host:3306/db)"
    )
