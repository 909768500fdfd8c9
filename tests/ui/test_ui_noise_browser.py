"""SPEC 10 in a real browser (Chromium via Playwright) against a real server, on SQLite and
MariaDB: a soft problem shows ``(soft 1/3)``, a flapping service its gauge and held alerts."""
from __future__ import annotations

import os
import shutil

import pytest

from realserver import running_server

CHROMIUM = "/usr/bin/chromium"


def _playwright():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if sync_playwright is None or not shutil.which(CHROMIUM):
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("CI needs the chromium package and the playwright Python package")
        pytest.skip("chromium or playwright (Python package) is not installed")
    return sync_playwright


def push(server, services: list[dict]) -> None:
    status, _, body = server.post("/api/set/service/status", {
        "server": {"name": "web1", "key": "k"}, "period": 60, "services": services})
    assert status == 200, body


def test_soft_state_flapping_gauge_and_held_alerts(tmp_path, database_url):
    sync_playwright = _playwright()
    with running_server(tmp_path, database=database_url) as server:
        push(server, [{"name": "db", "state": "OK", "attempts": 3}])
        push(server, [{"name": "db", "state": "FAIL", "info": "refused", "attempts": 3}])
        for n, state in enumerate(["OK", "FAIL"] * 5):
            push(server, [{"name": "app", "state": state, "info": f"try {n}"}])
        ids = {name: sid for sid, name in server.query("SELECT id, name FROM services")}
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                        args=["--no-sandbox", "--disable-gpu"])
            try:
                page = browser.new_page()
                page.goto(f"{server.url}ui/service/{ids['db']}")
                soft = page.locator("#soft-state")
                assert "FAIL" in soft.inner_text() and "(soft 1/3)" in soft.inner_text()
                assert "OK" in page.locator("h1 .badge").first.inner_text()
                assert page.locator("#flapping-gauge").get_attribute("value") == "5.9"  # one change

                page.goto(f"{server.url}ui/service/{ids['app']}")
                gauge = page.locator("#flapping-gauge")
                assert float(gauge.get_attribute("value") or 0) > 30
                assert gauge.get_attribute("high") == "30"
                assert "flapping" in page.locator("#flapping").inner_text()
                held = page.locator("#service-alerts .mark-held")
                assert held.count() >= 1 and held.first.inner_text() == "held: flapping"
                page.screenshot(path=str(tmp_path / "noise.png"), full_page=True)
            finally:
                browser.close()
