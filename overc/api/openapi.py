"""The OpenAPI 3.0 description of OverC's whole HTTP API (push and read), served at
``/api/openapi.json``.

Written as data next to the code it describes; tests validate it with openapi-spec-validator
and check real responses against its schemas, so it cannot drift silently.
"""
from __future__ import annotations

import copy
from functools import lru_cache
from typing import Any



def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERR = _ref("Error")
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
        },
    },
    "Service": {
        "type": "object",
        "required": ["id", "server_id", "server_name", "name", "state", "stale", "acked"],
        "properties": {
            "id": {"type": "integer"},
            "server_id": {"type": "integer"},
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
            "silenced_until": _NUM_OR_NULL,
            "silence_reason": _STR_OR_NULL,
        },
    },
    "Server": {
        "type": "object",
        "required": ["id", "name", "created", "services"],
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "ip": _STR_OR_NULL,
            "created": {"type": "number"},
            "last_seen": _NUM_OR_NULL,
            "silenced_until": _NUM_OR_NULL,
            "silence_reason": _STR_OR_NULL,
            "services": {"type": "array", "items": _ref("Service")},
        },
    },
    "StateReport": {
        "type": "object", "required": ["id", "time", "state", "late"],
        "properties": {
            "id": {"type": "integer"}, "time": {"type": "number"}, "state": _STATE,
            "info": _STR_OR_NULL, "late": {"type": "boolean"},
        },
    },
    "Alert": {
        "type": "object",
        "required": ["id", "server_id", "server_name", "time", "kind", "severity", "message",
                     "delivery"],
        "properties": {
            "id": {"type": "integer"},
            "server_id": {"type": "integer"},
            "server_name": {"type": "string"},
            "service_id": {"type": "integer", "nullable": True},
            "service_name": _STR_OR_NULL,
            "time": {"type": "number"},
            "kind": {"type": "string", "enum": ["state", "offline", "online", "api", "internal"]},
            "severity": _STATE,
            "message": {"type": "string"},
            "state": _STR_OR_NULL,
            "info": _STR_OR_NULL,
            "delivery": {"type": "object", "additionalProperties": {"type": "integer"},
                         "description": "Delivery attempts by status (pending, sent, failed)"},
            "held": {"type": "string", "nullable": True, "enum": ["maintenance", None],
                     "description": "`maintenance`: a maintenance window (or silence) held"
                                    " its notification"},
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
    "Silence": {
        "type": "object",
        "properties": {
            "until": {"oneOf": [{"type": "number"}, {"type": "string"}],
                      "description": "Unix time or ISO 8601 (naive means UTC)"},
            "duration": {"type": "number", "description": "Seconds from now (instead of until)"},
            "reason": {"type": "string", "maxLength": 4096},
        },
    },
}


def _page(item: str) -> dict[str, Any]:
    return {
        "type": "object", "required": ["items", "next"],
        "properties": {
            "items": {"type": "array", "items": _ref(item)},
            "next": {"type": "string", "nullable": True,
                     "description": "Path and query of the next page; null on the last page"},
        },
    }


def _param(name: str, where: str, schema: dict[str, Any], description: str,
           required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": where, "required": required or where == "path",
            "schema": schema, "description": description}


_ID = {"type": "integer", "minimum": 1}
_LIMIT = _param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 1000},
                "Page size")
_SECURE: list[dict[str, list[str]]] = [{"session": []}, {"basic": []}]


def _push(summary: str, body_props: dict[str, Any], required: list[str],
          response: dict[str, Any]) -> dict[str, Any]:
    return {"post": {
        "tags": ["push"], "summary": summary, "security": [],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": required, "properties": body_props}}}},
        "responses": {"200": _json(response, "Accepted and committed"),
                      **_errors(400, 403, 413, 503)},
    }}


def _action(summary: str, body: dict[str, Any] | None, response: dict[str, Any],
            method: str = "post") -> dict[str, Any]:
    op: dict[str, Any] = {
        "tags": ["actions"], "summary": summary, "security": _SECURE,
        "parameters": [_param("id", "path", _ID, "Id")],
        "responses": {"200": _json(response, "Done"), **_errors(400, 401, 403, 404)},
        "description": "With the session cookie, send the `X-CSRF-Token` header (from the page's"
                       " `data-csrf`); bodies must be `application/json`.",
    }
    if body is not None:
        op["requestBody"] = {"required": False,
                             "content": {"application/json": {"schema": body}}}
    return {method: op}


def _merge(*ops: dict[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for op in ops:
        merged.update(op)
    return merged


@lru_cache(maxsize=1)
def _document() -> dict[str, Any]:
    server_param = [_param("id", "path", _ID, "Server id")]
    service_param = [_param("id", "path", _ID, "Service id")]
    get = lambda summary, params, schema: {"get": {  # noqa: E731
        "tags": ["read"], "summary": summary, "security": _SECURE, "parameters": params,
        "responses": {"200": _json(schema, "OK"), **_errors(400, 401, 404)}}}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "OverC HTTP API",
            "version": "2",
            "description": "Push API (agents, key-authenticated) and read API (scripts: session"
                           " cookie or HTTP Basic with a `[ui] users` account). Times are Unix"
                           " seconds, UTC.",
        },
        "paths": {
            "/api/ping": _push("Check connectivity and the key; registers a new server",
                               {"server": _ref("ServerIdentity")}, ["server"],
                               {"type": "object", "required": ["pong"],
                                "properties": {"pong": {"type": "integer", "enum": [1]}}}),
            "/api/set/service/status": _push(
                "Report service states",
                {"server": _ref("ServerIdentity"), "period": _ref("Period"),
                 "services": {"type": "array", "maxItems": 1000, "items": _ref("Report")}},
                ["server", "period"], _ok()),
            "/api/set/alerts": _push(
                "Raise alerts (kind api, severity FAIL)",
                {"server": _ref("ServerIdentity"),
                 "alerts": {"type": "array", "items": {
                     "type": "object", "required": ["message"],
                     "properties": {"message": {"type": "string", "minLength": 1,
                                                "maxLength": 65536},
                                    "service": {"type": "string"},
                                    "title": {"type": "string"}}}}},
                ["server", "alerts"], _ok()),
            "/api/set/maintenance": _push(
                "Announce maintenance of this server (notifications held), or end it",
                {"server": _ref("ServerIdentity"), "duration": _DURATION,
                 "reason": {"type": "string", "maxLength": 4096},
                 "services": {"type": "array", "items": {"type": "string"},
                              "description": "Only these services (default: all)"},
                 "start": {"type": "number", "description": "Unix time; default now"},
                 "end": {"type": "boolean", "enum": [True],
                         "description": "End the windows this server announced, now"}},
                ["server"], _ok({"id": {"type": "integer"}, "ended": {"type": "integer"}})),
            "/api/maintenance": {
                **get("Maintenance windows running, coming and ended in the last hour",
                      [_param("server", "query", _ID, "Only windows over this server id")],
                      {"type": "object", "required": ["items"],
                       "properties": {"items": {"type": "array", "items": _ref("Window")}}}),
                "post": {**_action("Create a maintenance window", _ref("NewWindow"),
                                   _ok({"id": {"type": "integer"}}))["post"],
                         "parameters": [], "tags": ["maintenance"]},
            },
            "/api/maintenance/{id}": _action(
                "End a running window now (or drop one not begun, or a recurring one);"
                " config windows answer 400", None, _ok(), "delete"),
            "/api/servers": get(
                "Servers with their services, by id",
                [_LIMIT, _param("after", "query", {"type": "integer", "minimum": 0},
                                "Only servers with a larger id (pagination)")],
                _page("Server")),
            "/api/servers/{id}": _merge(
                get("One server with its services", server_param, _ref("Server")),
                _action("Delete a server and everything it reported", None, _ok(),
                        "delete")),
            "/api/services/{id}": _merge(
                get("One service", service_param, _ref("Service")),
                _action("Delete a service and its history", None, _ok(), "delete")),
            "/api/services/{id}/states": get(
                "State history, oldest first",
                service_param + [
                    _param("since", "query", {"type": "string"},
                           "Unix time or ISO 8601; default until - 24 h"),
                    _param("until", "query", {"type": "string"},
                           "Unix time or ISO 8601; default now"),
                    _param("limit", "query", {"type": "integer", "minimum": 1,
                                              "maximum": 10000}, "Page size (default 1000)"),
                    _param("after", "query", {"type": "integer", "minimum": 0},
                           "Skip reports at `since` with this id or lower (pagination)"),
                ],
                _page("StateReport")),
            "/api/alerts": get(
                "Alerts, newest first",
                [_param("server", "query", {"type": "string"}, "Server id or name"),
                 _param("service", "query", {"type": "string"}, "Service id or name"),
                 _param("since", "query", {"type": "string"}, "Unix time or ISO 8601"),
                 _param("kind", "query", {"type": "string"}, "Alert kind"),
                 _param("severity", "query", {"type": "string"}, "Severity"),
                 _param("before", "query", {"type": "integer", "minimum": 1},
                        "Only alerts with a smaller id (pagination)"),
                 _LIMIT],
                _page("Alert")),
            "/api/services/{id}/ack": _merge(
                _action("Acknowledge a problem", {"type": "object", "properties": {
                    "comment": {"type": "string", "maxLength": 4096}}}, _ok()),
                _action("Remove the acknowledgement", None, _ok(), "delete")),
            "/api/services/{id}/silence": _merge(
                _action("Silence a service", _ref("Silence"),
                        _ok({"silenced_until": {"type": "number"}})),
                _action("End a service's silence", None, _ok(), "delete")),
            "/api/servers/{id}/silence": _merge(
                _action("Silence a server", _ref("Silence"),
                        _ok({"silenced_until": {"type": "number"}})),
                _action("End a server's silence", None, _ok(), "delete")),
            "/api/servers/{id}/reset-key": _action(
                "Give a server a new key (random unless given); returned once",
                {"type": "object", "properties": {
                    "key": {"type": "string", "minLength": 1, "maxLength": 128}}},
                _ok({"key": {"type": "string"}})),
            "/api/openapi.json": {"get": {
                "tags": ["read"], "summary": "This document", "security": [],
                "responses": {"200": {"description": "OpenAPI 3 document",
                                      "content": {"application/json": {
                                          "schema": {"type": "object"}}}}}}},
        },
        "components": {
            "schemas": _SCHEMAS,
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": "overc_session"},
                "basic": {"type": "http", "scheme": "basic"},
            },
        },
    }


def openapi_document() -> dict[str, Any]:
    """A fresh copy (callers may mutate it, e.g. to add ``servers``)."""
    return copy.deepcopy(_document())
