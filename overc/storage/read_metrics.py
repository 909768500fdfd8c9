"""What ``/metrics`` exposes from the database: every service and its latest perfdata."""
from __future__ import annotations

from dataclasses import dataclass

from overc.storage.db import Cursor
from overc.storage.read_servers import SERVICE_COLUMNS, ServiceRow, service_row

#: ``(service id, label, value, unit)`` of one perfdata value.
LatestValue = tuple[int, str, float, str | None]


@dataclass
class MetricsSnapshot:
    services: list[ServiceRow]
    perfdata: list[LatestValue]


def _txn_metrics(cursor: Cursor) -> MetricsSnapshot:
    """Every service, and the perfdata of its latest report.

    Ingest writes a report's perfdata with the report's time, which becomes the service's
    ``last_time``: so the join on ``perfdata.time = services.last_time`` finds exactly the
    newest values, one index seek (``perfdata_time``) per service, whatever the history length.
    A metric the plugin stopped reporting disappears with its next report instead of freezing.
    """
    columns = SERVICE_COLUMNS.format(info="NULL")
    services = [
        service_row(r)
        for r in cursor.execute(
            f"SELECT {columns} FROM services s JOIN servers v ON v.id = s.server_id"
            " ORDER BY v.name, s.name"
        ).fetchall()
    ]
    latest: dict[tuple[int, str], LatestValue] = {}
    # "+p.service_id": the seek must be on perfdata_time (a few rows per timestamp), never on
    # perfdata_service_label_time (every row of the service); MySQL reads it as p.service_id.
    for service_id, label, value, uom in cursor.execute(
        f"SELECT p.service_id, p.label, p.value, p.uom FROM services s"
        f" {cursor.dialect.join_in_written_order} perfdata p"
        " ON p.time = s.last_time AND +p.service_id = s.id ORDER BY p.id"
    ).fetchall():
        latest[(service_id, label)] = (service_id, label, value, uom)
    return MetricsSnapshot(services=services, perfdata=list(latest.values()))
