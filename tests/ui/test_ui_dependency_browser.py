"""SPEC 10.1 and 10.4 on the server page in a real browser (Chromium via Playwright) against a
real server: a soft problem shows ``(soft 2/3)`` in its row, a child whose parent is down says
``held: depends on mysql`` in its row and its held alert in the alert table."""
from __future__ import annotations

from helpers import wait_for
from realserver import running_server
from test_ui_noise_browser import CHROMIUM, _playwright, push


def test_server_page_shows_soft_states_and_why_children_are_quiet(tmp_path, database_url):
    sync_playwright = _playwright()
    with running_server(tmp_path, database=database_url) as server:
        child = {"name": "app", "depends_on": "mysql"}
        push(server, [{"name": "mysql", "state": "OK"}, {**child, "state": "OK"},
                      {"name": "disk", "state": "OK", "attempts": 3}])
        push(server, [{"name": "mysql", "state": "FAIL", "info": "refused"},
                      {**child, "state": "FAIL", "info": "no db"},
                      {"name": "disk", "state": "WARN", "attempts": 3}])
        push(server, [{"name": "disk", "state": "WARN", "attempts": 3}])
        wait_for(lambda: server.query("SELECT COUNT(*) FROM alerts WHERE held IS NOT NULL")
                 == [(1,)], 30, "the dispatcher to hold the app's alert")
        (server_id,) = server.query("SELECT id FROM servers WHERE name = 'web1'")[0]
        ids = {name: sid for sid, name in server.query("SELECT id, name FROM services")}
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                        args=["--no-sandbox", "--disable-gpu"])
            try:
                page = browser.new_page()
                page.goto(f"{server.url}ui/server/{server_id}")
                disk = page.locator(f'tr[data-key="svc-{ids["disk"]}"] td[data-label="State"]')
                assert "(soft 2/3)" in disk.inner_text() and "WARN" in disk.inner_text()
                app = page.locator(f'tr[data-key="svc-{ids["app"]}"] .mark-held')
                assert app.inner_text() == "held: depends on mysql"
                mysql = page.locator(f'tr[data-key="svc-{ids["mysql"]}"] .mark-held')
                assert mysql.count() == 0
                # The alert table says the same of the alert the dispatcher held.
                marks = [t.strip() for t in page.locator(".dl-held").all_inner_texts()]
                assert marks == ["held: depends on mysql"]
                page.screenshot(path=str(tmp_path / "dependency.png"), full_page=True)
            finally:
                browser.close()
