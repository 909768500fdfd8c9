"""Maintenance windows in a real browser (Chromium via Playwright) against a real server:
start a window from a server page by clicking, see it with its author and reason on
/ui/maintenance beside a silence (one list), end it, and create a recurring window."""
from __future__ import annotations

from overc.core.passwords import hash_secret
from realserver import running_server
from test_ui_browser import CHROMIUM, PASSWORD, _playwright, push


def test_maintenance_windows_by_clicking(tmp_path, database_url):
    sync_playwright = _playwright()
    config = f"[ui]\nusers = admin:{hash_secret(PASSWORD, iterations=2000)}\n"
    with running_server(tmp_path, database=database_url, config_text=config) as server:
        push(server, "web2", [{"name": "app", "state": "OK", "info": "up"}])
        push(server, "db1", [{"name": "mysql", "state": "OK", "info": "up"}])
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                        args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
            try:
                scenario(browser.new_page(viewport={"width": 1360, "height": 860}), server)
            finally:
                browser.close()


def scenario(page, server) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    base = server.url.rstrip("/")
    page.goto(base + "/ui/login")
    page.fill("input[name=name]", "admin")
    page.fill("input[name=password]", PASSWORD)
    page.click("#login")
    page.wait_for_url(base + "/ui/")

    # a server page: start maintenance for an hour, with a reason
    page.locator("article.server", has_text="web2").locator("a", has_text="web2").first.click()
    page.wait_for_url("**/ui/server/*")
    page.select_option("#maintenance select[name=duration]", "3600")
    page.fill("#maintenance input[name=reason]", "deploy 4.2")
    page.click("#start-maintenance")
    page.wait_for_selector(".flash")
    assert "deploy 4.2" in page.locator("#maintenance table.windows").inner_text()

    # db1 silenced the section 3 way: the same list shows it
    page.goto(base + "/ui/")
    page.locator("article.server", has_text="db1").locator("a", has_text="db1").first.click()
    page.wait_for_url("**/ui/server/*")
    page.fill("form.silence input[name=reason]", "disk swap")
    page.click("text=Silence server")
    page.wait_for_selector(".flash")

    page.click("nav >> text=Maintenance")
    page.wait_for_url("**/ui/maintenance/")
    running = page.locator("#windows-running").inner_text()
    assert "deploy 4.2" in running and "admin" in running
    assert "disk swap" in running and "silence" in running

    # end the deploy window by clicking
    page.locator("tr.window", has_text="deploy 4.2").locator("button.end-window").click()
    page.wait_for_selector(".flash")
    assert "deploy 4.2" not in page.locator("#windows-running").inner_text()
    assert "deploy 4.2" in page.locator("#windows-ended").inner_text()

    # a recurring window over glob filters
    page.fill("form.maintenance input[name=servers]", "db*")
    page.fill("form.maintenance input[name=schedule]", "0 2 * * sun")
    page.fill("form.maintenance input[name=tz]", "Europe/Berlin")
    page.select_option("form.maintenance select[name=duration]", "7200")
    page.fill("form.maintenance input[name=reason]", "weekly patching")
    page.click("text=Create window")
    page.wait_for_selector(".flash")
    coming = page.locator("#windows-coming").inner_text()
    assert "weekly patching" in coming and "0 2 * * sun" in coming and "Europe/Berlin" in coming
    assert not errors, errors
