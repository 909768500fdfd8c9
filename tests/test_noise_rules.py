"""SPEC 10.1 and 10.2 as pure rules: per-service settings, soft and hard states, flapping."""
import pytest

from overc.config import ConfigError, load_config
from overc.core.durations import Grace
from overc.core.payload import ValidationError, parse_status
from overc.core.policy import (
    Overrides, Policy, flapping_value, parse_flapping, push_transition, resolve,
)
from overc.core.snapshot import ServiceSnapshot, apply_report

GRACE = Grace()


def run(states, *, attempts=1, flapping="30/25", start=None):
    """Fold ``states`` one report a minute; per report the alerts as (kind, severity, held)
    and the service after it."""
    service = start or ServiceSnapshot()
    steps = []
    for n, state in enumerate(states):
        out = apply_report(service, state, f"info {n}", 60, 1000.0 + 60 * n, GRACE,
                           attempts=attempts, flapping=flapping)
        service = out.service
        steps.append(([(a.kind, a.severity, a.held) for a in out.alerts], service))
    return steps


def alerts_of(steps):
    return [alerts for alerts, _ in steps]


# -- 10.1 soft and hard states ------------------------------------------------------------

OK_START = ServiceSnapshot(state="OK", period=60, last_time=900.0)


@pytest.mark.parametrize("states, attempts, expected, shown", [
    # Three attempts: the third problem report in a row makes it hard with the latest state.
    (["FAIL", "WARN", "FAIL"], 3,
     [[], [], [("state", "FAIL", None)]],
     [("OK", "FAIL", 1), ("OK", "WARN", 2), ("FAIL", None, 0)]),
    # Soft then OK: never hard, so the return to OK raises nothing.
    (["FAIL", "OK"], 3, [[], []], [("OK", "FAIL", 1), ("OK", None, 0)]),
    (["FAIL", "FAIL", "OK", "FAIL"], 3, [[], [], [], []],
     [("OK", "FAIL", 1), ("OK", "FAIL", 2), ("OK", None, 0), ("OK", "FAIL", 1)]),
    # Soft -> hard -> WARN->FAIL is immediate once hard, and so is the return to OK.
    (["WARN", "WARN", "FAIL", "OK"], 2,
     [[], [("state", "WARN", None)], [("state", "FAIL", None)], [("state", "OK", None)]],
     [("OK", "WARN", 1), ("WARN", None, 0), ("FAIL", None, 0), ("OK", None, 0)]),
    # One attempt (the default): every change is hard at once, as before SPEC 10.
    (["FAIL", "OK"], 1, [[("state", "FAIL", None)], [("state", "OK", None)]],
     [("FAIL", None, 0), ("OK", None, 0)]),
])
def test_soft_and_hard(states, attempts, expected, shown):
    steps = run(states, attempts=attempts, flapping="off", start=OK_START)
    assert alerts_of(steps) == expected
    assert [(s.state, s.soft_state, s.soft_count) for _, s in steps] == shown


def test_first_report_problem_is_soft_too():
    steps = run(["UNK", "UNK"], attempts=2, flapping="off")
    assert alerts_of(steps) == [[], [("state", "UNK", None)]]
    assert steps[0][1].state is None and steps[0][1].soft_state == "UNK"


def test_soft_problem_keeps_an_acknowledgement_of_the_hard_state():
    acked = ServiceSnapshot(state="WARN", period=60, last_time=900.0, acked=True)
    # Hard already: a change to FAIL is immediate and ends the acknowledgement.
    assert not run(["FAIL"], attempts=3, start=acked)[0][1].acked
    ok_acked = ServiceSnapshot(state="OK", period=60, last_time=900.0, acked=True)
    assert run(["FAIL"], attempts=3, start=ok_acked)[0][1].acked  # soft: nothing changed yet


# -- 10.2 flapping ------------------------------------------------------------------------

def test_flapping_value_weights():
    assert flapping_value(0) == 0
    assert flapping_value(1) == pytest.approx(100 * 1.18 / 20, abs=0.1)  # newest only
    assert flapping_value(1 << 19) == pytest.approx(100 * 0.80 / 20, abs=0.1)  # oldest only
    assert flapping_value((1 << 20) - 1) == pytest.approx(99.0)  # every one changed
    bits = 0
    for changed in [True] * 25:
        bits = push_transition(bits, changed)
    assert bits == (1 << 20) - 1  # only the last 20 transitions are kept


def test_fewer_reports_count_missing_transitions_as_no_change():
    steps = run(["OK", "FAIL", "OK"], flapping="off")
    # Two transitions, both changes: the two newest weights over 20.
    assert flapping_value(steps[-1][1].flap_bits) == pytest.approx(100 * (1.18 + 1.16) / 20,
                                                                   abs=0.1)


def test_flapping_starts_once_holds_state_alerts_and_ends_with_the_truth():
    states = ["OK", "FAIL"] * 4 + ["FAIL"] * 20
    steps = run(states)
    kinds = [(i, a) for i, (alerts, _) in enumerate(steps) for a in alerts]
    flapping = [(i, a) for i, a in kinds if a[0] == "flapping"]
    ending = [(i, a) for i, a in kinds if a[0] == "flapping-end"]
    assert len(flapping) == 1 and len(ending) == 1
    start, end = flapping[0][0], ending[0][0]
    assert flapping[0][1] == ("flapping", "WARN", None)
    # State alerts before the flapping are notified; from its start to its end they are held.
    for i, (kind, severity, held) in kinds:
        if kind == "state":
            assert held == ("flapping" if start <= i <= end else None), (i, kind)
    assert ending[0][1] == ("flapping-end", "FAIL", None)
    assert all(s.flapping for _, s in steps[start:end]) and not steps[end][1].flapping
    # The message of the end names the state the service is in now.
    out = apply_report(steps[end - 1][1], "FAIL", "disk full", 60, 1e6, GRACE)
    assert [a.message for a in out.alerts if a.kind == "flapping-end"] == [
        "Stopped flapping; now FAIL: disk full"]


def test_flapping_message_and_threshold():
    steps = run(["OK", "FAIL"] * 4, flapping="30/25")
    messages = [a for alerts, _ in steps for a in alerts if a[0] == "flapping"]
    assert len(messages) == 1
    service = next(s for alerts, s in steps if any(a[0] == "flapping" for a in alerts))
    assert flapping_value(service.flap_bits) > 30
    # Eight changes in a row, the newest: 100 x (1.18 + 1.16 + ... + 1.04) / 20 = 44.4 %.
    out = apply_report(ServiceSnapshot(state="OK", flap_bits=(1 << 7) - 1), "FAIL", "", 60,
                       1.0, GRACE)
    assert [a.message for a in out.alerts if a.kind == "flapping"] == [
        "Flapping: 44 % state changes"]


def test_flapping_off_never_flaps():
    steps = run(["OK", "FAIL"] * 10, flapping="off")
    assert not any(s.flapping for _, s in steps)
    assert all(a[2] is None for alerts, _ in steps for a in alerts)


def test_soft_problem_on_a_flapping_service():
    """Soft flaps count for the measure; no state alert while soft; hard ones are held."""
    steps = run(["OK", "FAIL"] * 6 + ["FAIL", "FAIL"], attempts=3)
    state_alerts = [a for alerts, _ in steps for a in alerts if a[0] == "state"]
    assert [a[0] for alerts, _ in steps for a in alerts if a[0].startswith("flap")] == [
        "flapping"]
    # Only the 3rd FAIL in a row (the last report) is hard, and it is held: it flaps.
    assert state_alerts == [("state", "FAIL", "flapping")]
    assert steps[-1][1].state == "FAIL" and steps[-2][1].soft_state == "FAIL"


# -- settings: report > policy > default --------------------------------------------------

POLICIES = (
    Policy("db", servers=("db*",), values=Overrides(attempts=5)),
    Policy("web", services=("http*",), values=Overrides(attempts=2, flapping="off")),
    Policy("all", values=Overrides(attempts=9, flapping="50/40", depends_on="net")),
)


@pytest.mark.parametrize("report, server, service, expected", [
    (Overrides(), "web1", "disk", (9, "50/40", "net",
                                   ("policy:all", "policy:all", "policy:all"))),
    (Overrides(), "db1", "http", (5, "off", "net", ("policy:db", "policy:web", "policy:all"))),
    (Overrides(attempts=3), "db1", "x", (3, "50/40", "net",
                                         ("report", "policy:all", "policy:all"))),
    (Overrides(flapping="off", depends_on="mysql"), "db1", "x",
     (5, "off", "mysql", ("policy:db", "report", "report"))),
])
def test_policy_precedence(report, server, service, expected):
    got = resolve(report, POLICIES, server, service)
    assert (got.attempts, got.flapping, got.depends_on,
            tuple(source for _, source in got.sources)) == expected


def test_defaults_without_policies():
    got = resolve(Overrides(), (), "a", "b")
    assert (got.attempts, got.flapping, got.depends_on) == (1, "30/25", None)


@pytest.mark.parametrize("text, expected", [
    ("30/25", "30/25"), (" OFF ", "off"), ("50.5/10", "50.5/10"), ("30/30", "30/30")])
def test_parse_flapping(text, expected):
    assert parse_flapping(text) == expected


@pytest.mark.parametrize("field, value", [
    ("attempts", 0), ("attempts", 101), ("attempts", "x"), ("attempts", True),
    ("attempts", 2.5), ("flapping", "25/30"), ("flapping", "30"), ("flapping", 30),
    ("flapping", "0/0"), ("depends_on", ""), ("depends_on", 5), ("depends_on", "x" * 65),
])
def test_report_settings_400_names_the_field(field, value):
    body = {"server": {"name": "a", "key": "k"}, "period": 60,
            "services": [{"name": "ok", "state": "OK"}, {"name": "s", "state": "OK",
                                                         field: value}]}
    with pytest.raises(ValidationError) as caught:
        parse_status(body, 1000.0)
    assert caught.value.field == f"services[1].{field}"


def test_report_settings_parsed():
    body = {"server": {"name": "a", "key": "k"}, "period": 60,
            "services": [{"name": "s", "state": "OK", "attempts": "3", "flapping": "40/20",
                          "depends_on": "db"}, {"name": "t", "state": "OK"}]}
    _, reports = parse_status(body, 1000.0)
    assert reports[0].settings == Overrides(3, "40/20", "db")
    assert reports[1].settings == Overrides()


def test_policy_sections_in_config():
    config = load_config(
        "[policy:db]\nservers = db*\nattempts = 3\n"
        "[policy:quiet]\nservices = cron*, backup\nflapping = off\ndepends-on = net\n",
        source="overc.ini")
    assert [p.name for p in config.policies] == ["db", "quiet"]
    assert config.policies[1].services == ("cron*", "backup")
    assert config.policies[1].values == Overrides(None, "off", "net")


@pytest.mark.parametrize("text, key, message", [
    ("[policy:db]\nattemps = 3\n", "attemps", "unknown key"),
    ("[policy:db]\nattempts = 0\n", "attempts", "1 to 100"),
    ("[policy:db]\nflapping = 20/30\n", "flapping", "low <= high"),
    ("[policy:db]\ndepends-on =\n", "depends-on", "service name"),
])
def test_policy_errors_name_file_section_key(text, key, message):
    with pytest.raises(ConfigError) as caught:
        load_config(text, source="overc.ini")
    error = caught.value
    assert (error.source, error.section, error.key) == ("overc.ini", "policy:db", key)
    assert message in str(error)
