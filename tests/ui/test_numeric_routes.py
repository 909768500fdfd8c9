"""Numeric input through the routes of the read API and the UI: 400 naming the field, or 404
for an id that cannot exist; never a 500, never a silently wrong result."""
from __future__ import annotations

import base64
import json
import re
from urllib.parse import quote, urlencode

import pytest_twisted

from ui_fakes import FORM, PASSWORD, Harness, cookie_header, cookies_of, login_response

BASIC = {"Authorization": "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()}
NASTY = ["nan", "inf", "-inf", "1e400", "true", str(2**63), "9" * 400, "1.5", "²", "-1"]
HUGE = str(2**63)


async def api(h: Harness, method: str, url: str, body: bytes | None = None):
    headers = dict(BASIC)
    if body is not None:
        headers["Content-Type"] = "application/json"
    response, raw = await h.request(method, url, headers=headers, data=body)
    return response.code, json.loads(raw) if raw else None


@pytest_twisted.ensureDeferred
async def test_query_numbers_of_the_read_api(ui_db):
    h = Harness(ui_db)
    disk = ui_db.ids["disk"]
    for value in NASTY:
        for url, field in [
            ("/api/servers?limit={}", "limit"), ("/api/servers?after={}", "after"),
            (f"/api/services/{disk}/states?since={{}}", "since"),
            (f"/api/services/{disk}/states?until={{}}", "until"),
            (f"/api/services/{disk}/states?limit={{}}", "limit"),
            (f"/api/services/{disk}/states?after={{}}", "after"),
            ("/api/alerts?since={}", "since"), ("/api/alerts?before={}", "before"),
            ("/api/alerts?limit={}", "limit"),
        ]:
            if field in ("since", "until") and value in ("1.5",):
                continue  # a fine Unix time
            status, body = await api(h, "GET", url.format(quote(value)))
            assert (status, body.get("field")) == (400, field), (url, value, body)
    # Filters by id or name: what cannot be an id is a name, and matches nothing.
    for value in (HUGE, "²", "9" * 400):
        status, body = await api(h, "GET", f"/api/alerts?server={quote(value)}")
        assert (status, body["items"]) == (200, []), value


@pytest_twisted.ensureDeferred
async def test_ids_that_cannot_exist_are_404(ui_db):
    h = Harness(ui_db)
    for bad in (HUGE, "0", "9" * 400, "-1", "1.0", "1e3"):
        for method, url in [("GET", f"/api/servers/{bad}"), ("GET", f"/api/services/{bad}"),
                            ("GET", f"/api/services/{bad}/states"),
                            ("DELETE", f"/api/servers/{bad}"),
                            ("POST", f"/api/services/{bad}/silence")]:
            status, _ = await api(h, method, url, b'{"duration": 60}'
                                  if method == "POST" else None)
            assert status == 404, (method, url)
        response, _ = await h.request("GET", f"/ui/server/{bad}")
        assert response.code in (303, 404)  # the login redirect comes first, never a 500


@pytest_twisted.ensureDeferred
async def test_silence_numbers_in_json_bodies(ui_db):
    h = Harness(ui_db)
    disk = ui_db.ids["disk"]
    url = f"/api/services/{disk}/silence"
    for raw, field in [(b'{"duration": NaN}', None), (b'{"duration": Infinity}', None),
                       (b'{"duration": 1e400}', "duration"), (b'{"duration": true}', "duration"),
                       (b'{"duration": "nan"}', "duration"), (b'{"duration": 0}', "duration"),
                       (b'{"duration": -60}', "duration"),
                       (b'{"duration": 1' + b"0" * 30 + b'}', "duration"),
                       (b'{"until": 1e400}', "until"), (b'{"until": false}', "until"),
                       (b'{"until": "inf"}', "until"), (b'{"until": ' + HUGE.encode() + b'}',
                                                        "until"),
                       ]:
        status, body = await api(h, "POST", url, raw)
        assert status == 400, (raw, body)
        if field is not None:
            assert body["field"] == field, (raw, body)
    svc = await h.queries.service(disk)
    assert svc.silenced_until is None  # nothing was silenced
    end = h.clock.seconds() + 3600
    status, body = await api(h, "POST", url, json.dumps({"until": end, "duration": "x"}).encode())
    assert (status, body["silenced_until"]) == (200, end)  # until wins, and it is valid


@pytest_twisted.ensureDeferred
async def test_silence_numbers_in_ui_forms(ui_db):
    h = Harness(ui_db)
    response = await login_response(h, "/ui/")
    cookies = cookies_of(response)
    _, page = await h.request("GET", "/ui/", headers=cookie_header(cookies))
    token = re.search(rb'data-csrf="([^"]+)"', page).group(1).decode()
    web1 = ui_db.ids["web1"]
    headers = {**FORM, **cookie_header(cookies)}
    for data, field in [({"duration": "nan"}, "duration"), ({"duration": "inf"}, "duration"),
                        ({"duration": "1e400"}, "duration"), ({"duration": HUGE}, "duration"),
                        ({"until": "nan"}, "until"), ({"until": "1e400"}, "until"),
                        ({"until": "2030-01-01T00:00", "tzoffset": "1e9"}, "tzoffset"),
                        ({"until": "2030-01-01T00:00", "tzoffset": HUGE}, "tzoffset")]:
        response, body = await h.request(
            "POST", f"/ui/server/{web1}/silence", headers=headers,
            data=urlencode({"csrf": token, **data}).encode())
        assert response.code == 400, (data, body)
        assert field.encode() in body, (data, body)
        server = await h.queries.server(web1)
        assert server.silenced_until is None, data  # nothing was silenced ("Silenced." lied)
    response, _ = await h.request("GET", "/ui/alerts?before=nan", headers=cookie_header(cookies))
    assert response.code == 400
