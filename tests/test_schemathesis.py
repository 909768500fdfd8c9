"""Schemathesis against /api/openapi.json on a real server: no 5xx, and every answer (status,
content type, body) is what the document says. With and without login, a bounded number of
examples per operation (valid and invalid input), well under a minute in all."""
from __future__ import annotations

import base64

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.checks import not_a_server_error

from overc.core.passwords import hash_secret
from realserver import running_server

PASSWORD = "correct horse"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
EXAMPLES = {GenerationMode.POSITIVE: 30, GenerationMode.NEGATIVE: 12}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    config = f"[ui]\nusers = admin:{hash_secret(PASSWORD, 1000)}\n"
    with running_server(tmp_path_factory.mktemp("schemathesis"), config_text=config) as real:
        # Something to read: a server with a service and an alert.
        real.post("api/set/service/status", {"server": {"name": "web1", "key": "k"},
                                             "period": 60,
                                             "services": [{"name": "disk", "state": "FAIL"}]})
        yield real


def basic() -> dict[str, str]:
    token = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.mark.slow
@pytest.mark.parametrize("logged_in", [True, False], ids=["login", "no-login"])
def test_the_api_keeps_to_its_openapi_document(server, logged_in):
    schema = schemathesis.openapi.from_url(server.url + "api/openapi.json")
    headers = basic() if logged_in else {}
    base_url = server.url.rstrip("/")
    seen: dict[str, set[int]] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 17
    for operation in operations:
        for mode, examples in EXAMPLES.items():
            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                      phases=[Phase.explicit, Phase.generate],
                      suppress_health_check=list(HealthCheck))
            def run(case) -> None:
                # Generated credentials would be wrong ones: each costs a throttled failure
                # (1, 2 ... 16 s), so send none (401) or the right ones.
                case.headers = {k: v for k, v in (case.headers or {}).items()
                                if k.lower() != "authorization"}
                case.headers.update(headers)
                case.cookies = {}
                response = case.call(base_url=base_url, timeout=20)
                seen.setdefault(operation.label, set()).add(response.status_code)
                case.validate_response(response, checks=CHECKS)

            run()
    statuses = set().union(*seen.values())
    assert not any(code >= 500 for code in statuses)
    if logged_in:
        assert 200 in seen["GET /api/servers"]
    else:
        assert seen["GET /api/servers"] <= {400, 401}
    assert "Traceback" not in server.log_text()
