"""The OpenAPI 3.0 description of OverC's whole HTTP API (push and read), served at
``/api/openapi.json``.

Written as data next to the code it describes; tests validate it with openapi-spec-validator
and check real responses against its schemas, so it cannot drift silently.
"""
from __future__ import annotations

import copy
from functools import lru_cache
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
            "attempts": {"type": "integer", "minimum": 1, "maximum": 100, "description":
                         "Problem reports in a row before a problem is hard (SPEC 10.1)"},
            "flapping": {"type": "string", "pattern": r"^\s*([0-9.]+/[0-9.]+|[oO][fF][fF])\s*$",
                         "description": 'Flapping thresholds "high/low" percent, or "off"'},
            "depends_on": {"type": "string", "minLength": 1, "maxLength": 64,
                           "description": "The service of the same server this one needs"},
        },
    },
    "Service": {
        "type": "object",
        "required": ["id", "server_id", "server_name", "name", "state", "stale", "acked"],
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
            "silenced_until": _NUM_OR_NULL,
            "silence_reason": _STR_OR_NULL,
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
            "services": {"type": "array", "items": _ref("Service")},
        },
    },
    "StateReport": {
        "type": "object", "required": ["id", "time", "state", "late"],
        "properties": {
            "id": _INT64_ID, "time": {"type": "number"}, "state": _STATE,
            "info": _STR_OR_NULL, "late": {"type": "boolean"},
        },
    },
    "Alert": {
        "type": "object",
        "required": ["id", "server_id", "server_name", "time", "kind", "severity", "message",
                     "delivery"],
        "properties": {
            "id": _INT64_ID,
            "server_id": _INT64_ID,
            "server_name": {"type": "string"},
            "service_id": _INT64_ID_OR_NULL,
            "service_name": _STR_OR_NULL,
            "time": {"type": "number"},
            "kind": {"type": "string", "enum": ["state", "offline", "online", "api", "internal",
                                                "flapping", "flapping-end"]},
            "severity": _STATE,
            "message": {"type": "string"},
            "state": _STR_OR_NULL,
            "info": _STR_OR_NULL,
            "delivery": {"type": "object", "additionalProperties": {"type": "integer"},
                         "description": "Delivery attempts by status (pending, sent, failed)"},
            "held": {**_STR_OR_NULL, "description":
                     "Recorded but not notified, and why (`flapping`)"},
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


_ID = _INT64_ID
_LIMIT = _param("limit", "query", {"type": "integer", "format": "int64", "minimum": 1,
                                   "maximum": 1000}, "Page size")
#: Every answer a read or an action may give besides 200.
_READ_ERRORS = (400, 401, 404, 408, 413, 503)
_ACTION_ERRORS = (400, 401, 403, 404, 408, 413, 503)
_SECURE: list[dict[str, list[str]]] = [{"session": []}, {"basic": []}]


def _push(summary: str, body_props: dict[str, Any], required: list[str],
          response: dict[str, Any]) -> dict[str, Any]:
    return {"post": {
        "tags": ["push"], "summary": summary, "security": [],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": required, "properties": body_props}}}},
        "responses": {"200": _json(response, "Accepted and committed"),
                      **_errors(400, 403, 408, 413, 503)},
    }}


def _action(summary: str, body: dict[str, Any] | None, response: dict[str, Any],
            method: str = "post") -> dict[str, Any]:
    op: dict[str, Any] = {
        "tags": ["actions"], "summary": summary, "security": _SECURE,
        "parameters": [_param("id", "path", _ID, "Id")],
        "responses": {"200": _json(response, "Done"), **_errors(*_ACTION_ERRORS)},
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
        "responses": {"200": _json(schema, "OK"), **_errors(*_READ_ERRORS)}}}
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
            "/api/servers": get(
                "Servers with their services, by id",
                [_LIMIT, _param("after", "query", {"type": "integer", "format": "int64",
                                                   "minimum": 0, "maximum": INT64_MAX},
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
                    _param("since", "query", _TIME_TEXT,
                           "Unix time or ISO 8601; default until - 24 h"),
                    _param("until", "query", _TIME_TEXT,
                           "Unix time or ISO 8601; default now"),
                    _param("limit", "query", {"type": "integer", "format": "int64",
                                              "minimum": 1, "maximum": 10000},
                           "Page size (default 1000)"),
                    _param("after", "query", {"type": "integer", "format": "int64",
                                              "minimum": 0, "maximum": INT64_MAX},
                           "Skip reports at `since` with this id or lower (pagination)"),
                ],
                _page("StateReport")),
            "/api/alerts": get(
                "Alerts, newest first",
                [_param("server", "query", {"type": "string"},
                        "Server id, or name (digits that cannot be an id are a name)"),
                 _param("service", "query", {"type": "string"}, "Service id or name"),
                 _param("since", "query", _TIME_TEXT, "Unix time or ISO 8601"),
                 _param("kind", "query", {"type": "string"}, "Alert kind"),
                 _param("severity", "query", {"type": "string"}, "Severity"),
                 _param("before", "query", {"type": "integer", "format": "int64",
                                            "minimum": 1, "maximum": INT64_MAX},
                        "Only alerts with a smaller id (pagination)"),
                 _LIMIT],
                _page("Alert")),
            "/api/services/{id}/ack": _merge(
                _action("Acknowledge a problem", {"type": "object", "properties": {
                    "comment": {"type": "string", "maxLength": 4096}}}, _ok()),
                _action("Remove the acknowledgement", None, _ok(), "delete")),
            "/api/services/{id}/silence": _merge(
                _action("Silence a service", _ref("Silence"),
                        _ok({"silenced_until": _TIME})),
                _action("End a service's silence", None, _ok(), "delete")),
            "/api/servers/{id}/silence": _merge(
                _action("Silence a server", _ref("Silence"),
                        _ok({"silenced_until": _TIME})),
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
