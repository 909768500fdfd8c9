"""State aliases (1.x compatible) and the Nagios perfdata grammar."""
import pytest

from overc.core.perfdata import Metric, parse_metric, parse_perfdata, parse_plugin_output
from overc.core.states import map_state


@pytest.mark.parametrize("sent, state", [
    ("OK", "OK"), ("ok", "OK"), ("WARN", "WARN"), ("warning", "WARN"), ("Warning", "WARN"),
    ("FAIL", "FAIL"), ("ERR", "FAIL"), ("crit", "FAIL"), ("CRITICAL", "FAIL"),
    ("UNK", "UNK"), ("unknown", "UNK"),
])
def test_aliases(sent, state):
    assert map_state(sent) == (state, "")


@pytest.mark.parametrize("sent", ["HEY", "", "OKAY", "0", "FAILED"])
def test_unsupported_state(sent):
    assert map_state(sent) == ("UNK", f' (sent unsupported state: "{sent}")')


def test_full_metric():
    assert parse_metric("/var=91%;90;95;0;100") == Metric("/var", 91.0, "%", "90", "95", 0.0,
                                                          100.0)


@pytest.mark.parametrize("token, expected", [
    ("load1=0.5", Metric("load1", 0.5)),
    ("time=0.03s;;;0", Metric("time", 0.03, "s", min=0.0)),
    ("'in use'=12MB;;;", Metric("in use", 12.0, "MB")),
    ("'it''s'=1", Metric("it's", 1.0)),
    ("x=-3.5e2c;@10:20;~:5", Metric("x", -350.0, "c", "@10:20", "~:5")),
    ("rta=1.5ms;100.000;500.000;0;", Metric("rta", 1.5, "ms", "100.000", "500.000", 0.0)),
    ("t=.5", Metric("t", 0.5)),
])
def test_metric_forms(token, expected):
    assert parse_metric(token) == expected


@pytest.mark.parametrize("token", [
    "novalue", "=5", "a=", "a=abc", "a=1;2;3;4;5;6", "a=1;;;x", "'unclosed=1", "a=U",
    "a=nan", "a=inf", "'a'b=1",
])
def test_malformed_metrics(token):
    assert parse_metric(token) is None


def test_perfdata_keeps_bad_tokens():
    metrics, bad = parse_perfdata(" a=1  'b c'=2s junk ")
    assert [m.label for m in metrics] == ["a", "b c"] and bad == ["junk"]


def test_output_without_perfdata_is_untouched():
    out = parse_plugin_output("all fine\nsecond line")
    assert out.text == "all fine\nsecond line" and out.metrics == ()


def test_first_line_perfdata_is_removed_from_text():
    out = parse_plugin_output("DISK WARNING - /var 91% | /var=91%;90;95;0;100")
    assert out.text == "DISK WARNING - /var 91%"
    assert out.metrics == (Metric("/var", 91.0, "%", "90", "95", 0.0, 100.0),)


def test_multiline_nagios_output():
    info = ("DISK OK - free space: / 3326 MB (56%); | /=2643MB;5948;5958;0;5968\n"
            "/ 15272 MB (77%);\n"
            "/boot 68 MB (69%); | /boot=68MB;88;93;0;98\n"
            "/home=69357MB;253404;253409;0;253414\n")
    out = parse_plugin_output(info)
    assert out.text == "DISK OK - free space: / 3326 MB (56%);\n/ 15272 MB (77%);\n/boot 68 MB (69%);"
    assert [m.label for m in out.metrics] == ["/", "/boot", "/home"]


def test_malformed_perfdata_stays_in_the_text():
    out = parse_plugin_output("OK | this is not perfdata")
    assert out.text == "OK | this is not perfdata" and out.metrics == ()


def test_partly_malformed_keeps_good_metrics_and_shows_the_rest():
    out = parse_plugin_output("OK | a=1 ???")
    assert out.text == "OK | ???" and [m.label for m in out.metrics] == ["a"]


def test_unclosed_quote_keeps_everything():
    out = parse_plugin_output("OK | 'broken=1")
    assert out.text == "OK | 'broken=1" and out.metrics == ()


def test_plugin_output_is_parsed_once_per_distinct_short_output():
    """The push path parses an agent's repeated output once (a shared immutable result);
    long outputs are parsed every time (bounded cache), with the same result either way."""
    from overc.core import perfdata

    outputs = ["DISK WARNING - /var 91% | /var=91%;90;95;0;100", "OK | a=1 ???",
               "OK | 'broken=1", "x\nlong | 'q w'=2ms;1;2 b=3",
               "big | " + " ".join(f"m{i}=1" for i in range(200))]
    assert len(outputs[-1]) > perfdata.CACHED_OUTPUT
    for info in outputs:
        assert perfdata.parse_plugin_output(info) == perfdata.split_plugin_output(info)
    repeated = "OK - 12 items | items=12;;;0"
    assert perfdata.parse_plugin_output(repeated) is perfdata.parse_plugin_output(repeated)
    assert perfdata.parse_plugin_output(outputs[-1]) is not perfdata.parse_plugin_output(
        outputs[-1])
