"""The JSON shape of each row the read API returns (SPEC 6), kept out of storage.

Hand-written dicts, not ``dataclasses.asdict``: that deep-copies every field and cost most of
``/api/servers``.
"""
from __future__ import annotations

from typing import Any

from overc.core.alerts import Alert
from overc.core.maintenance import Window
from overc.storage.read_servers import ServerRow, ServiceRow
from overc.storage.read_service import StateRow


def service_json(s: ServiceRow) -> dict[str, Any]:
    return {
        "id": s.id, "server_id": s.server_id, "name": s.name, "state": s.state,
        "info": s.info, "period": s.period, "last_time": s.last_time,
        "deadline": s.deadline, "stale": s.stale, "acked": s.acked,
        "ack_comment": s.ack_comment, "ack_sticky": s.ack_sticky,
        "ack_expires": s.ack_expires, "silenced_until": s.silenced_until,
        "silence_reason": s.silence_reason, "server_name": s.server_name,
        "schedule": s.schedule, "tz": s.tz, "grace": s.grace,
        "run_started": s.run_started,
        "run_timeout": s.run_timeout, "run_late": s.run_late, "duration": s.duration,
        "attempts": s.attempts, "flapping_thresholds": s.flapping_thresholds,
        "depends_on": s.depends_on, "settings_source": dict(s.settings_source),
        "soft_state": s.soft_state, "soft_count": s.soft_count, "flapping": s.flapping,
        "flapping_percent": s.flapping_percent, "server_offline": s.server_offline,
        "held": s.held,
    }


def server_json(s: ServerRow) -> dict[str, Any]:
    return {
        "id": s.id, "name": s.name, "ip": s.ip, "created": s.created,
        "last_seen": s.last_seen, "silenced_until": s.silenced_until,
        "silence_reason": s.silence_reason,
        "offline": s.offline, "deadline": s.deadline,
        "services": [service_json(one) for one in s.services],
    }


def state_json(r: StateRow) -> dict[str, Any]:
    return {"id": r.id, "time": r.time, "state": r.state, "info": r.info, "late": r.late,
            "duration": r.duration}


def alert_json(a: Alert) -> dict[str, Any]:
    return {
        "id": a.id, "server_id": a.server_id, "server_name": a.server_name,
        "service_id": a.service_id, "service_name": a.service_name,
        "time": a.time, "kind": a.kind, "severity": a.severity,
        "message": a.message, "state": a.state, "info": a.info,
        "delivery": dict(a.delivery), "held": a.held,
        "deliveries": [
            {"channel": d.channel, "status": d.status, "attempts": d.attempts,
             "last_error": d.last_error}
            for d in a.deliveries
        ],
    }


def window_json(w: Window, now: float) -> dict[str, Any]:
    """A maintenance window; ``active`` and ``next`` (the running or next occurrence) at now."""
    current = w.current_or_next(now)
    return {
        "id": w.id, "source": w.source, "name": w.name, "server_id": w.server_id,
        "server_name": w.server_name, "service_id": w.service_id,
        "service_name": w.service_name, "servers": list(w.servers),
        "services": list(w.services), "start": w.start, "end": w.end,
        "schedule": w.schedule, "tz": w.tz if w.schedule else None, "duration": w.duration,
        "reason": w.reason, "created_by": w.created_by, "created": w.created,
        "active": w.active(now),
        "next": None if current is None else {"start": current[0], "end": current[1]},
    }
