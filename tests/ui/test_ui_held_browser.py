"""Issue 11 in a real browser (Chromium via Playwright) against a real server, on SQLite and
MariaDB: why a problem would not be notified, where an operator looks.

- ``dead1`` stops pushing and the real watchdog declares it offline: the overview shows ONE
  banner on its card and its tiles dimmed; its server page and each of its service pages say
  ``held: server offline``;
- on ``web1``: ``held: depends on mysql`` (parent in a hard FAIL), ``held: soft 1/3``,
  ``held: flapping`` on the server page rows, the service page headers and in the read API;
- the acknowledgement form on the service page, used by clicking (sticky, an expiry time): the
  page then shows ``sticky``, ``until ...`` and ``held: acknowledged``;
- axe-core reports no violation on those pages at 1400 px and 390 px.
"""
from __future__ import annotations

import time

from helpers import wait_for
from realserver import RealServer, running_server
from test_ui_browser_a11y import DESKTOP, PHONE, axe_source, axe_violations
from test_ui_noise_browser import CHROMIUM, _playwright

CONFIG = """[overc]
watchdog-interval = 0.5
grace = 1
"""


def push(server: RealServer, host: str, services: list[dict], period: int) -> None:
    status, _, body = server.post("/api/set/service/status", {
        "server": {"name": host, "key": "k-" + host}, "period": period,
        "services": services})
    assert status == 200, body


def test_held_reasons_offline_banner_and_the_ack_form(tmp_path, database_url):
    sync_playwright = _playwright()
    source = axe_source()
    with running_server(tmp_path, database=database_url, config_text=CONFIG) as server:
        # The first watch of a new database gives what is overdue a fresh window: push after it.
        wait_for(lambda: server.query(
            "SELECT last_tick FROM coordination WHERE job = 'watchdog'")[0][0] > 0, 30,
            "the watchdog's first tick")
        push(server, "dead1", [{"name": n, "state": "OK"} for n in ("cpu", "load")], period=2)
        hour = 3600  # web1 reports hourly: it stays online while the test runs
        push(server, "web1", [{"name": "mysql", "state": "FAIL", "info": "refused"},
                              {"name": "app", "state": "OK", "depends_on": "mysql"},
                              {"name": "disk", "state": "OK", "attempts": 3},
                              {"name": "cache", "state": "FAIL", "info": "evicting"}], hour)
        push(server, "web1", [{"name": "disk", "state": "WARN", "attempts": 3}], hour)
        for n, state in enumerate(["OK", "FAIL"] * 5):
            push(server, "web1", [{"name": "flappy", "state": state, "info": f"try {n}"}], hour)
        wait_for(lambda: server.query(
            "SELECT offline FROM servers WHERE name = 'dead1'") == [(1,)], 30,
            "the watchdog to declare dead1 offline")
        wait_for(lambda: server.query(
            "SELECT COUNT(*) FROM alerts WHERE held = 'server offline'") == [(2,)], 30,
            "dead1's services to go stale, held")
        servers = dict((name, sid) for sid, name in server.query("SELECT id, name FROM servers"))
        ids = {name: sid for sid, name in server.query(
            "SELECT s.id, s.name FROM services s")}

        # The read API says the same as the pages.
        status, _, body = server.get("/api/servers")
        assert status == 200, body
        held = {s["name"]: s["held"] for v in body["items"] for s in v["services"]}
        assert held == {"cpu": "server offline", "load": "server offline",
                        "mysql": None, "app": "depends on mysql", "disk": "soft 1/3",
                        "cache": None, "flappy": "flapping"}

        base = server.url.rstrip("/")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                        args=["--no-sandbox", "--disable-gpu"])
            try:
                page = browser.new_page(viewport=DESKTOP)
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))

                # The overview: one banner, on dead1's card, and its tiles dimmed.
                page.goto(base + "/ui/")
                assert page.locator(".offline-banner").count() == 1
                dead = page.locator(f'article[data-key="server-{servers["dead1"]}"]')
                assert dead.locator(".offline-banner").count() == 1
                assert "Server offline" in dead.locator(".offline-banner").inner_text()
                filters = dead.locator(".tile").evaluate_all(
                    "tiles => tiles.map(t => getComputedStyle(t).filter)")
                assert len(filters) == 2 and all("grayscale" in f for f in filters), filters
                web = page.locator(f'article[data-key="server-{servers["web1"]}"]')
                assert web.locator(".tile").first.evaluate(
                    "t => getComputedStyle(t).filter") == "none"

                # dead1's page: every row says why it is quiet.
                page.goto(f"{base}/ui/server/{servers['dead1']}")
                assert page.locator(".offline-banner").count() == 1
                marks = page.locator("#services .mark-held")
                assert marks.all_inner_texts() == ["held: server offline"] * 2
                assert "stopped pushing" in (marks.first.get_attribute("title") or "")
                page.goto(f"{base}/ui/service/{ids['cpu']}")
                assert page.locator("#held-reason").inner_text() == "held: server offline"

                # web1's page: one mark per quiet row, none on the rows that would be notified.
                page.goto(f"{base}/ui/server/{servers['web1']}")

                def row_mark(name: str) -> list[str]:
                    return page.locator(
                        f'tr[data-key="svc-{ids[name]}"] .mark-held').all_inner_texts()

                assert row_mark("app") == ["held: depends on mysql"]
                assert row_mark("disk") == ["held: soft 1/3"]
                assert row_mark("flappy") == ["held: flapping"]
                assert row_mark("mysql") == [] and row_mark("cache") == []
                disk_row = page.locator(f'tr[data-key="svc-{ids["disk"]}"]').inner_text()
                assert "(soft 1/3)" in disk_row  # SPEC 10.1's own text stays
                for name, reason in [("app", "held: depends on mysql"),
                                     ("disk", "held: soft 1/3"), ("flappy", "held: flapping")]:
                    page.goto(f"{base}/ui/service/{ids[name]}")
                    mark = page.locator("#held-reason")
                    assert mark.inner_text() == reason, name
                    assert mark.get_attribute("title"), name
                page.goto(f"{base}/ui/service/{ids['app']}")
                title = page.locator("#held-reason").get_attribute("title") or ""
                assert "parent mysql is down" in title

                # The acknowledgement form, by clicking: sticky, expiring in a day.
                page.goto(f"{base}/ui/service/{ids['cache']}")
                assert page.locator("#held-reason").count() == 0
                expires = page.evaluate("""() => {
                    const d = new Date(Date.now() + 86400e3);
                    const pad = n => String(n).padStart(2, "0");
                    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" +
                        pad(d.getDate()) + "T" + pad(d.getHours()) + ":" + pad(d.getMinutes());
                }""")
                form = page.locator("form.ack")
                form.get_by_label("Comment").fill("on it")
                form.get_by_label("sticky").check()
                form.get_by_label("expires").fill(expires)
                with page.expect_navigation():
                    page.click("#ack")
                facts = page.locator("#ack-facts")
                assert "on it" in facts.inner_text() and "sticky" in facts.inner_text()
                assert "until" in facts.inner_text()
                mark = page.locator("#held-reason")
                assert mark.inner_text() == "held: acknowledged"
                assert "not sent until it is OK again" in (mark.get_attribute("title") or "")
                [(sticky, until)] = server.query(
                    "SELECT ack_sticky, ack_expires FROM services WHERE id = ?", ids["cache"])
                assert sticky and abs(until - (time.time() + 86400)) < 120
                page.goto(f"{base}/ui/server/{servers['web1']}")
                assert row_mark("cache") == ["held: acknowledged"]

                # No accessibility violation on any of these pages, desktop and phone.
                paths = ["/ui/", f"/ui/server/{servers['dead1']}",
                         f"/ui/server/{servers['web1']}"] + [
                    f"/ui/service/{ids[n]}" for n in ("cpu", "app", "disk", "flappy", "cache")]
                found: dict[str, list[str]] = {}
                for size in (DESKTOP, PHONE):
                    page.set_viewport_size(size)
                    for path in paths:
                        page.goto(base + path)
                        found[f"{path} {size['width']}"] = axe_violations(page, source)
                    page.screenshot(path=str(tmp_path / f"held-{size['width']}.png"),
                                    full_page=True)
                assert {k: v for k, v in found.items() if v} == {}
                assert errors == []
            finally:
                browser.close()
