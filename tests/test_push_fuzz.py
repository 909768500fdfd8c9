"""Property: whatever JSON arrives at a push endpoint, the answer is JSON and never a 5xx."""
from __future__ import annotations

import json
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ENDPOINTS = ["api/ping", "api/set/service/status", "api/set/alerts"]

scalars = (st.none() | st.booleans() | st.integers(-10**20, 10**20)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=80))
any_json = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)
names = st.sampled_from(["fuzz", "fuzz2", "", "x" * 65, "ü😀", " sp "]) | st.text(max_size=70)
states = st.sampled_from(["OK", "warn", "CRITICAL", "HEY", "", "unknown"]) | any_json
numbers = (st.integers(-5, 40_000_000) | st.floats() | st.sampled_from(["60", "1e3", "x", "nan"])
           | any_json)
service = st.fixed_dictionaries({}, optional={
    "name": names | any_json, "state": states, "info": st.text(max_size=200) | any_json,
    "period": numbers, "time": numbers, "extra": any_json})
bodies = st.fixed_dictionaries({}, optional={
    "server": st.fixed_dictionaries({}, optional={"name": names | any_json,
                                                  "key": st.sampled_from(["k", "other"]) | any_json})
    | any_json,
    "period": numbers,
    "services": st.lists(service, max_size=5) | any_json,
    "alerts": st.lists(st.fixed_dictionaries({}, optional={
        "message": st.text(max_size=100) | any_json, "service": names | any_json,
        "title": any_json}), max_size=4) | any_json,
}) | any_json


def encode(value) -> bytes:
    def clean(v):  # JSON has no NaN/Infinity: send them as Python's json would anyway
        if isinstance(v, float) and not math.isfinite(v):
            return str(v)
        if isinstance(v, list):
            return [clean(i) for i in v]
        if isinstance(v, dict):
            return {k: clean(i) for k, i in v.items()}
        return v
    return json.dumps(clean(value)).encode()


# Hypothesis runs inside each test (pytest-twisted's call hook and @given on a test function
# do not mix); the server is one real process per database for the whole module.
def fuzz_settings(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


def answer_is_json(push_server, endpoint: str, raw: bytes) -> None:
    status, headers, answer = push_server.post(endpoint, raw)
    assert status in (200, 400, 403), (status, answer)
    assert headers["Content-Type"].startswith("application/json")
    if status == 200:
        assert answer in ({"pong": 1}, {"ok": 1})
    else:
        assert isinstance(answer, dict) and isinstance(answer.get("error"), str)
        assert isinstance(answer.get("field", ""), str)


def test_random_json_never_gets_a_5xx(push_server):
    @fuzz_settings(150)
    @given(endpoint=st.sampled_from(ENDPOINTS), body=bodies)
    def check(endpoint, body):
        answer_is_json(push_server, endpoint, encode(body))

    check()


def test_random_bytes_never_get_a_5xx(push_server):
    @fuzz_settings(40)
    @given(endpoint=st.sampled_from(ENDPOINTS), raw=st.binary(max_size=300))
    def check(endpoint, raw):
        answer_is_json(push_server, endpoint, raw)

    check()
