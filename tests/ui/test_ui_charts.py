"""Chart geometry and human units (pure): what a fresh install's charts look like."""
from __future__ import annotations

import pytest

from overc.storage.read_service import PerfPoint
from overc.ui import views_charts as vc


@pytest.mark.parametrize("value, uom, text", [
    (2.66118e10, "B", "24.8 GiB"), (512, "B", "512 B"), (3, "KB", "3 KiB"),
    (1536, "MB", "1.5 GiB"), (0, "B", "0 B"),
    (0.012, "s", "12 ms"), (1.5, "s", "1.5 s"), (150, "s", "2.5 min"), (7200, "s", "2 h"),
    (250, "ms", "250 ms"), (40, "us", "40 µs"),
    (85, "%", "85%"), (812345, "", "812 k"), (12000, "c", "12 k"), (3.14159, "", "3.14"),
    (42, "req", "42 req"), (2e6, "req", "2 Mreq"),
])
def test_human_units(value, uom, text):
    assert vc.human(value, uom) == text


def test_no_exponents_anywhere():
    for value in (1e-5, 2.66118e10, 123456789.0, 0.5):
        assert "e" not in vc.short_number(value).lower()


def point(t, value, uom="B", warn=None, crit=None):
    return PerfPoint(time=t, label="m", value=value, uom=uom, warn=warn, crit=crit, min=None,
                     max=None)


def test_one_report_is_a_visible_marker():
    c = vc.chart([point(1000.0, 5.0)], 400.0, 1060.0)
    assert len(c.dots) == 1 and c.band == ""
    assert c.last_text == "5 B"


def test_a_dense_series_has_no_markers_but_a_band():
    points = [point(float(t), float(t % 7)) for t in range(0, 86400, 60)]
    c = vc.chart(points, 0.0, 86400.0)
    assert c.dots == [] and c.band


def test_axis_labels_are_human_units():
    c = vc.chart([point(0.0, 2.66118e10), point(60.0, 2.7e10)], 0.0, 120.0)
    assert all(text.endswith("GiB") for _, text in c.y_ticks), c.y_ticks
    assert "e+" not in " ".join(text for _, text in c.y_ticks)


@pytest.mark.parametrize("span, step", [(600, 120), (3600, 600), (6 * 3600, 3600),
                                        (86400, 10800), (7 * 86400, 86400)])
def test_time_axis_down_to_minutes(span, step):
    assert vc.time_step(span) == step


def test_threshold_labels_stay_apart_and_inside():
    # warn and crit 1 % apart at the very top of the box: the labels would overlap and clip
    c = vc.chart([point(0.0, 10.0, "%", "99", "100"), point(60.0, 20.0, "%", "99", "100")],
                 0.0, 120.0)
    (_, _, _, a), (_, _, _, b) = c.thresholds
    assert abs(a - b) >= vc.LABEL_GAP
    top, bottom = vc.PAD_TOP, c.height - vc.PAD_BOTTOM
    assert all(top + 9 <= base <= bottom for base in (a, b))
    assert [text for _, _, text, _ in c.thresholds] == ["99%", "100%"]


def test_label_baselines_near_their_lines_when_room():
    assert vc.label_baselines([50.0, 90.0], 6, 122) == [47.0, 87.0]
    assert vc.label_baselines([121.0, 122.0], 6, 122) == [110.0, 122.0]


def test_fit_window_of_a_young_service():
    assert vc.fit_window(None, 10_000.0) == 86400  # older than a day (or no report)
    assert vc.fit_window(9_990.0, 10_000.0) == 300  # seconds old: five minutes
    assert vc.fit_window(10_000.0 - 3 * 3600, 10_000.0) == pytest.approx(3 * 3600 * 1.1 + 30)
    assert vc.ago_labels(600) == ("10 min ago", "5 min ago", "now")
    assert vc.ago_labels(86400) == ("24 h ago", "12 h ago", "now")
