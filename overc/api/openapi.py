"""The OpenAPI 3.0 description of OverC's whole HTTP API (push and read), served at
``/api/openapi.json``.

Written as data next to the code it describes; tests validate it with openapi-spec-validator
and check real responses against its schemas, so it cannot drift silently.
"""
from __future__ import annotations

import copy
from functools import lru_cache
from typing import Any

from overc.api.openapi_parts import (_DURATION, _INT64_ID, _SCHEMAS, _TIME, _TIME_TEXT, _errors,
                                     _json, _ok, _ref)
from overc.web.numbers import INT64_MAX


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
            "/api/set/service/start": _push(
                "Start runs: a report must follow within timeout + grace",
                {"server": _ref("ServerIdentity"),
                 "services": {"type": "array", "maxItems": 1000, "items": _ref("RunStart")}},
                ["server", "services"], _ok()),
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
                _action("Acknowledge a problem", _ref("Ack"), _ok()),
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
