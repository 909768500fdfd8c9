"""``/metrics`` at scale: the snapshot query on SQLite and MariaDB, the exposition text byte for
byte against the straightforward renderer it replaced, the one-second cache, and rendering off
the reactor thread."""
from __future__ import annotations

import gzip
import math
import random
import threading
from collections import defaultdict

import pytest
import pytest_twisted
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.task import deferLater

from overc.core.counters import Counters
from overc.core.errors import DatabaseUnavailable
from overc.storage import read_metrics
from overc.core.policy import flapping_value
from overc.storage.read_metrics import MetricsService, MetricsSnapshot, _txn_metrics
from overc.web import metrics as metrics_module
from overc.web.metrics import MetricsResource, render_metrics
from test_ui_compression import raw
from ui_fakes import Harness

from helpers import reactor

HOSTILE = ['plain', 'quote "q"', "back\\slash", "new\nline", "tab\tand spaces ",
           "unicode ☃ é 漢字 🙂", "end\\", '\\"', "a{b}=c,d"]


# -- the renderer: byte-compatible with the one it replaced ------------------------------------

def _reference(snapshot: MetricsSnapshot, now: float, counter_values) -> str:
    """The pre-issue-13 renderer, kept as the definition of the format (one f-string a line)."""
    def esc(v: str) -> str:
        return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')

    def num(v: float) -> str:
        if v != v:
            return "NaN"
        if v in (float("inf"), float("-inf")):
            return "+Inf" if v > 0 else "-Inf"
        return repr(float(v)) if not float(v).is_integer() else str(int(v))

    codes = {"OK": 0, "WARN": 1, "FAIL": 2, "UNK": 3}
    out: list[str] = []

    def family(name, kind, text):
        out.extend([f"# HELP {name} {text}", f"# TYPE {name} {kind}"])

    rows = [(s, f'{{server="{esc(s.server_name)}",service="{esc(s.name)}"}}')
            for s in snapshot.services]
    family("overc_service_state", "gauge",
           "Last reported state: 0 OK, 1 WARN, 2 FAIL, 3 UNK (-1 never reported)")
    out += [f"overc_service_state{lab} {codes.get(s.state or '', -1)}" for s, lab in rows]
    family("overc_service_stale", "gauge", "1 when the service missed its deadline")
    out += [f"overc_service_stale{lab} {int(s.stale)}" for s, lab in rows]
    family("overc_service_acknowledged", "gauge", "1 when a user acknowledged the problem")
    out += [f"overc_service_acknowledged{lab} {int(s.acked)}" for s, lab in rows]
    family("overc_service_silenced", "gauge", "1 while the service or its server is silenced")
    out += [f"overc_service_silenced{lab} "
            f"{int(max(s.silenced_until or 0, s.server_silenced_until or 0) > now)}"
            for s, lab in rows]
    family("overc_service_last_report_age_seconds", "gauge", "Seconds since the last report")
    out += [f"overc_service_last_report_age_seconds{lab} {num(round(max(0.0, now - s.last_time), 3))}"
            for s, lab in rows if s.last_time is not None]
    family("overc_service_period_seconds", "gauge", "Reporting period the service promised")
    out += [f"overc_service_period_seconds{lab} {s.period}" for s, lab in rows
            if s.period is not None]
    family("overc_service_duration_seconds", "gauge",
           "How long the service's latest run took (start signal or reported duration)")
    out += [f"overc_service_duration_seconds{lab} {num(round(s.duration, 3))}"
            for s, lab in rows if s.duration is not None]
    family("overc_service_running_late", "gauge",
           "1 when a started run exceeded its timeout and has not reported yet")
    out += [f"overc_service_running_late{lab} {int(s.run_late)}" for s, lab in rows]
    family("overc_service_flapping_percent", "gauge",
           "Weighted state changes over the last 21 reports (SPEC 10.2)")
    out += [f"overc_service_flapping_percent{lab} {num(flapping_value(s.flap_bits))}"
            for s, lab in rows]
    by_id = {s.id: lab[:-1] for s, lab in rows}
    family("overc_perfdata", "gauge", "Latest performance data value reported by a plugin")
    for service_id, label, value, uom in sorted(snapshot.perfdata, key=lambda p: (p[0], p[1])):
        if service_id in by_id:
            out.append(f'overc_perfdata{by_id[service_id]},label="{esc(label)}",'
                       f'uom="{esc(uom or "")}"}} {num(value)}')
    counts: dict[str, int] = defaultdict(int)
    for s in snapshot.services:
        counts["STALE" if s.stale else (s.state or "NONE")] += 1
    family("overc_services", "gauge", "Services by displayed state")
    out += [f'overc_services{{state="{st}"}} {counts.get(st, 0)}'
            for st in ("OK", "WARN", "FAIL", "UNK", "STALE", "NONE")]
    for name, text in Counters.HELP.items():
        family(f"overc_{name}_total", "counter", text)
        for key, value in sorted(counter_values.get(name, {}).items()):
            inner = ",".join(f'{k}="{esc(str(v))}"' for k, v in key)
            out.append(f"overc_{name}_total{'{' + inner + '}' if inner else ''} {num(value)}")
    return "\n".join(out) + "\n"


def _random_snapshot(rng: random.Random, now: float) -> MetricsSnapshot:
    services = []
    for i in range(300):
        services.append(MetricsService(
            id=i + 1, server_name=rng.choice(HOSTILE) + str(i % 7),
            name=rng.choice(HOSTILE) + str(i), state=rng.choice(["OK", "WARN", "FAIL", "UNK", None]),
            stale=rng.randint(0, 1), acked=rng.randint(0, 1),
            silenced_until=rng.choice([None, now - 5, now + 5, now]),
            server_silenced_until=rng.choice([None, now - 5, now + 5]),
            last_time=rng.choice([None, now, now - rng.random() * 1e5, now + 3, now - 1e-7]),
            period=rng.choice([None, 60, 300]),
            duration=rng.choice([None, 0.0, 12.3456, 3600.0]), run_late=rng.randint(0, 1),
            flap_bits=rng.choice([0, 1, 0b1011, 2**20 - 1])))
    services.sort(key=lambda s: (s.server_name, s.name))
    values = [0.0, -0.0, 1.0, -3.0, 0.1, 1e16, 1e300, 5e-324, math.nan, math.inf, -math.inf,
              12345678901234567890.0, 2.5]
    perf = {(rng.randint(1, 320), rng.choice(HOSTILE)): (rng.choice(values + [rng.random()]),
                                                         rng.choice([None, "", "%", 'u"\\']))
            for _ in range(600)}
    return MetricsSnapshot(services, sorted((k[0], k[1], v[0], v[1]) for k, v in perf.items()))


@pytest.mark.parametrize("seed", range(5))
def test_exposition_is_byte_for_byte_the_reference_format(seed):
    rng = random.Random(seed)
    now = 1_800_000_000.123456
    snapshot = _random_snapshot(rng, now)
    counters = Counters()
    counters.inc("reports", 7)
    counters.inc("notifications", result="sent", channel='ops "a"\\')
    counters.inc("push_requests", status="200")
    text = render_metrics(snapshot, now, counters.snapshot())
    assert text == _reference(snapshot, now, counters.snapshot())
    families = {f.name: f for f in text_string_to_metric_families(text)}
    names = {s.labels["service"] for s in families["overc_service_state"].samples}
    assert names == {s.name for s in snapshot.services}


def test_a_silenced_server_silences_its_services():
    """As documented: 1 while the service *or its server* is silenced."""
    now = 1000.0
    row = dict(state="OK", stale=0, acked=0, last_time=990.0, period=60)
    snapshot = MetricsSnapshot([
        MetricsService(1, "a", "x", silenced_until=None, server_silenced_until=2000.0, **row),
        MetricsService(2, "a", "y", silenced_until=2000.0, server_silenced_until=None, **row),
        MetricsService(3, "a", "z", silenced_until=500.0, server_silenced_until=900.0, **row),
    ], [])
    families = {f.name: f for f in text_string_to_metric_families(
        render_metrics(snapshot, now, {}))}
    silenced = {s.labels["service"]: s.value for s in families["overc_service_silenced"].samples}
    assert silenced == {"x": 1, "y": 1, "z": 0}


# -- the snapshot query, on SQLite and MariaDB -------------------------------------------------

def _txn_fill(cursor, now: float, rng: random.Random) -> dict:
    """Servers and services with hostile names, a history of perfdata and the latest report."""
    expected_perf = {}
    for i, server in enumerate(HOSTILE):
        cursor.execute("INSERT INTO servers (name, key_hash, created, silenced_until)"
                       " VALUES (?, 'x', ?, ?)", (server, now, now + 60 if i == 2 else None))
        server_id = cursor.execute("SELECT id FROM servers WHERE name = ?",
                                   (server,)).fetchone()[0]
        for j, name in enumerate(HOSTILE[:4] + ["z" * 255]):
            last = now - rng.random() * 1000 if j != 3 else None
            cursor.execute(
                "INSERT INTO services (server_id, name, state, info, period, last_time, stale,"
                " acked, created, silenced_until) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (server_id, name, ["OK", "WARN", None, "FAIL", "UNK"][j], "x" * 65536, 60,
                 last, j % 2, (j + 1) % 2, now, now + 5 if j == 1 else None))
            service_id = cursor.execute(
                "SELECT id FROM services WHERE server_id = ? AND name = ?",
                (server_id, name)).fetchone()[0]
            if last is None:
                continue
            rows = [(service_id, last - 60, "old only", 1.0, "")]
            for label in HOSTILE[:5]:
                value = rng.uniform(-1e6, 1e6) * 10 ** rng.randint(-12, 12)
                rows += [(service_id, last - 60, label, 0.5, ""),
                         (service_id, last, label, value, rng.choice(["", "%", "é", None]))]
                expected_perf[(service_id, label)] = rows[-1]
            # the same label twice in one report: the later row wins
            rows += [(service_id, last, "twice", 1.0, "s"), (service_id, last, "twice", 2.0, "s")]
            expected_perf[(service_id, "twice")] = rows[-1]
            cursor.executemany("INSERT INTO perfdata (service_id, time, label, value, uom)"
                               " VALUES (?, ?, ?, ?, ?)", rows)
    return expected_perf


@pytest_twisted.ensureDeferred
async def test_snapshot_query_keeps_every_text_and_double_exactly(database):
    now = 1_800_000_000.25
    expected_perf = await database.run(_txn_fill, now, random.Random(3))
    snapshot = await database.run(_txn_metrics)
    plain = await database.run(lambda c: c.execute(
        "SELECT s.id, v.name, s.name, s.state, s.stale, s.acked, s.silenced_until,"
        " v.silenced_until, s.last_time, s.period, s.duration, s.run_late, s.flap_bits"
        " FROM services s JOIN servers v"
        " ON v.id = s.server_id").fetchall())
    expected = sorted((MetricsService._make(r) for r in plain),
                      key=lambda s: (s.server_name, s.name))
    assert [tuple(s) for s in snapshot.services] == [tuple(s) for s in expected]
    assert len(snapshot.services) == len(HOSTILE) * 5
    assert snapshot.perfdata == sorted((r[0], r[2], r[3], r[4]) for r in expected_perf.values())
    text = render_metrics(snapshot, now, {})
    assert text == _reference(snapshot, now, {})
    families = {f.name: f for f in text_string_to_metric_families(text)}
    perf = {(s.labels["service"], s.labels["label"]): s.value
            for s in families["overc_perfdata"].samples}
    assert ("plain", "old only") not in perf and perf[("plain", "twice")] == 2.0
    silenced = [s for s in families["overc_service_silenced"].samples if s.value == 1]
    assert len(silenced) == 5 + len(HOSTILE) - 1  # server 2's five, and service 1 elsewhere


@pytest.mark.parametrize("chunk", [1, 7, 45, 1000])
@pytest_twisted.ensureDeferred
async def test_a_scrape_read_in_slices_is_the_one_transaction_snapshot(database, monkeypatch,
                                                                        chunk):
    """Pushes commit between the slices; the slices add up to the whole (45 services)."""
    await database.run(_txn_fill, 1_800_000_000.0, random.Random(5))
    monkeypatch.setattr(read_metrics, "CHUNK", chunk)
    assert await read_metrics.read_metrics(database) == await database.run(_txn_metrics)


@pytest_twisted.ensureDeferred
async def test_the_perfdata_lookup_seeks_by_time_not_through_the_history(database):
    """One seek on perfdata_time per service, even where the optimizer would rather walk
    perfdata_service_label_time (every row of a service's history)."""
    def _txn_plan(cursor):
        source = read_metrics._perfdata_from(cursor)
        explain = "EXPLAIN QUERY PLAN" if cursor.dialect.name == "sqlite" else "EXPLAIN"
        return [str(row) for row in cursor.execute(
            f"{explain} SELECT p.id {source} WHERE s.id > ? AND s.id <= ?", (0, 10)).fetchall()]

    plan = " ".join(await database.run(_txn_plan))
    assert "perfdata_time" in plan and "perfdata_service_label_time" not in plan.replace(
        "perfdata_service_label_time,perfdata_time", ""), plan


@pytest_twisted.ensureDeferred
async def test_snapshot_of_an_empty_database(database):
    snapshot = await database.run(_txn_metrics)
    assert snapshot.services == [] and snapshot.perfdata == []
    assert await read_metrics.read_metrics(database) == snapshot
    families = {f.name for f in text_string_to_metric_families(render_metrics(snapshot, 0, {}))}
    assert "overc_service_state" in families and "overc_services" in families


# -- the resource: one query a second, shared by concurrent scrapes, rendered in a thread ------

class CountingReads:
    """Wraps the resource's read (the store's query) to count, hold and fail it."""

    def __init__(self, resource) -> None:
        self.read = resource.read
        self.calls = 0
        self.gate: Deferred | None = None
        self.fail = False
        resource.read = self

    async def __call__(self, known, perf_ids, since, rows_since=None):
        self.calls += 1
        if self.gate is not None:
            await self.gate
        if self.fail:
            raise DatabaseUnavailable("gone")
        return await self.read(known, perf_ids, since, rows_since)


@pytest_twisted.ensureDeferred
async def test_scrapes_share_one_snapshot_for_a_second(ui_db):
    h = Harness(ui_db, users={}, required=False)
    counting = CountingReads(h.metrics)
    first = await h.request("GET", "/metrics")
    h.counters.inc("reports", 5)  # counted, but the cached second still shows the old text
    h.clock.advance(0.5)
    second = await h.request("GET", "/metrics")
    assert first[0].code == second[0].code == 200 and first[1] == second[1]
    assert counting.calls == 1
    h.clock.advance(0.6)
    third = await h.request("GET", "/metrics")
    assert counting.calls == 2 and b"overc_reports_total 5" in third[1]
    assert third[0].headers.getRawHeaders(b"cache-control") == [b"no-store"]


@pytest_twisted.ensureDeferred
async def test_concurrent_scrapes_wait_for_one_query_and_failures_are_not_cached(ui_db):
    h = Harness(ui_db, users={}, required=False)
    counting = CountingReads(h.metrics)
    counting.gate, counting.fail = Deferred(), True
    pending = [h.stub.request("GET", "http://overc.test/metrics") for _ in range(3)]
    h.stub.flush()
    assert counting.calls == 1
    counting.gate.callback(None)
    responses = [await h.pump(d) for d in pending]
    assert [r.code for r in responses] == [503, 503, 503]
    counting.gate, counting.fail = None, False
    response, body = await h.request("GET", "/metrics")  # the failure was not kept
    assert response.code == 200 and counting.calls == 2 and b"overc_service_state{" in body


@pytest_twisted.ensureDeferred
async def test_the_text_is_rendered_off_the_reactor_thread(ui_db, monkeypatch):
    h = Harness(ui_db, users={}, required=False)
    threads_seen = []
    real = metrics_module._encoded

    def spy(*args):
        threads_seen.append(threading.current_thread())
        return real(*args)

    monkeypatch.setattr(metrics_module, "_encoded", spy)
    resource = MetricsResource(h.queries, h.auth, h.clock, h.counters, threads=reactor())
    h.root.putChild(b"threaded", resource)
    response, body = await h.request("GET", "/threaded")
    assert response.code == 200 and b"overc_service_state{" in body
    assert threads_seen and threads_seen[0] is not threading.main_thread()


@pytest_twisted.ensureDeferred
async def test_a_scraper_that_accepts_gzip_gets_the_same_text_compressed(ui_db):
    """Prometheus sends ``Accept-Encoding: gzip``: the body is the plain text gzip-compressed
    (built and kept apart from the plain one), with ``Vary``; a plain client gets it plain."""
    h = Harness(ui_db, users={}, required=False)
    counting = CountingReads(h.metrics)
    plain_response, plain = await raw(h, "/metrics", {})
    zipped_response, zipped = await raw(h, "/metrics", {"Accept-Encoding": "gzip, deflate;q=0.5"})
    assert plain_response.code == zipped_response.code == 200
    assert zipped_response.headers.getRawHeaders(b"content-encoding") == [b"gzip"]
    assert plain_response.headers.getRawHeaders(b"content-encoding") is None
    for response in (plain_response, zipped_response):
        assert response.headers.getRawHeaders(b"vary") == [b"Accept-Encoding"]
    assert b"overc_service_state{" in plain
    assert gzip.decompress(zipped) == plain and len(zipped) * 3 < len(plain)
    assert counting.calls == 2  # one build each
    _, refused = await raw(h, "/metrics", {"Accept-Encoding": "gzip;q=0"})
    assert refused == plain and counting.calls == 2  # the kept plain text, within its second


@pytest_twisted.ensureDeferred
async def test_plain_and_gzip_builds_take_turns(ui_db):
    """Both kinds at once: the incremental builder is not thread-safe, so one waits."""
    h = Harness(ui_db, users={}, required=False)
    counting = CountingReads(h.metrics)
    counting.gate = Deferred()
    pending = [ensureDeferred(raw(h, "/metrics", headers))
               for headers in ({}, {"Accept-Encoding": "gzip"})]
    await deferLater(reactor(), 0.05, lambda: None)
    assert counting.calls == 1  # the second build waits for the first
    counting.gate.callback(None)
    counting.gate = None
    responses = [(await d)[0] for d in pending]
    assert [r.code for r in responses] == [200, 200] and counting.calls == 2
