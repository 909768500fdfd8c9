"""The overview's tile tips (``/ui/server/<id>/tips``): a server's info excerpts as JSON for
the page script, for logged-in users only; the overview itself carries no excerpt."""
from __future__ import annotations

import json

import pytest_twisted

from test_ui_routes import login
from ui_fakes import Harness, cookie_header


async def _fill_long(db, server_id: int) -> int:
    def txn(cursor):
        cursor.execute(
            "INSERT INTO services (server_id, name, state, info, period, created)"
            " VALUES (?, 'long', 'OK', ?, 60, 1)", (server_id, "é" * 150 + "x" * 100))
        return cursor.lastrowid

    return await db.run(txn)


@pytest_twisted.ensureDeferred
async def test_tips_are_a_servers_excerpts_as_json(ui_db):
    h = Harness(ui_db)
    ids = ui_db.ids
    long_id = await _fill_long(ui_db, ids["web1"])
    response, body = await h.request("GET", f"/ui/server/{ids['web1']}/tips")
    assert response.code == 303  # a page's login, as the overview
    cookies = await login(h)
    response, body = await h.request("GET", f"/ui/server/{ids['web1']}/tips",
                                     headers=cookie_header(cookies))
    assert response.code == 200
    assert response.headers.getRawHeaders(b"content-type")[0].startswith(b"application/json")
    assert response.headers.getRawHeaders(b"x-content-type-options") == [b"nosniff"]
    tips = json.loads(body)
    assert tips == {str(ids["app"]): "app says OK <b>bold</b>",
                    str(ids["disk"]): "disk says WARN <b>bold</b>",
                    str(long_id): "é" * 150 + "x" * 10}  # 160 characters, not bytes
    response, _ = await h.request("GET", "/ui/server/99999/tips",
                                  headers=cookie_header(cookies))
    assert response.code == 404
    # the overview: every tile, no excerpt (they come from here)
    response, body = await h.request("GET", "/ui/", headers=cookie_header(cookies))
    assert body.count(b'class="tile ') == 4 and b"says" not in body
