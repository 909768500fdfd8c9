"""The overview marks what a maintenance window covers now (SPEC 11): a window over a whole
server on its card, one over some services on their tiles, as a word and an accessible name;
windows not running now, and silences (their own mark), mark nothing. The cost is the windows
that apply: one query for the windows, and no per-service work on servers none covers."""
from __future__ import annotations

import re
from types import SimpleNamespace

import pytest_twisted

from overc.core.maintenance import ServerCover, Window, WindowRequest, server_cover, WindowIndex
from overc.storage.db import Cursor
from overc.storage.maintenance_store import MaintenanceStore
from overc.ui import views
from overc.web.maintenance import MaintenanceControl
from test_ui_routes import login
from ui_fakes import Harness, cookie_header

NOW = 1_800_000_000.0


def server(sid: int, name: str, *services: str):
    tiles = [[sid * 100 + n, svc, "OK", "fine", 0, 0, None] for n, svc in enumerate(services)]
    return SimpleNamespace(id=sid, name=name, silenced_until=None, silence_reason=None,
                           offline=False, tiles=tiles)


def one_off(wid: int, *, start=NOW - 60, end=NOW + 600, **scope) -> Window:
    return Window(id=wid, source=scope.pop("source", "ui"), start=start, end=end,
                  reason=scope.pop("reason", f"window {wid}"), **scope)


def marked(cards) -> dict[str, tuple[int | None, list[str]]]:
    """Server name -> (id of the window over the whole card, names of the marked tiles)."""
    out = {}
    for card in cards:
        tiles = re.findall(r'<a class="tile [^"]*\bmaint\b[^"]*"[^>]*>'
                           r'(?:<span class="ic[^>]*>[^<]*</span>)?([^<]*)<', str(card.tiles))
        out[card.name] = (card.maintenance.id if card.maintenance else None, sorted(tiles))
    return out


def test_cards_and_tiles_mark_the_windows_running_now():
    servers = [server(1, "web1", "app", "disk"), server(2, "web2", "app", "disk", "nginx"),
               server(3, "db1", "mysql", "backup", "backup-logs"), server(4, "mail", "smtp"),
               server(5, "calm", "app")]
    windows = [
        one_off(10, server_id=1),                                    # web1, whole
        one_off(11, server_id=2, service_id=201),                    # web2/disk by id
        one_off(12, server_id=2, services=("nginx", "ng*")),         # exact names only
        one_off(13, servers=("db*",), services=("backup*",)),        # glob over services
        one_off(14, servers=("mail*",)),                             # glob, whole server
        one_off(15, server_id=5, start=NOW + 60, end=NOW + 120),     # not begun
        one_off(16, server_id=5, start=NOW - 120, end=NOW - 60),     # over
        one_off(17, server_id=5, service_id=500, source="silence"),  # a silence: its own mark
        Window(id=18, source="config", schedule="0 3 * * *", tz="UTC", duration=60,
               servers=("calm",)),                                   # recurring, not now
    ]
    cards, counts = views.overview_cards(servers, NOW, windows)
    assert marked(cards) == {
        "web1": (10, []), "web2": (None, ["disk", "nginx"]),
        "db1": (None, ["backup", "backup-logs"]), "mail": (14, []), "calm": (None, []),
    }
    assert sum(counts.values()) == 10
    web1 = next(c for c in cards if c.name == "web1")
    assert web1.maintenance_until == NOW + 600
    tile = next(t for t in str(next(c for c in cards if c.name == "web2").tiles).split("\n")
                if ">disk<" in t)
    # in words, for eyes (the mark) and for screen readers (the name), not by colour
    assert "⚒ in maintenance" in tile and 'aria-label="disk, in maintenance, OK"' in tile


def test_a_recurring_window_marks_while_it_runs():
    servers = [server(1, "db1", "mysql")]
    nightly = Window(id=1, source="config", schedule="0 2 * * *", tz="UTC", duration=7200,
                     servers=("db*",), reason="backups")
    two_thirty = 1_800_000_000 - 1_800_000_000 % 86400 + 2.5 * 3600
    cards, _ = views.overview_cards(servers, two_thirty, [nightly])
    assert cards[0].maintenance is nightly
    assert cards[0].maintenance_until == two_thirty - 1800 + 7200
    cards, _ = views.overview_cards(servers, two_thirty + 7200, [nightly])
    assert cards[0].maintenance is None


def test_the_cost_is_the_windows_that_apply(monkeypatch):
    """10,000 services, windows on two servers: only the tiles of the server a
    service-scoped window touches are looked up; the others pay nothing per tile."""
    servers = [server(i, f"srv{i:04d}", *[f"svc{j:02d}" for j in range(10)])
               for i in range(1, 1001)]
    windows = [one_off(1, server_id=7, services=("svc03",)), one_off(2, server_id=9)]
    looked_up = []
    real = ServerCover.service

    def counting(self, service_id, name):
        looked_up.append(service_id)
        return real(self, service_id, name)

    monkeypatch.setattr(ServerCover, "service", counting)
    cards, _ = views.overview_cards(servers, NOW, windows)
    assert len(looked_up) == 10  # the ten tiles of srv0007, nothing else
    assert marked([c for c in cards if c.name in ("srv0007", "srv0009")]) == {
        "srv0007": (None, ["svc03"]), "srv0009": (2, [])}
    covers = []
    index = WindowIndex(windows, NOW)
    for s in servers:
        covers.append(server_cover(index, s.id, s.name))
    assert sum(c is not None for c in covers) == 2


def test_server_cover_keeps_exact_names_of_a_servers_own_window():
    index = WindowIndex([one_off(1, server_id=1, services=("a*",))], NOW)
    cover = server_cover(index, 1, "web1")
    assert cover.service(5, "a*") is not None and cover.service(6, "ab") is None


# -- the page ---------------------------------------------------------------------------------

def _card(body: bytes, server_id: int) -> str:
    page = body.decode()
    start = page.index(f'data-key="server-{server_id}"')
    return page[start:page.index("</article>", start)]


@pytest_twisted.ensureDeferred
async def test_overview_page_marks_windows_with_one_query(ui_db, monkeypatch):
    h = Harness(ui_db)
    store = MaintenanceStore(ui_db)
    h.ui.windows = MaintenanceControl(store, h.clock)
    now = h.clock.seconds()
    ids = ui_db.ids
    await store.create(WindowRequest(source="push", start=now - 5, end=now + 1800,
                                     server_id=ids["web1"], reason="deploy <4.2>"), now)
    await store.create(WindowRequest(source="ui", start=now - 5, end=now + 1800,
                                     servers=("db*",), services=("my*",)), now)
    cookies = await login(h)
    statements: list[str] = []
    real_execute = Cursor.execute

    def recording(self, statement, params=()):
        statements.append(statement)
        return real_execute(self, statement, params)

    monkeypatch.setattr(Cursor, "execute", recording)
    response, body = await h.request("GET", "/ui/", headers=cookie_header(cookies))
    monkeypatch.undo()
    assert response.code == 200
    web1 = _card(body, ids["web1"])
    assert 'class="mark mark-maint"' in web1 and "⚒ maintenance" in web1
    assert "deploy &lt;4.2&gt;" in web1  # the reason, escaped, for the title and the name
    assert web1.count("tile ") == 2 and " maint" not in re.sub(r"mark-maint|mark mark", "",
                                                                web1.split("class=\"tiles\"")[1])
    db1 = _card(body, ids["db1"])
    assert "mark-maint" not in db1
    assert re.search(r'class="tile [^"]*\bmaint\b[^"]*" href="/ui/service/%d"' % ids["mysql"],
                     db1)
    # the windows cost one query for the page and one for its live fingerprint
    assert sum("FROM maintenance" in s for s in statements) == 2, statements


@pytest_twisted.ensureDeferred
async def test_a_window_that_starts_by_the_clock_changes_the_live_tag(ui_db):
    h = Harness(ui_db)
    store = MaintenanceStore(ui_db)
    h.ui.windows = MaintenanceControl(store, h.clock)
    now = h.clock.seconds()
    await store.create(WindowRequest(source="ui", start=now + 10, end=now + 600,
                                     server_id=ui_db.ids["db1"], reason="soon"), now)
    cookies = await login(h)
    response, body = await h.request("GET", "/ui/", headers=cookie_header(cookies))
    tag = response.headers.getRawHeaders(b"etag")[0].decode()
    assert "mark-maint" not in _card(body, ui_db.ids["db1"])
    response, _ = await h.request("GET", "/ui/", headers={**cookie_header(cookies),
                                                         "If-None-Match": tag})
    assert response.code == 304
    h.clock.advance(11)  # nothing was written: the window began by the clock
    response, body = await h.request("GET", "/ui/", headers={**cookie_header(cookies),
                                                            "If-None-Match": tag})
    assert response.code == 200
    assert "mark-maint" in _card(body, ui_db.ids["db1"])
