"""Maintenance windows as the UI and the read/write API change them (SPEC 11): one place turns
a form or a JSON body into a window and store errors into the web's errors, so the browser and
scripts cannot drift. Silences stay in :mod:`overc.web.control` and are windows too.
"""
from __future__ import annotations

from typing import Any, Mapping

from twisted.internet.interfaces import IReactorTime

from overc.core.maintenance import Window
from overc.core.maintenance_input import parse_window
from overc.core.payload import ValidationError
from overc.storage.maintenance_store import (
    ConfigWindow, MaintenanceStore, ScopeNotFound, WindowNotFound,
)
from overc.web.control import NotFound
from overc.web.http import BadRequest

#: Ended windows the list still shows, so a user sees what just finished.
RECENT = 3600.0


class MaintenanceControl:
    def __init__(self, store: MaintenanceStore, clock: IReactorTime) -> None:
        self.store = store
        self.clock = clock

    async def create(self, body: Mapping[str, Any], *, source: str, user: str | None) -> int:
        now = self.clock.seconds()
        try:
            request = parse_window(body, now, source=source, created_by=user)
            return await self.store.create(request, now)
        except ValidationError as e:
            raise BadRequest(e.message, e.field) from None
        except ScopeNotFound as e:
            raise BadRequest(f"no such {str(e).replace('_id', '')}", str(e)) from None

    async def end(self, window_id: int) -> None:
        try:
            await self.store.end(window_id, self.clock.seconds())
        except WindowNotFound:
            raise NotFound() from None
        except ConfigWindow as e:
            raise BadRequest(f"window {e} comes from the config file: edit [maintenance:{e}]"
                             " there to change it", "id") from None

    async def list(self, server_id: int | None = None, recent: float = RECENT) -> list[Window]:
        return await self.store.list(self.clock.seconds(), server_id, recent)
