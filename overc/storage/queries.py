"""The read side of the store: one coroutine per question a page, the API or /metrics asks.

Each is one ``Database.run`` of a ``_txn_*`` function from the ``read_*`` module of its page
(one transaction, so a page never mixes two moments of the database); rows come back as plain
dataclasses, never cursors, and carry no JSON shape (``overc.api`` builds its own).
"""
from __future__ import annotations

from typing import Mapping

from overc.storage.db import Database
from overc.core.alerts import Alert
from overc.storage.read_alerts import AlertFilter, _txn_alerts
from overc.storage import read_metrics
from overc.storage.read_pulse import Pulse, PulseScope, _txn_pulse
from overc.storage.read_servers import (
    EXCERPT,
    OverviewServer,
    ServerRow,
    ServiceRow,
    _txn_overview,
    _txn_server,
    _txn_servers,
    _txn_service,
)
from overc.storage.read_service import (
    RUN_DETAIL,
    PerfSeries,
    StateRow,
    _txn_perfdata_series,
    _txn_recent_states,
    _txn_states,
)


class Queries:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def servers(
        self, after: int = 0, limit: int | None = None, excerpt: int = EXCERPT,
        now: float | None = None,
    ) -> list[ServerRow]:
        """With ``now``, each service's ``held`` reason at that time (else left None)."""
        return await self.db.run(_txn_servers, after, limit, excerpt, now)

    async def server(self, server_id: int, now: float | None = None) -> ServerRow | None:
        return await self.db.run(_txn_server, server_id, now)

    async def service(self, service_id: int, now: float | None = None) -> ServiceRow | None:
        return await self.db.run(_txn_service, service_id, now)

    async def states(
        self, service_id: int, since: float, until: float, limit: int, after_id: int = 0
    ) -> list[StateRow]:
        return await self.db.run(_txn_states, service_id, since, until, limit, after_id)

    async def recent_states(
        self, service_id: int, since: float, limit: int, detail: int = RUN_DETAIL
    ) -> tuple[list[StateRow], StateRow | None]:
        return await self.db.run(_txn_recent_states, service_id, since, limit, detail)

    async def overview(self, excerpt: int = EXCERPT) -> list[OverviewServer]:
        return await self.db.run(_txn_overview, excerpt)

    async def perfdata_series(
        self, service_id: int, since: float, until: float, columns: int
    ) -> list[PerfSeries]:
        return await self.db.run(_txn_perfdata_series, service_id, since, until, columns)

    async def alerts(self, filt: AlertFilter) -> list[Alert]:
        return await self.db.run(_txn_alerts, filt)

    async def pulse(self, scope: PulseScope = PulseScope(), now: float = 0.0) -> Pulse:
        return await self.db.run(_txn_pulse, scope, now)

    async def metrics_changes(self, known: Mapping[int, read_metrics.ServiceRow],
                              perf_ids: Mapping[int, int], since: int | None,
                              rows_since: float | None = None
                              ) -> read_metrics.MetricsChanges:
        """/metrics: every service row, and the perfdata changed since the last build."""
        return await read_metrics.read_metrics_changes(self.db, known, perf_ids, since,
                                                       rows_since)
