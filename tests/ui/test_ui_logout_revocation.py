"""Logout ends a session for good: a copied session cookie is refused afterwards, by this
process at once and by every other process on the database within REVOCATION_RECHECK seconds.

Runs on SQLite and on MariaDB (the ``database`` fixture); the UI is reached through StubTreq.
"""
from __future__ import annotations

import hashlib
import hmac
import re
from urllib.parse import urlencode

import pytest_twisted
from twisted.internet import reactor

from overc.storage.db import Database
from overc.storage.sessions import PURGE_MARGIN, SessionRevocations
from overc.core.dburl import parse_database_url
from overc.web.auth import REVOCATION_RECHECK, SESSION_SECONDS, _b64
from ui_fakes import FORM, Harness, cookie_header, cookies_of, login_response

async def login(h: Harness) -> dict[str, str]:
    cookies = cookies_of(await login_response(h))
    assert cookies["overc_session"]
    return cookies


async def logged_in(h: Harness, cookies: dict[str, str]) -> bool:
    """Does ``h`` accept these cookies, for a page and for the read API alike?"""
    page, _ = await h.request("GET", "/ui/", headers=cookie_header(cookies))
    api, _ = await h.request("GET", "/api/servers", headers=cookie_header(cookies))
    assert (page.code == 200) == (api.code == 200), (page.code, api.code)
    if page.code != 200:
        assert page.code == 303
        assert page.headers.getRawHeaders(b"location")[0].startswith(b"/ui/login?next=")
        assert api.code == 401
    return page.code == 200


async def logout(h: Harness, cookies: dict[str, str]):
    _, body = await h.request("GET", "/ui/", headers=cookie_header(cookies))
    csrf = re.search(rb'data-csrf="([^"]+)"', body).group(1).decode()
    response, _ = await h.request("POST", "/ui/logout",
                                  headers={**FORM, **cookie_header(cookies)},
                                  data=urlencode({"csrf": csrf}).encode())
    return response


async def revoked_rows(db: Database) -> list[tuple]:
    return await db.run(lambda c: c.execute(
        "SELECT session_id, expires FROM ui_revoked_sessions ORDER BY expires").fetchall())


@pytest_twisted.ensureDeferred
async def test_copied_cookie_is_refused_after_logout(database):
    h = Harness(database)
    cookies = await login(h)
    copied = dict(cookies)
    assert await logged_in(h, copied)

    response = await logout(h, cookies)
    assert response.code == 303
    assert response.headers.getRawHeaders(b"location") == [b"/ui/login?msg=loggedout"]
    assert cookies_of(response)["overc_session"] == ""

    assert not await logged_in(h, copied)
    # Even once this process has forgotten what it knew, the database says no.
    h.auth._revoked.clear()
    h.auth._live.clear()
    h.clock.advance(REVOCATION_RECHECK + 1)
    assert not await logged_in(h, copied)
    # The copied cookie cannot log out (or do anything else) either.
    again, _ = await h.request("POST", "/ui/logout", headers={**FORM, **cookie_header(copied)},
                               data=b"csrf=x")
    assert again.code == 303
    assert again.headers.getRawHeaders(b"location")[0].startswith(b"/ui/login?next=")

    rows = await revoked_rows(database)
    assert len(rows) == 1
    session_id = copied["overc_session"].split(".")[2]
    assert rows[0][0] == session_id
    assert abs(rows[0][1] - (h.clock.seconds() + SESSION_SECONDS)) < REVOCATION_RECHECK + 5

    # A new login is a new session, unaffected by the old one's revocation.
    fresh = await login(h)
    assert fresh["overc_session"].split(".")[2] != session_id
    assert await logged_in(h, fresh)


@pytest_twisted.ensureDeferred
async def test_logout_in_one_process_reaches_another(database, database_url, tmp_path):
    """Two Auth instances with their own caches and their own connection pools: two processes."""
    other_db = Database(parse_database_url(database_url, tmp_path), reactor)
    try:
        a, b = Harness(database), Harness(other_db)
        cookies = await login(a)
        copied = dict(cookies)
        assert await logged_in(b, copied)  # b now trusts "not revoked" for a few seconds

        assert (await logout(a, cookies)).code == 303
        assert not await logged_in(a, copied)  # the logging-out process: at once

        b.clock.advance(REVOCATION_RECHECK + 0.01)
        assert not await logged_in(b, copied)  # any other process: within REVOCATION_RECHECK
        b.clock.advance(REVOCATION_RECHECK + 0.01)
        assert not await logged_in(b, copied)
    finally:
        other_db.close()


@pytest_twisted.ensureDeferred
async def test_logout_purges_expired_revocations(database):
    store = SessionRevocations(database)
    now = 1_700_000_000.0
    await store.revoke("old", now - PURGE_MARGIN - 1, now - SESSION_SECONDS)
    await store.revoke("recent", now - 10, now - SESSION_SECONDS)
    await store.revoke("live", now + 600, now)
    await store.revoke("live", now + 600, now)  # twice (two logouts at once): no error
    assert [r[0] for r in await revoked_rows(database)] == ["recent", "live"]
    assert await store.is_revoked("live") and await store.is_revoked("recent")
    assert not await store.is_revoked("old") and not await store.is_revoked("never")


@pytest_twisted.ensureDeferred
async def test_cookie_without_session_id_is_refused(ui_db):
    """Cookies signed before session ids existed cannot be revoked, so they are not accepted."""
    h = Harness(ui_db)
    secret = await h.auth.secret()
    name_b64, expires = _b64(b"admin"), str(int(h.clock.seconds() + 3600))
    signature = _b64(hmac.new(secret, f"session.{name_b64}.{expires}".encode(),
                              hashlib.sha256).digest())
    assert not await logged_in(h, {"overc_session": f"{name_b64}.{expires}.{signature}"})
    # ... while a current cookie of the same user is accepted.
    assert await logged_in(h, await login(h))
