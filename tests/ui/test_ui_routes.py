"""The UI, read API and /metrics through StubTreq over a real SQLite database."""
from __future__ import annotations

import base64
import json
import re
from urllib.parse import urlencode

import pytest
import pytest_twisted

from helpers import until
from ui_fakes import FORM, PASSWORD, Harness, cookie_header, cookies_of, login_response

BASIC = {"Authorization": "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()}


def concrete_urls(app, prefix: str, ids: dict[str, int]):
    """Every rule of a Klein app as (method, url) with real ids filled in."""
    for rule in app.url_map.iter_rules():
        path = rule.rule
        if "<" in path and "static" not in path:
            kinds = ["service", "server"] if "any(service,server)" in path else (
                ["services", "servers"] if "any(services,servers)" in path else [None])
            for kind in kinds:
                concrete = re.sub(r"<any\([^)]*\):kind>", kind or "", path)
                target = ids["disk"] if (kind or "").startswith("service") or (
                    "service" in concrete and kind is None) else ids["web1"]
                concrete = re.sub(r"<(?:int|id)(?:\([^)]*\))?:[a-z_]+>", str(target), concrete)
                for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                    yield method, prefix + concrete
        else:
            for method in sorted((rule.methods or {"GET"}) - {"HEAD", "OPTIONS"}):
                yield method, prefix + path


async def login(h: Harness) -> dict[str, str]:
    response = await login_response(h, "/ui/alerts")
    assert response.headers.getRawHeaders(b"location") == [b"/ui/alerts"]
    set_cookies = response.headers.getRawHeaders(b"set-cookie")
    session = [c for c in set_cookies if c.startswith(b"overc_session=")][0]
    assert b"HttpOnly" in session and b"SameSite=lax" in session
    return cookies_of(response)


async def csrf_for(h: Harness, cookies: dict[str, str], url: str) -> str:
    _, body = await h.request("GET", url, headers=cookie_header(cookies))
    return re.search(rb'data-csrf="([^"]+)"', body).group(1).decode()


@pytest_twisted.ensureDeferred
async def test_every_route_refuses_without_login(ui_db):
    h = Harness(ui_db)
    checked = 0
    for method, url in concrete_urls(h.ui.app, "/ui", ui_db.ids):
        if url.startswith("/ui/login") or url.startswith("/ui/static"):
            continue
        response, _ = await h.request(method, url)
        assert response.code == 303, (method, url)
        assert response.headers.getRawHeaders(b"location")[0].startswith(b"/ui/login?next=")
        checked += 1
    for method, url in concrete_urls(h.api.app, "/api", ui_db.ids):
        if url == "/api/openapi.json":
            continue
        response, body = await h.request(method, url)
        assert response.code == 401, (method, url, body)
        assert json.loads(body)["error"]
        checked += 1
    response, _ = await h.request("GET", "/metrics")
    assert response.code == 401
    assert checked >= 30
    # nothing was changed by all those refused requests
    assert (await h.queries.service(ui_db.ids["disk"])) is not None
    assert (await h.queries.server(ui_db.ids["web1"])) is not None


@pytest_twisted.ensureDeferred
async def test_open_mode_needs_no_login(ui_db):
    h = Harness(ui_db, users={}, required=False)
    response, body = await h.request("GET", "/ui/")
    assert response.code == 200
    assert b"disk" in body and b"mysql" in body
    response, body = await h.request("GET", "/api/servers")
    assert response.code == 200 and len(json.loads(body)["items"]) == 2


@pytest_twisted.ensureDeferred
async def test_login_pages_and_escaping(ui_db):
    h = Harness(ui_db)
    cookies = await login(h)
    response, body = await h.request("GET", "/ui/", headers=cookie_header(cookies))
    assert response.code == 200
    assert b"Content-Security-Policy" not in body
    csp = response.headers.getRawHeaders(b"content-security-policy")[0]
    assert b"script-src 'self'" in csp and b"unsafe-inline" not in csp
    assert b"<script>" not in body and b"<script " in body  # external script only
    # problems first: db1 (FAIL, stale) before web1
    assert body.index(b"db1") < body.index(b"web1")
    assert b"<b>bold</b>" not in body and b"says" not in body  # excerpts: tile tips
    assert b"STALE" in body and b"WARN" in body  # state as text, not colour alone
    response, body = await h.request("GET", f"/ui/server/{ui_db.ids['web1']}",
                                     headers=cookie_header(cookies))
    assert b"&lt;b&gt;bold&lt;/b&gt;" in body and b"<b>bold</b>" not in body
    for url in (f"/ui/server/{ui_db.ids['web1']}", f"/ui/service/{ui_db.ids['disk']}",
                "/ui/alerts", f"/ui/service/{ui_db.ids['disk']}?range=7d"):
        response, body = await h.request("GET", url, headers=cookie_header(cookies))
        assert response.code == 200, url
    response, body = await h.request("GET", f"/ui/service/{ui_db.ids['disk']}",
                                     headers=cookie_header(cookies))
    assert b'<polyline points="' in body  # the perfdata chart
    assert b"150\xc3\x97" in body  # 150 OK reports collapsed into one run
    response, _ = await h.request("GET", "/ui/service/99999", headers=cookie_header(cookies))
    assert response.code == 404


@pytest_twisted.ensureDeferred
async def test_live_polling_gets_304_until_something_changes(ui_db):
    h = Harness(ui_db)
    cookies = await login(h)
    response, _ = await h.request("GET", "/ui/", headers=cookie_header(cookies))
    etag = response.headers.getRawHeaders(b"etag")[0].decode()
    response, body = await h.request("GET", "/ui/", headers={**cookie_header(cookies),
                                                            "If-None-Match": etag})
    assert response.code == 304 and body == b""
    await ui_db.run(lambda c: c.execute("UPDATE services SET state = 'FAIL', last_time = "
                                        "last_time + 1 WHERE name = 'app'"))
    response, body = await h.request("GET", "/ui/", headers={**cookie_header(cookies),
                                                            "If-None-Match": etag})
    assert response.code == 200 and b"app" in body


@pytest_twisted.ensureDeferred
async def test_each_page_carries_its_etag_scoped_to_what_it_shows(ui_db):
    """The first page carries its ETag (so the browser's first poll is a 304), and a server or
    service page's ETag changes only with its own subject: a report elsewhere is a 304."""
    h = Harness(ui_db)
    headers = cookie_header(await login(h))
    ids = ui_db.ids
    pages = {path: None for path in ("/ui/", "/ui/alerts", f"/ui/server/{ids['web1']}",
                                     f"/ui/service/{ids['disk']}", f"/ui/service/{ids['app']}")}
    for path in pages:
        response, body = await h.request("GET", path, headers=headers)
        etag = response.headers.getRawHeaders(b"etag")[0].decode()
        carried = re.search(r'<meta name="overc-etag" content="([^"]+)">', body.decode())
        assert carried and carried.group(1).replace("&#34;", '"') == etag, path
        pages[path] = etag
        response, body = await h.request("GET", path, headers={**headers, "If-None-Match": etag})
        assert response.code == 304, path

    async def changed() -> set[str]:
        out = set()
        for path, etag in pages.items():
            response, _ = await h.request("GET", path, headers={**headers,
                                                                "If-None-Match": etag})
            if response.code == 200:
                out.add(path)
                pages[path] = response.headers.getRawHeaders(b"etag")[0].decode()
        return out

    # a report of db1's mysql: the overview changes, web1's pages do not
    await ui_db.run(lambda c: c.execute(
        "UPDATE services SET last_time = last_time + 1 WHERE id = ?", (ids["mysql"],)))
    assert await changed() == {"/ui/"}
    # a report of web1's disk: its service page and its server page, not app's page
    await ui_db.run(lambda c: c.execute(
        "UPDATE services SET last_time = last_time + 1 WHERE id = ?", (ids["disk"],)))
    assert await changed() == {"/ui/", f"/ui/server/{ids['web1']}", f"/ui/service/{ids['disk']}"}
    # a new alert of web1 (no service): the alerts page too
    await ui_db.run(lambda c: c.execute(
        "INSERT INTO alerts (server_id, time, kind, severity, message) VALUES (?, ?, 'api',"
        " 'FAIL', 'System down: kernel panic')", (ids["web1"], h.clock.seconds() - 60)))
    assert await changed() == {"/ui/", "/ui/alerts", f"/ui/server/{ids['web1']}"}
    response, body = await h.request("GET", "/ui/", headers=headers)
    assert b"System down: kernel panic" in body  # API alerts show on the overview
    # a silence that ends by the clock changes the page without any write
    await ui_db.run(lambda c: c.execute(
        "UPDATE services SET silenced_until = ? WHERE id = ?", (h.clock.seconds() + 30,
                                                                 ids["app"])))
    await changed()
    h.clock.advance(60)
    assert f"/ui/service/{ids['app']}" in await changed()


@pytest_twisted.ensureDeferred
async def test_failed_login_is_slowed_down(ui_db):
    h = Harness(ui_db)
    response, body = await h.request("GET", "/ui/login")
    nonce = cookies_of(response)["overc_nonce"]
    csrf = re.search(rb'name="csrf" value="([^"]+)"', body).group(1).decode()

    async def attempt():
        return h.stub.request("POST", "http://overc.test/ui/login",
                              headers={**FORM, "Cookie": f"overc_nonce={nonce}"},
                              data=urlencode({"csrf": csrf, "name": "admin",
                                              "password": "wrong"}).encode())

    for expected_delay in (1.0, 2.0, 4.0):
        d = await attempt()
        done: list = []
        d.addBoth(lambda r: done.append(r) or r)

        def answered_or_parked():  # parked: the answer waits for a delayed call on the clock
            h.stub.flush()
            due = h.clock.seconds() + expected_delay
            return done or [c for c in h.clock.getDelayedCalls()
                            if c.getTime() == pytest.approx(due)]

        await until(answered_or_parked, 10, f"the answer to wait {expected_delay} s")
        assert not done, "a wrong password must not be answered at once"
        h.clock.advance(expected_delay - 0.01)
        h.stub.flush()
        assert not done
        h.clock.advance(0.02)
        response = await h.pump(d)
        assert response.code == 401
        assert b"overc_session" not in b"".join(response.headers.getRawHeaders(b"set-cookie", []))


@pytest_twisted.ensureDeferred
async def test_csrf_is_required_for_every_form(ui_db):
    h = Harness(ui_db)
    cookies = await login(h)
    disk = ui_db.ids["disk"]
    token = await csrf_for(h, cookies, f"/ui/service/{disk}")
    headers = {**FORM, **cookie_header(cookies)}
    for data in ({"comment": "x"}, {"comment": "x", "csrf": "forged"},
                 {"comment": "x", "csrf": token[:-2] + "AA"}):
        response, _ = await h.request("POST", f"/ui/service/{disk}/ack", headers=headers,
                                      data=urlencode(data).encode())
        assert response.code == 403
    assert not (await h.queries.service(disk)).acked
    # the token of another browser (another nonce) does not work either
    response, _ = await h.request("POST", f"/ui/service/{disk}/ack",
                                  headers={**headers, "Cookie": cookie_header(cookies)["Cookie"]
                                           .replace(cookies["overc_nonce"], "othernonce")},
                                  data=urlencode({"csrf": token}).encode())
    assert response.code == 403
    response, _ = await h.request("POST", f"/ui/service/{disk}/ack", headers=headers,
                                  data=urlencode({"comment": "on it", "csrf": token}).encode())
    assert response.code == 303
    svc = await h.queries.service(disk)
    assert svc.acked and svc.ack_comment == "on it"
    # every state-changing UI route rejects a missing token
    for method, url in concrete_urls(h.ui.app, "/ui", ui_db.ids):
        if method == "POST" and "login" not in url:
            response, _ = await h.request(method, url, headers=headers, data=b"")
            assert response.code == 403, url


@pytest_twisted.ensureDeferred
async def test_ui_actions(ui_db):
    h = Harness(ui_db)
    cookies = await login(h)
    web1, disk, app = ui_db.ids["web1"], ui_db.ids["disk"], ui_db.ids["app"]
    token = await csrf_for(h, cookies, "/ui/")
    headers = {**FORM, **cookie_header(cookies)}

    async def post(url, **data):
        response, body = await h.request("POST", url, headers=headers,
                                         data=urlencode({"csrf": token, **data}).encode())
        return response, body

    response, _ = await post(f"/ui/server/{web1}/silence", duration="3600", reason="upgrade")
    assert response.code == 303
    server = await h.queries.server(web1)
    assert server.silence_reason == "upgrade"
    assert server.silenced_until == pytest.approx(h.clock.seconds() + 3600)
    from datetime import datetime, timezone
    local = int(h.clock.seconds() // 60 * 60 + 2 * 86400)  # a browser in UTC+1 types this
    typed = datetime.fromtimestamp(local, timezone.utc).strftime("%Y-%m-%dT%H:%M")
    response, _ = await post(f"/ui/service/{disk}/silence", until=typed, tzoffset="-60",
                             duration="", reason="disk swap")
    assert response.code == 303
    svc = await h.queries.service(disk)
    assert svc.silenced_until == local - 3600 and svc.silence_reason == "disk swap"
    response, body = await post(f"/ui/service/{disk}/silence", until="1999-01-01T10:00")
    assert response.code == 400
    response, _ = await post(f"/ui/service/{disk}/unsilence")
    assert (await h.queries.service(disk)).silenced_until is None
    response, body = await h.request("GET", f"/ui/service/{app}/delete",
                                     headers=cookie_header(cookies))
    assert response.code == 200 and b"Yes, delete" in body
    assert (await h.queries.service(app)) is not None  # the GET only asks
    response, _ = await post(f"/ui/service/{app}/delete")
    assert response.code == 303
    assert (await h.queries.service(app)) is None
    response, body = await post(f"/ui/server/{web1}/reset-key")
    key = re.search(rb'id="new-key">([^<]+)<', body).group(1).decode()
    from overc.core.passwords import verify_secret
    row = await ui_db.run(lambda c: c.execute("SELECT key_hash FROM servers WHERE id = ?",
                                              (web1,)).fetchone())
    assert verify_secret(key, row[0]) and h.forgotten == 2
    response, _ = await post(f"/ui/server/{web1}/delete")
    assert (await h.queries.server(web1)) is None
    assert (await h.queries.service(disk)) is None
    remaining = await ui_db.run(lambda c: c.execute(
        "SELECT (SELECT COUNT(*) FROM states), (SELECT COUNT(*) FROM perfdata),"
        " (SELECT COUNT(*) FROM alerts)").fetchone())
    assert remaining == (0, 0, 1)  # only db1's alert is left
    response, _ = await post("/ui/logout")
    assert response.code == 303
    assert "overc_session" in cookies_of(response)
    assert cookies_of(response)["overc_session"] == ""


@pytest_twisted.ensureDeferred
async def test_login_redirect_is_never_offsite(ui_db):
    from overc.ui.pages import _safe_next

    for target in ("https://evil.example/", "//evil.example/ui/", "/ui/../x", "/\\evil",
                   "/elsewhere", None, "/ui/login?next=/ui/"):
        result = _safe_next(target)
        assert result.startswith("/ui/") and "//" not in result and "login" not in result
    assert _safe_next("/ui/service/3?range=7d") == "/ui/service/3?range=7d"


@pytest_twisted.ensureDeferred
async def test_an_offline_server_has_one_banner_dimmed_tiles_and_says_so_in_the_api(ui_db):
    """SPEC 10.3: the overview card of an offline server carries one banner (not one per
    service) and the class that dims its tiles; its page says so; the read API has the flag."""
    def offline(cursor):
        cursor.execute("UPDATE servers SET offline = 1, deadline = NULL WHERE id = ?",
                       (ui_db.ids["web1"],))
    await ui_db.run(offline)
    h = Harness(ui_db, users={}, required=False)
    _, body = await h.request("GET", "/ui/")
    page = body.decode()
    assert page.count('class="offline-banner"') == 1
    card = page.split(f'data-key="server-{ui_db.ids["web1"]}"')[0].rsplit("<article", 1)[1]
    assert 'class="server offline"' in card
    _, body = await h.request("GET", f"/ui/server/{ui_db.ids['web1']}")
    assert "Server offline: no contact since" in body.decode()
    _, body = await h.request("GET", "/api/servers")
    flags = {s["name"]: (s["offline"], s["deadline"]) for s in json.loads(body)["items"]}
    assert flags["web1"] == (True, None) and flags["db1"][0] is False


@pytest_twisted.ensureDeferred
async def test_ui_ack_form_sticky_and_expiry(ui_db):
    """SPEC 10.5 in the service page's form: the sticky checkbox and a local expiry time (the
    browser's offset, as for silences); the page then says both; a past expiry is a 400."""
    from datetime import datetime, timezone

    h = Harness(ui_db)
    cookies = await login(h)
    disk = ui_db.ids["disk"]
    token = await csrf_for(h, cookies, f"/ui/service/{disk}")
    headers = {**FORM, **cookie_header(cookies)}
    response, body = await h.request("GET", f"/ui/service/{disk}",
                                     headers=cookie_header(cookies))
    assert b'name="sticky"' in body and b'name="expires"' in body

    async def post(**data):
        return await h.request("POST", f"/ui/service/{disk}/ack", headers=headers,
                               data=urlencode({"csrf": token, **data}).encode())

    response, _ = await post(comment="x", expires="1999-01-01T10:00", tzoffset="-60")
    assert response.code == 400 and not (await h.queries.service(disk)).acked
    local = int(h.clock.seconds() // 60 * 60 + 86400)  # a browser in UTC+1 types this
    typed = datetime.fromtimestamp(local, timezone.utc).strftime("%Y-%m-%dT%H:%M")
    response, _ = await post(comment="mine", sticky="1", expires=typed, tzoffset="-60")
    assert response.code == 303
    svc = await h.queries.service(disk)
    assert (svc.acked, svc.ack_sticky, svc.ack_expires) == (True, True, local - 3600)
    response, body = await h.request("GET", f"/ui/service/{disk}",
                                     headers=cookie_header(cookies))
    facts = re.search(rb'<dd id="ack-facts">(.*?)</dd>', body, re.S).group(1)
    assert b"mine" in facts and b"sticky" in facts and b"until" in facts
    response, _ = await post(comment="plain", expires="")  # a plain one replaces it
    svc = await h.queries.service(disk)
    assert (svc.acked, svc.ack_sticky, svc.ack_expires) == (True, False, None)
