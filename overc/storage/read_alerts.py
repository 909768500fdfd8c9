"""The alert list as the alerts page, the server and service pages and the read API see it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from overc.core.alerts import Alert, ChannelDelivery
from overc.storage.db import Cursor


@dataclass(frozen=True)
class AlertFilter:
    server_id: int | None = None
    service_id: int | None = None
    server_name: str | None = None
    service_name: str | None = None
    kind: str | None = None
    severity: str | None = None
    since: float | None = None
    before_id: int | None = None
    limit: int = 100


def _txn_alerts(cursor: Cursor, filt: AlertFilter) -> list[Alert]:
    """Newest alerts first, keyset-paginated on id, with their delivery counts."""
    where: list[str] = ["1 = 1"]
    params: list[Any] = []
    for column, value in (
        ("a.server_id", filt.server_id), ("a.service_id", filt.service_id),
        ("v.name", filt.server_name), ("s.name", filt.service_name),
        ("a.kind", filt.kind), ("a.severity", filt.severity),
    ):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if filt.since is not None:
        where.append("a.time >= ?")
        params.append(filt.since)
    if filt.before_id is not None:
        where.append("a.id < ?")
        params.append(filt.before_id)
    params.append(filt.limit)
    rows = cursor.execute(
        "SELECT a.id, a.server_id, v.name, a.service_id, s.name, a.time, a.kind, a.severity,"
        " a.message, a.state, a.info, a.held, a.maintenance_id FROM alerts a JOIN servers v ON v.id = a.server_id"
        " LEFT JOIN services s ON s.id = a.service_id"
        f" WHERE {' AND '.join(where)} ORDER BY a.id DESC LIMIT ?",
        params,
    ).fetchall()
    # Deliveries first: the alert model is immutable once built. One query for the page gives
    # both the counts per status and the latest notification per channel.
    delivery: dict[int, dict[str, int]] = {row[0]: {} for row in rows}
    latest: dict[int, dict[str, tuple[int, ChannelDelivery]]] = {row[0]: {} for row in rows}
    if delivery:
        ids = list(delivery)
        marks = ", ".join("?" for _ in ids)
        for alert_id, notification_id, channel, status, attempts, last_error in cursor.execute(
            "SELECT na.alert_id, n.id, n.channel, n.status, n.attempts, n.last_error"
            " FROM notification_alerts na JOIN notifications n ON n.id = na.notification_id"
            f" WHERE na.alert_id IN ({marks})",
            ids,
        ).fetchall():
            counts = delivery[alert_id]
            counts[str(status)] = counts.get(str(status), 0) + 1
            seen = latest[alert_id].get(str(channel))
            if seen is None or seen[0] < notification_id:
                latest[alert_id][str(channel)] = (notification_id, ChannelDelivery(
                    str(channel), str(status), int(attempts),
                    None if last_error is None else str(last_error)))
    return [
        Alert(id=alert_id, server_id=server_id, server_name=server_name,
              service_id=service_id, service_name=service_name, time=time, kind=kind,
              severity=severity, message=message, state=state, info=info,
              delivery=delivery[alert_id],
              held=held or (None if maintenance_id is None else "maintenance"),
              deliveries=tuple(d for _, (_, d) in sorted(latest[alert_id].items())))
        for (alert_id, server_id, server_name, service_id, service_name, time, kind, severity,
             message, state, info, held, maintenance_id) in rows
    ]
