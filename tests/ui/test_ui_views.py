"""Pure presentation helpers that the pages' hot loops rely on (no database, no Klein)."""
from __future__ import annotations

from overc.storage.read_servers import OverviewServer
from overc.storage.read_service import PerfPoint
from overc.ui import views


def test_overview_cards_escape_everything_and_put_problems_first():
    evil = OverviewServer(2, "b<srv>", None, None, tiles=[
        (20, 'n"ame<i>', "OK", "info <b>&'\"", 0, 1),
        (21, "disk", "OK", None, 1, 0),  # stale: shown STALE, still counted as OK
    ])
    calm = OverviewServer(1, "a", 9e9, "maint", tiles=[(10, "x", "OK", "fine", 0, 0)])
    cards, counts = views.overview_cards([calm, evil], now=1000.0)
    assert [c.name for c in cards] == ["b<srv>", "a"]  # the STALE server first
    assert counts == {"FAIL": 0, "STALE": 1, "WARN": 0, "UNK": 0, "OK": 3, "NONE": 0}
    html = str(cards[0].tiles)
    assert "<i>" not in html and "<b>" not in html and 'n"ame' not in html
    assert "n&quot;ame&lt;i&gt;" in html
    assert "info" not in html  # excerpts come on demand (overc.ui.tile_tips), not in the page
    assert html.index('href="/ui/service/21"') < html.index('href="/ui/service/20"')
    # the state as text (screen readers and the tooltip), not only a colour
    assert 'aria-label="disk, STALE, last OK">' in html
    assert 'aria-label="n&quot;ame&lt;i&gt;, OK, acknowledged">' in html
    assert cards[1].silenced and not cards[0].silenced


def test_a_fail_that_goes_stale_keeps_its_fail():
    """Stale is newer news, but it must not hide a FAIL: the tile shows both, both chips count
    it, and it sorts with the FAILs."""
    server = OverviewServer(1, "db", None, None, tiles=[
        (1, "backup", "FAIL", "no backup", 1, 0), (2, "late", "OK", None, 1, 0),
        (3, "mysql", "OK", None, 0, 0)])
    other = OverviewServer(2, "a-first-by-name", None, None, tiles=[(4, "x", "WARN", None, 0, 0)])
    cards, counts = views.overview_cards([other, server], now=0.0)
    assert counts == {"FAIL": 1, "STALE": 2, "WARN": 1, "UNK": 0, "OK": 2, "NONE": 0}
    assert [c.name for c in cards] == ["db", "a-first-by-name"]  # the stale FAIL ranks as FAIL
    html = str(cards[0].tiles)
    first = html.split("</a>")[0]
    assert 'data-state="STALE" data-last="FAIL"' in first and "st-fail" in first
    assert 'aria-label="backup, STALE, last FAIL"' in first
    assert views.service_rank("FAIL", True) == views.rank("FAIL")
    assert views.service_rank("OK", True) == views.rank("STALE")


def test_the_overview_counts_every_service_and_marks_silences():
    """A service with no report yet counts (NONE), so "All" equals the tiles; a silenced FAIL
    says so in a mark and in words; each card carries its server's newest API alerts."""
    from types import SimpleNamespace

    server = OverviewServer(1, "db", None, None, tiles=[
        (1, "new", None, None, 0, 0, None), (2, "quiet", "FAIL", "down", 0, 0, 2000.0),
        (3, "ended", "FAIL", "down", 0, 0, 500.0), (4, "old-row", "OK", None, 0, 0)])
    cards, counts = views.overview_cards([server], now=1000.0)
    assert sum(n for s, n in counts.items() if s != "STALE") == cards[0].count == 4
    assert counts["NONE"] == 1 and counts["FAIL"] == 2
    tiles = {t.split('/ui/service/')[1].split('"')[0]: t
             for t in str(cards[0].tiles).split("</a>") if t}
    assert 'aria-label="quiet, FAIL, silenced"' in tiles["2"] and "⊘" in tiles["2"]
    assert "silenced" not in tiles["3"]  # the silence ended
    assert 'data-state="NONE"' in tiles["1"]
    api = [SimpleNamespace(id=i, server_id=1, severity="FAIL", message=f"m{i}", time=0.0)
           for i in (9, 8, 7, 6)] + [SimpleNamespace(id=5, server_id=99, severity="FAIL",
                                                     message="gone", time=0.0)]
    views.attach_api_alerts(cards, api)
    assert [a.id for a in cards[0].api_alerts] == [9, 8, 7]  # newest, at most three


def test_chart_from_sql_buckets_matches_chart_from_points():
    start, end = 0.0, 3600.0
    points = [PerfPoint(t, "load", (t % 97) / 10, "", "4", "8", 0.0, None)
              for t in range(0, 3600, 3)]
    columns = views.chart_columns()
    buckets: dict[int, list] = {}
    for p in points:  # what _txn_perfdata_series asks the database for
        col = min(int((p.time - start) * (columns / (end - start))), columns - 1)
        b = buckets.setdefault(col, [col, p.value, p.value, 0.0, 0])
        b[1], b[2] = min(b[1], p.value), max(b[2], p.value)
        b[3] += p.value
        b[4] += 1
    from_sql = views.chart_series(points[-1], [tuple(buckets[c]) for c in sorted(buckets)],
                                  start, end)
    assert from_sql == views.chart(points, start, end)
    assert from_sql.count == len(points)


def test_deliveries_adapter_per_channel_and_fallback():
    from types import SimpleNamespace

    per_channel = SimpleNamespace(delivery={"sent": 1, "failed": 1}, deliveries=[
        {"channel": "slack", "status": "failed", "attempts": 5, "last_error": "HTTP 500"},
        SimpleNamespace(channel="mail", status="sent", attempts=1, last_error=None)])
    assert views.deliveries(per_channel) == [
        views.Delivery("mail", "sent", 1, None),
        views.Delivery("slack", "failed", 5, "HTTP 500")]
    counts_only = SimpleNamespace(delivery={"sent": 2, "pending": 1})
    assert views.deliveries(counts_only) == [views.Delivery(None, "pending", count=1),
                                             views.Delivery(None, "sent", count=2)]
    assert views.deliveries(SimpleNamespace(delivery={})) == []


def test_alert_table_shows_each_channel_its_state_attempts_and_error():
    from types import SimpleNamespace

    from overc.ui.rendering import make_environment

    alert = SimpleNamespace(
        id=1, time=0.0, severity="FAIL", server_id=1, server_name="web", service_id=2,
        service_name="app", kind="state", message="app is FAIL", delivery={"failed": 1}, held=None,
        deliveries=[{"channel": "ops-hook", "status": "failed", "attempts": 3,
                     "last_error": "connection refused <x>"}])
    html = make_environment().from_string(
        '{% from "macros.html" import alert_table %}{{ alert_table(alerts, 0) }}'
    ).render(alerts=[alert])
    assert '<b>ops-hook</b> failed' in html and "3 attempts" in html
    assert "connection refused &lt;x&gt;" in html


def test_alert_table_renders_the_read_models_deliveries():
    """The real :class:`Alert` from the read model, not a stand-in: one row per channel."""
    from overc.core.alerts import Alert, ChannelDelivery
    from overc.ui.rendering import make_environment

    alert = Alert(id=7, server_id=1, server_name="web", service_id=2, service_name="app",
                  time=0.0, kind="state", severity="FAIL", message="app is FAIL",
                  delivery={"sent": 1, "pending": 1},
                  deliveries=(ChannelDelivery("log", "sent", 1, None),
                              ChannelDelivery("pager", "pending", 2, "exit status 1")))
    assert views.deliveries(alert) == [views.Delivery("log", "sent", 1, None),
                                       views.Delivery("pager", "pending", 2, "exit status 1")]
    html = make_environment().from_string(
        '{% from "macros.html" import alert_table %}{{ alert_table(alerts, 0) }}'
    ).render(alerts=[alert])
    assert 'data-channel="log"><b>log</b> sent' in html and "1 attempt<" in html
    assert 'data-channel="pager"><b>pager</b> pending' in html and "2 attempts" in html
    assert "exit status 1" in html
    assert "×" not in html  # per-channel rows, not the counts
