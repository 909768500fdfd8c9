"""The UI in a real browser (Debian's Chromium driven by Playwright) against a real server.

Skips when Chromium or Playwright is missing, except with CI=true where that is a failure.
Runs on SQLite and on MariaDB (``database_url`` from tests/conftest.py).
"""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from overc.core.passwords import hash_secret
from realserver import running_server

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
CHROMIUM = "/usr/bin/chromium"
DOCS = Path(__file__).resolve().parent.parent.parent / "docs"
PASSWORD = "s3cret pass"


def _playwright():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if sync_playwright is None or not shutil.which(CHROMIUM):
        if IN_CI:
            pytest.fail("CI needs the chromium package and the playwright Python package")
        pytest.skip("chromium or playwright (Python package) is not installed")
    return sync_playwright


def push(server, name: str, services: list[dict], period: int = 60, key: str = "k") -> None:
    status, _, body = server.post("/api/set/service/status", {
        "server": {"name": name, "key": key}, "period": period, "services": services})
    assert status == 200, body


def seed(server) -> None:
    """A small, realistic estate for the screenshots: history first (late results), then now."""
    now = time.time()
    for step in range(48, 0, -1):
        t = now - step * 1800
        usage = 60 + (48 - step) * 0.6 + (step % 5)
        push(server, "web1", [
            {"name": "disk", "state": "WARN" if usage > 85 else "OK", "time": t,
             "info": f"DISK {'WARNING' if usage > 85 else 'OK'} - /var {usage:.0f}%"
                     f" | /var={usage:.1f}%;85;95;0;100"},
            {"name": "load", "state": "OK", "time": t,
             "info": f"OK - load average: {1 + step % 7 / 3:.2f} | load1={1 + step % 7 / 3:.2f};4;8;0"},
        ])
    estate = {
        "web1": [("nginx", "OK", "HTTP OK: 200 in 0.012 s"), ("app", "OK", "up 32h")],
        "web2": [("nginx", "OK", "HTTP OK"), ("app", "FAIL", "Connection refused"),
                 ("disk", "OK", "DISK OK - / 41%"), ("load", "OK", "load 0.4")],
        "db1": [("mysql", "OK", "Uptime: 812345"), ("replication", "WARN", "lag 45 s"),
                ("disk", "OK", "DISK OK"), ("backup", "UNKNOWN", "no backup file")],
        "mail": [("postfix", "OK", "queue 3"), ("smtp", "OK", "220 ready")],
    }
    for name, services in estate.items():
        push(server, name, [{"name": n, "state": s, "info": i} for n, s, i in services])
    status, _, body = server.post("/api/set/alerts", {
        "server": {"name": "web2", "key": "k"}, "alerts": [{"message": "System down: kernel panic"}]})
    assert status == 200, body
    # noise control and maintenance (SPEC 10, 11): a disk problem not yet confirmed (soft 1/3),
    # db1 in a maintenance window, and a window over one service of web1
    for state, usage in (("OK", 84), ("CRITICAL", 96)):  # a cleanup, then a burst
        push(server, "web1", [{"name": "disk", "state": state, "attempts": 3,
                               "info": f"DISK {state} - /var {usage}%"
                                       f" | /var={usage}.0%;85;95;0;100"}])
    for host, extra in (("db1", {"reason": "backup restore test"}),
                        ("web1", {"reason": "config reload", "services": ["nginx"]})):
        status, _, body = server.post("/api/set/maintenance", {
            "server": {"name": host, "key": "k"}, "duration": 7200, **extra})
        assert status == 200, body


def test_browser_end_to_end(tmp_path, database_url):
    sync_playwright = _playwright()
    config = f"[ui]\nusers = admin:{hash_secret(PASSWORD, iterations=2000)}\n"
    with running_server(tmp_path, database=database_url, config_text=config) as server:
        seed(server)
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM, headless=True,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                      "--disable-component-update", "--disable-sync", "--no-first-run"])
            try:
                # Screenshots go to docs/ only when asked (OVERC_SCREENSHOTS=1), so a test run
                # never rewrites tracked files; otherwise they are still taken, into tmp_path.
                shots = DOCS if os.environ.get("OVERC_SCREENSHOTS") == "1" else tmp_path
                run_scenario(browser, server, shots if database_url.startswith("sqlite")
                             else None)
            finally:
                browser.close()


def run_scenario(browser, server, screenshots: Path | None) -> None:
    page = browser.new_page(viewport={"width": 1360, "height": 860})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    base = server.url.rstrip("/")

    # not logged in: sent to the login page; a wrong password is refused
    page.goto(base + "/")
    assert "/ui/login" in page.url
    page.fill("input[name=name]", "admin")
    page.fill("input[name=password]", "wrong")
    page.click("#login")
    assert page.locator(".error").is_visible()
    errors.clear()  # the refused login's 401 is expected
    page.fill("input[name=password]", PASSWORD)
    page.click("#login")
    page.wait_for_url(base + "/ui/")
    assert page.locator("article.server").count() == 4

    # a service pushed now appears without a reload
    page.evaluate("window.__noReload = 42")
    push(server, "web2", [{"name": "queue", "state": "CRITICAL", "info": "3000 items"}])
    started = time.monotonic()
    tile = page.locator("a.tile", has_text="queue")
    tile.wait_for(timeout=5000)
    assert time.monotonic() - started < 4.0
    assert page.evaluate("window.__noReload") == 42
    # the state in words (the link's name), not only a colour
    assert tile.get_attribute("aria-label") == "queue, FAIL"
    # the filter box
    page.fill("#filter", "db1")
    assert page.locator("article.server:not(.hidden)").count() == 1
    page.fill("#filter", "")
    assert "kernel panic" in page.locator("article.server", has_text="web2").text_content()
    if screenshots:
        page.locator("#filter").blur()
        screenshots.mkdir(exist_ok=True)
        page.screenshot(path=str(screenshots / "overview.png"))

    # the service page with its perfdata chart
    page.locator("article.server", has_text="web1").locator("a.tile", has_text="disk").click()
    page.wait_for_selector("figure.chart svg polyline")
    assert page.locator("figure.chart").count() == 1
    assert page.locator("svg.timeline rect.tl").count() >= 1
    points = page.locator("figure.chart polyline").get_attribute("points")
    assert len(points.split()) > 10
    if screenshots:
        page.screenshot(path=str(screenshots / "service.png"), full_page=True)

    # acknowledge with a comment
    page.fill("form.ack input[name=comment]", "replacing the disk")
    page.click("#ack")
    page.wait_for_selector(".flash")
    assert "acked" in page.locator("#service-head").inner_text()
    assert "replacing the disk" in page.locator("#service-head").inner_text()

    # silence the server for a day
    page.click("text=web1 >> nth=0")
    page.wait_for_url("**/ui/server/*")
    page.select_option("form.silence select[name=duration]", "86400")
    page.fill("form.silence input[name=reason]", "maintenance")
    page.click("text=Silence server")
    page.wait_for_selector("#server-head .mark-silence")
    assert "maintenance" in page.locator("#server-head").inner_text()

    # delete a service, after confirming
    page.locator("table.services a", has_text="load").click()
    page.click("text=Delete service…")
    assert "Delete" in page.locator("h1").inner_text()
    page.click("#confirm-delete")
    page.wait_for_selector(".flash")
    assert page.locator("table.services a", has_text="load").count() == 0
    status, _, body = server.get("/api/servers", headers={"Authorization": _basic()})
    web1 = [s for s in body["items"] if s["name"] == "web1"][0]
    assert "load" not in [s["name"] for s in web1["services"]]
    assert web1["silence_reason"] == "maintenance"

    # log out: the pages are closed again
    page.click("#logout")
    page.wait_for_url("**/ui/login**")
    page.goto(base + "/ui/alerts")
    assert "/ui/login" in page.url
    assert not errors, errors  # no CSP violations or script errors


def _basic() -> str:
    import base64

    return "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()


def _launch(p):
    return p.chromium.launch(
        executable_path=CHROMIUM, headless=True,
        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
              "--disable-component-update", "--disable-sync", "--no-first-run"])


def test_browser_fresh_install_and_a_390px_screen(tmp_path):
    """What a first-time user meets: a service with two reports draws visible marks on a chart
    that fits minutes of data, a timeline that is not a sliver; the login page has no
    navigation; an empty filter says so; at 390 px no page is wider than the screen."""
    sync_playwright = _playwright()
    config = f"[ui]\nusers = admin:{hash_secret(PASSWORD, iterations=2000)}\n"
    with running_server(tmp_path, config_text=config) as server:
        now = time.time()
        long_info = "CRITICAL - " + "connection refused by upstream backend " * 6
        for t, value in ((now - 90, 2.61e10), (now - 30, 2.66118e10)):
            push(server, "fresh", [
                {"name": "disk", "state": "OK", "time": t,
                 "info": f"DISK OK | used={value:.0f}B;2.9e10;3.0e10;0;3.2e10"},
                {"name": "app", "state": "FAIL", "time": t, "info": long_info}])
        with sync_playwright() as p:
            browser = _launch(p)
            try:
                page = browser.new_page(viewport={"width": 1200, "height": 800})
                base = server.url.rstrip("/")
                page.goto(base + "/ui/login")
                assert page.locator("header nav").count() == 0
                assert page.locator("#live-status").count() == 0
                page.fill("input[name=name]", "admin")
                page.fill("input[name=password]", PASSWORD)
                page.click("#login")
                page.wait_for_url(base + "/ui/")

                page.fill("#filter", "no-such-thing")
                assert page.locator("#no-match").is_visible()
                assert "Nothing matches" in page.locator("#no-match").inner_text()
                page.fill("#filter", "")
                assert not page.locator("#no-match").is_visible()

                page.locator("a.tile", has_text="disk").click()
                page.wait_for_selector("figure.chart svg")
                assert page.locator(".ranges a[aria-current=page]").inner_text() == "fit"
                dots = page.locator("figure.chart circle.dot")
                assert dots.count() == 2
                plot = page.locator("figure.chart svg").bounding_box()
                for i in range(2):
                    box = dots.nth(i).bounding_box()
                    assert box["width"] >= 4 and box["height"] >= 4
                    assert plot["x"] <= box["x"] and box["x"] + box["width"] <= \
                        plot["x"] + plot["width"]
                xs = [dots.nth(i).bounding_box()["x"] for i in range(2)]
                assert abs(xs[1] - xs[0]) > 50  # a minute apart, not a blip at the edge
                caption = page.locator("figure.chart figcaption").inner_text()
                assert "GiB" in caption and "e+" not in caption
                labels = page.locator("figure.chart text.th-label")
                a, b = (float(labels.nth(i).get_attribute("y")) for i in range(2))
                assert abs(a - b) >= 12  # 10 px text: apart, not drawn over each other
                for i in range(2):
                    box = labels.nth(i).bounding_box()
                    assert plot["y"] <= box["y"] and box["x"] + box["width"] <= \
                        plot["x"] + plot["width"]
                timeline = page.locator("svg.timeline").bounding_box()
                segment = page.locator("svg.timeline rect.tl").first.bounding_box()
                # 90 s of life on a 5 min axis, not a 1 px sliver of 24 h
                assert segment["width"] > timeline["width"] * 0.25
                assert page.locator(".tl-axis").inner_text().startswith("5 min ago")

                page.set_viewport_size({"width": 390, "height": 844})
                for path in ("/ui/", page.url.replace(base, ""), "/ui/alerts"):
                    page.goto(base + path)
                    width = page.evaluate("document.documentElement.scrollWidth")
                    assert width <= 390, (path, width)
                page.goto(base + "/ui/")
                page.locator("a.tile", has_text="app").click()
                page.wait_for_selector("pre.output")
                assert page.locator("pre.output").bounding_box()["width"] > 300
                page.click(".crumbs a >> nth=1")  # the server page and its table
                page.wait_for_url("**/ui/server/*")
                assert page.evaluate("document.documentElement.scrollWidth") <= 390
                info = page.locator("table.services td.info").first.bounding_box()
                assert info["width"] >= 150  # words on a line, not a letter per line
            finally:
                browser.close()
