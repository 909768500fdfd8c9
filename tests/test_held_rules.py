"""The held reason of a service (overc.core.held): which of several silences is shown, in the
documented order, and the dependency rule on one server's rows (cycles included)."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from overc.core.held import ServiceQuiet, held_reason, parent_holds

EVERYTHING = dict(maintenance=True, server_offline=True, parent_hold="depends on db",
                  flapping=True, soft_state="FAIL", soft_count=2, attempts=3, acked=True,
                  state="FAIL")


@pytest.mark.parametrize("drop, expected", [
    ((), "maintenance"),
    (("maintenance",), "server offline"),
    (("maintenance", "server_offline"), "depends on db"),
    (("maintenance", "server_offline", "parent_hold"), "flapping"),
    (("maintenance", "server_offline", "parent_hold", "flapping"), "soft 2/3"),
    (("maintenance", "server_offline", "parent_hold", "flapping", "soft_state"),
     "acknowledged"),
    (("maintenance", "server_offline", "parent_hold", "flapping", "soft_state", "acked"),
     None),
])
def test_the_first_reason_in_the_documented_order_wins(drop, expected):
    fields = {k: v for k, v in EVERYTHING.items() if k not in drop}
    assert held_reason(ServiceQuiet(**fields)) == expected


@pytest.mark.parametrize("quiet, expected", [
    # An acknowledgement holds only while there is a problem to hold.
    (ServiceQuiet(acked=True, state="OK"), None),
    (ServiceQuiet(acked=True, state="OK", stale=True), "acknowledged"),
    (ServiceQuiet(acked=True, state="warn"), "acknowledged"),
    (ServiceQuiet(acked=True, state="UNK"), "acknowledged"),
    # Soft: the count of the problem reports so far, out of the attempts needed.
    (ServiceQuiet(soft_state="WARN", soft_count=1, attempts=5), "soft 1/5"),
    (ServiceQuiet(soft_state=None, soft_count=0, attempts=5), None),
    # A window, an offline server, a down parent, flapping hold whatever the state (also OK).
    (ServiceQuiet(maintenance=True, state="OK"), "maintenance"),
    (ServiceQuiet(flapping=True, state="OK"), "flapping"),
    (ServiceQuiet(), None),
])
def test_single_reasons(quiet, expected):
    assert held_reason(quiet) == expected


@dataclass
class Row:
    id: int
    name: str
    depends_on: str | None
    state: str | None
    stale: bool = False


def test_parent_holds_follows_the_dispatchers_rule():
    rows = [
        Row(1, "db", None, "FAIL"),
        Row(2, "app", "db", "OK"),           # parent in a hard problem: held
        Row(3, "web", "app", "FAIL"),        # parent OK: not held
        Row(4, "cache", None, "OK", stale=True),
        Row(5, "sess", "cache", "OK"),       # stale parent: held
        Row(6, "x", "nothing", "FAIL"),      # a missing parent holds nothing
        Row(7, "a", "b", "FAIL"), Row(8, "b", "a", "FAIL"),  # a cycle holds nothing
        Row(9, "c", "a", "OK"),              # depends on a member of a cycle: held
        Row(10, "self", "self", "FAIL"),
    ]
    assert parent_holds(rows) == {2: "depends on db", 5: "depends on cache",
                                  9: "depends on a"}
