"""SPEC 9 in the UI and /metrics: the schedule in words, the next expected time, "running for",
"running late", the durations column and chart, overc_service_duration_seconds."""
from __future__ import annotations

import base64
from types import SimpleNamespace

import pytest_twisted
from prometheus_client.parser import text_string_to_metric_families

from overc.core.counters import Counters
from overc.core.durations import Grace
from overc.core.payload import Report
from overc.core.runs import RunStart
from overc.storage.ingest_store import IngestItem, Store
from overc.storage.watchdog_store import WatchdogStore
from overc.ui.schedule_views import run_time_text, service_timing
from ui_fakes import PASSWORD, Harness, cookie_header, cookies_of, login_response

BASIC = {"Authorization": "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()}


def test_run_time_in_words():
    assert [run_time_text(s) for s in (None, 0.42, 42, 180, 7500, 7200, 90000 * 2)] == \
        ["—", "0.4 s", "42 s", "3 min", "2 h 5 min", "2 h", "2 d 2 h"]


def test_timing_of_a_scheduled_running_service():
    svc = SimpleNamespace(schedule="0 3 * * *", tz="Europe/Berlin", last_time=1_718_000_000.0,
                          run_started=1_718_000_000.0, run_late=False, run_timeout=3600,
                          duration=None)
    timing = service_timing(svc, [], 0.0, 1_718_000_180.0)
    assert timing.schedule == "at 03:00, Europe/Berlin"
    assert timing.next_expected == 1_718_067_600.0  # 2024-06-11 03:00 +02:00
    assert timing.running == "running for 3 min" and not timing.late
    assert timing.chart is None and timing.last_duration is None


@pytest_twisted.ensureDeferred
async def test_service_page_and_metrics_show_schedule_runs_and_durations(ui_db):
    h = Harness(ui_db)
    now = h.clock.seconds()
    store = Store(ui_db, Grace(seconds=5), Counters())
    server_id = ui_db.ids["db1"]
    for i, took in enumerate((61.0, 75.5, 3900.0)):
        t = now - 3000 + i * 500
        await store.ingest([IngestItem(server_id, "127.0.0.1", t, starts=[
            RunStart("backup", 3600, t - took)])])
        await store.ingest([IngestItem(server_id, "127.0.0.1", t, [Report(
            "backup", "OK", "done", 86400, schedule="0 3 * * *", tz="Europe/Berlin")])])
    # a run that started 2 h ago with a 1 h timeout: the watchdog finds it late
    await store.ingest([IngestItem(server_id, "127.0.0.1", now - 7300, starts=[
        RunStart("backup", 3600)])])
    assert len((await WatchdogStore(ui_db).watchdog_tick(
        now, interval=1e9, grace=Grace(seconds=5))).timeouts) == 1
    [backup] = [s for s in (await h.queries.server(server_id)).services if s.name == "backup"]
    cookies = cookies_of(await login_response(h, "/ui/"))
    response, body = await h.request("GET", f"/ui/service/{backup.id}",
                                     headers=cookie_header(cookies))
    assert response.code == 200
    text = body.decode()
    assert "at 03:00, Europe/Berlin" in text and "Next expected" in text
    assert "running late" in text and "started 2 h 1 min ago (timeout 3600 s)" in text
    assert 'aria-label="Chart of durations"' in text and "3 runs" in text
    assert '<td class="took nowrap">61 s</td>' in text  # in the history column
    assert '<td class="took nowrap">65 min</td>' in text
    response, body = await h.request("GET", "/metrics", headers=BASIC)
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    [sample] = [s for s in families["overc_service_duration_seconds"].samples
                if s.labels["service"] == "backup"]
    assert sample.value == 3900.0
    late = {s.labels["service"]: s.value for s in families["overc_service_running_late"].samples}
    assert late["backup"] == 1 and late["disk"] == 0
