"""Shared fixtures: databases (SQLite file, a fresh MariaDB database), real servers.

MariaDB tests use ``OVERC_TEST_MYSQL`` (default ``mysql://root@127.0.0.1:3306/overc_test``);
each test gets its own database, created and dropped here. Without MariaDB they skip, except
with ``CI=true``, where a missing MariaDB is a failure.
"""
from __future__ import annotations

import os
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import pytest_twisted

from helpers import reactor

MYSQL_URL = os.environ.get("OVERC_TEST_MYSQL", "mysql://root@127.0.0.1:3306/overc_test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _mysql_connect(url: str, database: str | None = None):
    import pymysql

    parts = urlsplit(url)
    return pymysql.connect(
        host=parts.hostname or "127.0.0.1", port=parts.port or 3306,
        user=parts.username or "root", password=parts.password or "",
        database=database, connect_timeout=3, autocommit=True,
    )


def require_mysql() -> None:
    try:
        _mysql_connect(MYSQL_URL).close()
    except Exception as error:
        if IN_CI:
            pytest.fail(f"MariaDB is required in CI and unreachable at {MYSQL_URL}: {error}")
        pytest.skip(f"MariaDB unreachable at {MYSQL_URL}: {error}")


def _unique_mysql_url() -> tuple[str, str]:
    parts = urlsplit(MYSQL_URL)
    base = parts.path.lstrip("/") or "overc_test"
    name = f"{base}_{uuid.uuid4().hex[:10]}"
    return urlunsplit(parts._replace(path="/" + name)), name


def _drop_mysql_database(name: str) -> None:
    connection = _mysql_connect(MYSQL_URL)
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
    finally:
        connection.close()


@pytest.fixture
def mysql_url():
    """A URL naming a fresh MariaDB database (created by the server on first use), dropped after."""
    require_mysql()
    url, name = _unique_mysql_url()
    yield url
    _drop_mysql_database(name)


@pytest.fixture(params=["sqlite", "mysql"])
def database_url(request, tmp_path: Path) -> str:
    """Each test using this runs twice: on a SQLite file and on a fresh MariaDB database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'overc.db'}"
    return request.getfixturevalue("mysql_url")


@pytest_twisted.async_yield_fixture
async def database(database_url: str, tmp_path: Path):
    """A migrated :class:`overc.storage.db.Database` on the real reactor."""
    from overc.storage.db import Database
    from overc.core.dburl import parse_database_url

    db = Database(parse_database_url(database_url, tmp_path), reactor())
    await db.migrate()
    yield db
    db.close()


@pytest.fixture(scope="module", params=["sqlite", "mysql"])
def push_server(request, tmp_path_factory):
    """One real server per test module and database (starting twistd costs a second or two)."""
    from realserver import running_server

    workdir = tmp_path_factory.mktemp(f"server-{request.param}")
    database = None
    name = None
    if request.param == "mysql":
        require_mysql()
        database, name = _unique_mysql_url()
    try:
        with running_server(workdir, database=database) as server:
            server.kind = request.param
            yield server
    finally:
        if name:
            _drop_mysql_database(name)

