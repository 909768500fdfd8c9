"""This process's channel set in the database: registered at start, refused when it differs.

A process without a channel that another process on the same database has would dispatch
alerts (mark them handled) without notifying that channel. So before the dispatcher runs, the
:class:`ChannelSetRegistry` records this process's set (names and a fingerprint of the parsed
specs) with a heartbeat; a live process with another set makes it refuse to start with one
line. Its own :class:`RepeatingJob` renews the heartbeat (one write per beat, never on the
alert path); a clean stop removes the row, and a dead process's row expires.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import fields
from pathlib import Path
from typing import Any, Callable, Sequence

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from overc.core.channel_sets import HEARTBEAT, ChannelSet, conflict_message, expiry
from overc.notify.base import ChannelSpec
from overc.runtime.repeating import RepeatingJob
from overc.storage.channel_set_store import ChannelSetStore

log = Logger()
#: Left out of the fingerprint: where the config lives (workers and hosts may differ), and
#: secrets, which must not reach the database even hashed (header values, SMTP password).
_NOT_FINGERPRINTED = ("base_dir", "smtp_password")
#: Options added later (``after``, SPEC 10.5): unset, they leave the fingerprint as before, so
#: upgraded and not yet upgraded processes with the same config do not refuse each other.
_NEW_OPTIONAL = ("after",)


def _canonical(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (tuple, list)):
        return [_canonical(v) for v in value]
    return value


def channel_set(specs: Sequence[ChannelSpec]) -> ChannelSet:
    """The names and a SHA-256 of a canonical JSON of the parsed specs."""
    canonical = []
    for spec in sorted(specs, key=lambda s: s.name):
        one: dict[str, Any] = {}
        for f in fields(spec):
            if f.name in _NOT_FINGERPRINTED:
                continue
            value = getattr(spec, f.name)
            if f.name in _NEW_OPTIONAL and value is None:
                continue  # a set without the newer option keeps the fingerprint it had
            one[f.name] = sorted(value) if f.name == "headers" else _canonical(value)
        canonical.append(one)
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return ChannelSet(tuple(s.name for s in sorted(specs, key=lambda s: s.name)),
                      hashlib.sha256(text.encode("ascii")).hexdigest())


class ChannelSetRegistry(RepeatingJob):
    """Registers ``here`` for ``process`` once the database is ready (``kick`` it then), and
    renews its heartbeat. ``registered`` says whether this process may dispatch;
    ``on_conflict(line)`` is called with the one-line refusal."""

    def __init__(self, store: ChannelSetStore, clock: IReactorTime, here: ChannelSet,
                 process: str, *, on_conflict: Callable[[str], None],
                 on_registered: Callable[[], None] | None = None,
                 interval: float = HEARTBEAT) -> None:
        super().__init__("channel set", self.beat, clock, interval)
        self.store = store
        self.here = here
        self.process = process
        self.on_conflict = on_conflict
        self.on_registered = on_registered
        self.expiry = expiry(interval)
        self.registered = False
        self.refused: str | None = None

    async def beat(self) -> None:
        if self.refused is not None:
            return
        now = self.clock.seconds()
        if self.registered:
            if await self.store.heartbeat(self.process, now):
                return
            # Our row expired (the database was away longer than the expiry): register again.
            self.registered = False
            log.warn("The channel set of this process had expired; registering it again")
        conflicts = await self.store.register(self.process, self.here, now, self.expiry)
        if conflicts:
            self.refused = conflict_message(self.here, conflicts)
            self.on_conflict(self.refused)
            return
        self.registered = True
        if self.on_registered is not None:
            self.on_registered()

    def stopService(self) -> Deferred | None:
        stopping = super().stopService()
        if not self.registered:
            return stopping
        self.registered = False

        async def remove() -> None:
            if stopping is not None:
                await stopping
            try:
                await self.store.remove(self.process)
            except Exception as error:  # it expires by itself
                log.warn("Could not remove this process's channel set ({error}); it expires"
                         " in {s:.0f} s", error=error, s=self.expiry)

        return ensureDeferred(remove())
