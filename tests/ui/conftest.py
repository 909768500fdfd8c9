"""UI test fixtures: a migrated SQLite database filled with a small realistic data set."""
from __future__ import annotations

import pytest_twisted

from overc.storage.db import Database
from overc.core.dburl import parse_database_url

from helpers import reactor


@pytest_twisted.async_yield_fixture
async def ui_db(tmp_path):
    from ui_fakes import _txn_fill

    db = Database(parse_database_url(f"sqlite:///{tmp_path / 'ui.db'}", tmp_path), reactor())
    await db.migrate()
    db.ids = await db.run(_txn_fill, reactor().seconds())
    yield db
    db.close()
