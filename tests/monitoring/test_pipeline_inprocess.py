"""The composed background jobs (``make_background_jobs``) twice, on two connection pools to one database, in
one reactor: reports from the real ingest, real timers, a real command channel and a real
webhook receiver. Every alert reaches every channel that wants it exactly once."""
from __future__ import annotations

import json
from collections import Counter

import pytest_twisted
from twisted.internet import defer
from twisted.web import resource, server

from overc.config import load_config
from overc.core.counters import Counters
from overc.core.dburl import parse_database_url
from overc.core.payload import AlertRequest, Report
from overc.notify.channel_config import parse_channels
from overc.storage.db import Database
from overc.storage.ingest_store import IngestItem, Store
from overc.tap import make_background_jobs

from alerting_tables import AlertingTables

from helpers import reactor, until

RECORD = """#!/bin/sh
# one file per delivery attempt, named by the notification id
mkdir -p deliveries
cat > "deliveries/$OVERC_NOTIFICATION_ID-$$.json"
"""


class Hook(resource.Resource):
    isLeaf = True

    def __init__(self):
        super().__init__()
        self.bodies = []

    def render_POST(self, request):
        self.bodies.append(json.loads(request.content.read()))
        return b"ok"


@pytest_twisted.ensureDeferred
async def test_two_service_sets_on_one_database_notify_each_alert_once(database_url, tmp_path):
    (tmp_path / "alert.d").mkdir()
    (tmp_path / "alert.d" / "record.sh").write_text(RECORD)
    (tmp_path / "alert.d" / "record.sh").chmod(0o755)
    hook = Hook()
    port = reactor().listenTCP(0, server.Site(hook), interface="127.0.0.1")
    config = load_config(
        "[overc]\nwatchdog-interval = 0.2\ngrace = 1\n"
        "[alert:log]\ncommand = ./alert.d/record.sh\nformat = json\n"
        f"[alert:hook]\nurl = http://127.0.0.1:{port.getHost().port}/\nmin-severity = OK\n",
        source=str(tmp_path / "server.ini"), base_dir=tmp_path,
    )
    dbs = [Database(parse_database_url(database_url, tmp_path), reactor()) for _ in range(2)]
    await dbs[0].migrate()
    specs = parse_channels(config)
    sets = [make_background_jobs(config, db, reactor(), specs, Counters()) for db in dbs]
    ingest = Store(dbs[0], config.grace, Counters())
    try:
        for jobs in sets:
            for part in jobs.all():
                part.startService()
        now = reactor().seconds()
        server_ids = []
        for h in range(3):
            record, _ = await ingest.register_server(f"web{h}", "hash", "127.0.0.1", now)
            server_ids.append(record.id)
            reports = [Report(f"s{i}", "OK", "fine", 1) for i in range(5)]
            reports.append(Report("db", "FAIL", "down", 3600))
            await ingest.ingest([IngestItem(record.id, "127.0.0.1", now, reports,
                                            [AlertRequest("System restarted")])])
        store = AlertingTables(dbs[0])

        async def all_stale_and_delivered():
            offline = await store.alerts(kind="offline")
            down = await store.alerts(kind="server-offline")
            return len(offline) == 15 and len(down) == 3 and await store.undelivered() == 0

        await until(all_stale_and_delivered, 15, "15 offline alerts, all delivered")
        offline = await store.alerts(kind="offline")
        assert len(offline) == 15, "every service with a 1 s period went stale, once"
        every = {a.id: a for a in await store.alerts()}
        assert Counter(a.kind for a in every.values()) == {
            "offline": 15, "server-offline": 3, "state": 3, "api": 3}
        # SPEC 10.3: the servers stopped pushing: one server-offline each, the offline alerts
        # of their services recorded but held.
        assert {a.held for a in offline} == {"server offline"}
        alerts = {i: a for i, a in every.items() if a.held is None}

        files = sorted((tmp_path / "deliveries").glob("*.json"))
        docs = [json.loads(f.read_text()) for f in files]
        log_ids = Counter(a["id"] for doc in docs for a in doc["alerts"])
        hook_ids = Counter(a["id"] for doc in hook.bodies for a in doc["alerts"])
        assert log_ids == Counter(set(alerts)), "log: every alert once (all are WARN or worse)"
        assert hook_ids == Counter(set(alerts)), "hook: every alert once"
        # storm control: the alerts of one server pending together went out together
        for doc in docs:
            kinds = {a["kind"] for a in doc["alerts"]}
            if kinds == {"state", "api"}:
                assert doc["count"] == 2
        assert len({doc["notification"] for doc in docs}) == len(docs)
        # A dispatcher counts a delivery when its `finish` transaction is back on the reactor;
        # the poll above (another connection) may see that commit a moment earlier.
        await until(lambda: sum(s.dispatcher.counts["sent"] for s in sets)
                    == len(docs) + len(hook.bodies), 5, "every delivery counted as sent")
        assert sum(s.dispatcher.counts["lost"] for s in sets) == 0
        assert all(s.watchdog.status()["ok"] for s in sets)
    finally:
        for jobs in sets:
            for part in jobs.all():
                await defer.maybeDeferred(part.stopService)
        for db in dbs:
            db.close()
        await port.stopListening()
