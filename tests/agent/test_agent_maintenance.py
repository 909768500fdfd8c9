"""``overcli maintenance``: what it posts, and its usage errors (exit 2, one line). The real
command against a real server is in tests/monitoring/test_maintenance_real.py."""
import pytest

from overc.agent import cli

from test_agent_cli import URL, overcli


def body(*argv):
    return cli.maintenance_body(cli.build_parser().parse_args(["maintenance", *argv]))


def test_what_it_posts():
    assert body("30m", "deploy 4.2") == {"duration": 1800.0, "reason": "deploy 4.2"}
    assert body("90", "--service", "app", "--service", "db") == {
        "duration": 90.0, "reason": "", "services": ["app", "db"]}
    assert body("--end") == {"end": True}


@pytest.mark.parametrize("argv, message", [
    ([], "maintenance needs a duration (like 30m) or --end"),
    (["soon"], "duration: 'soon' is not a duration"),
    (["0"], "duration must be more than 0"),
    (["30m", "--end"], "maintenance --end takes no duration or --service"),
])
def test_usage_errors(argv, message):
    r = overcli(URL + ["maintenance", *argv])
    assert r.code == 2
    assert r.err.startswith(f"overcli: error: {message}") and r.err.count("\n") == 1
