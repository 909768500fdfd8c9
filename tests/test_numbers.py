"""The one parser of numeric input (overc.web.numbers): table-driven, pure."""
from __future__ import annotations

import pytest

from overc.web import numbers
from overc.web.numbers import INT64_MAX, BadRequest

BAD_INTEGERS = ["nan", "inf", "-inf", "1e3", "1.5", "", " ", "0x10", "1_000", "١٢", "²",
                str(2**63), str(10**30), "9" * 5000, True, False, None, 1.0, [], {}]


@pytest.mark.parametrize("value", BAD_INTEGERS)
def test_integers_refuse_what_is_not_a_64_bit_whole_number(value):
    with pytest.raises(BadRequest) as caught:
        numbers.integer(value, "limit")
    assert caught.value.field == "limit" and "limit" in str(caught.value)


@pytest.mark.parametrize("value, expected", [("0", 0), (" 42 ", 42), ("+7", 7), (7, 7),
                                             (str(INT64_MAX), INT64_MAX)])
def test_integers_accept_ascii_digits_and_json_integers(value, expected):
    assert numbers.integer(value, "after") == expected


def test_integer_bounds_and_defaults():
    with pytest.raises(BadRequest, match="from 1 to 1000"):
        numbers.integer("0", "limit", low=1, high=1000)
    with pytest.raises(BadRequest):
        numbers.integer("-1", "after")
    assert numbers.optional_integer("", "before", default=None) is None
    assert numbers.optional_integer(None, "limit", default=100) == 100


BAD_TIMES = ["nan", "NaN", "inf", "-inf", "1e400", "-1", "1e12", "Infinity", "", "soon",
             "2030-13-01T00:00", "0000-01-01T00:00", "9999-12-31T23:59:59-14:00",
             float("nan"), float("inf"), 10**400, -5, True, None, [1]]


@pytest.mark.parametrize("value", BAD_TIMES)
def test_times_refuse_what_is_not_a_finite_time_from_1970_to_9999(value):
    with pytest.raises(BadRequest) as caught:
        numbers.time_value(value, "since")
    assert caught.value.field == "since"


@pytest.mark.parametrize("value, expected", [
    ("1700000000", 1700000000.0), ("1700000000.5", 1700000000.5), (1700000000, 1700000000.0),
    ("2030-01-31T18:00Z", 1896112800.0), ("2030-01-31 18:00", 1896112800.0),
    ("2030-01-31T19:00+01:00", 1896112800.0), ("0", 0.0),
])
def test_times_accept_unix_seconds_and_iso_8601(value, expected):
    assert numbers.time_value(value, "until") == expected


def test_a_browser_offset_moves_a_naive_time_and_is_bounded():
    assert numbers.time_value("2030-01-31T19:00", "until", -60) == 1896112800.0
    assert numbers.tz_offset("-60") == -60 and numbers.tz_offset("") is None
    for bad in ("1e9", str(10**30), "nan", "1.5", True):
        with pytest.raises(BadRequest) as caught:
            numbers.tz_offset(bad)
        assert caught.value.field == "tzoffset"


@pytest.mark.parametrize("value", ["nan", "inf", "1e400", "0", "-5", "0.0", True, False,
                                   float("nan"), 10**30, 2**63, "", "1 hour", None])
def test_durations_refuse_nan_zero_negative_huge_and_booleans(value):
    with pytest.raises(BadRequest) as caught:
        numbers.duration(value, "duration", high=86400 * 366)
    assert caught.value.field == "duration"


def test_durations_accept_seconds():
    assert numbers.duration("3600", "duration", high=86400) == 3600.0
    assert numbers.duration(0.5, "duration", high=86400) == 0.5


@pytest.mark.parametrize("value, expected", [
    ("12", (12, None)), ("web1", (None, "web1")), ("0", (None, "0")), ("²", (None, "²")),
    (str(2**63), (None, str(2**63))), ("9" * 5000, (None, "9" * 5000)), ("", (None, None)),
    (None, (None, None)),
])
def test_an_id_or_a_name(value, expected):
    assert numbers.id_or_name(value) == expected
