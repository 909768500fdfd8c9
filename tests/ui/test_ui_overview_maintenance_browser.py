"""The overview's maintenance marks in a real browser (Chromium via Playwright) against a real
server, on SQLite and MariaDB: a window over a whole server marks its card, one over some
services (by name, or glob from the API) marks their tiles, in words with an accessible name;
a deploy script's window appears and ends on an open overview without a reload; axe-core
reports no violation at 1400 and 390 px with the marks on the page. The tiles' info excerpts
(tips) come on demand, by keyboard focus or by hover."""
from __future__ import annotations

import base64

from helpers import wait_for
from overc.core.passwords import hash_secret
from realserver import running_server
from test_ui_browser import PASSWORD, _launch, _playwright, push
from test_ui_browser_a11y import DESKTOP, PHONE, axe_source, axe_violations


def maintenance(server, host: str, **body) -> None:
    status, _, answer = server.post("/api/set/maintenance", {
        "server": {"name": host, "key": "k"}, **body})
    assert status == 200, answer


def tile_tips(page, card) -> None:
    """The page carries no info excerpt; focusing a tile (keyboard) or hovering one shows it
    in a tooltip the tile points to (aria-describedby); Escape and leaving hide it."""
    page.goto(page.url)
    assert "refused" not in page.content()
    tip = page.locator("#tile-tip")
    page.keyboard.press("Tab")  # the skip link, then into the page until a tile
    for _ in range(40):
        if page.evaluate("!!document.activeElement.closest('a.tile')"):
            break
        page.keyboard.press("Tab")
    focused = page.evaluate("""() => Array.from(document.activeElement.childNodes)
        .filter(n => n.nodeType === 3).map(n => n.nodeValue).join('').trim()""")
    assert focused
    tip.wait_for(state="visible", timeout=5000)
    assert page.evaluate("document.activeElement.getAttribute('aria-describedby')") \
        == "tile-tip"
    assert tip.get_attribute("role") == "tooltip"
    assert tip.inner_text().startswith(focused + ", ")
    page.keyboard.press("Escape")
    tip.wait_for(state="hidden", timeout=5000)
    assert page.evaluate("document.activeElement.getAttribute('aria-describedby')") is None
    app = card("web2").locator("a.tile", has_text="app")
    app.hover()
    tip.wait_for(state="visible", timeout=5000)
    assert "app, in maintenance, FAIL: refused" == tip.inner_text()
    box, under = app.bounding_box(), tip.bounding_box()
    assert under["y"] >= box["y"] + box["height"]  # below its tile, not over it
    page.mouse.move(5, 5)
    tip.wait_for(state="hidden", timeout=5000)
    card("db1").locator("a.tile", has_text="mysql").hover()
    tip.wait_for(state="visible", timeout=5000)
    assert tip.inner_text() == "mysql, OK: up"


def test_overview_marks_maintenance_live_and_accessibly(tmp_path, database_url):
    sync_playwright = _playwright()
    source = axe_source()
    config = f"[ui]\nusers = admin:{hash_secret(PASSWORD, iterations=2000)}\n"
    with running_server(tmp_path, database=database_url, config_text=config) as server:
        push(server, "web1", [{"name": "nginx", "state": "OK", "info": "HTTP OK"},
                              {"name": "app", "state": "OK", "info": "up"}])
        push(server, "web2", [{"name": "app", "state": "CRITICAL", "info": "refused"},
                              {"name": "disk", "state": "OK", "info": "41%"}])
        push(server, "db1", [{"name": "mysql", "state": "OK", "info": "up"},
                             {"name": "backup", "state": "WARNING", "info": "late"}])
        maintenance(server, "web1", duration=1800, reason="deploy 4.2")
        maintenance(server, "web2", duration=1800, reason="restart", services=["app"])
        basic = "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
        status, _, answer = server.post(
            "/api/maintenance", {"servers": ["db*"], "services": ["back*"], "duration": 600,
                                 "reason": "nightly"},
            headers={"Authorization": basic, "Content-Type": "application/json"})
        assert status == 200, answer
        base = server.url.rstrip("/")
        with sync_playwright() as p:
            browser = _launch(p)
            try:
                page = browser.new_page(viewport=DESKTOP)
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.goto(base + "/ui/login")
                page.fill("input[name=name]", "admin")
                page.fill("input[name=password]", PASSWORD)
                page.click("#login")
                page.wait_for_url(base + "/ui/")

                def card(name):
                    return page.locator("article.server", has_text=name).first

                # the whole server: on its card, a word, its reason in the accessible name
                mark = card("web1").locator("h2 .mark-maint")
                assert mark.is_visible() and "⚒ maintenance" in mark.inner_text()
                assert "deploy 4.2" in mark.text_content()
                assert card("web1").locator("a.tile.maint").count() == 0
                # some services: on their tiles, said in the link's name too
                app = card("web2").get_by_role("link", name="in maintenance")
                assert app.count() == 1 and "app" in app.inner_text()
                assert app.locator(".mntm").is_visible()
                assert "maintenance" in app.locator(".mntm").inner_text()
                assert card("web2").locator("h2 .mark-maint").count() == 0
                assert card("db1").locator("a.tile.maint").count() == 1
                assert "backup" in card("db1").locator("a.tile.maint").inner_text()

                for size in (DESKTOP, PHONE):
                    page.set_viewport_size(size)
                    page.goto(base + "/ui/")
                    assert axe_violations(page, source) == [], size
                    assert page.evaluate("document.documentElement.scrollWidth") \
                        <= size["width"]
                    # a tile's tip (its info excerpt, fetched on focus) is accessible too
                    card("web2").locator("a.tile", has_text="app").focus()
                    page.locator("#tile-tip").wait_for(state="visible", timeout=5000)
                    assert axe_violations(page, source) == [], ("tip", size)
                    page.screenshot(path=str(tmp_path / f"overview-{size['width']}.png"))
                page.set_viewport_size(DESKTOP)
                tile_tips(page, card)

                # a deploy script ends its window, another begins one: no reload needed
                page.evaluate("window.__noReload = 7")
                maintenance(server, "web1", end=True)
                wait_for(lambda: card("web1").locator(".mark-maint").count() == 0, 8,
                         "web1's mark to go on the live page")
                maintenance(server, "db1", duration=600, reason="reindex")
                wait_for(lambda: card("db1").locator("h2 .mark-maint").count() == 1, 8,
                         "db1's mark to come on the live page")
                assert "reindex" in card("db1").locator("h2 .mark-maint").text_content()
                assert page.evaluate("window.__noReload") == 7
                assert not errors, errors
            finally:
                browser.close()
