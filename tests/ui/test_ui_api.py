"""Read API, OpenAPI document and /metrics: real responses checked against the document."""
from __future__ import annotations

import base64
import json
from datetime import datetime, timezone

import pytest_twisted
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate
from prometheus_client.parser import text_string_to_metric_families

from overc.api.openapi import openapi_document
from ui_fakes import PASSWORD, Harness

BASIC = {"Authorization": "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()}
JSON = {**BASIC, "Content-Type": "application/json"}


def check(doc: dict, path: str, method: str, status: int, body: bytes) -> dict:
    """Validate a real response body against the document's schema for it."""
    op = doc["paths"][path][method]
    schema = op["responses"][str(status)]["content"]["application/json"]["schema"]
    resolved = {**schema, "components": doc["components"]}
    data = json.loads(body)
    OAS30Validator(resolved).validate(data)
    return data


def test_openapi_document_is_valid_and_covers_push_and_read():
    doc = openapi_document()
    validate(doc)
    for path in ("/api/ping", "/api/set/service/status", "/api/set/alerts", "/api/servers",
                 "/api/servers/{id}", "/api/services/{id}/states", "/api/alerts",
                 "/api/services/{id}/ack", "/api/servers/{id}/silence",
                 "/api/servers/{id}/reset-key"):
        assert path in doc["paths"]


@pytest_twisted.ensureDeferred
async def test_read_api_responses_match_the_document(ui_db):
    h = Harness(ui_db)
    doc = openapi_document()
    ids = ui_db.ids
    response, body = await h.request("GET", "/api/openapi.json")
    assert response.code == 200 and json.loads(body) == doc
    response, body = await h.request("GET", "/api/servers?limit=1", headers=BASIC)
    page = check(doc, "/api/servers", "get", 200, body)
    assert len(page["items"]) == 1 and page["next"]
    response, body = await h.request("GET", page["next"], headers=BASIC)
    page2 = check(doc, "/api/servers", "get", 200, body)
    assert page2["items"][0]["id"] > page["items"][0]["id"]
    response, body = await h.request("GET", page2["next"], headers=BASIC)
    assert check(doc, "/api/servers", "get", 200, body) == {"items": [], "next": None}
    response, body = await h.request("GET", f"/api/servers/{ids['web1']}", headers=BASIC)
    server = check(doc, "/api/servers/{id}", "get", 200, body)
    assert {s["name"] for s in server["services"]} == {"app", "disk"}
    response, body = await h.request("GET", f"/api/services/{ids['disk']}", headers=BASIC)
    assert check(doc, "/api/services/{id}", "get", 200, body)["state"] == "WARN"
    # states: 200 in the last day, paged by 150
    url = f"/api/services/{ids['disk']}/states?limit=150"
    seen: list[int] = []
    while url:
        response, body = await h.request("GET", url, headers=BASIC)
        page = check(doc, "/api/services/{id}/states", "get", 200, body)
        seen += [s["id"] for s in page["items"]]
        url = page["next"]
    assert len(seen) == len(set(seen)) == 200
    response, body = await h.request("GET", "/api/alerts?limit=1", headers=BASIC)
    alerts = check(doc, "/api/alerts", "get", 200, body)
    assert alerts["items"][0]["kind"] == "offline" and alerts["next"]
    response, body = await h.request("GET", "/api/alerts?server=web1", headers=BASIC)
    assert [a["server_name"] for a in check(doc, "/api/alerts", "get", 200, body)["items"]] \
        == ["web1"]
    response, body = await h.request("GET", "/api/servers/9999", headers=BASIC)
    assert response.code == 404
    check(doc, "/api/servers/{id}", "get", 404, body)
    response, body = await h.request("GET", "/api/servers?limit=0", headers=BASIC)
    assert check(doc, "/api/servers", "get", 400, body)["field"] == "limit"
    response, body = await h.request("GET", "/api/nothing", headers=BASIC)
    assert response.code == 404 and json.loads(body)["error"]
    response, body = await h.request("PUT", "/api/servers", headers=BASIC)
    assert response.code == 405 and json.loads(body)["error"]


@pytest_twisted.ensureDeferred
async def test_api_actions(ui_db):
    h = Harness(ui_db)
    doc = openapi_document()
    disk, web1 = ui_db.ids["disk"], ui_db.ids["web1"]
    # a form-encoded POST (what a cross-site form can send) is refused
    response, body = await h.request("POST", f"/api/services/{disk}/ack",
                                     headers={**BASIC, "Content-Type": "text/plain"},
                                     data=b'{"comment": "x"}')
    assert response.code == 403
    response, body = await h.request("POST", f"/api/services/{disk}/ack", headers=JSON,
                                     data=json.dumps({"comment": "mine"}).encode())
    check(doc, "/api/services/{id}/ack", "post", 200, body)
    assert (await h.queries.service(disk)).ack_comment == "mine"
    response, body = await h.request("DELETE", f"/api/services/{disk}/ack", headers=BASIC)
    assert response.code == 200 and not (await h.queries.service(disk)).acked
    response, body = await h.request("POST", f"/api/servers/{web1}/silence", headers=JSON,
                                     data=json.dumps({"duration": 600, "reason": "r"}).encode())
    data = check(doc, "/api/servers/{id}/silence", "post", 200, body)
    assert data["silenced_until"] == h.clock.seconds() + 600
    response, body = await h.request("POST", f"/api/services/{disk}/silence", headers=JSON,
                                     data=json.dumps({"until": "soon"}).encode())
    assert check(doc, "/api/services/{id}/silence", "post", 400, body)["field"] == "until"
    response, body = await h.request("DELETE", f"/api/servers/{web1}/silence", headers=BASIC)
    assert (await h.queries.server(web1)).silenced_until is None
    response, body = await h.request("POST", f"/api/servers/{web1}/reset-key", headers=JSON,
                                     data=json.dumps({"key": "new-key"}).encode())
    assert check(doc, "/api/servers/{id}/reset-key", "post", 200, body)["key"] == "new-key"
    response, body = await h.request("DELETE", f"/api/services/{disk}", headers=BASIC)
    check(doc, "/api/services/{id}", "delete", 200, body)
    response, body = await h.request("DELETE", f"/api/services/{disk}", headers=BASIC)
    assert response.code == 404
    response, body = await h.request("POST", "/api/servers/9999/silence", headers=JSON,
                                     data=json.dumps({"duration": 60}).encode())
    assert response.code == 404
    # a wrong Basic password is refused
    bad = {"Authorization": "Basic " + base64.b64encode(b"admin:nope").decode()}
    d = h.stub.request("GET", "http://overc.test/api/servers", headers=bad)
    h.clock.advance(20)
    response = await h.pump(d)
    assert response.code == 401


@pytest_twisted.ensureDeferred
async def test_api_ack_sticky_and_expires(ui_db):
    """SPEC 10.5: `sticky` and `expires` on acknowledge; a bad one is a 400 naming it and
    writes nothing; the read API shows both."""
    h = Harness(ui_db)
    doc = openapi_document()
    disk = ui_db.ids["disk"]
    now = h.clock.seconds()

    async def ack(body: dict):
        return await h.request("POST", f"/api/services/{disk}/ack", headers=JSON,
                               data=json.dumps(body).encode())

    for body, field in [
        ({"sticky": "maybe"}, "sticky"), ({"sticky": 1}, "sticky"),
        ({"expires": "tomorrow"}, "expires"), ({"expires": now - 1}, "expires"),
        ({"expires": now + 400 * 86400}, "expires"), ({"expires": True}, "expires"),
        ({"expires": "nan"}, "expires"),
        ({"comment": 5, "sticky": True}, "comment"),
    ]:
        response, answer = await ack(body)
        assert check(doc, "/api/services/{id}/ack", "post", 400, answer)["field"] == field, body
    assert not (await h.queries.service(disk)).acked
    later = datetime.fromtimestamp(now + 86400, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    response, answer = await ack({"comment": "mine", "sticky": True, "expires": later})
    check(doc, "/api/services/{id}/ack", "post", 200, answer)
    response, answer = await h.request("GET", f"/api/services/{disk}", headers=BASIC)
    service = check(doc, "/api/services/{id}", "get", 200, answer)
    assert (service["acked"], service["ack_sticky"], service["ack_expires"]) == (
        True, True, float(int(now) + 86400))
    assert service["held"] == "acknowledged"  # a WARN someone owns: why repeats wait
    response, answer = await h.request("GET", "/api/servers", headers=BASIC)
    listed = check(doc, "/api/servers", "get", 200, answer)["items"]
    assert {s["name"]: s["held"] for v in listed for s in v["services"]
            if v["id"] == ui_db.ids["web1"]} == {"disk": "acknowledged", "app": None}
    response, answer = await ack({"expires": now + 60})  # a new ack replaces the old one
    response, answer = await h.request("GET", f"/api/services/{disk}", headers=BASIC)
    service = check(doc, "/api/services/{id}", "get", 200, answer)
    assert (service["ack_sticky"], service["ack_expires"]) == (False, now + 60)
    response, answer = await h.request("DELETE", f"/api/services/{disk}/ack", headers=BASIC)
    response, answer = await h.request("GET", f"/api/services/{disk}", headers=BASIC)
    service = check(doc, "/api/services/{id}", "get", 200, answer)
    assert (service["acked"], service["ack_sticky"], service["ack_expires"]) == (
        False, False, None)
    assert service["held"] is None


@pytest_twisted.ensureDeferred
async def test_session_api_writes_need_the_csrf_header(ui_db):
    from test_ui_routes import cookie_header, csrf_for, login

    h = Harness(ui_db)
    cookies = await login(h)
    disk = ui_db.ids["disk"]
    headers = {**cookie_header(cookies), "Content-Type": "application/json"}
    response, _ = await h.request("POST", f"/api/services/{disk}/ack", headers=headers,
                                  data=b"{}")
    assert response.code == 403
    token = await csrf_for(h, cookies, "/ui/")
    response, _ = await h.request("POST", f"/api/services/{disk}/ack",
                                  headers={**headers, "X-CSRF-Token": token}, data=b"{}")
    assert response.code == 200


@pytest_twisted.ensureDeferred
async def test_metrics_parse_as_prometheus_text(ui_db):
    h = Harness(ui_db)
    app = ui_db.ids["app"]

    def _txn_reports(c):
        # As ingest writes them: a report's perfdata carries the report's time, which is the
        # service's last_time for its latest report. Only the latest report's values export.
        last = c.execute("SELECT last_time FROM services WHERE id = ?", (app,)).fetchone()[0]
        c.executemany("INSERT INTO perfdata (service_id, time, label, value, uom)"
                      " VALUES (?, ?, ?, ?, '')",
                      [(app, last - 60, "load 1", 0.9), (app, last - 60, "gone", 7.0),
                       (app, last, "load 1", 0.5), (app, last, "load 5", 0.25)])

    await ui_db.run(_txn_reports)
    h.counters.inc("reports", 5)
    h.counters.inc("notifications", result="sent")
    response, body = await h.request("GET", "/metrics", headers=BASIC)
    assert response.code == 200
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    states = {(s.labels["server"], s.labels["service"]): s.value
              for s in families["overc_service_state"].samples}
    assert states == {("web1", "app"): 0, ("web1", "disk"): 1, ("db1", "mysql"): 2}
    stale = {s.labels["service"]: s.value for s in families["overc_service_stale"].samples}
    assert stale == {"app": 0, "disk": 0, "mysql": 1}
    ages = {s.labels["service"]: s.value
            for s in families["overc_service_last_report_age_seconds"].samples}
    assert all(0 <= v < 60 for v in ages.values())
    perf = {(s.labels["service"], s.labels["label"]): s.value
            for s in families["overc_perfdata"].samples}
    assert perf[("app", "load 1")] == 0.5 and perf[("app", "load 5")] == 0.25
    assert ("app", "gone") not in perf  # not in the latest report: gone, not frozen
    assert ("disk", "/var") not in perf  # no perfdata at the disk's last report
    assert families["overc_reports"].samples[0].value == 5
    sent = [s for s in families["overc_notifications"].samples if s.labels.get("result") == "sent"]
    assert sent[0].value == 1
