"""The push API against a real listening server, on SQLite and on MariaDB (SPEC 1 and 2)."""
from __future__ import annotations

import itertools
import json
import time
import urllib.request

import pytest

_names = itertools.count()


def new_name(prefix="host"):
    return f"{prefix}-{time.monotonic_ns()}-{next(_names)}"


def server_id(server, name):
    return server.query("SELECT id FROM servers WHERE name = ?", name)[0][0]


def services_of(server, name):
    return server.query(
        "SELECT s.name, s.state, s.info, s.period FROM services s JOIN servers v"
        " ON v.id = s.server_id WHERE v.name = ? ORDER BY s.id", name)


def push(server, name, services, period=60, key="s3cret", **extra):
    body = {"server": {"name": name, "key": key}, "period": period, "services": services, **extra}
    return server.post("api/set/service/status", body)


def test_first_ping_registers_with_a_hashed_key(push_server):
    name = new_name()
    status, headers, body = push_server.post("api/ping", {"server": {"name": name, "key": "s3cret"}})
    assert (status, body) == (200, {"pong": 1})
    assert headers["Content-Type"].startswith("application/json")
    ((key_hash, ip),) = push_server.query("SELECT key_hash, ip FROM servers WHERE name = ?", name)
    assert ip == "127.0.0.1"
    assert "s3cret" not in key_hash and key_hash.startswith("pbkdf2_sha256$")


def test_wrong_key_is_refused_and_stores_nothing(push_server):
    name = new_name()
    assert push(push_server, name, [])[0] == 200
    status, _, body = push(push_server, name, [{"name": "app", "state": "OK"}], key="wrong")
    assert (status, body) == (403, {"error": "Invalid server key"})
    assert services_of(push_server, name) == []
    assert push_server.post("api/ping", {"server": {"name": name, "key": "wrong"}})[0] == 403
    assert push_server.post("api/set/alerts", {"server": {"name": name, "key": "nope"},
                                               "alerts": [{"message": "x"}]})[0] == 403
    assert "wrong" not in push_server.log_text() and "nope" not in push_server.log_text()


def test_a_status_report_is_committed_when_answered(push_server):
    name = new_name()
    status, _, body = push(push_server, name, [
        {"name": "app", "state": "OK", "info": "up 32h"},
        {"name": "disk", "state": "WARN", "period": 300,
         "info": "DISK WARNING - /var 91% | /var=91%;90;95;0;100"},
        {"name": "queue", "state": "FAIL", "info": "3000 items"},
    ])
    assert (status, body) == (200, {"ok": 1})
    assert services_of(push_server, name) == [
        ("app", "OK", "up 32h", 60), ("disk", "WARN", "DISK WARNING - /var 91%", 300),
        ("queue", "FAIL", "3000 items", 60)]
    perf = push_server.query(
        "SELECT p.label, p.value, p.uom, p.warn, p.crit, p.min, p.max FROM perfdata p"
        " JOIN services s ON s.id = p.service_id WHERE s.server_id = ?",
        server_id(push_server, name))
    assert perf == [("/var", 91.0, "%", "90", "95", 0.0, 100.0)]
    alerts = push_server.query("SELECT kind, severity, message FROM alerts WHERE server_id = ?"
                               " ORDER BY id", server_id(push_server, name))
    assert alerts == [("state", "WARN", 'First report: "WARN"'),
                      ("state", "FAIL", 'First report: "FAIL"')]


def test_unsupported_state_is_unk_with_suffix(push_server):
    name = new_name()
    assert push(push_server, name, [{"name": "a", "state": "HEY", "info": "hi"}])[0] == 200
    assert services_of(push_server, name) == [("a", "UNK", 'hi (sent unsupported state: "HEY")',
                                               60)]


def test_same_service_twice_gives_two_states_and_its_own_period(push_server):
    name = new_name()
    assert push(push_server, name, [
        {"name": "a", "state": "OK", "info": "1", "period": 30},
        {"name": "a", "state": "WARN", "info": "2", "period": 90},
    ], period=60)[0] == 200
    assert services_of(push_server, name) == [("a", "WARN", "2", 90)]
    history = push_server.query(
        "SELECT st.state, st.info FROM states st JOIN services s ON s.id = st.service_id"
        " WHERE s.server_id = ? ORDER BY st.id", server_id(push_server, name))
    assert history == [("OK", "1"), ("WARN", "2")]


def test_alerts_create_the_named_service(push_server):
    name = new_name()
    status, _, body = push_server.post("api/set/alerts", {
        "server": {"name": name, "key": "k"},
        "alerts": [{"message": "System down", "title": "ignored"},
                   {"message": "Cannot check", "service": "queue"}]})
    assert (status, body) == (200, {"ok": 1})
    assert services_of(push_server, name) == [("queue", None, None, None)]
    assert push_server.query("SELECT kind, severity, message FROM alerts WHERE server_id = ?"
                             " ORDER BY id", server_id(push_server, name)) == [
        ("api", "FAIL", "System down"), ("api", "FAIL", "Cannot check")]


def test_unicode_names_and_info(push_server):
    name = new_name("сервер-😀")
    assert push(push_server, name, [{"name": "диск ✓", "state": "ok", "info": "Größe 💾"}])[0] == 200
    assert services_of(push_server, name) == [("диск ✓", "OK", "Größe 💾", 60)]


def test_json_is_read_whatever_the_content_type(push_server):
    name = new_name()
    raw = json.dumps({"server": {"name": name, "key": "k"}}).encode()
    for content_type in ("application/x-www-form-urlencoded", "text/plain", "multipart/form-data"):
        status, _, body = push_server.post("api/ping", raw, {"Content-Type": content_type})
        assert (status, body) == (200, {"pong": 1}), content_type


@pytest.mark.parametrize("raw, field, message", [
    (b"server=web1", None, "The body is not valid JSON"),
    (b"[1, 2]", None, "The body must be a JSON object"),
    (b'{"server": {"name": "x", "key": "k"}, "services": []}', "period", "period is required"),
    (b'{"server": {"name": "x", "key": "k"}, "period": 60, "services": [{"name": "a"}]}',
     "services[0].state", "services[0].state is required"),
    (b'{"server": {"name": "x"}, "period": 60, "services": []}', "server.key",
     "server.key is required"),
])
def test_validation_errors_name_the_field(push_server, raw, field, message):
    status, _, body = push_server.post("api/set/service/status", raw)
    expected = {"error": message, **({"field": field} if field else {})}
    assert (status, body) == (400, expected)


def test_time_in_the_future_is_refused_and_late_results_are_history(push_server):
    name = new_name()
    now = time.time()
    status, _, body = push(push_server, name, [{"name": "a", "state": "OK", "time": now + 600}])
    assert status == 400 and body["field"] == "services[0].time"
    assert push(push_server, name, [{"name": "a", "state": "OK", "info": "now"}])[0] == 200
    assert push(push_server, name, [{"name": "a", "state": "FAIL", "info": "old",
                                     "time": now - 3600}])[0] == 200
    assert services_of(push_server, name) == [("a", "OK", "now", 60)]
    history = push_server.query(
        "SELECT st.state, st.late FROM states st JOIN services s ON s.id = st.service_id"
        " WHERE s.server_id = ? ORDER BY st.time", server_id(push_server, name))
    assert history == [("FAIL", 1), ("OK", 0)]
    assert push_server.query("SELECT COUNT(*) FROM alerts WHERE server_id = ?",
                             server_id(push_server, name)) == [(0,)]


def test_stale_service_comes_back_with_an_online_alert(push_server):
    name = new_name()
    assert push(push_server, name, [{"name": "a", "state": "OK"}])[0] == 200
    push_server.query("UPDATE services SET stale = 1 WHERE server_id = ?",
                      server_id(push_server, name))
    assert push(push_server, name, [{"name": "a", "state": "OK"}])[0] == 200
    assert push_server.query("SELECT stale FROM services WHERE server_id = ?",
                             server_id(push_server, name)) == [(0,)]
    assert push_server.query("SELECT kind, severity FROM alerts WHERE server_id = ?",
                             server_id(push_server, name)) == [("online", "OK")]


def test_unknown_path_and_wrong_method_are_json(push_server):
    status, _, body = push_server.get("api/nothing")
    assert status == 404 and isinstance(body["error"], str)
    status, _, body = push_server.post("api/set/nothing", {})
    assert (status, body) == (404, {"error": "Not found"})
    status, headers, body = push_server.get("api/ping")
    assert status == 405 and body == {"error": "Method not allowed (use POST)"}
    assert headers["Allow"] == "POST"
    assert push_server.get("nothing/here")[0] == 404


def test_bodies_over_one_mebibyte_are_refused(push_server):
    name = new_name()
    info = "x" * 60000
    big = {"server": {"name": name, "key": "k"}, "period": 60,
           "services": [{"name": f"s{i}", "state": "OK", "info": info} for i in range(20)]}
    status, _, body = push_server.post("api/set/service/status", big)
    assert status == 413 and body == {"error": "The body is larger than 1048576 bytes"}

    def chunks():
        yield b'{"server": {"name": "x", "key": "k"}, "pad": "'
        for _ in range(20):
            yield b"y" * 65536
        yield b'"}'

    request = urllib.request.Request(push_server.url + "api/ping", data=chunks(), method="POST",
                                     headers={"Transfer-Encoding": "chunked"})
    try:
        urllib.request.urlopen(request, timeout=10)
        raise AssertionError("a chunked body over 1 MiB was accepted")
    except urllib.error.HTTPError as error:
        assert error.code == 413
    assert services_of(push_server, name) == []
    # Exactly 1 MiB is still fine.
    pad = 1024 * 1024 - len(json.dumps({"server": {"name": name, "key": "k"}, "p": ""}))
    exact = json.dumps({"server": {"name": name, "key": "k"}, "p": "z" * pad}).encode()
    assert len(exact) == 1024 * 1024
    assert push_server.post("api/ping", exact)[0] == 200


def test_healthz_and_root(push_server):
    status, _, body = push_server.get("healthz")
    assert status == 200 and body["ok"] is True and body["database"]["ok"] is True
    # MySQL: the host of the URL in use (a URL may list several); SQLite has none.
    assert set(body["database"]) == ({"ok", "host"} if push_server.kind == "mysql" else {"ok"})


def test_metrics_count_reports_requests_and_alerts(push_server):
    name = new_name()
    push(push_server, name, [{"name": "a", "state": "FAIL"}, {"name": "b", "state": "OK"}])
    push(push_server, name, [], key="wrong")
    status, _, text = push_server.get("metrics")
    assert status == 200
    from prometheus_client.parser import text_string_to_metric_families

    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text.decode())
               for s in family.samples}
    assert samples[("overc_reports_total", ())] >= 2
    assert samples[("overc_alerts_total", ())] >= 1
    assert samples[("overc_push_requests_total", (("status", "403"),))] >= 1
    assert samples[("overc_push_requests_total", (("status", "200"),))] >= 1


def test_concurrent_first_contacts_of_one_server_all_succeed(push_server):
    """Twenty requests race to register the same new server: one registers, all are accepted."""
    from concurrent.futures import ThreadPoolExecutor

    name = new_name("race")

    def ping(_):
        return push(push_server, name, [{"name": "a", "state": "OK"}])[0]

    with ThreadPoolExecutor(20) as pool:
        statuses = list(pool.map(ping, range(20)))
    assert statuses == [200] * 20
    assert push_server.query("SELECT COUNT(*) FROM servers WHERE name = ?", name) == [(1,)]
    assert push(push_server, name, [], key="other")[0] == 403
