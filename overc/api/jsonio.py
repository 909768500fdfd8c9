"""JSON responses, the same way everywhere in the API (errors included)."""
from __future__ import annotations

import json
from typing import Any

from twisted.web.iweb import IRequest

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def json_body(request: IRequest, value: Any, status: int = 200) -> bytes:
    """Set status and headers for a JSON answer and return its bytes."""
    request.setResponseCode(status)
    request.setHeader(b"Content-Type", b"application/json; charset=utf-8")
    request.setHeader(b"Cache-Control", b"no-store")
    return _encoder.encode(value).encode("utf-8")


def json_error(request: IRequest, status: int, message: str, field: str | None = None) -> bytes:
    body = {"error": message}
    if field is not None:
        body["field"] = field
    return json_body(request, body, status)
