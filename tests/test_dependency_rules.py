"""SPEC 10.4 as pure rules: when a parent holds its child's alerts, cycles, and the catch-up."""
import pytest

from overc.core.dependencies import (
    MAX_REASON, ChildNow, Parent, catch_up, hold, held_reason, on_cycle, parent_down,
)


@pytest.mark.parametrize("parent, down", [
    (None, False),  # no such service: holds nothing
    (Parent(None, False), False),  # never reported
    (Parent("OK", False), False),
    (Parent("WARN", False), True),
    (Parent("FAIL", False), True),
    (Parent("UNK", False), True),
    (Parent("fail", False), True),
    (Parent("OK", True), True),  # stale
    (Parent(None, True), True),
])
def test_a_parent_is_down_in_a_hard_problem_or_stale(parent, down):
    assert parent_down(parent) is down


@pytest.mark.parametrize("service, parent_name, parent, chain, reason", [
    ("app", "mysql", Parent("FAIL", False), {"app": "mysql"}, "depends on mysql"),
    ("app", "mysql", Parent("OK", True), {"app": "mysql"}, "depends on mysql"),
    ("app", "mysql", Parent("OK", False), {"app": "mysql"}, None),
    ("app", "mysql", None, {"app": "mysql"}, None),  # missing parent
    ("app", None, None, {}, None),  # no dependency
    ("app", "app", Parent("FAIL", False), {"app": "app"}, None),  # itself: a cycle of one
    # a -> b -> a: neither holds the other, whatever their states.
    ("a", "b", Parent("FAIL", False), {"a": "b", "b": "a"}, None),
    ("b", "a", Parent("FAIL", False), {"a": "b", "b": "a"}, None),
    ("a", "b", Parent("FAIL", False), {"a": "b", "b": "c", "c": "a"}, None),
    # c depends on a member of a cycle: held as usual while that member is down.
    ("c", "a", Parent("FAIL", False), {"a": "b", "b": "a", "c": "a"}, "depends on a"),
    # A chain: web's parent app is down (because of db or not): web is held.
    ("web", "app", Parent("FAIL", False), {"web": "app", "app": "db"}, "depends on app"),
])
def test_hold(service, parent_name, parent, chain, reason):
    assert hold(service, parent_name, parent, chain) == reason


def test_cycles_are_found_only_through_the_service_itself():
    chain = {"a": "b", "b": "c", "c": "b", "x": "x"}
    assert not on_cycle("a", chain)  # b <-> c is a cycle further up, not a's
    assert on_cycle("b", chain) and on_cycle("c", chain) and on_cycle("x", chain)
    assert not on_cycle("zzz", chain)


def test_a_long_parent_name_is_shortened_in_the_reason_only():
    assert held_reason("db") == "depends on db"
    long = held_reason("p" * 64)
    assert len(long) == MAX_REASON and long.endswith("…") and long.startswith("depends on ppp")
    assert hold("app", "p" * 64, Parent("FAIL", False)) == long


@pytest.mark.parametrize("child, expected", [
    # Still a problem the channels have not heard of: one alert with the truth.
    (ChildNow("FAIL", False, "refused"), ("state", "FAIL",
                                          "Still FAIL now that mysql is back: refused")),
    (ChildNow("WARN", False, "slow", told="FAIL"), ("state", "WARN",
                                                   "Still WARN now that mysql is back: slow")),
    (ChildNow("OK", True, "x"), ("offline", "FAIL", "Still not reporting now that mysql is back")),
    # Told already (its problem was notified before the parent went down): nothing new.
    (ChildNow("FAIL", False, "refused", told="FAIL"), None),
    (ChildNow("FAIL", True, told="STALE"), None),
    (ChildNow("FAIL", False, "refused", acked=True), None),
    # Recovered meanwhile: nothing, unless the channels were told of its problem.
    (ChildNow("OK", False, "fine"), None),
    (ChildNow("OK", False, "fine", told="FAIL"), ("state", "OK",
                                                  "OK again; held while mysql was down: fine")),
    (ChildNow(None, False), None),
    # Flapping: its flapping-end tells the truth later.
    (ChildNow("FAIL", False, "x", flapping=True), None),
])
def test_catch_up(child, expected):
    alert = catch_up("mysql", child)
    assert (alert and (alert.kind, alert.severity, alert.message)) == expected
    assert alert is None or alert.held is None
