"""Building blocks of the OpenAPI document (:mod:`overc.api.openapi`): the shared schema
fragments, error answers and the component schemas, kept apart from the paths that use them.
"""
from __future__ import annotations

from typing import Any

from overc.web.control import MAX_SILENCE
from overc.web.numbers import INT64_MAX, MAX_TIME

def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERR = _ref("Error")
#: An id as stored: a positive 64-bit integer.
_INT64_ID = {"type": "integer", "format": "int64", "minimum": 1, "maximum": INT64_MAX}
_INT64_ID_OR_NULL = {**_INT64_ID, "nullable": True}
_TIME = {"type": "number", "minimum": 0, "maximum": MAX_TIME}
_TIME_TEXT = {"type": "string", "minLength": 1, "maxLength": 64,
              "description": "Unix seconds (e.g. 1700000000.5) or ISO 8601 (e.g. 2030-01-31T18:00Z;"
                             " naive means UTC), from 1970 to 9999"}
_NUM_OR_NULL = {"type": "number", "nullable": True}
_STR_OR_NULL = {"type": "string", "nullable": True}
_STATE = {"type": "string", "enum": ["OK", "WARN", "FAIL", "UNK"]}
_ID_OR_TEXT = {"oneOf": [{"type": "integer", "minimum": 1}, {"type": "string"}]}
_NAMES = {"oneOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string"}],
          "description": "Names or globs: a list, or comma-separated"}
_DURATION = {"oneOf": [{"type": "number", "exclusiveMinimum": True, "minimum": 0},
                       {"type": "string"}],
             "description": "Seconds, or text like `30m`, `2h` (at most a year)"}


def _errors(*codes: int) -> dict[str, Any]:
    text = {
        400: "Invalid input; `field` names the offending field",
        401: "Not logged in (session cookie or HTTP Basic)",
        403: "Refused",
        404: "No such server, service or path",
        405: "Wrong method for this path",
        408: "The request did not arrive within `request-timeout`",
        413: "Body larger than 1 MiB",
        503: "Database unreachable; retry after `Retry-After` seconds",
    }
    return {str(c): _json(_ERR, text[c]) for c in codes}


def _ok(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    props: dict[str, Any] = {"ok": {"type": "integer", "enum": [1]}}
    props.update(extra or {})
    return {"type": "object", "required": ["ok"], "properties": props}


_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object", "required": ["error"],
        "properties": {"error": {"type": "string"}, "field": {"type": "string"}},
    },
    "ServerIdentity": {
        "type": "object", "required": ["name", "key"],
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 64},
            "key": {"type": "string", "minLength": 1, "maxLength": 128},
        },
    },
    "Period": {
        "description": "Seconds, 1 to 31,536,000; a number is truncated, a numeric string is read",
        "oneOf": [{"type": "number"}, {"type": "string", "pattern": r"^\s*[0-9.]+\s*$"}],
    },
    "Report": {
        "type": "object", "required": ["name", "state"],
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 64},
            "state": {"type": "string", "description":
                      "OK, WARN, FAIL, UNK (also ERR, CRIT, CRITICAL, WARNING, UNKNOWN; any case)"},
            "info": {"type": "string", "maxLength": 65536,
                     "description": "Plugin output; Nagios perfdata after `|` is parsed"},
            "period": _ref("Period"),
            "time": {"type": "number", "description": "Unix time the check ran (late results)"},
            "schedule": {"type": "string", "maxLength": 100, "example": "0 3 * * *",
                         "description": "Cron expression (5 fields, `L`, `#`): the deadline is"
                                        " the next scheduled time after the report plus grace"},
            "tz": {"type": "string", "example": "Europe/Berlin",
                   "description": "IANA zone of `schedule` (default UTC)"},
            "grace": {"type": "number", "minimum": 0, "maximum": 31536000,
                      "description": "Seconds of slack, instead of the config's grace"},
            "duration": {"type": "number", "minimum": 0, "maximum": 31536000,
                         "description": "How long the run took, in seconds"},
            "attempts": {"type": "integer", "minimum": 1, "maximum": 100, "description":
                         "Problem reports in a row before a problem is hard (SPEC 10.1)"},
            "flapping": {"type": "string", "pattern": r"^\s*([0-9.]+/[0-9.]+|[oO][fF][fF])\s*$",
                         "description": 'Flapping thresholds "high/low" percent, or "off"'},
            "depends_on": {"type": "string", "minLength": 1, "maxLength": 64,
                           "description": "The service of the same server this one needs"},
        },
    },
    "RunStart": {
        "type": "object", "required": ["name", "timeout"],
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 64},
            "timeout": {"type": "integer", "minimum": 1, "maximum": 31536000,
                        "description": "Longest the run may take; then a `timeout` alert"},
            "time": {"type": "number", "description": "Unix time the run started"},
        },
    },
    "Service": {
        "type": "object",
        "required": ["id", "server_id", "server_name", "name", "state", "stale", "acked",
                     "held"],
        "properties": {
            "id": _INT64_ID,
            "server_id": _INT64_ID,
            "server_name": {"type": "string"},
            "name": {"type": "string"},
            "state": {**_STATE, "nullable": True},
            "info": _STR_OR_NULL,
            "period": {"type": "integer", "nullable": True},
            "last_time": _NUM_OR_NULL,
            "deadline": _NUM_OR_NULL,
            "stale": {"type": "boolean"},
            "acked": {"type": "boolean"},
            "ack_comment": _STR_OR_NULL,
            "ack_sticky": {"type": "boolean", "description":
                           "The acknowledgement lasts until the service is OK again"},
            "ack_expires": {**_NUM_OR_NULL, "description":
                            "Unix time the acknowledgement ends by itself (null: it does not)"},
            "silenced_until": _NUM_OR_NULL,
            "silence_reason": _STR_OR_NULL,
            "schedule": {**_STR_OR_NULL, "description": "Cron expression, or null"},
            "tz": {**_STR_OR_NULL, "description": "Zone of the schedule"},
            "grace": {**_NUM_OR_NULL, "description": "The latest report's own grace (s)"},
            "run_started": {**_NUM_OR_NULL,
                            "description": "Start of the run in progress (null: not running)"},
            "run_timeout": {"type": "integer", "nullable": True},
            "run_late": {"type": "boolean", "description": "The run exceeded its timeout"},
            "duration": {**_NUM_OR_NULL, "description": "The latest run's duration (s)"},
            "attempts": {"type": "integer", "description": "Effective attempts (SPEC 10.1)"},
            "flapping_thresholds": {"type": "string",
                                    "description": 'Effective "high/low" percent, or "off"'},
            "depends_on": _STR_OR_NULL,
            "settings_source": {
                "type": "object", "additionalProperties": {"type": "string"},
                "description": 'Where attempts, flapping and depends_on came from: "report",'
                               ' "policy:<name>" or "default"'},
            "soft_state": {"type": "string", "enum": ["WARN", "FAIL", "UNK", None],
                           "nullable": True, "description":
                           "A problem not yet hard (`state` is still the hard state)"},
            "soft_count": {"type": "integer", "description": "Its reports in a row so far"},
            "flapping": {"type": "boolean"},
            "flapping_percent": {"type": "number", "description":
                                 "Weighted state changes over the last 21 reports (SPEC 10.2)"},
            "server_offline": {"type": "boolean", "description":
                               "Its server is offline (SPEC 10.3; the server's `offline`)"},
            "held": {"type": "string", "nullable": True, "example": "soft 2/3",
                     "description": "Why a problem of this service would not be notified now"
                                    " (null: it would be). The first that applies of:"
                                    " `maintenance` (a running window or silence covers it),"
                                    " `server offline` (its server stopped pushing),"
                                    " `depends on <parent>` (its parent is in a hard problem"
                                    " or stale), `flapping`, `soft <n>/<attempts>` (a problem"
                                    " not yet hard), `acknowledged` (in a problem someone"
                                    " acknowledged: repeats and escalations wait)"},
        },
    },
    "Server": {
        "type": "object",
        "required": ["id", "name", "created", "services"],
        "properties": {
            "id": _INT64_ID,
            "name": {"type": "string"},
            "ip": _STR_OR_NULL,
            "created": {"type": "number"},
            "last_seen": _NUM_OR_NULL,
            "silenced_until": _NUM_OR_NULL,
            "silence_reason": _STR_OR_NULL,
            "offline": {"type": "boolean",
                        "description": "The server's deadline passed without any push"
                                       " (SPEC 10.3): its services' offline alerts are held"},
            "deadline": {**_NUM_OR_NULL,
                         "description": "While online: last sign of life + shortest period"
                                        " + grace; null when no service states a period or"
                                        " while offline"},
            "services": {"type": "array", "items": _ref("Service")},
        },
    },
    "StateReport": {
        "type": "object", "required": ["id", "time", "state", "late"],
        "properties": {
            "id": _INT64_ID, "time": {"type": "number"}, "state": _STATE,
            "info": _STR_OR_NULL, "late": {"type": "boolean"},
            "duration": {**_NUM_OR_NULL, "description": "How long the run took (s)"},
        },
    },
    "Alert": {
        "type": "object",
        "required": ["id", "server_id", "server_name", "time", "kind", "severity", "message",
                     "delivery", "deliveries"],
        "properties": {
            "id": _INT64_ID,
            "server_id": _INT64_ID,
            "server_name": {"type": "string"},
            "service_id": _INT64_ID_OR_NULL,
            "service_name": _STR_OR_NULL,
            "time": {"type": "number"},
            "kind": {"type": "string", "enum": ["state", "offline", "online", "api", "internal",
                                                "timeout", "flapping", "flapping-end",
                                                "server-offline", "server-online"]},
            "severity": _STATE,
            "message": {"type": "string"},
            "state": _STR_OR_NULL,
            "info": _STR_OR_NULL,
            "delivery": {"type": "object", "additionalProperties": {"type": "integer"},
                         "description": "The alert's notifications counted by status"
                                        " (pending, sending, sent, failed, dropped)"},
            "deliveries": {"type": "array", "items": _ref("ChannelDelivery"),
                           "description": "The latest notification of the alert per channel,"
                                          " by channel name"},
            "held": {"type": "string", "nullable": True, "maxLength": 63,
                     "example": "depends on mysql",
                     "description": "Why the alert was not notified as usual (null: it was)."
                                    " `maintenance`: a maintenance window (or silence) held"
                                    " its notification until its end; `flapping`: recorded"
                                    " but not notified while the service flaps;"
                                    " `server offline`: a service's offline alert while its"
                                    " whole server was offline (one server-offline alert was"
                                    " notified instead); `depends on <parent>`: recorded but"
                                    " not notified while the service's parent (`depends_on`)"
                                    " was in a hard problem or stale (what is still wrong is"
                                    " notified once the parent is back); `acknowledged`: a"
                                    " change between problem states under a sticky"
                                    " acknowledgement"},
        },
    },
    "ChannelDelivery": {
        "type": "object", "required": ["channel", "status", "attempts", "last_error"],
        "properties": {
            "channel": {"type": "string", "description": "The [alert:NAME] channel"},
            "status": {"type": "string",
                       "enum": ["pending", "sending", "sent", "failed", "dropped"],
                       "description": "pending: waiting for its next attempt; sending: being"
                                      " delivered; sent; failed: for good; dropped: its alerts"
                                      " were deleted first"},
            "attempts": {"type": "integer", "minimum": 0},
            "last_error": {"type": "string", "nullable": True,
                           "description": "The error of the last failed attempt (null once"
                                          " sent)"},
        },
    },
    "Window": {
        "type": "object", "required": ["id", "source", "active", "next"],
        "description": "A maintenance window (SPEC 11): one-off (`start`/`end`) or recurring"
                       " (`schedule` in `tz`, for `duration` s); scope `server_id` (with"
                       " `service_id` or `services`) or the globs `servers`/`services`",
        "properties": {
            "id": {"type": "integer"},
            "source": {"type": "string", "enum": ["push", "ui", "api", "config", "silence"]},
            "name": {**_STR_OR_NULL, "description": "The config section's name"},
            "server_id": {"type": "integer", "nullable": True},
            "server_name": _STR_OR_NULL,
            "service_id": {"type": "integer", "nullable": True},
            "service_name": _STR_OR_NULL,
            "servers": {"type": "array", "items": {"type": "string"}},
            "services": {"type": "array", "items": {"type": "string"}},
            "start": _NUM_OR_NULL, "end": _NUM_OR_NULL,
            "schedule": _STR_OR_NULL, "tz": _STR_OR_NULL, "duration": _NUM_OR_NULL,
            "reason": {"type": "string"}, "created_by": _STR_OR_NULL,
            "created": {"type": "number"},
            "active": {"type": "boolean", "description": "Running now"},
            "next": {"type": "object", "nullable": True,
                     "description": "The running or next occurrence; null when over",
                     "properties": {"start": {"type": "number"}, "end": {"type": "number"}}},
        },
    },
    "NewWindow": {
        "type": "object",
        "properties": {
            "server_id": _ID_OR_TEXT, "service_id": _ID_OR_TEXT,
            "servers": _NAMES, "services": _NAMES,
            "start": {"type": "number", "description": "Unix time; default now"},
            "end": {"type": "number", "description": "Unix time (or give duration)"},
            "duration": _DURATION,
            "schedule": {"type": "string", "description": "Cron (`0 2 * * sun`): recurring"},
            "tz": {"type": "string", "description": "Zone of the schedule; default UTC"},
            "reason": {"type": "string", "maxLength": 4096},
        },
    },
    "Ack": {
        "type": "object",
        "description": "An acknowledgement stops repeats and escalations (SPEC 10.5). It ends"
                       " at the service's next state change, unless `sticky`; and at `expires`",
        "properties": {
            "comment": {"type": "string", "maxLength": 4096},
            "sticky": {"type": "boolean", "nullable": True,
                       "description": "Last over changes between problem states (WARN ->"
                                      " FAIL, whose notification it holds) until OK"},
            "expires": {"oneOf": [_TIME, _TIME_TEXT], "nullable": True,
                        "description": "When it ends by itself (Unix time or ISO 8601, naive"
                                       " means UTC; in the future, within a year); then"
                                       " repeats and escalations resume"},
        },
    },
    "Silence": {
        "type": "object",
        "description": "Give `until` or `duration`; the silence ends in the future, within a"
                       " year",
        "properties": {
            "until": {"oneOf": [_TIME, _TIME_TEXT], "nullable": True,
                      "description": "Unix time or ISO 8601 (naive means UTC)"},
            "duration": {"type": "number", "exclusiveMinimum": True, "minimum": 0,
                         "maximum": MAX_SILENCE, "nullable": True,
                         "description": "Seconds from now (instead of until)"},
            "reason": {"type": "string", "maxLength": 4096},
        },
    },
}
