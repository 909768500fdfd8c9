"""Accessibility, phone layouts and live updates in a real browser (Debian's Chromium).

axe-core (from npm, injected into each page) must report no violation on any page, logged in
and not, at desktop (1400x1000) and phone (390x844) sizes; no page may be wider than the phone
screen; live updates caused by other servers' reports must keep the focused link, and new
reports must keep the open history run open (by identity, not position). Runs on SQLite and
on MariaDB (``database_url``). axe-core comes from ``~/.cache/overc-test-npm`` (``.ci/run``
installs it there; this module tries ``npm install`` itself if it is missing): with CI=true a
missing axe-core fails, elsewhere it skips.
"""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from helpers import wait_for
from overc.core.passwords import hash_secret
from realserver import running_server
from test_ui_browser import CHROMIUM, DOCS, IN_CI, PASSWORD, _launch, _playwright, push

NPM_CACHE = Path(os.environ.get("OVERC_TEST_NPM", Path.home() / ".cache" / "overc-test-npm"))
AXE = NPM_CACHE / "node_modules" / "axe-core" / "axe.min.js"
DESKTOP = {"width": 1400, "height": 1000}
PHONE = {"width": 390, "height": 844}


def axe_source() -> str:
    if not AXE.exists():
        NPM_CACHE.mkdir(parents=True, exist_ok=True)
        try:
            subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent",
                            "--prefix", str(NPM_CACHE), "axe-core@4"],
                           check=True, timeout=240, capture_output=True)
        except (OSError, subprocess.SubprocessError) as error:
            if IN_CI:
                pytest.fail(f"CI needs axe-core from npm in {NPM_CACHE}: {error}")
            pytest.skip(f"axe-core is not installed and npm could not fetch it: {error}")
    return AXE.read_text(encoding="utf-8")


def axe_violations(page, source: str) -> list[str]:
    """axe-core's violations on the page as it is now (all rules but the experimental)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(source)  # evaluated by the browser's debugger, so the CSP allows it
    found = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ["violations"]});
        return r.violations.map(v => v.id + " (" + v.impact + "): " +
            v.nodes.slice(0, 3).map(n => n.target.join(" ")).join(" | "));
    }""")
    return list(found)


def estate(server) -> None:
    """Enough of everything for every page to show its parts: history and charts, alerts of
    each kind, a stale-free mix of states, an API alert, maintenance windows."""
    now = time.time()
    for step in range(12, 0, -1):
        t = now - step * 300
        push(server, "web1", [
            {"name": "disk", "state": "WARN" if step < 4 else "OK", "time": t,
             "info": f"DISK - /var {70 + step}% | /var={70 + step}%;80;90;0;100"}])
    push(server, "web1", [{"name": "nginx", "state": "OK", "info": "HTTP OK: 200 in 0.012 s"}])
    push(server, "db1", [{"name": "mysql", "state": "OK", "info": "Uptime: 812345"},
                         {"name": "backup", "state": "UNKNOWN", "info": "no backup file"},
                         {"name": "replication", "state": "CRITICAL", "info": "lag 945 s"}])
    status, _, body = server.post("/api/set/alerts", {
        "server": {"name": "db1", "key": "k"},
        "alerts": [{"message": "System down: kernel panic"}]})
    assert status == 200, body
    # maintenance marks on the overview and the windows on the server pages (SPEC 11)
    for host, extra in (("db1", {"reason": "backup restore test"}),
                        ("web1", {"reason": "config reload", "services": ["nginx"]})):
        status, _, body = server.post("/api/set/maintenance", {
            "server": {"name": host, "key": "k"}, "duration": 7200, **extra})
        assert status == 200, body


def service_id(server, host: str, name: str) -> int:
    rows = server.query("SELECT s.id FROM services s JOIN servers v ON v.id = s.server_id"
                        " WHERE v.name = ? AND s.name = ?", host, name)
    return int(rows[0][0])


def server_id(server, host: str) -> int:
    return int(server.query("SELECT id FROM servers WHERE name = ?", host)[0][0])


def test_browser_accessibility_phone_layout_and_calm_live_updates(tmp_path, database_url):
    sync_playwright = _playwright()
    source = axe_source()
    config = f"[ui]\nusers = admin:{hash_secret(PASSWORD, iterations=2000)}\n"
    with running_server(tmp_path, database=database_url, config_text=config) as server:
        estate(server)
        base = server.url.rstrip("/")
        disk = service_id(server, "web1", "disk")
        pages = ["/ui/", "/ui/alerts", f"/ui/server/{server_id(server, 'web1')}",
                 f"/ui/server/{server_id(server, 'db1')}", f"/ui/service/{disk}",
                 f"/ui/service/{service_id(server, 'db1', 'replication')}",
                 f"/ui/service/{disk}/delete", f"/ui/server/{server_id(server, 'db1')}/reset-key",
                 "/ui/service/99999", "/ui/?state=FAIL", "/ui/alerts?kind=api",
                 "/ui/maintenance/"]
        with sync_playwright() as p:
            browser = _launch(p)
            try:
                context = browser.new_context(viewport=DESKTOP)
                page = context.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                found: dict[str, list[str]] = {}
                # logged out: the login page, and with a failed attempt's error
                for size in (DESKTOP, PHONE):
                    page.set_viewport_size(size)
                    page.goto(base + "/ui/login")
                    found[f"login {size['width']}"] = axe_violations(page, source)
                page.fill("input[name=name]", "admin")
                page.fill("input[name=password]", "wrong")
                page.click("#login")
                page.wait_for_selector(".error")
                found["login error"] = axe_violations(page, source)
                page.fill("input[name=password]", PASSWORD)
                page.click("#login")
                page.wait_for_url(base + "/ui/")
                # logged in: every page at both sizes, and none wider than the phone
                wide: dict[str, int] = {}
                for size in (DESKTOP, PHONE):
                    page.set_viewport_size(size)
                    for path in pages:
                        page.goto(base + path)
                        found[f"{path} {size['width']}"] = axe_violations(page, source)
                        width = page.evaluate("document.documentElement.scrollWidth")
                        if width > size["width"]:
                            wide[path] = width
                    # an expanded history run and the open details are checked too
                    page.goto(base + f"/ui/service/{disk}")
                    labels_inside(page)
                    page.locator("#history details").first.evaluate("d => d.open = true")
                    found[f"history open {size['width']}"] = axe_violations(page, source)
                    if page.evaluate("document.documentElement.scrollWidth") > size["width"]:
                        wide["history open"] = page.evaluate(
                            "document.documentElement.scrollWidth")
                page.set_viewport_size({"width": 360, "height": 740})  # the smallest phones
                for path in pages[:6]:
                    page.goto(base + path)
                    width = page.evaluate("document.documentElement.scrollWidth")
                    if width > 360:
                        wide[f"{path} 360"] = width
                    assert page.locator("header.top").bounding_box()["height"] <= 48, path
                bad = {where: v for where, v in found.items() if v}
                assert not bad, bad
                assert not wide, wide
                # the API alert and the header on one line on the phone
                page.goto(base + "/ui/")
                # (text_content: a card off the screen is not rendered, content-visibility)
                assert "System down: kernel panic" in page.locator(
                    "article.server", has_text="db1").text_content()
                header = page.locator("header.top").bounding_box()
                assert header["height"] <= 48, header
                if database_url.startswith("sqlite") and os.environ.get(
                        "OVERC_SCREENSHOTS") == "1":
                    page.screenshot(path=str(DOCS / "overview-mobile.png"))
                page.set_viewport_size(DESKTOP)
                calm_live_updates(page, server, base, disk)
                assert not errors, errors
            finally:
                browser.close()


def labels_inside(page) -> None:
    """Every chart label (times, values, thresholds) lies inside its chart, none clipped."""
    for chart in page.locator("figure.chart svg").all():
        box = chart.bounding_box()
        for label in chart.locator("text").all():
            inner = label.bounding_box()
            assert box["x"] - 0.5 <= inner["x"] and \
                inner["x"] + inner["width"] <= box["x"] + box["width"] + 0.5, \
                (label.text_content(), inner, box)


def calm_live_updates(page, server, base: str, disk: int) -> None:
    # The page carries its ETag: with nothing new, every poll is a 304 (no swap after load).
    statuses: list[int] = []
    page.on("response", lambda r: statuses.append(r.status)
            if r.request.headers.get("x-overc-live") else None)
    page.goto(base + "/ui/")
    statuses.clear()
    page.wait_for_timeout(3500)  # two polls' worth of time: what is measured is their answers
    assert statuses and set(statuses) == {304}, statuses

    # Focus on a tile of web1, then other servers report, one of them goes FAIL (its card
    # moves first): the same link keeps the focus, and the page did not reload.
    page.evaluate("window.__noReload = 1")
    href = f"/ui/service/{disk}"
    page.focus(f'a.tile[href="{href}"]')
    for n, state in enumerate(("OK", "CRITICAL", "WARNING", "CRITICAL")):
        push(server, "db1", [{"name": "mysql", "state": state, "info": f"report {n}"}])
        push(server, "mail", [{"name": f"smtp{n}", "state": "OK", "info": "220 ready"}])
        wait_for(lambda n=n: page.locator("a.tile", has_text=f"smtp{n}").count() == 1, 8,
                 f"the live update with smtp{n}")
        assert page.evaluate("document.activeElement.getAttribute('href')") == href, n
    assert page.evaluate("window.__noReload") == 1
    # the focused link is the one the keyboard continues from: Tab reaches its neighbour
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.getAttribute('href')") != href

    # On the service page: a focused range link survives reports of other servers (their
    # reports do not even change this page: 304s), and an open history run stays the same run
    # while new reports of this service arrive and add runs above it.
    page.goto(base + href)
    runs = page.locator("#history li[data-key]")
    assert runs.count() >= 2
    key = runs.nth(1).get_attribute("data-key")
    runs.nth(1).locator("summary").click()
    page.focus(".ranges a >> nth=1")
    focused = page.evaluate("document.activeElement.getAttribute('href')")
    statuses.clear()
    push(server, "db1", [{"name": "mysql", "state": "OK", "info": "elsewhere"}])
    page.wait_for_timeout(2000)
    assert 200 not in [s for s in statuses], statuses
    count = page.locator("#history h2").inner_text()
    for state in ("OK", "FAIL", "FAIL"):
        push(server, "web1", [{"name": "disk", "state": state, "info": f"DISK {state}"}])
        wait_for(lambda c=count: page.locator("#history h2").inner_text() != c, 8,
                 "the live update of the history")
        count = page.locator("#history h2").inner_text()
        opened = page.evaluate("""() => Array.from(document.querySelectorAll(
            '#history details[open]')).map(d => d.parentNode.getAttribute('data-key'))""")
        assert opened == [key], (opened, key)
        assert page.evaluate("document.activeElement.getAttribute('href')") == focused
    assert "FAIL" in page.locator("#live-news").inner_text()  # said politely, not shouted
